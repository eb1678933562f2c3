"""How long the command line takes to answer before any work: ``rnnstab --help``, ``rnnstab
tasks`` and a mistyped option, each in a fresh interpreter as a user's shell starts it.

Commands import numpy, the engine and matplotlib only when they run (tests/test_startup.py
checks which modules load); this measures what that buys, against a target of half a second.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Final

#: What a user waits for at most before the command line answers.
TARGET_SECONDS: Final[float] = 0.5
#: The commands measured, with the exit code each must give.
COMMANDS: Final[tuple[tuple[tuple[str, ...], int], ...]] = (
    (("--help",), 0),
    (("tasks",), 0),
    (("train", "--bogus"), 2),
)
#: The entry point as the console script runs it, in a fresh interpreter.
_ENTRY: Final[str] = "import sys; from rnnstab_cli.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class StartupRow:
    command: str
    median_s: float
    max_s: float
    exit_code: int

    @property
    def within_target(self) -> bool:
        return self.median_s <= TARGET_SECONDS

    def to_json(self) -> dict[str, object]:
        return {
            "startup": self.command,
            "median_s": round(self.median_s, 3),
            "max_s": round(self.max_s, 3),
            "target_s": TARGET_SECONDS,
            "exit_code": self.exit_code,
        }


def measure_startup(repeats: int = 5) -> list[StartupRow]:
    """Each of :data:`COMMANDS` run ``repeats`` times in a fresh interpreter (output discarded);
    the median wall time and the slowest. The first run of each is not counted, so the
    operating system's file cache is warm as it is for a user's second command."""
    rows = []
    for argv, expected in COMMANDS:
        times = []
        code = expected
        for i in range(repeats + 1):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _ENTRY, *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
            if i:
                times.append(time.perf_counter() - start)
            code = done.returncode
        rows.append(
            StartupRow("rnnstab " + " ".join(argv), statistics.median(times), max(times), code)
        )
    return rows
