"""A battery of bad and extreme inputs, as a user would give them: command-line values, config
and spec files, damaged checkpoints and result stores, malformed data files, and the Python API.

Every command-line case asserts the exit code, at most two lines on stderr, a message naming
the offending argument or file, and no traceback, panic or abort. Every API case asserts a
ValueError or TypeError whose one-line message names the argument.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from rnnstab_cli import engine
from rnnstab_cli.cli import main
from rnnstab_cli.datasets import common as data_common
from rnnstab_cli.training.checkpoint import _sha256

# Exit codes (rnnstab_cli.cli.common).
USAGE, DATA, CKPT, ERROR = 2, 3, 4, 1

#: Small evaluations so that a case that gets as far as training stays fast.
QUICK = ["--set", "eval_sequences=20", "--set", "screen_sequences=10", "-q"]

FORBIDDEN = ("Traceback", "panicked", "RUST_BACKTRACE", "core dumped", "Aborted")


@dataclass(frozen=True)
class Env:
    """Paths a case may use: a scratch folder, fresh copies of a synthetic and a natural
    checkpoint, a result store, and data folders."""

    tmp: Path
    ck: Path
    nck: Path
    store: Path
    ptb: Path
    music: Path

    def write(self, name: str, text: str) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p


Argv = Callable[[Env], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Argv
    code: int
    #: Each must appear in stderr; "{ck}", "{nck}", "{store}", "{tmp}" are replaced by paths.
    names: tuple[str, ...]


def case(id: str, argv: Argv | list[str], code: int, *names: str) -> Case:
    fn: Argv = argv if callable(argv) else (lambda _env, a=argv: list(a))
    return Case(id, fn, code, names)


# --------------------------------------------------------------------------------------------
# Fixtures: one small run of each kind, copied for every case that damages it.


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("base")
    ck = root / "ck"
    assert (
        main(
            [
                "train",
                "--task",
                "temporal-order",
                "--len",
                "12",
                "--max-updates",
                "20",
                "--eval-every",
                "10",
                "--hidden",
                "8",
                "--out",
                str(ck),
                *QUICK,
            ]
        )
        == 10
    )
    ptb = root / "ptb"
    (ptb / "ptb_char").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (ptb / "ptb_char" / f"ptb.char.{split}.txt").write_text("a b c d e f\nb c a d\n" * 200)
    nck = root / "nck"
    assert (
        main(
            [
                "train",
                "--task",
                "ptb-char",
                "--data",
                str(ptb),
                "--max-updates",
                "3",
                "--hidden",
                "8",
                "--len",
                "5",
                "--out",
                str(nck),
                "-q",
            ]
        )
        == 0
    )
    music = root / "music"
    (music / "polyphonic").mkdir(parents=True)
    spec = root / "spec.toml"
    spec.write_text(
        'preset = "temporal-order"\n[base]\nmax_updates = 4\neval_every = 2\nlen = 10\n'
        "hidden = 4\neval_sequences = 10\nscreen_sequences = 10\n[axes]\nseed = [0, 1]\n"
    )
    store = root / "store.db"
    assert main(["sweep", str(spec), "--store", str(store), "--jobs", "1", "-q"]) == 0
    return {"ck": ck, "nck": nck, "store": store, "ptb": ptb, "music": music}


@pytest.fixture
def env(base: dict[str, Path], tmp_path: Path) -> Iterator[Env]:
    copies = {}
    for key in ("ck", "nck", "ptb", "music"):
        copies[key] = tmp_path / key
        shutil.copytree(base[key], copies[key])
    copies["store"] = tmp_path / "store.db"
    shutil.copy(base["store"], copies["store"])
    yield Env(tmp=tmp_path, **copies)


def run_case(c: Case, env: Env, capfd: pytest.CaptureFixture[str]) -> None:
    argv = c.argv(env)
    capfd.readouterr()
    code = main(argv)
    _out, err = capfd.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    shown = f"argv {argv}\nstderr:\n{err}"
    for bad in FORBIDDEN:
        assert bad not in err, shown
    assert code == c.code, shown
    assert 1 <= len(lines) <= 2, shown
    assert any(ln.startswith("Error: ") for ln in lines), shown
    paths = {"{ck}": env.ck, "{nck}": env.nck, "{store}": env.store, "{tmp}": env.tmp}
    for name in c.names:
        for key, path in paths.items():
            name = name.replace(key, str(path))
        assert name in err, f"{name!r} not named\n{shown}"


# --------------------------------------------------------------------------------------------
# Command-line values


def train(*args: str) -> list[str]:
    return ["train", "--task", "temporal-order", *args]


CLI_VALUES = [
    case("len-0", train("--len", "0"), USAGE, "len", "0"),
    case("len-negative", train("--len", "-5"), USAGE, "len", "-5"),
    case("len-word", train("--len", "abc"), USAGE, "len", "abc"),
    case("len-reversed", train("--len", "50:20"), USAGE, "len", "50:20"),
    case("len-three-parts", train("--len", "1:2:3"), USAGE, "len", "1:2:3"),
    case("len-too-short", train("--len", "5"), USAGE, "length 5", "too short"),
    case("len-huge", train("--len", "1000000000"), USAGE, "len 1000000000", "memory"),
    case("len-range-huge", train("--len", "50:2000000000"), USAGE, "memory"),
    case("hidden-0", train("--hidden", "0"), USAGE, "hidden"),
    case("hidden-negative", train("--hidden", "-1"), USAGE, "hidden"),
    case("hidden-word", train("--hidden", "abc"), USAGE, "--hidden"),
    case("hidden-float", train("--hidden", "1.5"), USAGE, "--hidden"),
    case("hidden-huge", train("--hidden", "100000000"), USAGE, "hidden 100000000", "memory"),
    case("batch-0", train("--batch", "0"), USAGE, "batch"),
    case("batch-negative", train("--batch", "-3"), USAGE, "batch"),
    case("batch-huge", train("--batch", "1000000000"), USAGE, "batch 1000000000", "memory"),
    case("lr-negative", train("--lr", "-1"), USAGE, "lr"),
    case("lr-zero", train("--lr", "0"), USAGE, "lr"),
    case("lr-nan", train("--lr", "nan"), USAGE, "lr"),
    case("lr-inf", train("--lr", "inf"), USAGE, "lr"),
    case("lr-word", train("--lr", "fast"), USAGE, "--lr"),
    case("clip-0", train("--clip", "0"), USAGE, "clip"),
    case("clip-negative", train("--clip", "-1"), USAGE, "clip"),
    case("clip-nan", train("--clip", "nan"), USAGE, "clip"),
    case("alpha-negative", train("--alpha", "-1"), USAGE, "alpha"),
    case("alpha-nan", train("--alpha", "nan"), USAGE, "alpha"),
    case("alpha-inf", train("--alpha", "inf"), USAGE, "alpha"),
    case("alpha-without-omega", train("--alpha", "1", "--method", "sgd"), USAGE, "alpha"),
    case("method", train("--method", "adam"), USAGE, "method", "adam"),
    case("activation", train("--activation", "gelu"), USAGE, "activation", "gelu"),
    case("init", train("--init", "xavier"), USAGE, "init", "xavier"),
    case("optimizer", train("--optimizer", "adam"), USAGE, "optimizer", "adam"),
    case("dtype", train("--dtype", "float16"), USAGE, "dtype", "float16"),
    case("device", train("--device", "tpu"), USAGE, "device", "tpu"),
    case("clip-mode", train("--clip-mode", "soft"), USAGE, "clip_mode", "soft"),
    case(
        "clip-window-0",
        train("--clip-mode", "auto", "--set", "clip_window=0"),
        USAGE,
        "clip_window",
    ),
    case("clip-window-float", train("--set", "clip_window=2.5"), USAGE, "clip_window"),
    case("clip-window-huge", train("--set", "clip_window=10000000"), USAGE, "clip_window"),
    case(
        "clip-factor-0",
        train("--clip-mode", "auto", "--set", "clip_factor=0"),
        USAGE,
        "clip_factor",
    ),
    case(
        "clip-factor-nan",
        train("--clip-mode", "skip", "--set", "clip_factor=nan"),
        USAGE,
        "clip_factor",
    ),
    case(
        "clip-percentile-0",
        train("--clip-mode", "percentile", "--set", "clip_percentile=0"),
        USAGE,
        "clip_percentile",
    ),
    case("clip-percentile-101", train("--set", "clip_percentile=101"), USAGE, "clip_percentile"),
    case("clip-z-negative", train("--clip-mode", "zscore", "--set", "clip_z=-1"), USAGE, "clip_z"),
    case("clip-beta-1", train("--clip-mode", "zscore", "--set", "clip_beta=1"), USAGE, "clip_beta"),
    case("clip-beta-word", train("--set", 'clip_beta="high"'), USAGE, "clip_beta"),
    case(
        "clip-warmup-0",
        train("--clip-mode", "skip", "--set", "clip_warmup=0"),
        USAGE,
        "clip_warmup",
    ),
    case(
        "clip-lambda-inf",
        train("--clip-mode", "agc", "--set", "clip_lambda=inf"),
        USAGE,
        "clip_lambda",
    ),
    case("threads-1000", train("--threads", "1000"), USAGE, "threads", "1000"),
    case("threads-negative", train("--threads", "-1"), USAGE, "threads", "-1"),
    case("threads-word", train("--threads", "many"), USAGE, "--threads"),
    case("seed-negative", train("--seed", "-1"), USAGE, "seed"),
    case("max-updates-0", train("--max-updates", "0"), USAGE, "max_updates"),
    case("max-updates-negative", train("--max-updates", "-1"), USAGE, "max_updates"),
    case("eval-every-0", train("--eval-every", "0"), USAGE, "eval_every"),
    case("task", ["train", "--task", "parity"], USAGE, "parity"),
    case("no-such-option", train("--lenght", "50"), USAGE, "--lenght"),
    case("set-nonfinite", train("--set", 'nonfinite="explode"'), USAGE, "explode"),
    case("set-momentum-1", train("--set", "momentum=1.5"), USAGE, "momentum"),
    case("set-momentum-neg", train("--set", "momentum=-0.1"), USAGE, "momentum"),
    case("set-eval-huge", train("--set", "eval_sequences=100000000000"), USAGE, "eval_sequences"),
    case("set-screen-neg", train("--set", "screen_sequences=-1"), USAGE, "screen_sequences"),
    case("set-init-scale", train("--set", "init_scale=-1"), USAGE, "init_scale"),
    case("set-omega-form", train("--set", 'omega_form="cubed"'), USAGE, "omega_form", "cubed"),
    case("set-time-red", train("--set", 'time_reduction="max"'), USAGE, "time_reduction"),
    case("set-unknown-key", train("--set", "learning_rate=0.1"), USAGE, "learning_rate"),
    case("set-no-equals", train("--set", "lr"), USAGE, "--set"),
    case("set-bool-hidden", train("--set", "hidden=true"), USAGE, "hidden"),
    case("set-string-batch", train("--set", 'batch="x"'), USAGE, "batch"),
    case("set-len-0", train("--set", "len=0"), USAGE, "len"),
    case("set-task-options", train("--set", "task_options={colour=1}"), USAGE, "colour"),
    case("set-and-flag", train("--lr", "0.1", "--set", "lr=0.2"), USAGE, "lr"),
    case("resume-missing", ["train", "--resume", "/nonexistent/run"], CKPT, "/nonexistent/run"),
    case(
        "resume-a-file",
        lambda e: ["train", "--resume", str(e.write("afile", "x"))],
        CKPT,
        "afile",
    ),
    case(
        "out-holds-checkpoint",
        lambda e: train("--len", "12", "--out", str(e.ck)),
        USAGE,
        "{ck}",
        "--resume",
    ),
    case(
        "out-under-a-file",
        lambda e: train(
            "--len",
            "12",
            "--hidden",
            "4",
            "--max-updates",
            "2",
            "--out",
            str(e.write("f", "x") / "run"),
            *QUICK,
        ),
        CKPT,
        "run",
    ),
    case("music-dataset", ["train", "--task", "music", "--dataset", "bach"], USAGE, "bach"),
    case(
        "music-data-missing",
        ["train", "--task", "music", "--dataset", "jsb", "--data", "/nonexistent/d"],
        DATA,
        "/nonexistent/d",
    ),
    case(
        "ptb-len-huge",
        lambda e: ["train", "--task", "ptb-char", "--data", str(e.ptb), "--len", "1000000000"],
        USAGE,
        "seq_len 1000000000",
    ),
    case(
        "ptb-hidden-huge",
        lambda e: ["train", "--task", "ptb-char", "--data", str(e.ptb), "--hidden", "100000000"],
        USAGE,
        "hidden 100000000",
    ),
    case(
        "ptb-threads",
        lambda e: ["train", "--task", "ptb-char", "--data", str(e.ptb), "--threads", "999"],
        USAGE,
        "threads",
    ),
    # eval
    case("eval-len-huge", lambda e: ["eval", str(e.ck), "--len", "1000000000"], USAGE, "--len"),
    case("eval-len-short", lambda e: ["eval", str(e.ck), "--len", "2"], USAGE, "--len 2"),
    case("eval-n-0", lambda e: ["eval", str(e.ck), "--n", "0"], USAGE, "--n"),
    case("eval-n-huge", lambda e: ["eval", str(e.ck), "--n", "10000000000000"], USAGE, "--n"),
    case("eval-seed", lambda e: ["eval", str(e.ck), "--seed", "-1"], USAGE, "--seed"),
    case("eval-threads", lambda e: ["eval", str(e.ck), "--threads", "-1"], USAGE, "--threads"),
    case("eval-threads-1000", lambda e: ["eval", str(e.ck), "--threads", "1000"], USAGE, "threads"),
    case("eval-split-synthetic", lambda e: ["eval", str(e.ck), "--split", "x"], USAGE, "--split"),
    case("eval-missing", ["eval", "/nonexistent/ck"], CKPT, "/nonexistent/ck"),
    case("eval-natural-len", lambda e: ["eval", str(e.nck), "--len", "5"], USAGE, "--len"),
    case(
        "eval-natural-split",
        lambda e: ["eval", str(e.nck), "--split", "dev", "--data", str(e.ptb)],
        USAGE,
        "dev",
    ),
    case("eval-no-argument", ["eval"], USAGE, "checkpoint"),
    # other commands
    case("report-missing", ["report", "/nonexistent/r.db"], CKPT, "/nonexistent/r.db"),
    case("plot-missing", ["plot", "/nonexistent/r.db", "-o", "x.png"], CKPT, "/nonexistent/r.db"),
    case(
        "report-sweep",
        lambda e: ["report", str(e.store), "--sweep", "nosuch"],
        USAGE,
        "nosuch",
    ),
    case("figure-kind", ["figure", "mandelbrot"], USAGE, "mandelbrot"),
    case("figure-steps", ["figure", "error-surface", "--steps", "1000000000"], USAGE, "--steps"),
    case("figure-grid", ["figure", "error-surface", "--grid", "100000"], USAGE, "--grid"),
    case("figure-lr", ["figure", "error-surface", "--lr", "inf"], USAGE, "lr"),
    case("figure-w", ["figure", "bifurcation", "--w", "nan"], USAGE, "w must be finite"),
    case(
        "figure-spectrum-missing",
        ["figure", "spectrum", "/nonexistent/ck", "-o", "s.png"],
        CKPT,
        "/nonexistent/ck",
    ),
    case("bench-config", ["bench", "--only", "--config", "1,2"], USAGE, "1,2"),
    case(
        "plot-unwritable",
        lambda e: ["plot", str(e.store), "-o", "/proc/p.png"],
        USAGE,
        "/proc/p.png",
    ),
    case(
        "plot-run-unwritable",
        lambda e: ["plot", str(e.ck), "-o", "/proc/r.svg"],
        USAGE,
        "/proc/r.svg",
    ),
    case(
        "figure-unwritable",
        ["figure", "error-surface", "--grid", "10", "--steps", "1", "-o", "/proc/f/x.png"],
        USAGE,
        "/proc/f/x.png",
    ),
    case("figure-suffix", ["figure", "bifurcation", "-o", "x.bmp"], USAGE, ".png"),
    case("unknown-command", ["trian"], USAGE, "trian"),
]


# --------------------------------------------------------------------------------------------
# Config files and sweep specs


def config_file(text: str, *extra: str) -> Argv:
    return lambda e: ["train", "--config", str(e.write("c.toml", text)), *extra]


def spec_file(text: str, *extra: str) -> Argv:
    return lambda e: [
        "sweep",
        str(e.write("s.toml", text)),
        "--store",
        str(e.tmp / "s.db"),
        "--dry-run",
        *extra,
    ]


TO = 'preset = "temporal-order"\n'

FILES = [
    case("config-missing", ["train", "--config", "/nonexistent/c.toml"], USAGE, "/nonexistent"),
    case("config-not-toml", config_file("task = \n"), USAGE, "c.toml"),
    case("config-binary", config_file("\x00\x01\x02"), USAGE, "c.toml"),
    case(
        "config-unknown-key",
        config_file('task = "temporal-order"\nlenght = 5\n'),
        USAGE,
        "c.toml",
        "lenght",
    ),
    case("config-len-0", config_file('task = "temporal-order"\nlen = 0\n'), USAGE, "c.toml", "len"),
    case(
        "config-len-word",
        config_file('task = "temporal-order"\nlen = "x"\n'),
        USAGE,
        "c.toml",
        "len",
    ),
    case(
        "config-len-bool",
        config_file('task = "temporal-order"\nlen = true\n'),
        USAGE,
        "c.toml",
        "len",
    ),
    case(
        "config-len-list",
        config_file('task = "temporal-order"\nlen = [1, 2]\n'),
        USAGE,
        "c.toml",
        "len",
    ),
    case(
        "config-hidden-string",
        config_file('task = "temporal-order"\nhidden = "x"\n'),
        USAGE,
        "c.toml",
        "hidden",
    ),
    case(
        "config-lr-string",
        config_file('task = "temporal-order"\nlr = "x"\n'),
        USAGE,
        "c.toml",
        "lr",
    ),
    case(
        "config-task-options",
        config_file('task = "temporal-order"\ntask_options = 3\n'),
        USAGE,
        "c.toml",
        "task_options",
    ),
    case(
        "config-per-method",
        config_file('task = "temporal-order"\nper_method = 3\n'),
        USAGE,
        "c.toml",
        "per_method",
    ),
    case(
        "config-with-resume",
        lambda e: ["train", "--resume", str(e.ck), "--config", str(e.write("c.toml", ""))],
        USAGE,
        "--config",
    ),
    case(
        "spec-missing",
        ["sweep", "/nonexistent/s.toml", "--store", "x.db"],
        USAGE,
        "/nonexistent/s.toml",
    ),
    case("spec-not-toml", spec_file("[axes\n"), USAGE, "s.toml"),
    case("spec-unknown-key", spec_file(TO + "sweep = 1\n"), USAGE, "s.toml", "sweep"),
    case("spec-no-task", spec_file("[axes]\nseed = [0]\n"), USAGE, "s.toml", "task"),
    case("spec-preset", spec_file('preset = "parity"\n[axes]\nseed = [0]\n'), USAGE, "parity"),
    case("spec-axis-empty", spec_file(TO + "[axes]\nseed = []\n"), USAGE, "s.toml", "axes.seed"),
    case("spec-axis-number", spec_file(TO + "[axes]\nseed = 3\n"), USAGE, "s.toml", "axes.seed"),
    case("spec-range-reversed", spec_file(TO + '[axes]\nseed = "9..1"\n'), USAGE, "axes.seed"),
    case(
        "spec-range-huge",
        spec_file(TO + '[axes]\nseed = "0..1000000000"\n'),
        USAGE,
        "s.toml",
        "axes.seed",
        "20,000",
    ),
    case(
        "spec-grid-huge",
        spec_file(TO + '[axes]\nseed = "0..999"\nhidden = "1..100"\n'),
        USAGE,
        "s.toml",
        "100,000 runs",
    ),
    case("spec-axis-len-0", spec_file(TO + "[axes]\nlen = [0, 50]\n"), USAGE, "s.toml", "len"),
    case(
        "spec-base-len",
        spec_file(TO + '[base]\nlen = "x"\n[axes]\nseed = [0]\n'),
        USAGE,
        "s.toml",
        "len",
    ),
    case(
        "spec-base-hidden",
        spec_file(TO + '[base]\nhidden = "x"\n[axes]\nseed = [0]\n'),
        USAGE,
        "s.toml",
        "hidden",
    ),
    case("spec-axis-dup", spec_file(TO + "[axes]\nseed = [1, 1]\n"), USAGE, "s.toml", "twice"),
    case(
        "spec-same-run",
        spec_file(TO + '[axes]\nmethod = ["sgd"]\nalpha = [0.0, 0.0]\n'),
        USAGE,
        "s.toml",
    ),
    case(
        "spec-both",
        spec_file(TO + "[base]\nseed = 1\n[axes]\nseed = [0]\n"),
        USAGE,
        "s.toml",
        "seed",
    ),
    case(
        "spec-memory",
        spec_file(TO + "[axes]\nhidden = [4, 100000000]\n"),
        USAGE,
        "s.toml",
        "hidden=100000000",
        "memory",
    ),
    case(
        "spec-threads",
        spec_file(TO + "[base]\nthreads = 1000\n[axes]\nseed = [0]\n"),
        USAGE,
        "s.toml",
        "threads",
    ),
    case(
        "spec-bad-axis-option",
        spec_file(TO + "[axes]\nseed = [0]\n", "--axis", "seed"),
        USAGE,
        "--axis",
    ),
    case("spec-axis-option-huge", spec_file(TO, "--axis", "seed=0..999999999"), USAGE, "--axis"),
    case(
        "spec-set-axis",
        spec_file(TO + "[axes]\nseed = [0]\n", "--set", "seed=3"),
        USAGE,
        "--set seed",
    ),
    case(
        "spec-set-unknown",
        spec_file(TO + "[axes]\nseed = [0]\n", "--set", "colour=3"),
        USAGE,
        "colour",
    ),
    case("spec-jobs-0", spec_file(TO + "[axes]\nseed = [0]\n", "--jobs", "0"), USAGE, "--jobs"),
    case(
        "spec-jobs-huge",
        lambda e: [
            "sweep",
            str(e.write("s.toml", TO + "[axes]\nseed = [0]\n")),
            "--store",
            str(e.tmp / "s.db"),
            "--jobs",
            "100000",
        ],
        USAGE,
        "--jobs",
    ),
    case(
        "spec-runs-dir",
        lambda e: [
            "sweep",
            str(e.write("s.toml", TO + "[axes]\nseed = [0]\n")),
            "--store",
            str(e.tmp / "s.db"),
            "--runs-dir",
            "/proc/runs",
        ],
        USAGE,
        "--runs-dir",
        "/proc/runs",
    ),
    case(
        "spec-backend",
        lambda e: [
            "sweep",
            str(e.write("s.toml", TO + "[axes]\nseed = [0]\n")),
            "--store",
            str(e.tmp / "s.db"),
            "--backend",
            "slurm",
        ],
        USAGE,
        "slurm",
    ),
    case(
        "spec-store-dir",
        lambda e: [
            "sweep",
            str(e.write("s.toml", TO + "[axes]\nseed = [0]\n")),
            "--store",
            str(e.tmp),
        ],
        USAGE,
        "{tmp}",
    ),
]


# --------------------------------------------------------------------------------------------
# Damaged checkpoints


def state_edit(edit: Callable[[dict[str, Any]], None], which: str = "ck") -> Callable[[Env], Path]:
    """Rewrite a checkpoint's state.json through ``edit`` (its tensors stay consistent)."""

    def apply(e: Env) -> Path:
        d = getattr(e, which)
        p = d / "state.json"
        state = json.loads(p.read_text())
        edit(state)
        p.write_text(json.dumps(state))
        return d

    return apply


