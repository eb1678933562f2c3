"""`rnnstab reproduce`: the campaign's plan (the paper's studies, Fig. 7's budget rule), a small
campaign run end to end in a real subprocess, killed with SIGKILL half-way and resumed, the
report written from the directory alone, and bad input (rnnstab_cli/reproduce/,
cli/reproduce.py).

The real studies train for core-hours; these tests swap in a miniature of the same shape (two
Fig. 7 lengths, two seeds, a generalisation model) by replacing ``static_studies``, in-process
or in the subprocess's own start-up code.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import load_file

from rnnstab_cli.cli import main
from rnnstab_cli.cli import reproduce as cli_reproduce
from rnnstab_cli.cli.common import EXIT_CHECKPOINT, EXIT_USAGE
from rnnstab_cli.reproduce import campaign as campaign_mod
from rnnstab_cli.reproduce import report as report_mod
from rnnstab_cli.reproduce.campaign import (
    RUNS_DIR,
    Campaign,
    CampaignRun,
    current_rows,
    plan_campaign,
    plan_studies,
    run_campaign,
    trajectory_id,
)
from rnnstab_cli.reproduce.report import write_report
from rnnstab_cli.reproduce.sections import PAPER_SECTIONS
from rnnstab_cli.reproduce.studies import (
    FIG7_CAP,
    FIG7_FLOOR,
    SECTIONS,
    Study,
    SuccessRule,
    fig7_budget,
    rate_verdict,
    static_studies,
)
from rnnstab_cli.sweep.run import SweepPlan, run_row
from rnnstab_cli.sweep.spec import SweepSpec, expand, load_spec
from rnnstab_cli.sweep.store import ResultStore
from rnnstab_cli.training.checkpoint import load_checkpoint, metrics_text
from rnnstab_cli.training.synthetic import loop

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "docs" / "reproduction"

#: The miniature campaign, as source so the subprocess builds the very same studies. A tiny
#: model that SGD-CR solves at length 10 in a few hundred updates and rarely at 20.
MINI_SOURCE = """
from rnnstab_cli.reproduce.studies import Study
from rnnstab_cli.sweep.spec import SweepSpec

TINY = {"hidden": 8, "batch": 4, "eval_every": 250, "eval_sequences": 300,
        "screen_sequences": 60, "lr": 0.05}


def mini_studies(cap=1500):
    def spec(name, base, axes):
        return SweepSpec(name=name, source="mini", preset="temporal-order", base=base, axes=axes)

    return [
        Study("fig7-sgd-cr-seeds0-4", "fig7", "Fig. 7 SGD-CR",
              spec("fig7-sgd-cr-seeds0-4", {"method": "sgd-cr", "max_updates": cap, **TINY},
                   {"len": [10, 20], "seed": [0, 1]})),
        Study("generalisation-temporal-order", "generalisation", "generalises",
              spec("generalisation-temporal-order",
                   {"len": "10:20", "max_updates": 500, **TINY}, {"seed": [0]}),
              score_lengths=(10, 40)),
    ]
"""
_namespace: dict[str, object] = {}
exec(MINI_SOURCE, _namespace)
mini_studies = _namespace["mini_studies"]

SUBPROCESS = (
    MINI_SOURCE
    + """
