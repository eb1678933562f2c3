"""The presets and sweep specs that ship inside the package (rnnstab_cli/preset_files.py):
found with importlib.resources wherever rnnstab is installed, replaceable with $RNNSTAB_TASKS,
never silently replaced by built-in defaults, and unchanged, since run ids hash the configs
they resolve to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rnnstab_cli
from rnnstab_cli import preset_files
from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_ERROR, EXIT_USAGE
from rnnstab_cli.errors import InstallError, UsageError
from rnnstab_cli.preset_files import PRESET_ENV, find_sweep_spec, preset_dir, shipped_sweep_names
from rnnstab_cli.reproduce.natural import NaturalPlanned
from rnnstab_cli.sweep.spec import load_spec, run_id
from rnnstab_cli.training.config import (
    natural_preset_names,
    preset_config,
    preset_names,
    resolve_config,
)
from rnnstab_cli.training.natural.config import natural_preset_config, resolve_natural_config

REPO = Path(__file__).resolve().parents[1]
PACKAGE_PRESETS = Path(rnnstab_cli.__file__).resolve().parent / "presets"

#: The run id of each shipped preset resolved with no overrides (synthetic: as a sweep or the
#: campaign computes it; natural: as the campaign's Tables 1–2 do), taken before the presets
#: moved into the package. Stored campaigns find their runs by these ids, so a change here
#: orphans stored runs: change a preset only on purpose, and then this table.
PRESET_RUN_IDS = {
    "addition": "6e62e91eb6912385",
    "memorization-20bit": "1eaa1bdbbb563d7e",
    "memorization": "0a9f1362a57d54d2",
    "multiplication": "eb2dfa762e2def3c",
    "random-permutation": "be56f3aaa246ffd4",
    "temporal-order-3bit": "7d2d4b5137027273",
    "temporal-order-authors": "f08071f17fa5dde5",
    "temporal-order": "66fbc246249c3525",
    "music-jsb": "c860c766bde3c4ff",
    "music-musedata": "1a1ba9724209c307",
    "music-nottingham": "097cea528eb4ee26",
    "music-piano-midi": "1e5c7ad1ff7b1069",
    "ptb-char-5ahead": "e857665e5b889b6d",  # one stream per update since 2026-12-03
    "ptb-char": "73e92fbfe79b6f3d",  # one stream per update since 2026-12-03
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_user_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRESET_ENV, raising=False)


def test_presets_resolve_to_the_run_ids_they_always_had(no_user_presets: None) -> None:
    got = {n: run_id(preset_config(n)) for n in preset_names()}
    for n in natural_preset_names():
        c = natural_preset_config(n)
        got[n] = NaturalPlanned("presets", n, c.method, c).run_id
    assert got == PRESET_RUN_IDS


def test_presets_are_found_inside_the_package(no_user_presets: None) -> None:
    assert preset_dir().resolve() == PACKAGE_PRESETS
    assert (PACKAGE_PRESETS / "addition.toml").is_file()
    assert shipped_sweep_names() == [
        "clipping-sensitivity-agc",
        "clipping-sensitivity-auto",
        "clipping-sensitivity-norm",
        "clipping-sensitivity-percentile",
        "clipping-sensitivity-skip",
        "clipping-sensitivity-zscore",
        "clipping-study",
        "fig7-small",
        "fig7-temporal-order",
    ]
    # The source tree's tasks/ is a link to the same folder, for people browsing the repo.
    assert (REPO / "tasks").resolve() == PACKAGE_PRESETS


def test_a_user_preset_directory_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "addition.toml").write_text('task = "addition"\nlen = 10\nlr = 0.125\n')
    (tmp_path / "mine.toml").write_text('task = "temporal-order"\nlen = 12\nhidden = 7\n')
    monkeypatch.setenv(PRESET_ENV, str(tmp_path))
    assert resolve_config({"task": "addition"}).lr == 0.125
    assert resolve_config({"task": "mine"}).hidden == 7
    code, out, _ = run(capsys, "tasks", "--json")
    assert code == 0
    listing = json.loads(out)
    assert {r["name"] for r in listing["presets"]} == {"addition", "mine"}
    assert listing["preset_dir"] == str(tmp_path)


def test_a_task_without_a_preset_is_an_error_not_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.toml").write_text('task = "temporal-order"\nlen = 12\n')
    monkeypatch.setenv(PRESET_ENV, str(tmp_path))
    with pytest.raises(UsageError, match="no preset for task 'addition'"):
        resolve_config({"task": "addition", "len": 10})
    with pytest.raises(UsageError, match="no preset for task 'ptb-char'"):
        resolve_natural_config({"task": "ptb-char"})
    with pytest.raises(UsageError, match="no preset for task 'music-jsb'"):
        resolve_natural_config({"task": "music", "dataset": "jsb"})
    code, out, err = run(capsys, "train", "--task", "addition", "--len", "10", "--json")
    assert code == EXIT_USAGE and out == ""
    assert err.strip().splitlines() == [
        f"Error: no preset for task 'addition' in {str(tmp_path)!r} (no addition.toml)"
    ]


def test_a_missing_user_preset_directory_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PRESET_ENV, str(tmp_path / "nowhere"))
    for argv in (["tasks"], ["train", "--task", "addition", "--len", "10"]):
        code, out, err = run(capsys, *argv)
        assert code == EXIT_USAGE and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: $RNNSTAB_TASKS names "), err


def test_missing_shipped_presets_are_an_installation_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_user_presets: None,
) -> None:
    monkeypatch.setattr(preset_files, "shipped_preset_dir", lambda: tmp_path / "presets")
    with pytest.raises(InstallError, match="reinstall rnnstab"):
        resolve_config({"task": "addition", "len": 10})
    code, out, err = run(capsys, "train", "--task", "addition", "--len", "10")
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("Error: the presets that ship with rnnstab are missing") and (
        len(err.strip().splitlines()) == 1
    )
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0 and json.loads(out)["presets_found"] is False


def test_sweep_specs_are_named_or_given_as_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = find_sweep_spec("fig7-small")
    assert shipped == PACKAGE_PRESETS / "sweeps" / "fig7-small.toml"
    assert load_spec("fig7-small").name == "fig7-small"
    # A file of the same name in the working directory is what the user means.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fig7-small").write_text('name = "local"\npreset = "temporal-order"\n')
    assert find_sweep_spec("fig7-small") == Path("fig7-small")
    assert load_spec("fig7-small").name == "local"
    with pytest.raises(UsageError, match="fig7-small, fig7-temporal-order"):
        find_sweep_spec("fig8")
    with pytest.raises(UsageError, match=re.escape("'sub/fig8.toml' does not exist")):
        load_spec("sub/fig8.toml")


def test_sweep_runs_a_shipped_spec_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(
        capsys, "sweep", "fig7-small", "--store", "s.db", "--dry-run", "--json", "--axis", "seed=0"
    )
    assert code == 0
    planned = [json.loads(line) for line in out.splitlines()]
    assert len(planned) == 9  # 3 methods x 3 lengths, one seed
    assert {p["config"]["lr"] for p in planned} == {0.001}  # the temporal-order preset's