def tensor_edit(
    edit: Callable[[dict[str, np.ndarray]], None], stem: str = "params", which: str = "ck"
) -> Callable[[Env], Path]:
    """Rewrite one tensor file and record its new sha256: damage a checksum cannot catch."""

    def apply(e: Env) -> Path:
        d = getattr(e, which)
        p = d / "state.json"
        state = json.loads(p.read_text())
        name = state["files"][stem]["name"]
        arrays = load_file(str(d / name))
        edit(arrays)
        save_file(arrays, str(d / name))
        state["files"][stem]["sha256"] = _sha256((d / name).read_bytes())
        p.write_text(json.dumps(state))
        return d

    return apply


def remove(which: str, pattern: str) -> Callable[[Env], Path]:
    """Delete the files matching ``pattern`` in one of the copies."""

    def apply(e: Env) -> Path:
        d = getattr(e, which)
        for p in d.glob(pattern):
            p.unlink()
        return d

    return apply


def write_in(which: str, name: str, data: bytes) -> Callable[[Env], Path]:
    """Overwrite one file of one of the copies with ``data``."""

    def apply(e: Env) -> Path:
        d = getattr(e, which)
        (d / name).write_bytes(data)
        return d

    return apply


def raw_state(text: str, which: str = "ck") -> Callable[[Env], Path]:
    def apply(e: Env) -> Path:
        d = getattr(e, which)
        (d / "state.json").write_text(text)
        return d

    return apply


