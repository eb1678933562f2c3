"""The command line as users drive it: exit codes, JSON lines, one-line errors
(rnnstab_cli/cli)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_CHECKPOINT, EXIT_NOT_SOLVED, EXIT_USAGE
from rnnstab_cli.training.checkpoint import load_checkpoint

RNNSTAB = [sys.executable, "-c", "import sys; from rnnstab_cli.cli import main; sys.exit(main())"]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A config file for runs that take a fraction of a second."""
    f = tmp_path / "small.toml"
    f.write_text(
        'task = "temporal-order"\nlen = 12\nhidden = 5\nbatch = 4\nmax_updates = 60\n'
        "eval_every = 30\neval_sequences = 200\nscreen_sequences = 50\nlr = 0.05\n"
    )
    return f


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], err


def test_budget_exhausted_exits_10_with_an_honest_summary(
    capsys: pytest.CaptureFixture[str], small: Path
) -> None:
    code, out, _ = run(capsys, "train", "--config", str(small), "-q")
    assert code == EXIT_NOT_SOLVED
    assert out.startswith("NOT SOLVED: temporal-order (len 12) with sgd-cr: test error ")
    assert "on 200 fresh sequences of length 12" in out
    assert "after 60 updates" in out and "--max-updates 60" in out


def test_json_lines_parse(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    code, out, err = run(capsys, "train", "--config", str(small), "--json", "--method", "sgd")
    assert code == EXIT_NOT_SOLVED
    records = [json.loads(line) for line in out.splitlines()]
    evals, summary = records[:-1], records[-1]
    assert [r["updates"] for r in evals] == [30, 60]
    want = {"updates", "wall_time", "loss", "grad_norm", "clip_rate", "omega", "test_error",
            "spectral_radius", "lr", "alpha"}  # fmt: skip
    assert all(want <= r.keys() and r["event"] == "eval" for r in evals)
    assert evals[0]["alpha"] == 0 and evals[0]["clip_rate"] == 0  # plain SGD
    assert summary["event"] == "summary" and summary["outcome"] == "budget_exhausted"
    assert summary["solved"] is False and summary["updates"] == 60
    assert summary["test_error"] == evals[-1]["test_error"] and summary["test_sequences"] == 200
    assert "{" not in err  # nothing but data on stdout, no data on stderr


def test_solved_exits_0(
    capsys: pytest.CaptureFixture[str], small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnstab_cli.training.synthetic import loop
    from rnnstab_cli.training.synthetic.evaluate import ErrorMeasurement, Judgement

    def perfect(*args: Any, **kw: Any) -> Judgement:
        return Judgement(ErrorMeasurement(0, 200, 12), full=True)

    monkeypatch.setattr(loop, "judge", perfect)
    code, out, _ = run(capsys, "train", "--config", str(small), "-q")
    assert code == 0
    assert out.startswith("SOLVED: temporal-order") and "after 30 updates" in out


def test_resume_via_cli(capsys: pytest.CaptureFixture[str], small: Path, tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    code, _, _ = run(
        capsys, "train", "--config", str(small), "--max-updates", "30", "--out", str(ck), "-q"
    )
    assert code == EXIT_NOT_SOLVED
    code, out, _ = run(capsys, "train", "--resume", str(ck), "--max-updates", "60", "--json", "-q")
    assert code == EXIT_NOT_SOLVED
    assert json.loads(out.splitlines()[-1])["updates"] == 60
    code, _, err = run(capsys, "train", "--resume", str(ck), "--lr", "0.1")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "--lr cannot change when resuming")
    code, out, _ = run(
        capsys, "eval", str(ck), "--len", "12", "--len", "24", "--n", "100", "--json"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["length"] for r in rows] == [12, 24] and all(r["sequences"] == 100 for r in rows)
    code, out, _ = run(capsys, "eval", str(ck), "--n", "50")
    assert code == 0 and "error rate" in out


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["train", "--task", "nope"], ["unknown task 'nope'", "temporal-order"]),
        (["train", "--task", "temporal-order", "--len", "50-200"], ["bad length '50-200'"]),
        (["train", "--task", "temporal-order", "--lr", "-0.1"], ["lr must be > 0"]),
        (["train", "--task", "temporal-order", "--device", "tpu"], ["device"]),
        (["train", "--task", "temporal-order", "--method", "sgd", "--alpha", "2"], ["sgd-cr"]),
        (["train", "--config", "/nonexistent/run.toml"], ["does not exist"]),
        (["train"], ["no task given"]),
        (["eval", "/nonexistent/ckpt"], ["no checkpoint"]),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code in (EXIT_USAGE, EXIT_CHECKPOINT)
    assert out == ""
    assert_one_line_error(err, *needles)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("task = 'temporal-order'\nspeed = 3\n", "unknown key 'speed'"),
        ("lr = = 1\n", "not valid TOML"),
    ],
)
def test_bad_config_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: str, needle: str
) -> None:
    f = tmp_path / "c.toml"
    f.write_text(body)
    code, _, err = run(capsys, "train", "--config", str(f))
    assert code == EXIT_USAGE
    assert_one_line_error(err, needle)


