"""The one exception type for mistakes in user input: the CLI prints it as one line, exit 2."""


class InputError(Exception):
    """Bad or missing user input; the message names the file, line or row, and field."""
