"""The `sotlat` application: its command groups, and usage errors as one line."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from typer.core import TyperGroup

from sotlat.cli.common import err

# click's UsageError, whichever click typer runs on: its own copy (typer >= 0.2x) or the click package.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineUsageErrors(TyperGroup):
    """A usage error (a missing option, a value out of its range, an unknown command or option) is
    one line on stderr and exit code 2, as every other bad input is, not typer's boxed panel."""

    def make_context(self, *args, **kwargs):  # `sotlat --bogus`
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):  # a command's own options and arguments, and unknown commands
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_usage_errors():
    try:
        yield
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `sotlat` or `sotlat tables`: the help, as asked
            raise
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        err.print(f"error: {' '.join(exc.format_message().split())}{hint}")
        raise typer.Exit(2) from None


app = typer.Typer(help="GPU latency profiler, Skeleton-of-Thought latency estimator and analytical GPU simulator (Ning et al., 2023, App. C.2).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, cls=_OneLineUsageErrors)
tables_app = typer.Typer(help="List, inspect, compare and merge latency tables.", no_args_is_help=True)
app.add_typer(tables_app, name="tables")
campaign_app = typer.Typer(help="Profiling campaigns: many profiles, sharded and run on a Ray cluster (pip install 'sotlat[ray]').",
                           no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")


def _print_version(value: bool) -> None:
    if value:
        from sotlat import __version__

        print(f"sotlat {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False):
    pass