def test_damaged_checkpoint(
    capsys: pytest.CaptureFixture[str], small: Path, tmp_path: Path
) -> None:
    ck = tmp_path / "ck"
    run(capsys, "train", "--config", str(small), "--max-updates", "30", "--out", str(ck), "-q")
    params = next(ck.glob("params-*.safetensors"))
    params.write_bytes(params.read_bytes()[:-4] + b"oops")
    for argv in (["train", "--resume", str(ck)], ["eval", str(ck)]):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_CHECKPOINT
        assert_one_line_error(err, "damaged", "sha256")


def test_existing_checkpoint_is_not_overwritten(
    capsys: pytest.CaptureFixture[str], small: Path, tmp_path: Path
) -> None:
    ck = tmp_path / "ck"
    run(capsys, "train", "--config", str(small), "--max-updates", "30", "--out", str(ck), "-q")
    code, _, err = run(capsys, "train", "--config", str(small), "--out", str(ck))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "already holds a checkpoint", "--resume")


def test_tasks_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["presets"]}
    assert rows["temporal-order"]["lr"] == 0.001 and rows["temporal-order"]["inputs"] == 6
    assert rows["memorization-20bit"]["outputs"] == 5
    natural = {r["name"] for r in json.loads(out)["natural_presets"]}
    assert {"ptb-char", "ptb-char-5ahead", "music-jsb", "music-nottingham"} <= natural
    code, out, _ = run(capsys, "tasks")
    assert code == 0 and "temporal-order-3bit" in out and "ptb-char-5ahead" in out


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    assert "10 budget exhausted" in out and "130" in out


def test_console_script_errors_have_no_traceback(small: Path) -> None:
    """The real process: stdout stays clean, stderr gets one line, exit code 2."""
    p = subprocess.run(
        [*RNNSTAB, "train", "--task", "temporal-order", "--hidden", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == EXIT_USAGE and p.stdout == ""
    assert_one_line_error(p.stderr, "hidden must be ≥ 1")
    # Typer's own usage errors (unknown option) keep Typer's format and exit code 2.
    p = subprocess.run([*RNNSTAB, "train", "--bogus"], capture_output=True, text=True, check=False)
    assert p.returncode == EXIT_USAGE and "Traceback" not in p.stderr


def test_console_script_json_through_a_pipe(small: Path) -> None:
    p = subprocess.run(
        [*RNNSTAB, "train", "--config", str(small), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == EXIT_NOT_SOLVED
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert lines[-1]["event"] == "summary"
    # stderr is not a terminal here: at most plain log lines, no escape codes.
    assert "\x1b[" not in p.stderr and all(x.startswith("rnnstab: ") for x in p.stderr.splitlines())


def default_sigint() -> None:
    """Runs in the child before exec: a shell that started the test run in the background set
    SIGINT to 'ignore', which children inherit; a user's terminal would deliver Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path: Path, small: Path) -> None:
    """A real SIGINT while the engine trains: exit 130, a one-line note, a usable checkpoint."""
    ck = tmp_path / "ck"
    proc = subprocess.Popen(
        [*RNNSTAB, "train", "--config", str(small), "--max-updates", "100000000",
         "--eval-every", "50", "--out", str(ck), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )  # fmt: skip
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # training is under way
    assert first["event"] == "eval"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    summary = json.loads(out.splitlines()[-1])
    assert summary["outcome"] == "interrupted" and summary["checkpoint"] == str(ck)
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("Interrupted at ")
    saved = load_checkpoint(ck)
    assert saved.state.updates == summary["updates"] >= 50


def test_set_reaches_every_config_key(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    code, out, _ = run(
        capsys, "train", "--config", str(small), "--set", "optimizer=momentum",
        "--set", "momentum=0.5", "--set", "screen-sequences=0", "--json", "-q",
    )  # fmt: skip
    assert code == EXIT_NOT_SOLVED
    assert all(json.loads(x)["test_sequences"] == 200 for x in out.splitlines())  # no screen
    code, _, err = run(capsys, "train", "--config", str(small), "--set", "speed=3")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "unknown key 'speed'")
