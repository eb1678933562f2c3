"""The sections of ``rnnstab reproduce``, apart from the studies that fill them
(:mod:`.studies`), so that the command line can list them without importing the engine."""

from __future__ import annotations

from typing import Final

#: ``rnnstab reproduce SECTION``: the paper's claims, in the order the report gives them, then
#: ``clipping``, which goes beyond the paper (the adaptive clipping rules against Algorithm 1,
#: and §3.2's remark that training is not very sensitive to the threshold).
SECTIONS: Final[tuple[str, ...]] = ("fig7", "generalisation", "tasks", "music", "ptb", "clipping")
#: ``rnnstab reproduce all``: the paper's claims. ``clipping`` is asked for by name, so that a
#: reproduction of the paper does not queue hundreds of runs beyond it.
PAPER_SECTIONS: Final[tuple[str, ...]] = ("fig7", "generalisation", "tasks", "music", "ptb")
#: Sections made of synthetic-task sweeps (the others train the natural tasks, §4.2).
SYNTHETIC_SECTIONS: Final[tuple[str, ...]] = ("fig7", "generalisation", "tasks", "clipping")
