"""Sweep specs: parsing, command-line overrides, grid expansion, stable run ids, and bad specs
failing before anything runs (rnnstab_cli/sweep/spec.py, `rnnstab sweep` usage errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_USAGE
from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.spec import (
    apply_overrides,
    expand,
    load_spec,
    parse_axis_option,
    run_id,
)
from rnnstab_cli.training.config import resolve_config

REPO = Path(__file__).resolve().parents[1]

GOOD = """
preset = "temporal-order"
[base]
hidden = 6
max_updates = 100
[axes]
method = ["sgd", "sgd-c", "sgd-cr"]
len = [10, 20]
seed = "1..3"
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_grid_is_the_full_product_in_spec_order(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.name == "spec" and spec.preset == "temporal-order"
    assert spec.axes["seed"] == [1, 2, 3]  # "1..3" includes both ends
    runs = expand(spec)
    assert len(runs) == 3 * 2 * 3 == spec.size
    assert [r.point for r in runs[:4]] == [
        {"method": "sgd", "len": 10, "seed": 1},
        {"method": "sgd", "len": 10, "seed": 2},
        {"method": "sgd", "len": 10, "seed": 3},
        {"method": "sgd", "len": 20, "seed": 1},
    ]
    cfg = runs[-1].config
    assert (cfg.method, cfg.length.lo, cfg.seed, cfg.hidden) == ("sgd-cr", 20, 3, 6)
    assert cfg.threads == 1  # single-threaded runs unless the spec says otherwise
    assert len({r.run_id for r in runs}) == len(runs)


def test_runs_resolve_exactly_like_train(tmp_path: Path) -> None:
    """A sweep run is the config `rnnstab train` would build from the same settings (method
    mapping included: sgd has clipping off and α = 0)."""
    run = expand(load_spec(write(tmp_path, GOOD)))[0]
    direct = resolve_config(
        {"task": "temporal-order", "hidden": 6, "max_updates": 100, "method": "sgd",
         "len": 10, "seed": 1, "threads": 1}
    )  # fmt: skip
    assert run.config == direct
    assert (run.config.clip_mode, run.config.alpha) == ("none", 0.0)


def test_run_ids_are_stable_and_depend_only_on_what_matters(tmp_path: Path) -> None:
    first = expand(load_spec(write(tmp_path, GOOD)))[0]
    assert first.point == {"method": "sgd", "len": 10, "seed": 1}
    # Same grid written differently: other axis order, other file, threads set, preset as base.task.
    other = """
[base]
task = "temporal-order"
max_updates = 100
hidden = 6
threads = 2
[axes]
seed = [3, 2, 1]
len = [10, 20]
method = ["sgd", "sgd-c", "sgd-cr"]
"""
    b = expand(load_spec(write(tmp_path, other, "other.toml")))
    assert {r.run_id for r in b} == {r.run_id for r in expand(load_spec(write(tmp_path, GOOD)))}
    cfg = resolve_config({"task": "temporal-order", "len": 10, "hidden": 6, "max_updates": 100,
                          "method": "sgd", "seed": 1})  # fmt: skip
    assert run_id(cfg) == first.run_id
    assert run_id(cfg.replace(threads=4)) == run_id(cfg)
    assert run_id(cfg.replace(lr=0.01)) != run_id(cfg)
    assert run_id(cfg.replace(max_updates=101)) != run_id(cfg)
    assert len(run_id(cfg)) == 16 and int(run_id(cfg), 16) >= 0


def test_command_line_adds_and_replaces_axes_and_settings(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    s = apply_overrides(
        spec, axes=["lr=0.01,0.001", "seed=0..1", "len=[30]"], settings=["max_updates=7"]
    )
    assert s.axes["lr"] == [0.01, 0.001]
    assert s.axes["seed"] == [0, 1]
    assert [str(v) for v in s.axes["len"]] == ["30"]
    assert s.base["max_updates"] == 7
    runs = expand(s)
    assert len(runs) == 3 * 1 * 2 * 2
    assert {r.config.max_updates for r in runs} == {7}
    assert parse_axis_option("method=sgd,sgd-cr") == ("method", ["sgd", "sgd-cr"])
    assert parse_axis_option("len=50:200") == ("len", ["50:200"])
    assert parse_axis_option("seed=5") == ("seed", [5])


def test_shipped_specs_expand() -> None:
    small = expand(load_spec("fig7-small"))
    assert len(small) == 27
    assert {r.config.method for r in small} == {"sgd", "sgd-c", "sgd-cr"}
    assert sorted({r.config.length.lo for r in small}) == [10, 20, 50]
    assert {r.config.lr for r in small} == {0.001}  # the paper's optimiser, only a small budget
    full = expand(load_spec("fig7-temporal-order"))
    assert sorted({r.config.length.lo for r in full}) == [10, 20, 50, 100, 150, 200]
    # The path people browsing the repo use names the same file.
    by_path = expand(load_spec(REPO / "tasks/sweeps/fig7-small.toml"))
    assert [r.run_id for r in by_path] == [r.run_id for r in small]


@pytest.mark.parametrize(
    ("text", "extra", "needles"),
    [
        ('preset = "temporal-order"\n[base]\nlrr = 0.1\n[axes]\nseed = [0]', [], ["lrr", "'lr'"]),
        ('preset = "temporal-order"\n[axes]\nhiden = [5]', [], ["axes", "hiden"]),
        ('preset = "temporal-order"\n[axes]\nseed = []', [], ["axes.seed", "empty"]),
        ('preset = "temporal-order"\n[axes]\nseed = "3..1"', [], ["axes.seed", "empty range"]),
        (
            'preset = "temporal-order"\n[axes]\nlr = ["fast"]',
            [],
            ["axes.lr", "lr must be a number"],
        ),
        ('preset = "temporal-order"\n[axes]\nhidden = 5', [], ["axes.hidden", "list"]),
        ('preset = "temporal-order"\n[base]\nbatch = 2.5', [], ["batch", "integer"]),
        ('preset = "no-such-task"\n[axes]\nseed = [0]', [], ["unknown task", "no-such-task"]),
        ('preset = "temporal-order"\nseeds = [1]', [], ["unknown key", "seeds"]),
        ("[axes]\nseed = [0]", [], ["no task", "preset"]),
        ('preset = "temporal-order"\n[axes]\nseed = [0, 0]', [], ["axes.seed", "twice"]),
        ('preset = "temporal-order"\n[axes]\nlr = [0.1, -1.0]', [], ["lr=-1.0", "lr must be > 0"]),
        ('preset = "temporal-order"\n[axes]\nlen = [10, 2]', [], ["len=2", "too short"]),
        (
            'preset = "temporal-order"\n[base]\nalpha = 1.0\n[axes]\nmethod = ["sgd", "sgd-cr"]',
            [],
            ["method=sgd", "alpha"],
        ),
        ('preset = "temporal-order"\n[axes]\nseed = [0]', ["--set", "seed=1"], ["seed", "--axis"]),
        (
            'preset = "temporal-order"\n[axes]\nseed = [0]',
            ["--axis", "lr="],
            ["--axis", "KEY=VALUE"],
        ),
        ('preset = "temporal-order"\n[axes]\nseed = [0]', ["--axis", "bogus=1,2"], ["bogus"]),
        (
            'preset = "temporal-order"\n[axes]\nseed = [0]',
            ["--set", "hidden=x"],
            ["hidden", "integer"],
        ),
        ('preset = "temporal-order"\n[axes\n', [], ["not valid TOML"]),
    ],
)
def test_bad_specs_fail_before_any_run_with_the_key_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: list[str],
    needles: list[str],
) -> None:
    spec = write(tmp_path, text)
    store = tmp_path / "results.db"
    code = main(["sweep", str(spec), "--store", str(store), *extra])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
    assert out == ""
    # Nothing ran: not even the store was created.
    assert not store.exists()
    assert not (tmp_path / "results.runs").exists()


def test_missing_spec_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_dry_run_lists_the_grid_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    store = tmp_path / "r.db"
    code = main(["sweep", str(write(tmp_path, GOOD)), "--store", str(store), "--dry-run", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 18 and all(r["event"] == "planned" and r["stored"] is None for r in rows)
    assert not store.exists()
