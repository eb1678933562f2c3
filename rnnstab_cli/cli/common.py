"""Small helpers the commands share: exit codes, JSON lines on stdout, notes on stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, Final

#: Exit codes of every rnnstab command (also in `rnnstab --help` and `rnnstab train --help`).
EXIT_OK: Final[int] = 0  # train: solved
EXIT_ERROR: Final[int] = 1  # a failure that is not the user's input (e.g. divergence)
EXIT_USAGE: Final[int] = 2  # bad options, values, config files
EXIT_DATA: Final[int] = 3  # a data file is missing or malformed
EXIT_CHECKPOINT: Final[int] = 4  # a checkpoint is missing, damaged or incompatible
EXIT_NOT_SOLVED: Final[int] = 10  # train: update budget exhausted without solving
EXIT_INTERRUPTED: Final[int] = 130  # Ctrl-C (128 + SIGINT)

EXIT_CODES_HELP: Final[str] = (
    "Exit codes: 0 solved · 10 budget exhausted, not solved · 1 error (e.g. diverged) · "
    "2 bad usage · 3 data error · 4 checkpoint error · 130 interrupted (Ctrl-C)."
)


def emit_json(record: Mapping[str, Any]) -> None:
    """One JSON object per line on stdout, flushed so `| jq` sees it at once."""
    sys.stdout.write(json.dumps(record, allow_nan=False) + "\n")
    sys.stdout.flush()


def warn_threads(threads: int | None) -> None:
    """Say at once when more engine threads were asked for than there are cores: every join
    then waits for threads that share a core, and updates get slower, not faster."""
    cores = os.cpu_count() or 1
    if threads is not None and threads > cores:
        note(
            f"note: --threads {threads} is more than the {cores} cores here; updates will be slower"
        )


def note(message: str) -> None:
    """A one-line message for people, on stderr."""
    print(message, file=sys.stderr, flush=True)


_interrupt_noted = False


def note_interrupt(message: str) -> None:
    """The one-line note on Ctrl-C; main() adds a generic one only when no command did."""
    global _interrupt_noted
    _interrupt_noted = True
    note(message)


def interrupt_noted() -> bool:
    return _interrupt_noted


def one_line(message: object) -> str:
    return " ".join(str(message).split())
