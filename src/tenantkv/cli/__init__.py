"""The ``tenantkv`` command line: ops commands and the load test.

It is an extra (``pip install 'tenantkv[cli]'``): the library installs
without typer, rich and matplotlib. :func:`main` is the console script; it
says how to install the extra when it is missing. The typer application
lives in :mod:`tenantkv.cli.app`, the ops commands' work in
:mod:`tenantkv.cli.ops`, the load test in :mod:`tenantkv.cli.loadtest`.
Everything here uses tenantkv's public API only (``from tenantkv import ...``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

#: What the command line needs beyond the library (the ``cli`` extra).
_CLI_PACKAGES = frozenset({"typer", "click", "rich", "matplotlib"})


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: the typer app, or how to install it."""
    try:
        from .app import main as run_app
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in _CLI_PACKAGES:
            raise
        print(
            f"tenantkv: the command line needs the 'cli' extra ({exc.name} is missing): "
            "pip install 'tenantkv[cli]'",
            file=sys.stderr,
        )
        sys.exit(1)
    run_app(argv)