import sys
from rnnstab_cli.cli import main
from rnnstab_cli.reproduce import campaign
cap = int(sys.argv[1])
campaign.static_studies = lambda: mini_studies(cap)
sys.exit(main(sys.argv[2:]))
"""
)


@pytest.fixture
def mini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_mod, "static_studies", lambda: mini_studies())


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


def test_fig7_budget_rule() -> None:
    assert fig7_budget([]) is None
    # 1.5 × the slowest solve, rounded up to a whole evaluation, never below the floor.
    assert fig7_budget([200_000, 300_001]) == 451_000
    assert fig7_budget([3_000, 4_000]) == FIG7_FLOOR
    # A run that did not solve: at least the cap, SGD-CR's own budget.
    assert fig7_budget([50_000, None]) == FIG7_CAP
    assert fig7_budget([None, None]) == FIG7_CAP
    # A late solve lifts the baselines past SGD-CR's cap: never less than 1.5 × the slowest.
    assert fig7_budget([900_000]) == 1_350_000
    assert fig7_budget([900_000, None]) == 1_350_000
    assert fig7_budget([600], cap=1_500) == 1_500  # a cap below the floor wins


@given(
    st.lists(st.one_of(st.none(), st.integers(1, 1_000_000)), min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(1, 1_000_000)),
)
def test_fig7_budget_never_falls_as_seeds_land(runs: list[int | None], later: int | None) -> None:
    """Stored baselines continue their checkpoints when the budget rises; a budget that fell
    would leave runs trained past it. So one more SGD-CR seed may only raise it."""
    before, after = fig7_budget(runs), fig7_budget([*runs, later])
    assert before is not None and after is not None and after >= before
    assert before >= max((1.5 * u for u in runs if u is not None), default=0)


def test_every_study_of_the_paper_resolves() -> None:
    """The real campaign: every run is a valid `rnnstab train` config, ids are unique, and
    the settings are the presets' (the paper's appendix) but for seeds and budgets."""
    planned = plan_campaign(list(SECTIONS), lambda section: [])
    ids = [p.run_id for p in planned]
    assert len(ids) == len(set(ids))
    names = {p.study.name for p in planned}
    assert {"generalisation-temporal-order", "tasks-random-permutation"} <= names
    by = {p.study.name: p.run.config for p in planned}
    assert by["tasks-random-permutation"].hidden == 100  # appendix: 100 hidden units
    assert by["tasks-random-permutation"].lr == 0.001 and by["tasks-random-permutation"].alpha == 1
    assert by["fig7-sgd-cr-seeds0-4"].lr == 0.001 and by["fig7-sgd-cr-seeds0-4"].clip == 6
    # Fig. 7: 6 lengths × 8 seeds of SGD-CR; the baselines wait for SGD-CR's results.
    cr = [p for p in planned if p.study.name.startswith("fig7-sgd-cr")]
    assert len(cr) == 48 and {p.run.config.length.lo for p in cr} == {10, 20, 50, 100, 150, 200}
    fig7 = [p for p in planned if p.study.section == "fig7"]
    assert not [p for p in fig7 if p.run.config.method in ("sgd", "sgd-c")]
    # Random permutation: 8 trials, as the paper's "1 out of 8".
    assert sum(p.study.name == "tasks-random-permutation" for p in planned) == 8
    # 3-bit temporal order under the authors' code's settings: its lr, clip, initialisation,
    # Ω and stopping rule, the appendix's 100 units.
    three = [p.run.config for p in planned if p.study.name == "tasks-temporal-order-3bit-authors"]
    assert len(three) == 3 and {c.task for c in three} == {"temporal-order-3bit"}
    assert {(c.hidden, c.lr, c.clip, c.init, c.omega_form, c.solve_error) for c in three} == {
        (100, 0.01, 1.0, "sparse", "squared", 0.0)
    }
    # Random permutation under the same settings: 8 trials again, the appendix's α of 1.
    perm = [p.run.config for p in planned if p.study.name == "tasks-random-permutation-authors"]
    assert len(perm) == 8 and {c.task for c in perm} == {"random-permutation"}
    assert {(c.hidden, c.lr, c.alpha, c.clip, c.init, c.solve_error) for c in perm} == {
        (100, 0.01, 1.0, 1.0, "sparse", 0.0)
    }
    # Memorisation under the authors' code's settings: still one model per length, and the
    # preset's task, lr and α (the code's own), only the clip, initialisation, Ω and
    # stopping rule changed.
    for bits in ("5bit", "20bit"):
        authors = [
            p.run.config for p in planned if p.study.name == f"tasks-memorization-{bits}-authors"
        ]
        paper = by[f"tasks-memorization-{bits}"]
        assert len(authors) == 12 and {c.length.lo for c in authors} == {50, 100, 150, 200}
        assert all(c.length.lo == c.length.hi for c in authors)
        for c in authors:
            assert (c.clip, c.init, c.omega_form, c.solve_error) == (1.0, "sparse", "squared", 0.0)
            assert (c.task, c.task_options, c.lr, c.alpha) == (
                paper.task,
                paper.task_options,
                paper.lr,
                paper.alpha,
            )
    # The generalisation models are trained on 50–200 and scored up to 800.
    gen = [p for p in planned if p.study.score_lengths]
    # (The authors' code draws lengths from [50, 200), hence 50:199 for its study.)
    assert gen and all(p.run.config.length.lo == 50 for p in gen)
    assert all(p.run.config.length.hi in (199, 200) for p in gen)
    assert all(max(p.study.score_lengths) == 800 for p in gen)


@given(st.sampled_from(get_args(SuccessRule)), st.lists(st.booleans(), min_size=1, max_size=8))
def test_a_rate_verdict_given_early_is_the_final_one(rule: SuccessRule, solves: list[bool]) -> None:
    """A success-rate verdict is given before every run is in only when no run still to come
    can change it: whatever the runs after a prefix do, the complete verdict is the same."""
    final = rate_verdict(rule, sum(solves), len(solves), complete=True)
    assert final != "pending"
    for k in range(len(solves)):
        early = rate_verdict(rule, sum(solves[:k]), k, complete=False)
        if early != "pending":
            assert early == final


def test_rate_verdicts() -> None:
    assert rate_verdict("all", 0, 0, complete=True) == "pending"  # nothing stored to judge
    assert rate_verdict("all", 5, 5, complete=True) == "reproduced"
    assert rate_verdict("all", 5, 5, complete=False) == "pending"  # a miss may still come
    assert rate_verdict("all", 0, 4, complete=False) == "pending"  # a solve may still come
    assert rate_verdict("all", 0, 4, complete=True) == "not reproduced"
    assert rate_verdict("all", 1, 2, complete=False) == "partly"  # settled by a solve and a miss
    assert rate_verdict("any", 1, 1, complete=False) == "reproduced"  # the paper's 1 of 8
    assert rate_verdict("any", 0, 7, complete=False) == "pending"
    assert rate_verdict("any", 0, 8, complete=True) == "not reproduced"


def test_runs_that_cannot_change_a_verdict_start_after_those_that_can(tmp_path: Path) -> None:
    """5-bit memorisation with a solve and a miss stored is *partly* for good: its other runs
    wait behind every undecided study, even the costlier ones and those of a later priority."""
    decided = "tasks-memorization-5bit"
    with Campaign(tmp_path / "repro", ["tasks"]) as c:
        c.replan()
        c.register()
        assert c.decided_studies() == set()
        first = [p for p in c.missing() if p.study.name == decided][:2]
        for p, solved in zip(first, (True, False), strict=True):
            result = {"outcome": "solved" if solved else "unsolved", "updates": 1000,
                      "wall_time": 1.0, "backend": "local-process"}  # fmt: skip
            assert c.store("tasks").record_run(run_row(p.run, result))
        c.replan()
        assert c.decided_studies() == {decided}
        order = [(p.study.priority, p.study.name) for p in c.missing()]
    names = [name for _, name in order]
    waiting = names.index(decided)
    assert waiting > 0 and all(name == decided for name in names[waiting:])
    assert "tasks-temporal-order-3bit" in names[:waiting]  # costlier, but it can change a verdict
    own = next(prio for prio, name in order if name == decided)
    assert any(prio > own for prio, _ in order[:waiting])  # later priority, still undecided


def test_a_raised_budget_continues_the_same_trajectory() -> None:
    a, b = (
        SweepSpec("x", "t", "temporal-order", {"len": 10, "max_updates": n}, {"seed": [0]})
        for n in (1000, 2000)
    )
    from rnnstab_cli.sweep.spec import expand

    (ra,), (rb,) = expand(a), expand(b)
    assert ra.run_id != rb.run_id
    assert trajectory_id(ra) == trajectory_id(rb)


# --------------------------------------------------------------------------------------------
# A miniature campaign in-process: plan → run → budgets → report
# --------------------------------------------------------------------------------------------


def _run_mini(root: Path, sections: list[str]) -> Campaign:
    with Campaign(root, sections) as c:
        progress = run_campaign(c, jobs=2)
        assert not progress.interrupted and progress.failed == 0
        assert not c.missing()
        return c


def _budget_study(budget: int) -> list[Study]:
    """One run that stays unsolved (length 50 for 8 units in 1,000 updates), at ``budget``."""
    tiny = _namespace["TINY"]
    assert isinstance(tiny, dict)
    spec = SweepSpec(
        "tasks-budget",
        "mini",
        "temporal-order",
        {"len": 50, "max_updates": budget, **tiny},
        {"seed": [0]},
    )
    return [Study("tasks-budget", "tasks", "a budget raised later", spec)]


def test_a_raised_budget_continues_the_stored_run_and_counts_it_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fig. 7's baselines get a larger budget when a later SGD-CR seed solves late: the run
    with the raised budget continues the stored run's checkpoint (bit for bit the run trained
    to the larger budget at once), and the report counts the trajectory's compute once."""
    root, fresh = tmp_path / "repro", tmp_path / "fresh"
    monkeypatch.setattr(campaign_mod, "static_studies", lambda: _budget_study(500))
    _run_mini(root, ["tasks"])
    (first_dir,) = (root / "tasks" / "runs").iterdir()
    first_log = metrics_text(first_dir).splitlines()
    # A marker only a continued run carries: an hour more in the checkpoint's training time.
    state_file = first_dir / "state.json"
    state = json.loads(state_file.read_text())
    state["run_state"]["wall_time"] += 3600.0
    state_file.write_text(json.dumps(state))
    monkeypatch.setattr(campaign_mod, "static_studies", lambda: _budget_study(1000))
    _run_mini(root, ["tasks"])
    _run_mini(fresh, ["tasks"])
    with ResultStore.open_readonly(root / "tasks" / "store.db") as st:
        short, long = sorted(st.runs(), key=lambda r: r.updates or 0)
    assert (short.updates, long.updates) == (500, 1000)
    assert short.outcome == long.outcome == "unsolved"
    assert short.run_dir == long.run_dir and long.run_dir is not None
    assert long.wall_time is not None and short.wall_time is not None
    assert long.wall_time > 3600.0 > short.wall_time  # the first 500 updates' time included
    assert current_rows([short, long]) == [long]
    run_dir = root / "tasks" / long.run_dir
    with ResultStore.open_readonly(fresh / "tasks" / "store.db") as st:
        (once,) = st.runs()
    assert once.run_dir == long.run_dir and once.test_error == long.test_error
    (continued,) = run_dir.glob("params-*.safetensors")
    (direct,) = (fresh / "tasks" / long.run_dir).glob("params-*.safetensors")
    a, b = load_file(continued), load_file(direct)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    log = metrics_text(run_dir).splitlines()
    assert [json.loads(line)["updates"] for line in log] == [250, 500, 750, 1000]

    # Continued, not retrained: the first 500 updates' records (their wall times included)
    # are the first run's own; only the diagnostics kept for a log's last record are gone.
    def strip(lines: list[str]) -> list[dict[str, object]]:
        return [{k: v for k, v in json.loads(x).items() if k != "diagnostics"} for x in lines]

    assert first_dir == run_dir and strip(log[:2]) == strip(first_log)
    report = write_report(root).read_text()  # one trajectory: one run, its time once
    assert f"{long.wall_time / 3600:.2f} core-hours of training in 1 stored runs" in report


