"""How every command line of the package reports bad input: one line naming the problem, exit status 2; ``--debug``
(anywhere on the line) shows the full traceback instead."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["USER_ERRORS", "run_main"]

# What bad input raises here (a config field, a file, a name, a locked run); anything else is a bug and keeps its
# traceback.
USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, KeyError, TypeError)


def run_main(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """``main(argv)``, with a user error printed as ``error: …`` on one line (``--debug``: raised as it is)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        return main(argv)
    except USER_ERRORS as err:
        if debug:
            raise
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}\n(run again with --debug for the traceback)", file=sys.stderr)
        return 2
