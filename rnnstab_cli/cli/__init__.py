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

from rnnstab_cli.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, note, one_line
from rnnstab_cli.errors import RnnstabError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    # Imported here so `import rnnstab_cli.cli` stays cheap and so an import-time problem in a
    # command is still reported through the handlers below.
    import typer

    from rnnstab_cli.cli.app import app

    # SIGTERM (`kill PID`, a batch scheduler ending a job) stops a command as Ctrl-C does: a
    # run saves its checkpoint, a sweep or campaign stores what finished. It also stops a
    # command started in the background by a script, where the shell ignores SIGINT for it.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        from rnnstab_cli.simd_env import check_simd_env

        check_simd_env()
        # Not standalone: a bad option or value comes back as an exception, said below in one
        # line, instead of the help formatter's five-line panel.
        rv = app(
            args=list(argv) if argv is not None else None,
            prog_name="rnnstab",
            standalone_mode=False,
        )
        return _exit_code(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)
    except SystemExit as e:  # a command that calls sys.exit itself
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return _exit_code(code)
        note(str(code))
        return 1
    except typer.Abort:
        note("Interrupted.")
        return EXIT_INTERRUPTED
    except typer.TyperException as e:  # the parser's errors: unknown options, bad values
        message = one_line(e.format_message() if hasattr(e, "format_message") else e)
        ctx = getattr(e, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if message:  # empty when the help was shown for a bare `rnnstab`
            note(f"Error: {message}{where}")
        return int(getattr(e, "exit_code", EXIT_USAGE))
    except RnnstabError as e:
        note(f"Error: {one_line(e)}")
        return e.exit_code
    except KeyboardInterrupt:
        note("Interrupted.")
        return EXIT_INTERRUPTED
    except MemoryError as e:
        # The commands check what a run needs before allocating; this catches what an
        # estimate missed (another process took the memory meanwhile), in one line.
        detail = one_line(e) or "an allocation failed"
        note(f"Error: out of memory: {detail}")
        return EXIT_USAGE
    return 0


def _exit_code(code: int) -> int:
    if code == EXIT_INTERRUPTED and not _noted_interrupt():
        note("Interrupted.")  # Typer turns Ctrl-C into a silent exit 130
    return code


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _noted_interrupt() -> bool:
    """Whether a command already said where it stopped (train does, with its checkpoint)."""
    from rnnstab_cli.cli.common import interrupt_noted

    return interrupt_noted()


if __name__ == "__main__":
    sys.exit(main())
