"""The sections of ``rnnstab reproduce``, apart from the studies that fill them
(:mod:`.studies`), so that the command line can list them without importing the engine."""

from __future__ import annotations

from typing import Final

#: ``rnnstab reproduce SECTION``: the paper's claims, in the order the report gives them.
SECTIONS: Final[tuple[str, ...]] = ("fig7", "generalisation", "tasks", "music", "ptb")
#: Sections made of synthetic-task sweeps (the others train the natural tasks, §4.2).
SYNTHETIC_SECTIONS: Final[tuple[str, ...]] = ("fig7", "generalisation", "tasks")
