"""Checkpoints and result stores written by an earlier rnnstab keep working: they load, evaluate
and continue, and a sweep planned by today's code finds the runs stored then under the same ids
(a run id that changed would make every stored campaign start over)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_NOT_SOLVED
from rnnstab_cli.training.checkpoint import FORMAT_VERSION, load_checkpoint

OLD = Path(__file__).parent / "data" / "written-by-0.1.0"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    copy = tmp_path / "old"
    shutil.copytree(OLD, copy)
    return copy


def _json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_an_old_checkpoint_loads_evaluates_and_continues(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ck = load_checkpoint(old / "checkpoint")
    assert ck.state.updates == 300 and ck.state.eval_index == 3
    assert json.loads((old / "checkpoint" / "state.json").read_text())["format_version"] <= (
        FORMAT_VERSION
    )
    assert main(["eval", str(old / "checkpoint"), "--len", "10", "--n", "500", "--json"]) == 0
    (row,) = _json_lines(capsys.readouterr().out)
    assert row["updates"] == 300 and row["sequences"] == 500
    # Continued with a larger budget, the run goes on from update 300.
    args = ["train", "--resume", str(old / "checkpoint"), "--max-updates", "400", "--json",
            "-q"]  # fmt: skip
    assert main(args) == EXIT_NOT_SOLVED  # a 6-unit model does not solve in 400 updates
    summary = _json_lines(capsys.readouterr().out)[-1]
    assert summary["updates"] == 400
    assert load_checkpoint(old / "checkpoint").state.eval_index == 4


def test_an_old_store_resumes_with_the_same_run_ids(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sweep", str(old / "spec.toml"), "--store", str(old / "store.db"), "--json"]
    assert main(args) == 0
    summary = _json_lines(capsys.readouterr().out)[-1]
    assert summary["stored_before"] == 2 and summary["ran"] == 0 and summary["missing"] == 0
    assert main(["report", str(old / "store.db"), "--json"]) == 0
    assert _json_lines(capsys.readouterr().out)