def set_path(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = state
        for k in parents:
            node = node[k]
        node[last] = value

    return edit


def delete(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = state
        for k in parents:
            node = node[k]
        del node[last]

    return edit


def on_eval(damage: Callable[[Env], Path]) -> Argv:
    return lambda e: ["eval", str(damage(e)), "--n", "10"]


def on_resume(damage: Callable[[Env], Path]) -> Argv:
    return lambda e: ["train", "--resume", str(damage(e)), "--max-updates", "30", *QUICK]


def on_natural_eval(damage: Callable[[Env], Path]) -> Argv:
    return lambda e: ["eval", str(damage(e)), "--split", "valid", "--data", str(e.ptb)]


def dropped_without_best(state: dict[str, Any]) -> None:
    """A best-only checkpoint (drop_last_params) whose best parameters are gone too."""
    state["last_params_dropped"] = True
    del state["files"]["params"], state["files"]["best"]


def nan_w_rec(a: dict[str, np.ndarray]) -> None:
    a["W_rec"] = a["W_rec"].copy()
    a["W_rec"][0, 0] = np.nan


def inf_b(a: dict[str, np.ndarray]) -> None:
    a["b"] = np.full_like(a["b"], np.inf)


def wrong_shape(a: dict[str, np.ndarray]) -> None:
    a["W_rec"] = np.zeros((3, 3), dtype=a["W_rec"].dtype)


def wrong_dtype(a: dict[str, np.ndarray]) -> None:
    a["W_in"] = a["W_in"].astype(np.float64)


def drop_w_out(a: dict[str, np.ndarray]) -> None:
    del a["W_out"]


CHECKPOINTS = [
    case(
        "ck-state-missing",
        on_eval(remove("ck", "state.json")),
        CKPT,
        "{ck}",
        "state.json",
    ),
    case("ck-state-not-json", on_eval(raw_state("{nope")), CKPT, "{ck}", "state.json"),
    case(
        "ck-state-binary",
        on_eval(write_in("ck", "state.json", b"\xff\xfe\x00")),
        CKPT,
        "{ck}",
        "state.json",
    ),
    case("ck-state-list", on_eval(raw_state("[1, 2]")), CKPT, "state.json"),
    case("ck-state-empty", on_eval(raw_state("")), CKPT, "{ck}"),
    case("ck-format", on_eval(state_edit(set_path("format", "other"))), CKPT, "state.json"),
    case("ck-version", on_eval(state_edit(set_path("format_version", 99))), CKPT, "99"),
    case(
        "ck-updates-negative",
        on_eval(state_edit(set_path("run_state.updates", -1))),
        CKPT,
        "{ck}",
        "run_state.updates",
    ),
    case(
        "ck-updates-string",
        on_eval(state_edit(set_path("run_state.updates", "20"))),
        CKPT,
        "run_state.updates",
    ),
    case(
        "ck-updates-float",
        on_eval(state_edit(set_path("run_state.updates", 20.5))),
        CKPT,
        "run_state.updates",
    ),
    case(
        "ck-updates-huge",
        on_eval(state_edit(set_path("run_state.updates", 10**30))),
        CKPT,
        "run_state.updates",
    ),
    case(
        "ck-updates-null",
        on_eval(state_edit(set_path("run_state.updates", None))),
        CKPT,
        "run_state.updates",
    ),
    case(
        "ck-updates-bool",
        on_eval(state_edit(set_path("run_state.updates", True))),
        CKPT,
        "run_state.updates",
    ),
    case(
        "ck-eval-index",
        on_resume(state_edit(set_path("run_state.eval_index", -3))),
        CKPT,
        "run_state.eval_index",
    ),
    case(
        "ck-eval-index-beyond",
        on_resume(state_edit(set_path("run_state.eval_index", 50))),
        CKPT,
        "eval_index",
    ),
    case(
        "ck-wall-nan",
        on_resume(state_edit(set_path("run_state.wall_time", float("nan")))),
        CKPT,
        "run_state.wall_time",
    ),
    case(
        "ck-wall-negative",
        on_resume(state_edit(set_path("run_state.wall_time", -5.0))),
        CKPT,
        "run_state.wall_time",
    ),
    case(
        "ck-wall-inf",
        on_resume(state_edit(set_path("run_state.wall_time", float("inf")))),
        CKPT,
        "run_state.wall_time",
    ),
    case(
        "ck-test-error",
        on_eval(state_edit(set_path("run_state.last_test_error", 5.0))),
        CKPT,
        "last_test_error",
    ),
    case(
        "ck-solved-string",
        on_eval(state_edit(set_path("run_state.solved", "yes"))),
        CKPT,
        "run_state.solved",
    ),
    case(
        "ck-period-type",
        on_resume(state_edit(set_path("run_state.period", [1]))),
        CKPT,
        "run_state.period",
    ),
    case(
        "ck-period-finite",
        on_resume(state_edit(set_path("run_state.period.finite", 10**6))),
        CKPT,
        "period",
    ),
    case(
        "ck-period-loss-nan",
        on_resume(state_edit(set_path("run_state.period.loss_sum", float("nan")))),
        CKPT,
        "run_state.period.loss_sum",
    ),
    case("ck-unknown-field", on_eval(state_edit(set_path("run_state.colour", 1))), CKPT, "colour"),
    case("ck-run-state-missing", on_eval(state_edit(delete("run_state"))), CKPT, "run_state"),
    case("ck-run-state-string", on_eval(state_edit(set_path("run_state", "x"))), CKPT, "run_state"),
    case(
        "ck-counters",
        on_eval(state_edit(set_path("counters.updates", 7))),
        CKPT,
        "counters.updates",
    ),
    case("ck-counters-type", on_eval(state_edit(set_path("counters", 5))), CKPT, "counters"),
    case(
        "ck-metrics-records",
        on_resume(state_edit(set_path("metrics_records", -1))),
        CKPT,
        "metrics_records",
    ),
    case("ck-files-missing", on_eval(state_edit(delete("files"))), CKPT, "{ck}", "files"),
    case("ck-files-string", on_eval(state_edit(set_path("files", "x"))), CKPT, "{ck}"),
    case(
        "ck-params-entry",
        on_eval(state_edit(set_path("files.params", 3))),
        CKPT,
        "parameter file entry",
    ),
    case(
        "ck-params-escape",
        on_eval(state_edit(set_path("files.params.name", "../x"))),
        CKPT,
        "parameter file entry",
    ),
    case("ck-sha", on_eval(state_edit(set_path("files.params.sha256", "0" * 64))), CKPT, "sha256"),
    case(
        "ck-params-file-gone",
        on_eval(remove("ck", "params-*")),
        CKPT,
        "parameter file",
    ),
    case(
        "ck-optimizer-empty",
        on_eval(state_edit(set_path("files.optimizer.empty", "no"))),
        CKPT,
        "files.optimizer.empty",
    ),
    case("ck-params-nan", on_eval(tensor_edit(nan_w_rec)), CKPT, "{ck}", "W_rec", "NaN"),
    case("ck-params-inf", on_resume(tensor_edit(inf_b)), CKPT, "{ck}", "b", "infinite"),
    case("ck-params-shape", on_eval(tensor_edit(wrong_shape)), CKPT, "W_rec", "[3, 3]"),
    case("ck-params-dtype", on_eval(tensor_edit(wrong_dtype)), CKPT, "W_in", "float64"),
    case("ck-params-missing-tensor", on_eval(tensor_edit(drop_w_out)), CKPT, "W_out"),
    case("ck-config-missing", on_eval(state_edit(delete("config"))), CKPT, "{ck}", "config"),
    case(
        "ck-config-hidden",
        on_eval(state_edit(set_path("config.hidden", "x"))),
        CKPT,
        "{ck}",
        "hidden",
    ),
    case(
        "ck-config-hidden-0",
        on_eval(state_edit(set_path("config.hidden", 0))),
        CKPT,
        "{ck}",
        "hidden",
    ),
    case("ck-config-len", on_eval(state_edit(set_path("config.len", 0))), CKPT, "{ck}", "len"),
    case(
        "ck-config-lr-nan",
        on_eval(state_edit(set_path("config.lr", float("nan")))),
        CKPT,
        "{ck}",
        "lr",
    ),
    case(
        "ck-config-threads",
        on_resume(state_edit(set_path("config.threads", 5000))),
        CKPT,
        "threads",
    ),
    case("ck-config-unknown", on_eval(state_edit(set_path("config.colour", 1))), CKPT, "colour"),
    case("ck-config-list", on_eval(state_edit(set_path("config", [1]))), CKPT, "{ck}", "config"),
    case(
        "ck-metrics-short",
        on_resume(write_in("ck", "metrics.jsonl", b"{}\n")),
        CKPT,
        "metrics.jsonl",
    ),
    case(
        "ck-metrics-garbage",
        on_resume(write_in("ck", "metrics.jsonl", b"x\ny\nz\n")),
        CKPT,
        "metrics.jsonl",
    ),
    case("ck-tensor-garbage", on_eval(lambda e: _garbage_tensor_file(e.ck)), CKPT, "safetensors"),
    # natural checkpoints
    case(
        "nck-lr-negative",
        on_natural_eval(state_edit(set_path("run_state.lr", -1.0), "nck")),
        CKPT,
        "{nck}",
        "run_state.lr",
    ),
    case(
        "nck-epoch-updates",
        on_natural_eval(state_edit(set_path("run_state.epoch.updates", "3"), "nck")),
        CKPT,
        "run_state.epoch.updates",
    ),
    case(
        "nck-stopping",
        on_natural_eval(state_edit(set_path("run_state.stopping.best", float("nan")), "nck")),
        CKPT,
        "run_state.stopping.best",
    ),
    case("nck-vocab", on_natural_eval(state_edit(set_path("vocab", [1, 2]), "nck")), CKPT, "vocab"),
    case("nck-best-nan", on_natural_eval(tensor_edit(nan_w_rec, "best", "nck")), CKPT, "W_rec"),
    case(
        "nck-carry-nan",
        on_natural_eval(tensor_edit(lambda a: a.update(x=a["x"] * np.nan), "carry", "nck")),
        CKPT,
        "carried state",
    ),
    case(
        "nck-carry-shape",
        on_natural_eval(
            tensor_edit(lambda a: a.update(x=np.zeros((2, 3), np.float32)), "carry", "nck")
        ),
        CKPT,
        "carried state",
    ),
    case(
        "nck-dropped-not-bool",
        on_natural_eval(state_edit(set_path("last_params_dropped", "yes"), "nck")),
        CKPT,
        "{nck}",
        "last_params_dropped",
    ),
    case(
        "nck-dropped-but-listed",
        on_natural_eval(state_edit(set_path("last_params_dropped", True), "nck")),
        CKPT,
        "{nck}",
        "says were dropped",
    ),
    case(
        "nck-dropped-without-best",
        on_natural_eval(state_edit(dropped_without_best, "nck")),
        CKPT,
        "{nck}",
        "kept only its best parameters but has none",
    ),
]


def _garbage_tensor_file(d: Path) -> Path:
    state = json.loads((d / "state.json").read_text())
    name = state["files"]["params"]["name"]
    data = b"\xff" * 64
    (d / name).write_bytes(data)
    state["files"]["params"]["sha256"] = _sha256(data)
    (d / "state.json").write_text(json.dumps(state))
    return d


# --------------------------------------------------------------------------------------------
# Damaged result stores


def store_sql(sql: str) -> Callable[[Env], Path]:
    def apply(e: Env) -> Path:
        conn = sqlite3.connect(e.store)
        # As a damaged or hand-edited file may: SQLite's own CHECK constraints do not hold.
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute(sql)
        conn.commit()
        conn.close()
        return e.store

    return apply


def on_report(damage: Callable[[Env], Path]) -> Argv:
    return lambda e: ["report", str(damage(e))]


def on_plot(damage: Callable[[Env], Path]) -> Argv:
    return lambda e: ["plot", str(damage(e)), "-o", str(e.tmp / "p.png")]


STORES = [
    case("store-text", on_report(lambda e: e.write("r.db", "hello")), CKPT, "r.db"),
    case("store-garbage", on_report(lambda e: _garbage_sqlite(e.tmp / "g.db")), CKPT, "g.db"),
    case("store-truncated", on_report(lambda e: _truncate(e.store)), CKPT, "store.db"),
    case("store-foreign-db", on_report(lambda e: _foreign_db(e.tmp / "f.db")), CKPT, "f.db"),
    case(
        "store-outcome",
        on_report(store_sql("UPDATE runs SET outcome = 'meh'")),
        CKPT,
        "{store}",
        "outcome",
    ),
    case(
        "store-updates-text",
        on_report(store_sql("UPDATE runs SET updates = 'many'")),
        CKPT,
        "{store}",
        "updates",
    ),
    case(
        "store-updates-negative",
        on_report(store_sql("UPDATE runs SET updates = -4")),
        CKPT,
        "{store}",
        "updates",
    ),
    case(
        "store-test-error",
        on_report(store_sql("UPDATE runs SET test_error = 7.5")),
        CKPT,
        "{store}",
        "test_error",
    ),
    case(
        "store-test-error-text",
        on_report(store_sql("UPDATE runs SET test_error = 'low'")),
        CKPT,
        "test_error",
    ),
    case(
        "store-wall-time", on_plot(store_sql("UPDATE runs SET wall_time = -1.0")), CKPT, "wall_time"
    ),
    case(
        "store-config-json",
        on_report(store_sql("UPDATE runs SET config = '{nope'")),
        CKPT,
        "{store}",
        "config",
    ),
    case("store-config-list", on_plot(store_sql("UPDATE runs SET config = '[1]'")), CKPT, "config"),
    case("store-config-number", on_report(store_sql("UPDATE runs SET config = 5")), CKPT, "config"),
    case(
        "store-spec-json",
        on_report(store_sql("UPDATE sweeps SET spec = 'x'")),
        CKPT,
        "{store}",
        "spec",
    ),
    case("store-n-runs", on_report(store_sql("UPDATE sweeps SET n_runs = 'two'")), CKPT, "n_runs"),
    case(
        "store-finished-null",
        on_report(store_sql("UPDATE runs SET finished = x'01'")),
        CKPT,
        "finished",
    ),
    case(
        "store-test-sequences",
        on_report(store_sql("UPDATE runs SET test_sequences = 1.5")),
        CKPT,
        "test_sequences",
    ),
    case("store-backend", on_report(store_sql("UPDATE runs SET backend = x'00'")), CKPT, "backend"),
]


def _garbage_sqlite(p: Path) -> Path:
    p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    return p


def _truncate(p: Path) -> Path:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    return p


def _foreign_db(p: Path) -> Path:
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return p


# --------------------------------------------------------------------------------------------
# Data files


def jsb(obj: Any, protocol: int = 2) -> Argv:
    def argv(e: Env) -> list[str]:
        (e.music / "polyphonic" / "JSB_Chorales.pickle").write_bytes(
            pickle.dumps(obj, protocol=protocol)
        )
        return ["train", "--task", "music", "--dataset", "jsb", "--data", str(e.music)]

    return argv


def jsb_bytes(data: bytes) -> Argv:
    def argv(e: Env) -> list[str]:
        (e.music / "polyphonic" / "JSB_Chorales.pickle").write_bytes(data)
        return ["train", "--task", "music", "--dataset", "jsb", "--data", str(e.music)]

    return argv


def mat(name: str, data: bytes) -> Argv:
    def argv(e: Env) -> list[str]:
        (e.music / "polyphonic" / name).write_bytes(data)
        dataset = {"Nottingham.mat": "nottingham", "JSB_Chorales.mat": "jsb"}[name]
        return ["train", "--task", "music", "--dataset", dataset, "--data", str(e.music)]

    return argv


def _scipy_crasher() -> bytes:
    import io

    import scipy.io

    roll = np.zeros((1, 2), dtype=object)
    roll[0, 0] = np.eye(4, 88, dtype=np.uint8)
    roll[0, 1] = np.ones((3, 88), dtype=np.uint8)
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"traindata": roll, "validdata": roll, "testdata": roll})
    data = bytearray(buf.getvalue())
    data[239:242] = b"\x00\x00\xef"
    return bytes(data)


