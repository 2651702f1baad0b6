"""The `sotlat` command line: thin commands by group, each checking its options, making one call into
the library and showing what it returns (`sotlat --help` lists them)."""

from sotlat.cli import profile, estimate, sot, simulator, report, tables, campaign  # noqa: F401, I001  (their commands join the app, in this order)
from sotlat.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
