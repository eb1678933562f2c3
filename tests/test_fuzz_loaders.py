"""A few hundred pseudo-random damaged files through the loaders' fuzz target
(tests/fuzz_loaders.py, which atheris runs for longer): each is loaded or refused with a
one-line RnnstabError, never another exception."""

from __future__ import annotations

import fuzz_loaders


def test_damaged_files_are_loaded_or_refused_in_one_line() -> None:
    for data in fuzz_loaders.random_inputs(400, seed=1):
        fuzz_loaders.one_input(data)