def ptb(split: str, data: bytes) -> Argv:
    def argv(e: Env) -> list[str]:
        (e.ptb / "ptb_char" / f"ptb.char.{split}.txt").write_bytes(data)
        return ["train", "--task", "ptb-char", "--data", str(e.ptb), "--len", "5"]

    return argv


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


GOOD_SEQ = [(60, 64), (62,), ()]
SPLITS3 = ("train", "valid", "test")


def splits(train: Any, valid: Any = None, test: Any = None) -> dict[str, Any]:
    return {"train": train, "valid": valid or [GOOD_SEQ], "test": test or [GOOD_SEQ]}


DATA_FILES = [
    case(
        "jsb-missing",
        lambda e: ["train", "--task", "music", "--dataset", "jsb", "--data", str(e.music)],
        DATA,
        "polyphonic",
    ),
    case("jsb-empty", jsb_bytes(b""), DATA, "JSB_Chorales.pickle"),
    case("jsb-garbage", jsb_bytes(b"\x80\x02garbage"), DATA, "JSB_Chorales.pickle"),
    case("jsb-text", jsb_bytes(b"hello world"), DATA, "JSB_Chorales.pickle"),
    case("jsb-evil", jsb(_Evil()), DATA, "JSB_Chorales.pickle", "print"),
    case("jsb-list", jsb([1, 2, 3]), DATA, "JSB_Chorales.pickle", "list"),
    case("jsb-missing-split", jsb({"train": [GOOD_SEQ]}), DATA, "JSB_Chorales.pickle", "valid"),
    case("jsb-empty-split", jsb(splits([])), DATA, "JSB_Chorales.pickle", "train"),
    case("jsb-note-high", jsb(splits([[(200,)]])), DATA, "JSB_Chorales.pickle", "200"),
    case("jsb-note-low", jsb(splits([[(-1,)]])), DATA, "JSB_Chorales.pickle", "-1"),
    case("jsb-note-float", jsb(splits([[(60.5,)]])), DATA, "JSB_Chorales.pickle", "60.5"),
    case("jsb-note-string", jsb(splits([[("C4",)]])), DATA, "JSB_Chorales.pickle", "C4"),
    case("jsb-step-int", jsb(splits([[60]])), DATA, "JSB_Chorales.pickle", "train[0][0]"),
    case("jsb-seq-empty", jsb(splits([[]])), DATA, "JSB_Chorales.pickle", "train[0]"),
    case(
        "jsb-many-notes",
        jsb(splits([[tuple([60] * 10_000)]])),
        DATA,
        "JSB_Chorales.pickle",
        "notes",
    ),
    case(
        "jsb-expanding",
        jsb(splits([[(60,)] * 200_000] * 20_000)),
        DATA,
        "JSB_Chorales.pickle",
        "time steps",
    ),
    case("jsb-deep", jsb_bytes(b"\x80\x02" + b"]" * 100_000 + b"."), DATA, "JSB_Chorales.pickle"),
    case(
        "jsb-huge-string", jsb_bytes(b"\x80\x02T\xff\xff\xff\x7fabc."), DATA, "JSB_Chorales.pickle"
    ),
    case("mat-empty", mat("Nottingham.mat", b""), DATA, "Nottingham.mat"),
    case(
        "mat-garbage", mat("Nottingham.mat", b"MATLAB 5.0" + b"\x00" * 200), DATA, "Nottingham.mat"
    ),
    case("mat-text", mat("Nottingham.mat", b"not a mat file at all" * 10), DATA, "Nottingham.mat"),
    case("mat-jsb-garbage", mat("JSB_Chorales.mat", b"\x00" * 1000), DATA, "JSB_Chorales.mat"),
    # Found by the fuzz target: three bytes changed in a valid file kill scipy's reader with
    # SIGBUS or SIGSEGV, which its own process (see music._load_mat) turns into a data error.
    case("mat-crashes-scipy", mat("Nottingham.mat", _scipy_crasher()), DATA, "Nottingham.mat"),
    case("ptb-empty", ptb("train", b""), DATA, "ptb.char.train.txt"),
    case("ptb-binary", ptb("train", b"\xff\xfe\x00abc\n"), DATA, "ptb.char.train.txt"),
    case("ptb-unknown-symbol", ptb("valid", b"a b z\n"), DATA, "ptb.char.valid.txt", "'z'"),
    case(
        "ptb-vocab-huge",
        ptb("train", " ".join(chr(0x4E00 + i) for i in range(5000)).encode() + b"\n"),
        DATA,
        "ptb.char.train.txt",
        "symbols",
    ),
    case(
        "ptb-missing-file",
        lambda e: ["train", "--task", "ptb-char", "--data", str(remove("ptb", "*/*.test.txt")(e))],
        DATA,
        "ptb.char.test.txt",
    ),
    case("ptb-whitespace-only", ptb("train", b"   \n\n  \n"), DATA, "ptb.char.train.txt"),
    case("ptb-too-short", ptb("train", b"a\n"), DATA, "ptb_char"),
]