def test_mini_campaign_plans_baselines_from_sgd_cr_and_reports(mini: None, tmp_path: Path) -> None:
    root = tmp_path / "repro"
    _run_mini(root, ["fig7", "generalisation"])
    with ResultStore.open_readonly(root / "fig7" / "store.db") as st:
        rows = st.runs()
        names = {s.name for s in st.sweeps()}
    cr = [r for r in rows if r.config["method"] == "sgd-cr"]
    base = [r for r in rows if r.config["method"] != "sgd-cr"]
    assert len(cr) == 4 and len(base) == 8  # 2 lengths × 2 seeds × (SGD, SGD-C)
    assert {"fig7-baselines-len10-seeds0-1", "fig7-baselines-len20-seeds0-1"} <= names
    for length in (10, 20):
        at = [r for r in cr if r.config["len"] == length]
        expected = fig7_budget([r.updates if r.solved else None for r in at], cap=1500)
        assert {r.config["max_updates"] for r in base if r.config["len"] == length} == {expected}
        # The baselines share every setting with SGD-CR but the method, α and the budget.
        b, c = next(r for r in base if r.config["len"] == length), at[0]
        same = {k for k in c.config if k not in ("method", "alpha", "max_updates", "clip_mode")}
        assert {k: b.config[k] for k in same if k != "seed"} == {
            k: c.config[k] for k in same if k != "seed"
        }
    # Run directories are stored relative to the section, and hold a loadable model.
    for r in rows:
        assert r.run_dir is not None and not Path(r.run_dir).is_absolute()
        assert load_checkpoint(root / "fig7" / r.run_dir).state.updates == r.updates
    # The generalisation model was scored at its lengths, as `rnnstab eval` scores them.
    with ResultStore.open_readonly(root / "generalisation" / "store.db") as st:
        (gen,) = st.runs()
    conn = sqlite3.connect(root / "generalisation" / "store.db")
    scores = dict(conn.execute("SELECT length, errors FROM scores WHERE run_id = ?", (gen.run_id,)))
    conn.close()
    assert set(scores) == {10, 40}
    code = main(["eval", str(root / "generalisation" / gen.run_dir), "--len", "40", "--json"])
    assert code == 0
    # The report: written from the directory, the same text twice, with Fig. 7 drawn.
    path = write_report(root)
    text = path.read_text()
    assert (root / "figures" / "fig7.png").stat().st_size > 1000
    assert "| fig7 | SGD-CR solves temporal order" in text
    assert f"{scores[40] / 10_000:.2%}".replace("%", "") in text.replace("%", "")
    assert write_report(root).read_text() == text


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but SQLite's companion files, by its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def test_dry_run_lists_what_is_left_and_runs_nothing(
    mini: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repro"
    args = ["reproduce", "all", "--dir", str(root), "--dry-run", "--json"]
    assert main(args) == 0
    (fresh,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert fresh["event"] == "dry-run" and fresh["stored"] == 0 and fresh["to_run"] > 0
    assert not root.exists()  # planning creates nothing

    _run_mini(root, ["generalisation"])
    before = _snapshot(root)
    assert main(args) == 0
    # Nothing written, not even a store's header or a section without a store yet (the
    # stores are read in place; SQLite's -shm/-wal companions of a reader aside).
    assert _snapshot(root) == before and not (root / "ptb").exists()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    *planned, summary = lines
    assert summary["event"] == "dry-run" and summary["stored"] == 1
    assert summary["to_run"] == len(planned) == summary["planned"] - 1
    assert {x["event"] for x in planned} == {"planned"}
    # Only the generalisation run is stored: every study but that one still has runs to go.
    assert "generalisation-temporal-order" not in {x["study"] for x in planned}
    assert "fig7-sgd-cr-seeds0-4" in {x["study"] for x in planned}
    assert main(args[:-1]) == 0  # the table for people
    out = capsys.readouterr().out
    assert "fig7-sgd-cr-seeds0-4: " in out and f"1 of {summary['planned']} planned" in out


def test_one_campaign_process_per_directory_and_sections_by_commas(
    mini: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repro"
    args = ["reproduce", "fig7,generalisation", "--dir", str(root), "--json", "-j", "1"]
    root.mkdir()
    (root / "campaign.json").write_text('{"format": "rnnstab-reproduction", "version": 1, '
                                        '"sessions": []}')  # fmt: skip
    with campaign_mod.campaign_lock(root):  # as a running campaign holds it
        assert main(args) == EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert "another `rnnstab reproduce` is running" in err and "\n" not in err
    assert main(args) == 0  # the lock is free again
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["sections"] == ["fig7", "generalisation"] and summary["missing"] == 0
    for bad in ("tasks,report", "fig7,nope"):
        assert main(["reproduce", bad, "--dir", str(root)]) == EXIT_USAGE
        assert "separated by commas" in capsys.readouterr().err


def test_a_ctrl_c_while_a_finished_run_is_stored_stores_it_once(
    mini: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interrupt lands while the driver archives the first finished run's log: the
    # scheduler hands that result over again, and it must be stored, once.
    real = campaign_mod.compact_metrics
    calls: list[Path] = []

    def interrupted_once(run_dir: Path) -> None:
        calls.append(run_dir)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real(run_dir)

    monkeypatch.setattr(campaign_mod, "compact_metrics", interrupted_once)
    root = tmp_path / "repro"
    with Campaign(root, ["generalisation"]) as c:
        progress = run_campaign(c, jobs=1)
        assert progress.interrupted
    with ResultStore.open_readonly(root / "generalisation" / "store.db") as st:
        (row,) = st.runs()
    assert calls[0] == calls[1] == root / "generalisation" / row.run_dir
    assert (calls[1] / "metrics.jsonl.gz").exists()
    monkeypatch.setattr(campaign_mod, "compact_metrics", real)
    assert not _run_mini(root, ["generalisation"]).missing()


def test_metrics_of_finished_runs_keep_one_record_per_evaluation(
    mini: None, tmp_path: Path
) -> None:
    root = tmp_path / "repro"
    _run_mini(root, ["generalisation"])
    (run_dir,) = (root / "generalisation" / "runs").iterdir()
    # The log is archived: gzip-compressed, the plain file gone, the stored row pointing at it.
    assert not (run_dir / "metrics.jsonl").exists()
    text = gzip.decompress((run_dir / "metrics.jsonl.gz").read_bytes()).decode()
    lines = [json.loads(x) for x in text.splitlines()]
    assert len(lines) == load_checkpoint(run_dir).state.eval_index
    # The gradient-flow diagnostics stay on the last record only (they are most of the bytes).
    assert [("diagnostics" in x) for x in lines] == [False] * (len(lines) - 1) + [True]
    conn = sqlite3.connect(root / "generalisation" / "store.db")
    (path,) = conn.execute("SELECT metrics_path FROM runs").fetchone()
    conn.close()
    assert path == f"runs/{run_dir.name}/metrics.jsonl.gz"


def test_an_archived_log_keeps_seven_digits_and_the_last_diagnostics(tmp_path: Path) -> None:
    records = [
        {"event": "eval", "updates": 1000 * i, "loss": 15.78992017997918 / i, "solved": False,
         "test_error": 1.0, "diagnostics": {"norms": [0.123456789012, 2.5e-12]}}
        for i in (1, 2, 3)
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    campaign_mod.compact_metrics(tmp_path)
    assert not (tmp_path / "metrics.jsonl").exists()
    got = [json.loads(x) for x in metrics_text(tmp_path).splitlines()]
    assert [("diagnostics" in r) for r in got] == [False, False, True]
    assert [r["loss"] for r in got] == [15.78992, 7.894960, 5.263307]
    assert got[2]["diagnostics"] == {"norms": [0.1234568, 2.5e-12]}
    # Counters, flags and short numbers come back as they were.
    assert [(r["updates"], r["solved"], r["test_error"]) for r in got] == [
        (r["updates"], False, 1.0) for r in records
    ]


def test_an_archive_written_before_rounding_is_rounded_once(tmp_path: Path) -> None:
    from rnnstab_cli.training.checkpoint import archive_metrics

    records = [
        {"event": "eval", "updates": 1000 * i, "loss": 15.78992017997918 / i} for i in (1, 2)
    ]
    archive_metrics(tmp_path, [json.dumps(r) for r in records])  # as archived before rounding
    archive = tmp_path / "metrics.jsonl.gz"
    campaign_mod.compact_metrics(tmp_path)
    got = [json.loads(x) for x in metrics_text(tmp_path).splitlines()]
    assert [(r["updates"], r["loss"]) for r in got] == [(1000, 15.78992), (2000, 7.89496)]
    # A compact archive is not written again.
    before = archive.stat().st_mtime_ns
    os.utime(archive, ns=(before - 10**9, before - 10**9))
    campaign_mod.compact_metrics(tmp_path)
    assert archive.stat().st_mtime_ns == before - 10**9
    assert [json.loads(x) for x in metrics_text(tmp_path).splitlines()] == got


def test_a_stored_run_keeps_no_clipping_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The percentile rule's state is every earlier norm: a stored run drops it (it serves only
    to continue the run), and also one stored before that rule (a kill between the two)."""
    tiny = {"hidden": 8, "batch": 4, "eval_every": 250, "eval_sequences": 300,
            "screen_sequences": 60, "lr": 0.05}  # fmt: skip
    base = {"len": 10, "max_updates": 500, "clip_mode": "percentile", **tiny}
    spec = SweepSpec(name="clip-mini", source="mini", preset="temporal-order", base=base,
                     axes={"seed": [0, 1]})  # fmt: skip
    monkeypatch.setattr(
        campaign_mod, "static_studies", lambda: [Study("clip-mini", "clipping", "mini", spec)]
    )
    root = tmp_path / "repro"
    _run_mini(root, ["clipping"])
    runs = sorted((root / "clipping" / "runs").iterdir())
    assert len(runs) == 2
    for run_dir in runs:
        assert not list(run_dir.glob("clip-*")), run_dir
        ckpt = load_checkpoint(run_dir)
        assert ckpt.clip_state is None and ckpt.clip_state_dropped
        assert ckpt.state.finished(ckpt.config)
    # A run stored with its state (as by a process killed before dropping it) loses it the
    # next time the campaign starts.
    again = runs[0]
    cfg = load_checkpoint(again).config
    shutil.rmtree(again)
    loop.run_training(cfg, out_dir=again)
    assert list(again.glob("clip-*")) and load_checkpoint(again).clip_state is not None
    _run_mini(root, ["clipping"])
    assert not list(again.glob("clip-*")) and load_checkpoint(again).clip_state_dropped


# --------------------------------------------------------------------------------------------
# kill -9 and resume, as a user runs it
# --------------------------------------------------------------------------------------------


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _start(cap: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS, str(cap), "reproduce", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches every worker
        cwd=REPO,
    )


def _stored(db: Path) -> dict[str, tuple[str, int]]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        return {r: (o, u) for r, o, u in conn.execute("SELECT run_id, outcome, updates FROM runs")}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


#: A budget that keeps the unsolved runs going for seconds, long enough to kill them half-way.
SLOW_CAP = 30_000


def test_kill_9_then_resume_stores_every_run_once(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    root = tmp_path / "repro"
    db = root / "fig7" / "store.db"
    proc = _start(SLOW_CAP, "fig7", "--dir", str(root), "-j", "2", "-q")
    procs.append(proc)
    deadline = time.monotonic() + 120
    partial: list[Path] = []
    while not partial:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run checkpointed part-way in time"
        done = _stored(db)
        states = [d / "state.json" for d in (root / "fig7" / "runs").glob("*")]
        for f in states:
            try:
                u = json.loads(f.read_text())["run_state"]["updates"]
            except (OSError, json.JSONDecodeError, KeyError):
                continue
            if 0 < u < SLOW_CAP and done:
                partial.append(f.parent)
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    before = _stored(db)
    assert before, "the kill came before any run was stored"

    rerun = _start(SLOW_CAP, "fig7", "--dir", str(root), "-j", "2", "--json")
    procs.append(rerun)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    summary = lines[-1]
    assert summary["event"] == "reproduce" and summary["missing"] == 0
    after = _stored(db)
    # Nothing stored before was changed, nothing stored twice, every planned run stored.
    assert {k: after[k] for k in before} == before
    ran = [x["run_id"] for x in lines if x["event"] == "run"]
    assert len(ran) == len(set(ran)) and not set(ran) & set(before)
    conn = sqlite3.connect(db)
    total, distinct = conn.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone()
    conn.close()
    assert total == distinct == len(after) == 4 + 8  # SGD-CR 2 × 2, baselines 2 × 2 × 2

    # A run killed half-way ends exactly where the same campaign run straight through ends.
    straight = tmp_path / "straight"
    proc3 = _start(SLOW_CAP, "fig7", "--dir", str(straight), "-j", "2", "-q")
    procs.append(proc3)
    proc3.communicate(timeout=600)
    assert proc3.returncode == 0
    assert _stored(straight / "fig7" / "store.db") == after


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*argv: str) -> tuple[int, str]:
        code = main(list(argv))
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        return code, err

    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert run("reproduce", "fig8", "--dir", str(tmp_path / "d")) == (
        EXIT_USAGE,
        "Error: unknown section 'fig8'; expected one of: fig7, generalisation, tasks, music, "
        "ptb, clipping, all, report (or several sections separated by commas, e.g. "
        "generalisation,tasks)",
    )
    code, err = run("reproduce", "fig7", "--dir", str(a_file))
    assert code == EXIT_USAGE and "is a file" in err
    code, err = run("reproduce", "fig7")
    assert code == EXIT_USAGE and "--dir" in err
    # A directory that holds something else: refused, and left as it was.
    other = tmp_path / "other"
    (other / "fig7").mkdir(parents=True)
    ResultStore.open(other / "fig7" / "store.db").close()
    code, err = run("reproduce", "fig7", "--dir", str(other))
    assert code == EXIT_USAGE and "not an rnnstab reproduction" in err
    assert sorted(p.name for p in other.iterdir()) == ["fig7"]
    code, err = run("reproduce", "report", str(tmp_path / "missing"))
    assert code == EXIT_CHECKPOINT and "no reproduction" in err
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "campaign.json").write_text("{not json")
    code, err = run("reproduce", "report", str(damaged))
    assert code == EXIT_CHECKPOINT and "damaged campaign file" in err


def test_a_store_holding_another_sweep_is_refused(
    mini: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repro"
    _run_mini(root, ["generalisation"])
    with ResultStore.open(root / "generalisation" / "store.db") as st:
        st.register_sweep("0" * 16, "my-own-sweep", {}, [])
    assert main(["reproduce", "generalisation", "--dir", str(root)]) == EXIT_USAGE
    assert "my-own-sweep" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The project's own reproduction, committed in docs/reproduction
# --------------------------------------------------------------------------------------------


def test_committed_report_regenerates_from_committed_evidence(tmp_path: Path) -> None:
    copy = tmp_path / "reproduction"
    shutil.copytree(COMMITTED, copy)
    committed = (COMMITTED / "README.md").read_text()
    assert write_report(copy).read_text() == committed


def test_committed_evidence_is_small_and_its_models_load() -> None:
    from rnnstab_cli.reproduce.natural import NATURAL_STUDIES, NaturalStore, plan_natural
    from rnnstab_cli.training.natural import load_natural_checkpoint

    files = [p for p in COMMITTED.rglob("*") if p.is_file()]
    studies = [COMMITTED / s for s in SECTIONS if s not in PAPER_SECTIONS]
    # A table's variant (one setting changed) is beyond the paper too, though in its section.
    variants = [
        COMMITTED / n.section / RUNS_DIR / n.run_id
        for n in plan_natural(list(NATURAL_STUDIES), None)
        if n.variant is not None
    ]
    beyond = [p for p in files if any(p.is_relative_to(d) for d in studies + variants)]
    paper = [p for p in files if p not in beyond]
    # The paper's sections stay within 25 MB: Tables 1-2's best parameters most of it (1.2 MB
    # for each of Table 2's runs, twice that while one is in flight with its last parameters),
    # the synthetic runs 20-50 KB each (parameters and archived log). Beyond the paper, within
    # 15 MB: the clipping study's 450 runs at about 21 KB each (no clipping state) and Table
    # 2's two variants.
    assert sum(p.stat().st_size for p in paper) <= 25 * 10**6
    assert sum(p.stat().st_size for p in beyond) <= 15 * 10**6
    assert not [p for p in files if p.name.endswith(("-wal", "-shm", ".tmp"))]
    for section in ("fig7", "generalisation", "tasks"):
        db = COMMITTED / section / "store.db"
        if not db.exists():
            continue
        with ResultStore.open_readonly(db) as st:
            rows = st.runs()
        # A row a raised budget superseded shares its directory with the row that continued it.
        for r in current_rows(rows):
            assert r.run_dir is not None
            assert load_checkpoint(COMMITTED / section / r.run_dir).state.updates == r.updates
    # Tables 1-2: every stored run loads with its best parameters, whether it was committed
    # with its last ones too (format version 1) or without (version 2).
    for section in NATURAL_STUDIES:
        natural = NaturalStore.open(COMMITTED / section / "store.db", readonly=True)
        if natural is None:
            continue
        try:
            for n in natural.rows():
                ck = load_natural_checkpoint(COMMITTED / section / n.run_dir)
                assert ck.state.updates == n.updates and ck.best_params is not None
        finally:
            natural.close()


def test_static_studies_cover_every_claim_section() -> None:
    homes = {s.section for s in static_studies()}
    assert homes == {"fig7", "generalisation", "tasks", "clipping"}
    assert isinstance(static_studies()[0], Study)


def test_sigterm_stops_a_campaign_like_ctrl_c(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """`kill PID` (a scheduler ending a job, or a campaign a script started in the background,
    where the shell ignores SIGINT) checkpoints the running runs and exits 130."""
    root = tmp_path / "repro"
    db = root / "fig7" / "store.db"
    proc = _start(SLOW_CAP, "fig7", "--dir", str(root), "-j", "1", "-q")
    procs.append(proc)
    runs = root / "fig7" / "runs"
    deadline = time.monotonic() + 120
    # Wait for a run in flight: checkpointed part-way and not stored. A run that ends early
    # (solved) keeps its checkpoint beside the store, so "some checkpoint past 0" is not enough.
    watched: tuple[Path, int] | None = None
    while watched is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run checkpointed in time"
        done = _stored(db)
        for f in runs.glob("*/state.json"):
            try:
                u = json.loads(f.read_text())["run_state"]["updates"]
            except (OSError, json.JSONDecodeError, KeyError):
                continue
            if 0 < u < SLOW_CAP and f.parent.name not in done:
                watched = (f.parent, u)
        time.sleep(0.05)
    proc.terminate()  # SIGTERM to the driver alone
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Interrupted: finished runs are stored in" in err and "same command" in err
    # Every run left unstored has a checkpoint that loads, part-way through its budget; the
    # watched one kept at least the updates it had before the signal (unless it finished in
    # between and was stored).
    done = _stored(db)
    unstored = {
        d: load_checkpoint(d).state.updates
        for d in runs.iterdir()
        if (d / "state.json").exists() and d.name not in done
    }
    assert all(u < SLOW_CAP for u in unstored.values()), unstored
    run_dir, seen = watched
    assert run_dir.name in done or unstored[run_dir] >= seen, (watched, unstored)


# --------------------------------------------------------------------------------------------
# Tables 1 and 2: natural runs in a campaign
# --------------------------------------------------------------------------------------------

DATA = Path("/work/shared/data")


@pytest.mark.skipif(not DATA.exists(), reason=f"the real data sets are not at {DATA}")
def test_natural_section_trains_scores_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reproduce music` with Table 1's Nottingham runs made tiny (a slice of the real file,
    12 units, 2 epochs): each method trained, scored as `rnnstab eval --split` scores it,
    stored once keeping only its best parameters, and reported against the paper's
    figures."""
    from rnnstab_cli.reproduce import natural as natural_mod
    from rnnstab_cli.training.natural import load_natural_checkpoint, resolve_natural_config
    from tests.test_natural_cli import music_slice

    data = tmp_path / "data"
    (data / "polyphonic").mkdir(parents=True)
    music_slice(data / "polyphonic", "Nottingham.mat")

    def tiny_plan(sections: list[str], data_dir: str | None) -> list[natural_mod.NaturalPlanned]:
        return [
            natural_mod.NaturalPlanned(
                "music", "music-nottingham", m,
                resolve_natural_config({
                    "task": "music-nottingham", "method": m, "data": data_dir, "hidden": 12,
                    "seq_len": 25, "epochs": 2, "threads": 1,
                }),
            )
            for m in ("sgd", "sgd-c", "sgd-cr")
            if "music" in sections
        ]  # fmt: skip

    monkeypatch.setattr(campaign_mod, "plan_natural", tiny_plan)
    monkeypatch.setattr(report_mod, "plan_natural", tiny_plan)
    real_drop = campaign_mod.drop_last_params
    missed: list[Path] = []

    def drop_all_but_the_first(run_dir: Path) -> bool:
        if not missed:  # as if killed between storing this run and dropping its parameters
            missed.append(Path(run_dir).resolve())
            return False
        return real_drop(run_dir)

    monkeypatch.setattr(campaign_mod, "drop_last_params", drop_all_but_the_first)
    root = tmp_path / "repro"
    with Campaign(root, ["music"], data=str(data)) as c:
        progress = run_campaign(c, jobs=2)
        assert progress.ran == 3 and not progress.interrupted
    monkeypatch.setattr(campaign_mod, "drop_last_params", real_drop)
    store = natural_mod.NaturalStore.open(root / "music" / "store.db", readonly=True)
    assert store is not None
    rows = store.rows()
    store.close()
    assert sorted(r.method for r in rows) == ["sgd", "sgd-c", "sgd-cr"]
    for r in rows:
        assert r.epochs == 2 and r.test is not None and r.train is not None
        run_dir = root / "music" / r.run_dir
        kept_last = run_dir.resolve() in missed
        assert bool(list(run_dir.glob("params-*"))) == kept_last and list(run_dir.glob("best-*"))
        assert (load_natural_checkpoint(run_dir).params is not None) == kept_last
    assert len(missed) == 1
    # The stored test figure is what `rnnstab eval --split test` says of the checkpoint.
    r = rows[0]
    capsys.readouterr()
    code = main(["eval", str(root / "music" / r.run_dir), "--split", "test", "--json"])
    assert code == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (row["params"], row["value"]) == ("best", pytest.approx(r.test))
    text = write_report(root).read_text()
    line = next(x for x in text.splitlines() if x.startswith("| music | Table 1: Nottingham"))
    assert "test 3.80 / 3.48 / 3.46" in line and "**pending**" not in line
    assert "; and no natural runs." in text
    assert f"{r.test:.2f}" in line
    # Running the section again finds everything stored and trains nothing, and drops the
    # last parameters the first session missed.
    with Campaign(root, ["music"], data=str(data)) as c:
        assert run_campaign(c, jobs=1).ran == 0
    assert not list((root / "music" / "runs").glob("*/params-*"))
    assert load_natural_checkpoint(missed[0]).params is None


def test_a_variant_runs_beside_its_tables_run_and_reports_apart(tmp_path: Path) -> None:
    """Table 2's SGD+C and SGD+CR with the learning rate halved on a validation stall: planned
    in the ptb section under their own ids (the table's runs keep theirs); SGD+C's stored
    beside the table's own SGD+C, shown in the table with what it changes, and kept out of
    the claim's figures."""
    from rnnstab_cli.reproduce.natural import NaturalStore, plan_natural

    plan = plan_natural(["ptb"], None)
    own = {(p.preset, p.method): p for p in plan if p.variant is None}
    variants = {(p.preset, p.method): p for p in plan if p.variant is not None}
    assert len(own) == 5 and sorted(variants) == [("ptb-char", "sgd-c"), ("ptb-char", "sgd-cr")]
    variant = variants[("ptb-char", "sgd-c")]
    assert (variant.config.lr_halving, variant.config.lr_halving_on) == (True, "valid-stall")
    table_run = own[("ptb-char", "sgd-c")]
    assert not table_run.config.lr_halving and variant.run_id != table_run.run_id
    assert variant.describe() == f"ptb-char sgd-c ({variant.variant})"

    root = tmp_path / "repro"
    Campaign(root, ["ptb"]).close()
    store = NaturalStore.open(root / "ptb" / "store.db")
    assert store is not None
    for planned, test in ((table_run, 1.53), (variant, 1.44)):
        result = {"outcome": "epochs_done", "epochs": 50, "updates": 1_254_400, "best_epoch": 50,
                  "wall_time": 3600.0, "train": test - 0.05, "valid": test + 0.06, "test": test,
                  "run_dir": f"runs/{planned.run_id}"}  # fmt: skip
        assert store.record(planned, result)
    rows = {r.run_id: r for r in store.rows()}
    store.close()
    assert rows[table_run.run_id].variant is None
    assert rows[variant.run_id].variant is not None
    text = write_report(root).read_text()
    (claim,) = [x for x in text.splitlines() if x.startswith("| ptb | Table 2: next character")]
    assert "test – / 1.53 / –" in claim  # the table's own SGD+C, not the variant
    lines = [x for x in text.splitlines() if x.startswith("| Table 2: next character | sgd-c")]
    assert len(lines) == 2
    assert f"sgd-c, {variant.variant}" in lines[1] and "1.440" in lines[1]
    # The other five runs of the section are left, each at most 50 epochs of 72 s (the stored
    # runs' pace: 3,600 s for 50 epochs).
    assert "and 5 natural runs, at most 5.0 core-hours" in text


def test_natural_runs_hold_at_most_half_the_slots_while_synthetic_runs_wait(
    mini: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnstab_cli.reproduce import natural as natural_mod
    from rnnstab_cli.training.natural import resolve_natural_config

    def plan(sections: list[str], data_dir: str | None) -> list[natural_mod.NaturalPlanned]:
        cfg = {"task": "music-nottingham", "data": data_dir, "hidden": 12, "epochs": 2}
        return [
            natural_mod.NaturalPlanned(
                "music", "music-nottingham", m, resolve_natural_config({**cfg, "method": m})
            )
            for m in ("sgd", "sgd-c", "sgd-cr")
        ]

    monkeypatch.setattr(campaign_mod, "plan_natural", plan)

    def kinds(jobs: int) -> list[str]:
        """The kinds of run in the order the slots take them (none finishing meanwhile)."""
        with Campaign(tmp_path / f"repro-{jobs}", ["fig7", "music"], data=str(tmp_path)) as c:
            c.replan()
            return [t.kind for t in iter(lambda: c.next_task("local-process", jobs), None)]

    # 4 synthetic runs (fig7's mini grid) wait beside the 3 natural ones.
    assert kinds(1) == ["synthetic"] * 4 + ["natural"] * 3
    assert kinds(2) == ["natural"] + ["synthetic"] * 4 + ["natural"] * 2
    assert kinds(4) == ["natural"] * 2 + ["synthetic"] * 4 + ["natural"]


def test_natural_runs_left_are_estimated_from_stored_runs_of_their_shape() -> None:
    from rnnstab_cli.reproduce.natural import (
        NaturalPlanned,
        NaturalRow,
        natural_seconds_left,
        plan_natural,
    )

    plan = {(p.preset, p.method, p.variant): p for p in plan_natural(["ptb"], None)}
    sgd, sgd_c = plan[("ptb-char", "sgd", None)], plan[("ptb-char", "sgd-c", None)]
    five_ahead = plan[("ptb-char-5ahead", "sgd-cr", None)]

    def row(planned: NaturalPlanned, epochs: int, wall_time: float) -> NaturalRow:
        return NaturalRow(planned.run_id, planned.preset, planned.method,
                          planned.config.to_dict(), "epochs_done", epochs, 25_088 * epochs, epochs,
                          wall_time, 1.5, 1.6, 1.5, "runs/x", "now")  # fmt: skip

    stored = [row(sgd, 50, 10_000.0), row(sgd_c, 40, 12_000.0)]  # 200 and 300 s per epoch
    assert sgd_c.config.epochs == five_ahead.config.epochs == 50
    # 5 ahead has the next character's shape (data, units, segments): 250 s per epoch, its
    # whole budget left; a checkpoint 20 epochs in has 30 left.
    assert natural_seconds_left(stored, [(five_ahead, 0)]) == pytest.approx(50 * 250.0)
    assert natural_seconds_left(stored, [(five_ahead, 20), (sgd_c, 50)]) == pytest.approx(
        30 * 250.0
    )
    # Another shape has nothing to go by.
    music = plan_natural(["music"], None)[0]
    assert natural_seconds_left(stored, [(music, 0)]) is None
    assert natural_seconds_left([], []) == 0.0


def test_mini_campaign_on_ray_stores_what_local_stores(mini: None, tmp_path: Path) -> None:
    """--backend ray: the same runs, asked for one per free CPU, stored with the same results
    as on local processes (results do not depend on where a run executes)."""
    pytest.importorskip("ray")
    local, remote = tmp_path / "local", tmp_path / "ray"
    _run_mini(local, ["fig7"])
    with Campaign(remote, ["fig7"]) as c:
        progress = run_campaign(c, backend="ray", jobs=2)
        assert not progress.interrupted and progress.failed == 0 and not c.missing()
    assert _stored(remote / "fig7" / "store.db") == _stored(local / "fig7" / "store.db")


# --------------------------------------------------------------------------------------------
# The clipping section: the shipped clipping specs as studies, and their report
# --------------------------------------------------------------------------------------------

#: Runs per sensitivity study: the rule's parameter values × 5 seeds.
SENSITIVITY_RUNS = {"norm": 25, "auto": 15, "percentile": 20, "zscore": 15, "skip": 15, "agc": 30}


def test_clipping_section_plans_the_shipped_specs_once_each() -> None:
    grids = plan_studies(["clipping"], lambda section: [])
    planned = plan_campaign(["clipping"], lambda section: [])
    per_study = Counter(p.study.name for p in grids)
    assert per_study == {
        "clipping-study": 360,
        **{f"clipping-sensitivity-{rule}": n for rule, n in SENSITIVITY_RUNS.items()},
    }
    assert len(grids) == 360 + 120
    # Each rule's default at length 50 is a point of both grids: one run, planned once, as the
    # sensitivity study's (which runs first).
    ids = [p.run_id for p in planned]
    assert len(ids) == len(set(ids)) == 480 - 30
    shared = {p.run_id for p in grids if p.study.name == "clipping-study"} & {
        p.run_id for p in grids if p.study.name != "clipping-study"
    }
    assert len(shared) == 30
    by_id = {p.run_id: p for p in planned}
    for rid in shared:
        c = by_id[rid].run.config
        assert by_id[rid].study.name == f"clipping-sensitivity-{c.clip_mode}"
        assert (c.task, c.method, c.length.lo) == ("temporal-order", "sgd-cr", 50)
    # Exactly what `rnnstab sweep SPEC` trains: the same ids, in the same order.
    for name in per_study:
        shipped = [r.run_id for r in expand(load_spec(name))]
        assert [p.run_id for p in grids if p.study.name == name] == shipped
    # Stable ids (a run id is a hash of the resolved settings).
    first = {p.study.name: p for p in reversed(grids)}
    assert first["clipping-study"].run_id == "4b35383cbdc5c82f"
    assert first["clipping-study"].run.describe() == (
        "len=50 task=temporal-order method=sgd-c clip_mode=norm seed=0"
    )
    assert first["clipping-sensitivity-norm"].run_id == "84ea5bfd48cae3bb"
    assert first["clipping-sensitivity-agc"].run_id == "11cb427bb0e44118"
    # After every study of the paper's claims; the sensitivity before the comparison.
    paper = max(s.priority for s in static_studies() if s.section != "clipping")
    prio = {p.study.name: p.study.priority for p in grids}
    assert paper < prio["clipping-sensitivity-norm"] < prio["clipping-study"]
    # `all` is every section, the clipping section included.
    everything = plan_campaign(list(SECTIONS), lambda section: [])
    assert set(ids) <= {p.run_id for p in everything}


def test_clipping_runs_are_registered_in_every_grid_they_belong_to(tmp_path: Path) -> None:
    with Campaign(tmp_path / "repro", ["clipping"]) as c:
        c.replan()
        c.register()
        assert len(c.missing()) == 450
    with ResultStore.open_readonly(tmp_path / "repro" / "clipping" / "store.db") as st:
        grids = {s.name: st.planned_run_ids(s.sweep_id) for s in st.sweeps()}
    assert {k: len(v) for k, v in grids.items()} == {
        "clipping-study": 360,
        **{f"clipping-sensitivity-{rule}": n for rule, n in SENSITIVITY_RUNS.items()},
    }
    # The sweep a store holds is the shipped spec's sweep: `rnnstab report STORE --sweep
    # clipping-study` finds the whole grid.
    plan = SweepPlan(load_spec("clipping-study"), expand(load_spec("clipping-study")))
    assert grids["clipping-study"] == [r.run_id for r in plan.runs]


def test_reproduce_clipping_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "repro"
    assert main(["reproduce", "clipping", "--dir", str(root), "--dry-run", "--json"]) == 0
    (summary,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (summary["planned"], summary["to_run"]) == (450, 450)
    assert not root.exists()
    Campaign(root, ["clipping"]).close()  # an empty campaign: the per-study listing
    assert main(["reproduce", "clipping", "--dir", str(root), "--dry-run", "--json"]) == 0
    *planned, summary = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert summary["to_run"] == len(planned) == 450
    per_study = Counter(x["study"] for x in planned)
    assert per_study["clipping-study"] == 330 and per_study["clipping-sensitivity-norm"] == 25
    assert Counter(x["clip_mode"] for x in planned)["agc"] == 60 + 30 - 5
    assert main(["reproduce", "clipping", "--dir", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "clipping-sensitivity-norm: 25 to run (clip=1.0 seed=0," in out
    assert "0 of 450 planned runs stored" in out


Outcome = tuple[bool, int] | None  # (solved, updates), or None: not stored


def _fabricate(root: Path, outcome: Callable[[CampaignRun], Outcome]) -> None:
    """A campaign whose clipping store holds a made-up row for each run ``outcome`` gives,
    stored as the scheduler stores a finished run."""
    with Campaign(root, ["clipping"]) as c:
        c.replan()
        c.register()
        store = c.store("clipping")
        for p in plan_campaign(["clipping"], lambda section: []):
            got = outcome(p)
            if got is None:
                continue
            solved, updates = got
            result = {"outcome": "solved" if solved else "unsolved", "updates": updates,
                      "wall_time": updates / 1000, "backend": "local-process"}  # fmt: skip
            assert store.record_run(run_row(p.run, result))


def _summary_row(text: str, start: str) -> list[str]:
    (line,) = [x for x in text.splitlines() if x.startswith(f"| clipping | {start}")]
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def _norm_runs(by_threshold: dict[float, tuple[int, list[int]]]) -> Callable[..., Outcome]:
    """The norm sensitivity runs: at threshold t, seeds below ``k`` solve after the given
    updates (one per seed), the others do not; every other run is missing."""

    def outcome(p: CampaignRun) -> Outcome:
        if p.study.name != "clipping-sensitivity-norm":
            return None
        k, updates = by_threshold[p.run.config.clip]
        seed = p.run.config.seed
        return (True, updates[seed]) if seed < k else (False, 200_000)

    return outcome


#: §3.2 holds: 3–24 solve ≥ 4 of 5 with medians 50,000–60,000; 1 fails (not judged).
NOT_SENSITIVE = {
    1.0: (0, []),
    3.0: (5, [60_000, 58_000, 61_000, 62_000, 70_000]),  # median 61,000
    6.0: (5, [40_000, 55_000, 50_000, 52_000, 90_000]),  # median 52,000
    12.0: (4, [45_000, 50_000, 55_000, 65_000]),  # median 52,500
    24.0: (4, [60_000, 50_000, 70_000, 40_000]),  # median 55,000
}


def test_clipping_report_from_stored_runs(tmp_path: Path) -> None:
    root = tmp_path / "repro"
    grids = plan_studies(["clipping"], lambda section: [])
    compared = {p.run_id for p in grids if p.study.name == "clipping-study"}
    norm = _norm_runs(NOT_SENSITIVE)

    def outcome(p: CampaignRun) -> Outcome:
        c = p.run.config
        if p.study.name == "clipping-sensitivity-norm":
            return norm(p)  # its default (6) is the comparison's norm, SGD-CR, length 50
        if p.run_id not in compared:
            return None  # the other rules' sensitivity but for their defaults: not run yet
        # Temporal order: the spec's i-th rule solves seeds below i after 500 × (length +
        # 10 × seed) updates; addition: nothing solves.
        i = ["norm", "auto", "percentile", "zscore", "skip", "agc"].index(c.clip_mode)
        if c.task == "addition" or c.seed >= i:
            return (False, 200_000)
        return (True, 500 * (c.length.lo + 10 * c.seed))

    _fabricate(root, outcome)
    (root / "notes").mkdir()
    (root / "notes" / "clipping.md").write_text("Hand-written: what the clipping runs say.\n")
    text = write_report(root).read_text()
    section = text[text.index("## Clipping rules (beyond the paper)") : text.index("## Sessions")]
    # The rule comparison: a table per task, a row per rule, a column per (method, length).
    assert "| rule | SGD-C, len 50 | SGD-C, len 100 | SGD-C, len 200 | SGD-CR, len 50 |" in section
    # zscore (i = 3): seeds 0-2 solve; at length 100 after 50,000, 55,000 and 60,000 updates.
    compared_tables = section[: section.index("### Sensitivity")].splitlines()
    temporal, addition = [x for x in compared_tables if x.startswith("| zscore (ZClip")]
    assert temporal.split(" | ")[1:4] == ["3/5 · 30,000", "3/5 · 55,000", "3/5 · 105,000"]
    assert addition.split(" | ")[1:3] == ["0/5", "0/5"]
    assert "| norm (Algorithm 1) | 0/5 | 0/5 | 0/5 | 5/5 · 52,000 | 0/5 | 0/5 |" in section
    # The sensitivity table: each value, as a multiple of the default, and its solves.
    assert "| norm (Algorithm 1) | threshold = 1 | ×0.167 | 0/5 | — |" in section
    assert (
        "| norm (Algorithm 1) | threshold = 6 (default) | ×1 | 5/5 | median 52,000 "
        "(40,000–90,000) |" in section
    )
    assert "| norm (Algorithm 1) | threshold = 24 | ×4 | 4/5 | median 55,000" in section
    # The other rules' sensitivity runs are missing but for their defaults, which the rule
    # comparison stored: percentile's p = 10 (i = 2) solved 2 of 5 at length 50.
    assert (
        "| percentile (AutoClip) | p = 10 (default) | ×1 | 2/5 | median 27,500 "
        "(25,000–30,000) |" in section
    )
    assert "| percentile (AutoClip) | p = 5 | ×0.5 | — | — |" in section
    assert "Hand-written: what the clipping runs say." in section
    assert "**Not complete:** 380 of 450 runs stored" in section
    assert "`rnnstab reproduce clipping --dir <this directory>` trains the 70 left" in section
    for figure in ("clipping.png", "clipping-sensitivity.png"):
        assert (root / "figures" / figure).stat().st_size > 10_000
        assert f"](figures/{figure})" in section
    # The summary: §3.2's row judged by the rule; the comparison beyond the paper.
    row = _summary_row(text, "Norm clipping is not sensitive")
    assert row[-1] == "**reproduced**" and row[4] == "25 runs"
    assert "solved 0/5, 5/5, 5/5, 4/5, 4/5" in row[3]
    assert "within ×4 of 6: success 80.0%–100%, medians ×1.17 apart" in row[3]
    row = _summary_row(text, "Adaptive clipping rules against Algorithm 1")
    assert row[-1] == "**beyond the paper**" and row[4] == "360 runs"
    assert "norm 5/60 (median 52,000 updates), auto 6/60 (median 50,000 updates)" in row[3]
    assert "agc 30/60" in row[3]
    assert "1 beyond the paper" in text.split("## Summary")[0]
    assert write_report(root).read_text() == text


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({}, "reproduced"),
        # 24 solves one run of five: below 4 of 5.
        ({24.0: (1, [50_000])}, "partly"),
        # Each of 3–24 solves, but 3's median is 3× 6's.
        ({3.0: (5, [150_000, 160_000, 170_000, 180_000, 190_000])}, "partly"),
        # 12 solves nothing.
        ({12.0: (0, [])}, "not reproduced"),
    ],
)
def test_threshold_sensitivity_verdict_follows_its_rule(
    tmp_path: Path, change: dict[float, tuple[int, list[int]]], verdict: str
) -> None:
    root = tmp_path / "repro"
    _fabricate(root, _norm_runs({**NOT_SENSITIVE, **change}))
    text = write_report(root).read_text()
    assert _summary_row(text, "Norm clipping is not sensitive")[-1] == f"**{verdict}**"
    # Nothing of the rule comparison is in yet.
    row = _summary_row(text, "Adaptive clipping rules against Algorithm 1")
    assert row[-1] == "**pending**" and row[4] == "5 of 360 runs stored"


def test_threshold_sensitivity_is_pending_while_a_run_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "repro"
    norm = _norm_runs(NOT_SENSITIVE)
    _fabricate(root, lambda p: None if p.run.config.clip == 24.0 and p.run.config.seed == 4
               else norm(p))  # fmt: skip
    row = _summary_row(write_report(root).read_text(), "Norm clipping is not sensitive")
    assert row[-1] == "**pending**" and row[4] == "24 of 25 runs stored"


def test_clipping_report_before_any_run_says_how_to_run_it(tmp_path: Path) -> None:
    root = tmp_path / "repro"
    Campaign(root, ["clipping"]).close()
    text = write_report(root).read_text()
    for start in ("Norm clipping is not sensitive", "Adaptive clipping rules"):
        row = _summary_row(text, start)
        assert row[3] == "not run yet" and row[-1] == "**pending**"
    section = text[text.index("## Clipping rules (beyond the paper)") : text.index("## Sessions")]
    assert "**Not complete:** 0 of 450 runs stored" in section
    # No run stored anywhere: no pace to estimate the core-hours from.
    assert "trains the 450 left, at most ? core-hours" in section
    assert section.count("Not run in this campaign yet.") == 2
    assert not (root / "figures").exists()


@pytest.mark.parametrize(
    ("given", "sections"),
    [
        ("all", ["fig7", "generalisation", "tasks", "music", "ptb"]),
        ("all,clipping", ["fig7", "generalisation", "tasks", "music", "ptb", "clipping"]),
        ("clipping,fig7", ["fig7", "clipping"]),
    ],
)
def test_all_is_the_papers_sections_and_clipping_runs_when_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str, sections: list[str]
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli_reproduce, "_run", lambda _dir, chosen, *_: seen.append(chosen))
    assert main(["reproduce", given, "--dir", str(tmp_path / "repro")]) == 0
    assert seen == [sections]
