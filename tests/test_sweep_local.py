"""Local sweeps as users run them: a real `rnnstab sweep` subprocess, killed with SIGKILL or
interrupted with SIGINT half-way, then resumed with the same command; plus report and plot on
the resulting store (rnnstab_cli/sweep/{run,local,worker}.py, cli/{sweep,report,plot}.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_CHECKPOINT, EXIT_INTERRUPTED, EXIT_USAGE
from rnnstab_cli.sweep.spec import expand, load_spec
from rnnstab_cli.training.checkpoint import load_checkpoint
from rnnstab_cli.training.config import TrainConfig
from rnnstab_cli.training.synthetic.loop import run_training

RNNSTAB = [sys.executable, "-c", "import sys; from rnnstab_cli.cli import main; sys.exit(main())"]

#: 6 runs of ~2.5 s each on one core (a tiny model that cannot solve length 20 this fast), so
#: a 2-job sweep takes several seconds: time to kill it half-way, even on a much faster machine.
SLOW_SPEC = """
name = "slow"
preset = "temporal-order"
[base]
hidden = 8
batch = 4
max_updates = 100000
eval_every = 500
eval_sequences = 300
screen_sequences = 60
lr = 0.02
[axes]
method = ["sgd", "sgd-c"]
len = [20]
seed = "0..2"
"""

#: 12 runs of a few hundredths of a second; SGD-CR solves length 10 (see the report test).
QUICK_SPEC = """
name = "quick"
preset = "temporal-order"
[base]
hidden = 6
batch = 4
max_updates = 200
eval_every = 100
eval_sequences = 300
screen_sequences = 60
lr = 0.05
[axes]
method = ["sgd", "sgd-c", "sgd-cr"]
len = [10, 12]
seed = "0..1"
"""


def stored(db: Path) -> dict[str, str]:
    """run id → finished timestamp, read as another process would (read-only, WAL)."""
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return dict(conn.execute("SELECT run_id, finished FROM runs").fetchall())
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is not written yet
        return {}


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 is the parent pid; the command name (field 2) may contain spaces.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def sweep_proc() -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses started by a test, killed at teardown if still running (by pid only)."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def default_sigint() -> None:
    """Runs in the child before exec: a shell that started the test run in the background set
    SIGINT to 'ignore', which children inherit; a user's terminal would deliver Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_sweep(
    spec: Path, db: Path, *extra: str, new_session: bool = False
) -> subprocess.Popen[str]:
    """``rnnstab sweep`` as a subprocess; ``new_session``: in its own process group, which a
    test can then signal as a terminal would."""
    return subprocess.Popen(
        [*RNNSTAB, "sweep", str(spec), "--store", str(db), "--jobs", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
        preexec_fn=default_sigint,
    )


#: SLOW_SPEC's updates per run: a run lasts seconds, far longer than a signal takes.
SLOW_UPDATES = 100_000


def wait_for_partial(db: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until a run not stored yet has checkpointed in its first quarter (it does at every
    evaluation): a signal sent then finds that run still going for three quarters of its
    length, far longer than a worker takes to notice (it polls its parent every 0.1 s)."""
    runs_dir = db.with_suffix(".runs")
    deadline = time.monotonic() + timeout
    while True:
        done = stored(db)
        running = [d / "state.json" for d in runs_dir.glob("*") if d.name not in done]
        # state.json alone: it is replaced atomically, while the tensor files it names may
        # be replaced by the next checkpoint as this test reads them.
        updates = [json.loads(f.read_text())["run_state"]["updates"] for f in running if f.exists()]
        if any(0 < u <= SLOW_UPDATES // 4 for u in updates):
            return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run checkpointed part-way in time"
        time.sleep(0.02)


def wait_for_rows(db: Path, proc: subprocess.Popen[str], n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(stored(db)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run was stored in time"
        time.sleep(0.05)


def plan_ids(spec: Path) -> set[str]:
    return {r.run_id for r in expand(load_spec(spec))}


def test_kill_9_then_resume_runs_only_what_is_missing(
    tmp_path: Path, sweep_proc: list[subprocess.Popen[str]]
) -> None:
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_SPEC)
    db = tmp_path / "results.db"
    proc = start_sweep(spec, db)
    sweep_proc.append(proc)
    wait_for_rows(db, proc, 1)
    wait_for_partial(db, proc)
    workers = children_of(proc.pid)
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.wait(10)
    before = stored(db)
    planned = plan_ids(spec)
    assert 1 <= len(before) < len(planned), "the kill came too late to test resuming"

    # The orphaned workers notice their sweep is gone, checkpoint and exit.
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "orphaned workers kept running"
    # Runs that were in progress left a checkpoint part-way (none is corrupt: it loads).
    runs_dir = tmp_path / "results.runs"
    partial = {
        d.name: load_checkpoint(d).state.updates
        for d in runs_dir.iterdir()
        if d.name not in before and (d / "state.json").exists()
    }

    rerun = start_sweep(spec, db, "--json")
    sweep_proc.append(rerun)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    ran = [x["run_id"] for x in lines if x["event"] == "run"]
    summary = lines[-1]
    assert summary["event"] == "sweep" and summary["stored_before"] == len(before)
    assert summary["missing"] == 0 and summary["total"] == len(planned)
    # Only the missing runs ran, each once; the finished rows are untouched.
    assert sorted(ran) == sorted(planned - set(before))
    after = stored(db)
    assert set(after) == planned
    assert {k: after[k] for k in before} == before
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone() == (
        len(planned),
        len(planned),
    )
    conn.close()

    # A run resumed from its checkpoint ends exactly where an uninterrupted run ends.
    resumed = [rid for rid, updates in partial.items() if 0 < updates < SLOW_UPDATES]
    assert resumed, partial
    rid = resumed[0]
    conn = sqlite3.connect(db)
    cfg_json, updates, test_error = conn.execute(
        "SELECT config, updates, test_error FROM runs WHERE run_id = ?", (rid,)
    ).fetchone()
    conn.close()
    straight = run_training(TrainConfig.from_dict(json.loads(cfg_json)))
    assert (updates, test_error) == (straight.updates, straight.test_error)
    metrics = (runs_dir / rid / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == len(straight.evals)  # one record per evaluation, none doubled


@pytest.mark.parametrize("target", ["driver", "group"])
def test_ctrl_c_stores_finished_runs_and_checkpoints_running_ones(
    tmp_path: Path, sweep_proc: list[subprocess.Popen[str]], target: str
) -> None:
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_SPEC)
    db = tmp_path / "results.db"
    proc = start_sweep(spec, db, new_session=True)
    sweep_proc.append(proc)
    wait_for_rows(db, proc, 1)
    wait_for_partial(db, proc)  # so that the signal surely finds a run to interrupt
    if target == "driver":  # kill -INT: the driver alone, which must pass it on
        proc.send_signal(signal.SIGINT)
    else:  # Ctrl-C in a terminal: the whole process group at once
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert "run the same command to continue" in err
    done = stored(db)
    runs_dir = tmp_path / "results.runs"
    checkpointed = [
        d for d in runs_dir.iterdir() if d.name not in done and (d / "state.json").exists()
    ]
    # Every run not stored left a loadable checkpoint, and the runs cut short stopped
    # part-way. (A run may also have just started, or just finished, as the signal came:
    # the next sweep continues or stores it.)
    updates = [load_checkpoint(d).state.updates for d in checkpointed]
    assert any(0 < u < SLOW_UPDATES for u in updates), updates


@pytest.fixture(scope="module")
def quick_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("quick")
    spec = tmp / "quick.toml"
    spec.write_text(QUICK_SPEC)
    db = tmp / "quick.db"
    code = main(["sweep", str(spec), "--store", str(db), "-j", "2", "--no-runs-dir", "-q"])
    assert code == 0
    return db


def copy_store(src: Path, dst: Path) -> Path:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


def test_sweep_is_idempotent_and_json_lines_parse(
    tmp_path: Path, quick_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = quick_store.parent / "quick.toml"
    quick_store = copy_store(quick_store, tmp_path / "copy.db")  # the others read the original
    before = stored(quick_store)
    assert len(before) == 12
    code = main(["sweep", str(spec), "--store", str(quick_store), "--json", "--no-runs-dir"])
    out, _ = capsys.readouterr()
    assert code == 0
    (summary,) = [json.loads(x) for x in out.splitlines()]
    assert summary["ran"] == 0 and summary["stored_before"] == 12 and summary["missing"] == 0
    assert stored(quick_store) == before
    # A new axis value adds runs; the old ones are reused.
    code = main(
        ["sweep", str(spec), "--store", str(quick_store), "--json", "--no-runs-dir",
         "--axis", "seed=0..2"]
    )  # fmt: skip
    out, _ = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and lines[-1]["ran"] == 6 and lines[-1]["stored_before"] == 12
    assert {x["point"]["seed"] for x in lines[:-1]} == {2}


def test_report_table_json_csv(quick_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", str(quick_store), "--sweep", "quick", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    cells = {(c["method"], c["len"]): c for c in map(json.loads, out.splitlines())}
    assert set(cells) == {(m, n) for m in ("sgd", "sgd-c", "sgd-cr") for n in (10, 12)}
    assert all(c["total"] == 2 and c["failed"] == 0 for c in cells.values())
    assert cells[("sgd-cr", 10)]["solved"] == 2 and cells[("sgd-cr", 10)]["rate"] == 1.0
    assert cells[("sgd", 12)]["solved"] == 0 and cells[("sgd", 12)]["rate"] == 0.0

    code = main(["report", str(quick_store), "--sweep", "quick", "--csv", "--rows", "len",
                 "--cols", "method"])  # fmt: skip
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "len,method,solved,unsolved,failed,total,rate"
    assert "10,sgd-cr,2,0,0,2,1.0" in lines

    code = main(["report", str(quick_store), "--sweep", "quick"])
    out, err = capsys.readouterr()
    assert code == 0 and "method \\ len" in out and "2/2" in out and "100%" in out
    assert err == ""  # method explains clip_mode and alpha: nothing is pooled by surprise

    code = main(["report", str(quick_store), "--sweep", "quick", "--where", "method=sgd-cr",
                 "--runs", "--json"])  # fmt: skip
    out, _ = capsys.readouterr()
    runs = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(runs) == 4 and {r["method"] for r in runs} == {"sgd-cr"}


def test_report_errors(
    tmp_path: Path, quick_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "none.db")]) == EXIT_CHECKPOINT
    assert main(["report", str(quick_store), "--rows", "colour"]) == EXIT_USAGE
    assert main(["report", str(quick_store), "--json", "--csv"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("Error: ") == 3 and "colour" in err


def test_plot_writes_png_and_svg(
    tmp_path: Path, quick_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "fig7.png"
    code = main(["plot", str(quick_store), "--sweep", "quick", "-o", str(png), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (info,) = [json.loads(x) for x in out.splitlines()]
    curves = {c["value"]: c for c in info["curves"]}
    assert curves["sgd-cr"]["x"] == [10.0, 12.0] and curves["sgd-cr"]["solved"][0] == 2
    svg = tmp_path / "fig7.svg"
    assert main(["plot", str(quick_store), "-o", str(svg)]) == 0
    assert svg.read_text().lstrip().startswith("<?xml")
    assert main(["plot", str(quick_store), "-o", str(tmp_path / "fig7.jpg")]) == EXIT_USAGE
    assert not (tmp_path / "fig7.jpg").exists()


def test_failed_runs_are_stored_apart_and_retried_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that raises is a 'failed' row (exit 1), not counted as unsolved; --retry-failed
    runs it again. Divergence is forced: nonfinite = "error" with linear units whose
    initial recurrent weights (std 5) blow the state up over 50 steps."""
    spec = tmp_path / "boom.toml"
    spec.write_text(
        'preset = "temporal-order"\n[base]\nhidden = 6\nbatch = 4\nmax_updates = 200\n'
        'eval_every = 100\neval_sequences = 100\nscreen_sequences = 50\nmethod = "sgd"\n'
        'nonfinite = "error"\ninit_scale = 5.0\nactivation = "linear"\nlen = 50\n'
        "[axes]\nlr = [1.0]\nseed = [0]\n"
    )
    db = tmp_path / "boom.db"
    code = main(["sweep", str(spec), "--store", str(db), "-j", "1", "--json", "--no-runs-dir"])
    out, _ = capsys.readouterr()
    assert code == 1
    run, summary = (json.loads(x) for x in out.splitlines())
    assert run["outcome"] == "failed" and "diverged" in run["error"]
    assert summary["failed_total"] == 1
    code = main(["report", str(db), "--json"])
    (cell,) = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    assert (cell["failed"], cell["total"], cell["rate"]) == (1, 0, None)
    # Without --retry-failed, the failed run is not repeated.
    assert main(["sweep", str(spec), "--store", str(db), "--json", "--no-runs-dir"]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ran"] == 0
    assert main(["sweep", str(spec), "--store", str(db), "--json", "--no-runs-dir",
                 "--retry-failed"]) == 1  # fmt: skip
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ran"] == 1


def test_ray_backend_without_ray_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "quick.toml"
    spec.write_text(QUICK_SPEC)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    code = main(["sweep", str(spec), "--store", str(tmp_path / "r.db"), "--backend", "ray"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        "Error: --backend ray needs Ray: pip install 'rnnstab[ray]'"
    ]
    assert not (tmp_path / "r.db").exists()


if os.name != "posix":  # pragma: no cover
    pytestmark = pytest.mark.skip("kill and /proc based tests need POSIX")