# --------------------------------------------------------------------------------------------
# Export to and import from PyTorch state dicts (rnnstab export / import)


def on_export(damage: Callable[[Env], Path], *extra: str) -> Argv:
    return lambda e: ["export", str(damage(e)), "-o", str(e.tmp / "m.safetensors"), *extra]


def rnn_state(h: int = 4, i: int = 6, o: int = 4, **changes: Any) -> dict[str, np.ndarray]:
    """A torch.nn.RNN + Linear state dict (temporal order's 6 inputs and 4 classes), with
    ``changes`` (a key's new array, or None to drop it; ``__`` in a name stands for ``.``)."""
    rng = np.random.default_rng(0)
    state = {
        "rnn.weight_ih_l0": rng.normal(0, 0.5, (h, i)),
        "rnn.weight_hh_l0": rng.normal(0, 0.5, (h, h)),
        "rnn.bias_ih_l0": rng.normal(0, 0.5, h),
        "rnn.bias_hh_l0": rng.normal(0, 0.5, h),
        "readout.weight": rng.normal(0, 0.5, (o, h)),
        "readout.bias": rng.normal(0, 0.5, o),
    }
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in state.items()}


def on_import(state: dict[str, np.ndarray] | bytes | None, *extra: str) -> Argv:
    """``rnnstab import`` of a file holding ``state`` (raw bytes as they are; None: an
    rnnstab export of the synthetic checkpoint) into a fresh directory."""

    def argv(e: Env) -> list[str]:
        path = e.tmp / "m.safetensors"
        if state is None:
            from rnnstab_cli.training.transfer import export_checkpoint

            export_checkpoint(e.ck, path)
        elif isinstance(state, bytes):
            path.write_bytes(state)
        else:
            save_file(state, str(path))
        return ["import", str(path), "-o", str(e.tmp / "imported"), *extra]

    return argv


