"""Single-value checks shared by the synthetic and natural configs, and the TOML reader shared
by config files, presets and sweep specs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rnnstab_cli.errors import UsageError
from rnnstab_cli.toml_files import read_toml
from rnnstab_cli.training.value_checks import choice, finite_at_least, int_at_least, positive_int


def test_choice() -> None:
    choice("dtype", "float32", ("float32", "float64"))
    with pytest.raises(UsageError, match=r"^unknown dtype 'f16'; expected one of: a, b$"):
        choice("dtype", "f16", ("a", "b"))


@pytest.mark.parametrize("value", [True, 1.0, "3", None])
def test_integers_are_integers(value: object) -> None:
    with pytest.raises(UsageError, match="seed must be an integer"):
        int_at_least("seed", value, 0)


def test_integer_bounds() -> None:
    int_at_least("seed", 0, 0)
    positive_int("batch", 1)
    with pytest.raises(UsageError, match=r"^batch must be ≥ 1, got 0$"):
        positive_int("batch", 0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1"])
def test_numbers_are_finite(value: object) -> None:
    with pytest.raises(UsageError, match="lr must be a finite number"):
        finite_at_least("lr", value, 0.0)


def test_number_bounds() -> None:
    finite_at_least("alpha", 0.0, 0.0)
    finite_at_least("alpha", 2, 0.0)
    with pytest.raises(UsageError, match=r"^lr must be > 0, got 0$"):
        finite_at_least("lr", 0.0, 0.0, strict=True)
    with pytest.raises(UsageError, match=r"^alpha must be ≥ 0, got -1$"):
        finite_at_least("alpha", -1.0, 0.0)


def test_read_toml_names_the_kind_of_file(tmp_path: Path) -> None:
    good = tmp_path / "a.toml"
    good.write_text('task = "addition"\n')
    assert read_toml(good, "config file") == {"task": "addition"}
    with pytest.raises(UsageError, match=r"^sweep spec '.*' is a directory$"):
        read_toml(tmp_path, "sweep spec")
    with pytest.raises(UsageError, match=r"^preset '.*missing.toml' does not exist$"):
        read_toml(tmp_path / "missing.toml", "preset")
    bad = tmp_path / "bad.toml"
    bad.write_text("task = \n")
    with pytest.raises(UsageError, match=r"^config file '.*bad.toml' is not valid TOML: "):
        read_toml(bad, "config file")
