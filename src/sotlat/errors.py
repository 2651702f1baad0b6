"""The one exception type for mistakes in user input: the CLI prints it as one line, exit 2."""


class InputError(Exception):
    """Bad or missing user input; the message names the file, line or row, and field. `param` names
    the parameter at fault where it is one (`dtype`): Python reads "dtype: ...", the CLI its option,
    "--dtype: ..."."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(f"{param}: {message}" if param else message)
        self.message, self.param = message, param


def did_you_mean(given: str, choices) -> str:
    """'did you mean a or b? ' for the choices `given` begins (in their order), else those it nearly
    spells (closest first); '' for none."""
    import difflib

    choices = list(choices)
    close = [c for c in choices if given and c.startswith(given)] or difflib.get_close_matches(given, choices, n=3, cutoff=0.6)
    if not close or len(close) == len(choices):
        return ""
    return f"did you mean {', '.join(close[:-1])} or {close[-1]}? " if len(close) > 1 else f"did you mean {close[0]}? "