def exported_with(**meta: str) -> Argv:
    """An rnnstab export whose metadata header has ``meta`` changed."""

    def argv(e: Env) -> list[str]:
        from rnnstab_cli.training.transfer import export_checkpoint

        path = e.tmp / "m.safetensors"
        header = export_checkpoint(e.ck, path)
        save_file(load_file(str(path)), str(path), metadata={**header, **meta})
        return ["import", str(path), "-o", str(e.tmp / "imported")]

    return argv


def _header_only(header: dict[str, Any], data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


FOREIGN = ("--task", "temporal-order", "--len", "20")

EXCHANGE = [
    case(
        "export-missing",
        lambda e: ["export", "/nonexistent/ck", "-o", str(e.tmp / "m.safetensors")],
        CKPT,
        "/nonexistent/ck",
    ),
    case("export-no-out", lambda e: ["export", str(e.ck)], USAGE, "--out"),
    case("export-format", on_export(lambda e: e.ck, "--format", "onnx"), USAGE, "onnx", "torch"),
    case(
        "export-sigmoid",
        on_export(lambda e: e.nck),
        USAGE,
        "sigmoid units",
        "torch.nn.RNN",
        "--sigmoid-as-tanh",
    ),
    case(
        "export-linear",
        on_export(state_edit(set_path("config.activation", "linear"))),
        USAGE,
        "linear units",
    ),
    case("export-last-synthetic", on_export(lambda e: e.ck, "--last"), USAGE, "--last"),
    case("export-nan", on_export(tensor_edit(nan_w_rec)), CKPT, "{ck}", "NaN"),
    case("export-damaged", on_export(remove("ck", "params-*")), CKPT, "{ck}", "missing"),
    case(
        "export-unwritable",
        lambda e: ["export", str(e.ck), "-o", "/proc/m.safetensors"],
        USAGE,
        "/proc/m.safetensors",
    ),
    case(
        "import-missing",
        lambda e: ["import", "/nonexistent/m.safetensors", "-o", str(e.tmp / "x")],
        DATA,
        "/nonexistent/m.safetensors",
    ),
    case(
        "import-directory",
        lambda e: ["import", str(e.ck), "-o", str(e.tmp / "x")],
        DATA,
        "{ck}",
        "directory",
    ),
    case("import-empty", on_import(b"", *FOREIGN), DATA, "m.safetensors", "not a safetensors"),
    case("import-text", on_import(b"hello, world", *FOREIGN), DATA, "not a safetensors"),
    case(
        "import-header-huge",
        on_import(b"\xff" * 8 + b"{}", *FOREIGN),
        DATA,
        "not a safetensors",
    ),
    case(
        "import-header-list",
        on_import(_header_only([1, 2]), *FOREIGN),  # type: ignore[arg-type]
        DATA,
        "not a safetensors",
    ),
    case(
        "import-bf16",
        on_import(
            _header_only(
                {"rnn.weight_hh_l0": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}},
                b"\0\0",
            ),
            *FOREIGN,
        ),
        DATA,
        "BF16",
        "float32",
    ),
    case(
        "import-int",
        on_import(rnn_state(rnn__weight_hh_l0=np.ones((4, 4), dtype=np.int64)), *FOREIGN),
        DATA,
        "I64",
    ),
    case(
        "import-offsets",
        on_import(
            _header_only(
                {"readout.bias": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 4
            ),
            *FOREIGN,
        ),
        DATA,
        "not a valid safetensors",
    ),
    case("import-no-task", on_import(rnn_state()), USAGE, "--task"),
    case(
        "import-not-square",
        on_import(rnn_state(rnn__weight_hh_l0=np.zeros((4, 3))), *FOREIGN),
        DATA,
        "weight_hh_l0",
        "[4, 3]",
    ),
    case(
        "import-lstm",
        on_import(
            rnn_state(rnn__weight_ih_l0=np.zeros((16, 6)), rnn__weight_hh_l0=np.zeros((16, 4))),
            *FOREIGN,
        ),
        DATA,
        "LSTM",
    ),
    case(
        "import-gru",
        on_import(
            rnn_state(rnn__weight_ih_l0=np.zeros((12, 6)), rnn__weight_hh_l0=np.zeros((12, 4))),
            *FOREIGN,
        ),
        DATA,
        "GRU",
    ),
    case(
        "import-lstm-projection",
        on_import(rnn_state(rnn__weight_hr_l0=np.zeros((2, 4))), *FOREIGN),
        DATA,
        "weight_hr_l0",
        "LSTM",
    ),
    case(
        "import-two-layers",
        on_import(
            rnn_state(rnn__weight_ih_l1=np.zeros((4, 4)), rnn__weight_hh_l1=np.zeros((4, 4))),
            *FOREIGN,
        ),
        DATA,
        "2-layer",
        "one layer",
    ),
    case(
        "import-bidirectional",
        on_import(rnn_state(rnn__weight_ih_l0_reverse=np.zeros((4, 6))), *FOREIGN),
        DATA,
        "bidirectional",
    ),
    case(
        "import-extra-tensor",
        on_import(rnn_state(embed__weight=np.zeros((10, 6))), *FOREIGN),
        DATA,
        "embed.weight",
    ),
    case(
        "import-odd-rnn-tensor",
        on_import(rnn_state(rnn__scale=np.zeros(4)), *FOREIGN),
        DATA,
        "rnn.scale",
    ),
    case(
        "import-no-readout",
        on_import(rnn_state(readout__weight=None, readout__bias=None), *FOREIGN),
        DATA,
        "'readout.'",
        "--readout-prefix",
    ),
    case(
        "import-no-weight-hh",
        on_import(rnn_state(rnn__weight_hh_l0=None), *FOREIGN),
        DATA,
        "rnn.weight_hh_l0 is missing",
    ),
    case(
        "import-prefix",
        on_import(rnn_state(), *FOREIGN, "--rnn-prefix", "encoder."),
        DATA,
        "'encoder.'",
        "rnn.weight_hh_l0",
    ),
    case(
        "import-same-prefix",
        on_import(rnn_state(), *FOREIGN, "--rnn-prefix", "m.", "--readout-prefix", "m."),
        USAGE,
        "'m.'",
    ),
    case(
        "import-input-rows",
        on_import(rnn_state(rnn__weight_ih_l0=np.zeros((5, 6))), *FOREIGN),
        DATA,
        "weight_ih_l0",
        "[5, 6]",
    ),
    case(
        "import-readout-width",
        on_import(rnn_state(readout__weight=np.zeros((4, 5))), *FOREIGN),
        DATA,
        "readout.weight",
        "[4, 5]",
    ),
    case(
        "import-bias-shape",
        on_import(rnn_state(rnn__bias_ih_l0=np.zeros(5)), *FOREIGN),
        DATA,
        "bias_ih_l0",
        "[5]",
    ),
    case(
        "import-readout-bias-shape",
        on_import(rnn_state(readout__bias=np.zeros(3)), *FOREIGN),
        DATA,
        "readout.bias",
        "[3]",
    ),
    case(
        "import-weight-1d",
        on_import(rnn_state(readout__weight=np.zeros(4)), *FOREIGN),
        DATA,
        "readout.weight",
        "2",
    ),
    case(
        "import-empty-tensor",
        on_import(rnn_state(rnn__weight_ih_l0=np.zeros((4, 0))), *FOREIGN),
        DATA,
        "weight_ih_l0",
        "non-empty",
    ),
    case(
        "import-nan",
        on_import(rnn_state(rnn__weight_hh_l0=np.full((4, 4), np.nan)), *FOREIGN),
        DATA,
        "weight_hh_l0",
        "NaN",
    ),
    case(
        "import-overflow",
        on_import(
            {k: v.astype(np.float64) for k, v in rnn_state().items()}
            | {"readout.bias": np.full(4, 1e300)},
            *FOREIGN,
            "--dtype",
            "float32",
        ),
        DATA,
        "overflow",
        "float32",
    ),
    case(
        "import-task-shape",
        on_import(rnn_state(), "--task", "addition", "--len", "20"),
        USAGE,
        "6 inputs and 4 outputs",
        "addition",
    ),
    case("import-task-unknown", on_import(rnn_state(), "--task", "parity"), USAGE, "parity"),
    case(
        "import-len-0",
        on_import(rnn_state(), "--task", "temporal-order", "--len", "0"),
        USAGE,
        "len",
    ),
    case(
        "import-len-too-short",
        on_import(rnn_state(), "--task", "temporal-order", "--len", "3"),
        USAGE,
        "too short",
    ),
    case("import-dtype", on_import(rnn_state(), *FOREIGN, "--dtype", "float16"), USAGE, "float16"),
    case(
        "import-activation-sigmoid",
        on_import(rnn_state(), *FOREIGN, "--activation", "sigmoid"),
        USAGE,
        "--activation sigmoid",
        "tanh or relu",
    ),
    case(
        "import-activation-conflict",
        on_import(None, "--activation", "relu"),
        USAGE,
        "--activation relu",
        "tanh units",
    ),
    case(
        "import-loss-mismatch",
        on_import(None, "--task", "addition", "--len", "20"),
        USAGE,
        "softmax_ce",
        "mse",
    ),
    case("import-len-without-task", on_import(None, "--len", "20"), USAGE, "--task"),
    case(
        "import-dataset-synthetic",
        on_import(rnn_state(), *FOREIGN, "--dataset", "jsb"),
        USAGE,
        "--dataset",
    ),
    case(
        "import-natural-len",
        on_import(rnn_state(88, 88, 88), "--task", "music", "--dataset", "jsb", "--len", "5"),
        USAGE,
        "--len",
    ),
    case(
        "import-music-dataset",
        on_import(rnn_state(), "--task", "music", "--dataset", "bach"),
        USAGE,
        "bach",
    ),
    case(
        "import-music-shape",
        on_import(rnn_state(), "--task", "music", "--dataset", "jsb"),
        USAGE,
        "88",
    ),
    case(
        "import-ptb-symbols",
        lambda e: on_import(rnn_state(4, 5, 5), "--task", "ptb-char", "--data", str(e.ptb))(e),
        USAGE,
        "5 symbols",
        "7",
    ),
    case(
        "import-ptb-inputs-outputs",
        on_import(rnn_state(4, 5, 6), "--task", "ptb-char"),
        USAGE,
        "5 inputs and 6 outputs",
    ),
    case(
        "import-ptb-data-missing",
        on_import(rnn_state(4, 5, 5), "--task", "ptb-char", "--data", "/nonexistent/d"),
        DATA,
        "/nonexistent/d",
    ),
    case("import-version", exported_with(format_version="9"), DATA, "format version", "'9'"),
    case("import-mapping", exported_with(mapping="cubic"), DATA, "cubic"),
    case(
        "import-mapping-activation",
        exported_with(mapping="sigmoid-as-tanh"),
        DATA,
        "tanh",
        "sigmoid",
    ),
    case("import-header-config", exported_with(config="{"), DATA, "header config"),
    case(
        "import-header-config-bad",
        exported_with(config='{"task": "temporal-order", "len": 12, "hidden": -1}'),
        DATA,
        "hidden",
    ),
    case(
        "import-header-hidden",
        exported_with(config='{"task": "temporal-order", "len": 12, "hidden": 5}'),
        DATA,
        "5 tanh units",
        "8 tanh units",
    ),
    case(
        "import-into-checkpoint",
        lambda e: [*on_import(rnn_state(), *FOREIGN)(e), "-o", str(e.ck)],
        USAGE,
        "{ck}",
        "already holds a checkpoint",
    ),
    case(
        "import-out-under-a-file",
        lambda e: [*on_import(rnn_state(), *FOREIGN)(e), "-o", str(e.write("f", "x") / "ck")],
        CKPT,
        "ck",
    ),
]


ALL = [
    *(pytest.param(c, id=f"cli-{c.id}") for c in CLI_VALUES),
    *(pytest.param(c, id=f"file-{c.id}") for c in FILES),
    *(pytest.param(c, id=c.id) for c in CHECKPOINTS),
    *(pytest.param(c, id=c.id) for c in STORES),
    *(pytest.param(c, id=f"data-{c.id}") for c in DATA_FILES),
    *(pytest.param(c, id=c.id) for c in EXCHANGE),
]


@pytest.mark.parametrize("c", ALL)
def test_bad_input_is_one_line_naming_it(c: Case, env: Env, capfd: pytest.CaptureFixture[str]):
    run_case(c, env, capfd)


def test_a_data_file_over_the_size_cap_is_refused_before_it_is_read(
    env: Env, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_common, "MAX_FILE_BYTES", 100)
    run_case(case("ptb-large", ptb("train", b"a b\n" * 100), DATA, "bytes"), env, capfd)


def test_a_run_that_cannot_fit_under_a_memory_limit_is_refused_at_once(
    env: Env, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long length under a memory limit: what RNNSTAB_MEMORY_BYTES stands for here.
    monkeypatch.setenv("RNNSTAB_MEMORY_BYTES", str(50 * 2**20))
    run_case(case("len-under-limit", train("--len", "100000"), USAGE, "memory"), env, capfd)
    run_case(
        case("eval-under-limit", lambda e: ["eval", str(e.ck), "--len", "200000"], USAGE, "--len"),
        env,
        capfd,
    )


def test_stale_temporary_files_of_a_killed_write_are_removed(env: Env) -> None:
    import os
    import time

    stale = env.ck / ".state.json.0123abcd.tmp"
    stale.write_text("half a write")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = env.ck / ".params-x.safetensors.89abcdef.tmp"
    fresh.write_text("another writer, mid-write")
    assert main(["train", "--resume", str(env.ck), "--max-updates", "30", *QUICK]) == 10
    assert not stale.exists()
    assert fresh.exists()


# --------------------------------------------------------------------------------------------
# The Python API


def _problem(h: int = 4, dtype: str = "float64") -> tuple[dict[str, np.ndarray], ...]:
    params = engine.init_params(3, h, 2, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2, 3)).astype(dtype)
    y = rng.integers(0, 2, (5, 2)).astype(np.int64)
    m = np.ones((5, 2), dtype=dtype)
    return params, x, y, m


def _trainer(**kw: Any) -> engine.Trainer:
    return engine.Trainer(_problem()[0], **kw)


def _lag(**kw: Any) -> Any:
    p, x, y, m = _problem()
    return engine.loss_and_grads(p, x, y, m, **kw)


def _with(name: str, value: Any) -> Callable[[], Any]:
    def call() -> Any:
        p, x, y, m = _problem()
        args = {"params": p, "inputs": x, "targets": y, "mask": m, name: value}
        return engine.loss_and_grads(**args)

    return call


def _set_params(change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[], None]:
    def call() -> None:
        tr = _trainer()
        p = {k: v.copy() for k, v in tr.params.items()}
        change(p)
        tr.params = p

    return call


def _set_attr(name: str, value: Any) -> Callable[[], None]:
    return lambda: setattr(_trainer(optimizer="momentum"), name, value)


def _opt_state(change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[], None]:
    def call() -> None:
        tr = _trainer(optimizer="momentum")
        st = tr.optimizer_state()
        assert st is not None
        change(st)
        tr.set_optimizer_state(st)

    return call


def _put(name: str, value: np.ndarray) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda p: p.__setitem__(name, value)


API: list[tuple[str, Callable[[], Any], str]] = [
    ("init-hidden-0", lambda: engine.init_params(3, 0, 2), "n_hidden"),
    ("init-hidden-negative", lambda: engine.init_params(3, -4, 2), "n_hidden"),
    ("init-hidden-string", lambda: engine.init_params(3, "8", 2), "n_hidden"),  # type: ignore[arg-type]
    ("init-in-0", lambda: engine.init_params(0, 4, 2), "n_in"),
    ("init-hidden-huge", lambda: engine.init_params(3, 100_000_000, 2), "n_hidden 100000000"),
    ("init-out-float", lambda: engine.init_params(3, 4, 2.5), "n_out"),  # type: ignore[arg-type]
    ("init-name", lambda: engine.init_params(3, 4, 2, init="xavier"), "init"),
    ("init-scale-negative", lambda: engine.init_params(3, 4, 2, scale=-1), "scale"),
    ("init-scale-nan", lambda: engine.init_params(3, 4, 2, scale=float("nan")), "scale"),
    ("init-dtype", lambda: engine.init_params(3, 4, 2, dtype="float16"), "dtype"),
    ("init-radius", lambda: engine.init_params(3, 4, 2, spectral_radius_target=-1), "radius"),
    ("lag-alpha-negative", lambda: _lag(alpha=-1.0), "alpha"),
    ("lag-alpha-nan", lambda: _lag(alpha=float("nan")), "alpha"),
    ("lag-alpha-string", lambda: _lag(alpha="big"), "alpha"),
    ("lag-threads-negative", lambda: _lag(threads=-1), "threads"),
    ("lag-threads-0", lambda: _lag(threads=0), "threads"),
    ("lag-threads-1000", lambda: _lag(threads=1000), "threads"),
    ("lag-threads-float", lambda: _lag(threads=2.5), "threads"),
    ("lag-activation", lambda: _lag(activation="gelu"), "activation"),
    ("lag-loss", lambda: _lag(loss="hinge"), "loss"),
    ("lag-omega-form", lambda: _lag(omega_form="cubed"), "omega"),
    ("lag-time-reduction", lambda: _lag(time_reduction="max"), "reduction"),
    ("lag-inputs-shape", _with("inputs", np.zeros((5, 2, 4))), "inputs"),
    ("lag-inputs-2d", _with("inputs", np.zeros((5, 2))), "inputs"),
    ("lag-inputs-dtype", _with("inputs", np.zeros((5, 2, 3), np.float32)), "inputs"),
    ("lag-inputs-list", _with("inputs", [[[0.0] * 3] * 2] * 5), "inputs"),
    ("lag-inputs-nan", _with("inputs", np.full((5, 2, 3), np.nan)), "inputs"),
    ("lag-inputs-fortran", _with("inputs", np.asfortranarray(np.zeros((5, 2, 3)))), "inputs"),
    ("lag-targets-range", _with("targets", np.full((5, 2), 7, np.int64)), "class"),
    ("lag-targets-dtype", _with("targets", np.zeros((5, 2), np.int32)), "targets"),
    ("lag-mask-shape", _with("mask", np.ones((4, 2))), "mask"),
    ("lag-params-type", _with("params", [1, 2]), "params"),
    ("lag-params-nan", _with("params", {**_problem()[0], "b": np.full(4, np.nan)}), "b"),
    ("lag-x0-shape", _with("x0", np.zeros(7)), "x0"),
    ("trainer-lr-negative", lambda: _trainer(lr=-1.0), "learning rate"),
    ("trainer-lr-nan", lambda: _trainer(lr=float("nan")), "learning rate"),
    ("trainer-clip-0", lambda: _trainer(clip=0.0), "clipping threshold"),
    ("trainer-clip-mode", lambda: _trainer(clip_mode="soft"), "clipping mode"),
    ("trainer-clip-window-0", lambda: _trainer(clip_mode="auto", clip_window=0), "clip_window"),
    ("trainer-clip-window-neg", lambda: _trainer(clip_mode="auto", clip_window=-3), "clip_window"),
    ("trainer-clip-factor", lambda: _trainer(clip_mode="auto", clip_factor=-1.0), "clip_factor"),
    (
        "trainer-clip-pct",
        lambda: _trainer(clip_mode="percentile", clip_percentile=200.0),
        "clip_percentile",
    ),
    ("trainer-clip-z", lambda: _trainer(clip_mode="zscore", clip_z=float("nan")), "clip_z"),
    ("trainer-clip-beta", lambda: _trainer(clip_mode="skip", clip_beta=0.0), "clip_beta"),
    ("trainer-clip-warmup", lambda: _trainer(clip_mode="zscore", clip_warmup=0), "clip_warmup"),
    ("trainer-clip-lambda", lambda: _trainer(clip_mode="agc", clip_lambda=0.0), "clip_lambda"),
    (
        "trainer-clip-state-rule",
        lambda: _trainer(clip_mode="auto").set_clip_state(
            _trainer(clip_mode="zscore").clip_state()
        ),
        "clipping state",
    ),
    (
        "trainer-clip-state-nan",
        lambda: _trainer(clip_mode="percentile").set_clip_state(
            np.array([4.0, 1.0, 0.0, 0.0, np.nan])
        ),
        "clipping state",
    ),
    ("trainer-momentum", lambda: _trainer(momentum=1.5), "momentum"),
    ("trainer-rho", lambda: _trainer(rho=1.0), "rho"),
    ("trainer-eps", lambda: _trainer(eps=0.0), "eps"),
    ("trainer-nonfinite", lambda: _trainer(nonfinite="explode"), "non-finite policy"),
    ("trainer-optimizer", lambda: _trainer(optimizer="adam"), "optimizer"),
    ("trainer-device", lambda: _trainer(device="tpu"), "device"),
    ("trainer-threads-negative", lambda: _trainer(threads=-1), "threads"),
    ("trainer-threads-1000", lambda: _trainer(threads=1000), "threads"),
    ("trainer-alpha-negative", lambda: _trainer(alpha=-1.0), "alpha"),
    ("trainer-alpha-inf", lambda: _trainer(alpha=float("inf")), "alpha"),
    ("set-params-w-rec", _set_params(_put("W_rec", np.zeros((6, 6)))), "W_rec"),
    ("set-params-w-out", _set_params(_put("W_out", np.zeros((3, 4)))), "W_out"),
    ("set-params-nan", _set_params(_put("W_rec", np.full((4, 4), np.nan))), "W_rec"),
    ("set-params-dtype", _set_params(_put("W_in", np.zeros((4, 3), np.float32))), "W_in"),
    ("set-params-missing", _set_params(lambda p: p.pop("b")), "b"),
    ("set-alpha-negative", _set_attr("alpha", -1.0), "alpha"),
    ("set-lr-nan", _set_attr("lr", float("nan")), "learning rate"),
    ("set-opt-state-shape", _opt_state(_put("W_rec", np.zeros((2, 2)))), "W_rec"),
    ("set-opt-state-inf", _opt_state(_put("b", np.full(4, np.inf))), "b"),
    (
        "forward-threads",
        lambda: engine.forward(_problem()[0], _problem()[1], threads=-2),
        "threads",
    ),
    (
        "forward-activation",
        lambda: engine.forward(_problem()[0], _problem()[1], activation="x"),
        "activation",
    ),
    ("clip-norm-0", lambda: engine.clip_norm(_problem()[0], 0.0), "clipping threshold"),
    ("clip-norm-nan", lambda: engine.clip_norm(_problem()[0], float("nan")), "threshold"),
    ("clip-value-negative", lambda: engine.clip_value(_problem()[0], -1.0), "threshold"),
    (
        "step-inputs-shape",
        lambda: _trainer().step(np.zeros((5, 2, 9)), _problem()[2], _problem()[3]),
        "inputs",
    ),
    (
        "steps-not-stacked",
        lambda: _trainer().steps(_problem()[1], _problem()[2], _problem()[3]),
        "inputs",
    ),
]


@pytest.mark.parametrize(("call", "names"), [pytest.param(c, n, id=i) for i, c, n in API])
def test_bad_api_argument_is_a_value_or_type_error_naming_it(
    call: Callable[[], Any], names: str
) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert names in message, message
    assert "\n" not in message, message


def test_more_threads_than_cores_is_said_at_once(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    threads = str(2 * (os.cpu_count() or 1))
    argv = train(
        "--len",
        "12",
        "--hidden",
        "4",
        "--max-updates",
        "2",
        "--eval-every",
        "2",
        "--threads",
        threads,
        *QUICK,
    )
    assert main(argv) == 10
    first = capfd.readouterr().err.splitlines()[0]
    assert first.startswith(f"note: --threads {threads} is more than the")


def test_an_api_call_that_cannot_fit_is_refused_before_the_engine_allocates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "CHECK_MEMORY_ABOVE", 0)
    monkeypatch.setenv("RNNSTAB_MEMORY_BYTES", "1000")
    p, x, y, m = _problem()
    calls = [
        lambda: engine.loss_and_grads(p, x, y, m),
        lambda: engine.forward(p, x),
        lambda: engine.Trainer(p).step(x, y, m),
        lambda: engine.Trainer(p).steps(x[None], y[None], m[None]),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"inputs of shape .* needs about"):
            call()


def test_usage_error_is_a_value_error() -> None:
    from rnnstab_cli.errors import UsageError

    assert issubclass(UsageError, ValueError)
    with pytest.raises(ValueError, match="threads"):
        engine.check_threads(-1)


def test_battery_size() -> None:
    """The issue asked for at least 150 bad inputs; this keeps the count honest."""
    assert len(ALL) + len(API) + 3 >= 150
