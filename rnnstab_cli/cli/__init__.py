"""The ``rnnstab`` command line. :func:`main` is the console script's entry point.

Exit codes: 0 success (train: solved); 10 train: update budget exhausted without solving;
1 other errors (e.g. training diverged); 2 bad usage (options, values, config files);
3 data error; 4 checkpoint error; 130 interrupted by Ctrl-C.

Errors the user can fix (:class:`~rnnstab_cli.errors.RnnstabError`) are printed as one line,
``Error: <message>``, on stderr, never as a traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from rnnstab_cli.cli.common import EXIT_INTERRUPTED, note, one_line
from rnnstab_cli.errors import RnnstabError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    # Imported here so `import rnnstab_cli.cli` stays cheap and so an import-time problem in a
    # command is still reported through the handlers below.
    from rnnstab_cli.cli.app import app

    # SIGTERM (`kill PID`, a batch scheduler ending a job) stops a command as Ctrl-C does: a
    # run saves its checkpoint, a sweep or campaign stores what finished. It also stops a
    # command started in the background by a script, where the shell ignores SIGINT for it.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        from rnnstab_cli.engine import check_simd_env

        check_simd_env()
        app(args=list(argv) if argv is not None else None, prog_name="rnnstab")
    except SystemExit as e:  # typer always ends with sys.exit in standalone mode
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            if code == EXIT_INTERRUPTED and not _noted_interrupt():
                note("Interrupted.")  # Typer turns Ctrl-C into a silent exit 130
            return code
        note(str(code))
        return 1
    except RnnstabError as e:
        note(f"Error: {one_line(e)}")
        return e.exit_code
    except KeyboardInterrupt:
        note("Interrupted.")
        return EXIT_INTERRUPTED
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _noted_interrupt() -> bool:
    """Whether a command already said where it stopped (train does, with its checkpoint)."""
    from rnnstab_cli.cli.common import interrupt_noted

    return interrupt_noted()


if __name__ == "__main__":
    sys.exit(main())
