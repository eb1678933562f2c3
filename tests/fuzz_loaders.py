"""A fuzz target for everything rnnstab reads from disk: checkpoints (state.json, tensor files,
the metrics log, synthetic and natural), result stores, and the music and PTB data files.

Each input is one damaged file in an otherwise valid fixture. The property: loading it either
succeeds or raises one of rnnstab's own errors (:class:`~rnnstab_cli.errors.RnnstabError`)
with a one-line message; any other exception, a hang or a crash is a finding.

Run it with atheris (coverage-guided; ``pip install atheris``) for a bounded time::

    .venv/bin/python tests/fuzz_loaders.py -max_total_time=600 -rss_limit_mb=4096

Without atheris, ``python tests/fuzz_loaders.py --random N`` feeds N pseudo-random inputs,
and tests/test_fuzz_loaders.py does that for a few hundred inputs in the suite.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import pickle
import random
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from rnnstab_cli.cli import main
from rnnstab_cli.datasets.music import load_music
from rnnstab_cli.datasets.ptb import load_ptb_char
from rnnstab_cli.errors import RnnstabError
from rnnstab_cli.sweep.store import ResultStore
from rnnstab_cli.training.checkpoint import _sha256, load_checkpoint, read_metrics
from rnnstab_cli.training.natural.checkpoint import load_natural_checkpoint


class Fixtures:
    """Valid files of every kind, made once; each input damages a fresh copy of one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ck = root / "ck"
        quiet = ["--set", "eval_sequences=10", "--set", "screen_sequences=10", "-q"]
        with _silenced():
            main(
                [
                    "train",
                    "--task",
                    "temporal-order",
                    "--len",
                    "12",
                    "--max-updates",
                    "4",
                    "--eval-every",
                    "2",
                    "--hidden",
                    "4",
                    "--out",
                    str(self.ck),
                    *quiet,
                ]
            )
            self.ptb = root / "ptb"
            (self.ptb / "ptb_char").mkdir(parents=True)
            for split in ("train", "valid", "test"):
                (self.ptb / "ptb_char" / f"ptb.char.{split}.txt").write_text("a b c\nb a\n" * 100)
            self.nck = root / "nck"
            main(
                [
                    "train",
                    "--task",
                    "ptb-char",
                    "--data",
                    str(self.ptb),
                    "--max-updates",
                    "2",
                    "--hidden",
                    "4",
                    "--len",
                    "5",
                    "--out",
                    str(self.nck),
                    "-q",
                ]
            )
            spec = root / "spec.toml"
            spec.write_text(
                'preset = "temporal-order"\n[base]\nmax_updates = 2\neval_every = 2\nlen = 10\n'
                "hidden = 4\neval_sequences = 10\nscreen_sequences = 10\n[axes]\nseed = [0]\n"
            )
            self.store = root / "store.db"
            main(["sweep", str(spec), "--store", str(self.store), "--jobs", "1", "-q"])
        for path in (self.ck / "state.json", self.nck / "state.json", self.store):
            if not path.exists():
                raise RuntimeError(f"fixture {path} was not made")
        self.pickle = pickle.dumps(
            {s: [[(60, 64), (62,), ()], [(21,), (108,)]] for s in ("train", "valid", "test")},
            protocol=2,
        )
        roll = np.zeros((1, 2), dtype=object)
        roll[0, 0] = np.eye(4, 88, dtype=np.uint8)
        roll[0, 1] = np.ones((3, 88), dtype=np.uint8)
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"traindata": roll, "validdata": roll, "testdata": roll})
        self.mat = buf.getvalue()


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield


# --------------------------------------------------------------------------------------------
# Structured damage: a JSON value somewhere in a document replaced by an odd one.

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**53 + 1,
    10**30,
    -(10**30),
    0.5,
    -0.0,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "x",
    "0",
    "nan",
    [],
    [1],
    {},
    {"a": 1},
    "\x00",
    "é",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            out += _paths(v, (*prefix, i))
    return out


def _mutate_json(doc: Any, pick: Callable[[int], int]) -> Any:
    doc = json.loads(json.dumps(doc))
    for _ in range(1 + pick(3)):
        paths = _paths(doc)
        path = paths[pick(len(paths))]
        value = copy.deepcopy(ODD_VALUES[pick(len(ODD_VALUES))])  # a shared list could loop
        if not path:
            doc = value
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and pick(5) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return doc


# --------------------------------------------------------------------------------------------
# The targets: each gets raw fuzz bytes and a chooser drawn from them.


class Input:
    """The fuzz bytes as a source of choices (first bytes) and a payload (the rest)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def pick(self, n: int) -> int:
        if n <= 1:
            return 0
        b = self.data[self.pos : self.pos + 2]
        self.pos += 2
        return int.from_bytes(b.ljust(2, b"\x00"), "little") % n

    def rest(self) -> bytes:
        return self.data[self.pos :]


def _copy(src: Path, work: Path) -> Path:
    dst = work / src.name
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def state_json_structured(fx: Fixtures, inp: Input, work: Path) -> None:
    natural = inp.pick(2) == 1
    d = _copy(fx.nck if natural else fx.ck, work)
    state = json.loads((d / "state.json").read_text())
    (d / "state.json").write_text(json.dumps(_mutate_json(state, inp.pick)))
    _load(d, natural)


def state_json_raw(fx: Fixtures, inp: Input, work: Path) -> None:
    natural = inp.pick(2) == 1
    d = _copy(fx.nck if natural else fx.ck, work)
    (d / "state.json").write_bytes(inp.rest())
    _load(d, natural)


def tensor_file(fx: Fixtures, inp: Input, work: Path) -> None:
    natural = inp.pick(2) == 1
    d = _copy(fx.nck if natural else fx.ck, work)
    state = json.loads((d / "state.json").read_text())
    stems = sorted(state["files"])
    stem = stems[inp.pick(len(stems))]
    name = state["files"][stem]["name"]
    original = (d / name).read_bytes()
    payload = inp.rest()
    if inp.pick(2) == 0:  # splice into the valid file, so the header often still parses
        at = inp.pick(len(original) + 1)
        payload = original[:at] + payload + original[at + len(payload) :]
    (d / name).write_bytes(payload)
    state["files"][stem]["sha256"] = _sha256(payload)  # damage the checksum cannot see
    (d / "state.json").write_text(json.dumps(state))
    _load(d, natural)


def metrics_log(fx: Fixtures, inp: Input, work: Path) -> None:
    d = _copy(fx.ck, work)
    (d / "metrics.jsonl").write_bytes(inp.rest())
    read_metrics(d, 1 + inp.pick(4))


def _load(d: Path, natural: bool) -> None:
    if natural:
        load_natural_checkpoint(d)
    else:
        load_checkpoint(d)


def music_pickle(fx: Fixtures, inp: Input, work: Path) -> None:
    p = work / "JSB_Chorales.pickle"
    payload = inp.rest()
    if inp.pick(2) == 0:
        at = inp.pick(len(fx.pickle) + 1)
        payload = fx.pickle[:at] + payload + fx.pickle[at + len(payload) :]
    p.write_bytes(payload)
    load_music(p)


def music_mat(fx: Fixtures, inp: Input, work: Path) -> None:
    p = work / "Nottingham.mat"
    payload = inp.rest()
    if inp.pick(2) == 0:
        at = inp.pick(len(fx.mat) + 1)
        payload = fx.mat[:at] + payload + fx.mat[at + len(payload) :]
    p.write_bytes(payload)
    load_music(p)


def ptb_text(fx: Fixtures, inp: Input, work: Path) -> None:
    d = _copy(fx.ptb, work) / "ptb_char"
    split = ("train", "valid", "test")[inp.pick(3)]
    (d / f"ptb.char.{split}.txt").write_bytes(inp.rest())
    load_ptb_char(d)


def result_store(fx: Fixtures, inp: Input, work: Path) -> None:
    p = _copy(fx.store, work)
    if inp.pick(2) == 0:  # a damaged file
        data = bytearray(p.read_bytes())
        payload = inp.rest()
        at = inp.pick(len(data) + 1)
        data[at : at + len(payload)] = payload
        p.write_bytes(bytes(data))
    else:  # a row or a sweep whose fields were edited
        table, column = [
            ("runs", "config"),
            ("runs", "updates"),
            ("runs", "outcome"),
            ("runs", "test_error"),
            ("runs", "wall_time"),
            ("runs", "finished"),
            ("sweeps", "spec"),
            ("sweeps", "n_runs"),
            ("sweep_runs", "run_id"),
            ("runs", "test_sequences"),
            ("runs", "host"),
        ][inp.pick(11)]
        value = ODD_VALUES[inp.pick(len(ODD_VALUES))]
        if isinstance(value, list | dict):
            value = json.dumps(value)
        conn = sqlite3.connect(p)
        conn.execute("PRAGMA ignore_check_constraints = ON")
        # NOT NULL may refuse a value, SQLite cannot hold 10**30: the file then stays valid.
        with contextlib.suppress(sqlite3.Error, OverflowError):
            conn.execute(f"UPDATE {table} SET {column} = ?", (value,))
        conn.commit()
        conn.close()
    with ResultStore.open_readonly(p) as st:
        st.sweeps()
        st.runs()
        st.stored_outcomes()
        st.count_runs()


TARGETS: list[Callable[[Fixtures, Input, Path], None]] = [
    state_json_structured,
    state_json_raw,
    tensor_file,
    metrics_log,
    music_pickle,
    music_mat,
    ptb_text,
    result_store,
]


class Finding(AssertionError):
    """A loader let through something other than a one-line RnnstabError."""


_FIXTURES: Fixtures | None = None


def fixtures() -> Fixtures:
    global _FIXTURES
    if _FIXTURES is None:
        _FIXTURES = Fixtures(Path(tempfile.mkdtemp(prefix="rnnstab-fuzz-")))
    return _FIXTURES


def one_input(data: bytes) -> None:
    """The fuzz target: one damaged file, loaded; only RnnstabError may escape, in one line."""
    fx = fixtures()
    inp = Input(data)
    target = TARGETS[inp.pick(len(TARGETS))]
    with tempfile.TemporaryDirectory(dir=fx.root) as tmp:
        try:
            target(fx, inp, Path(tmp))
        except RnnstabError as e:
            text = str(e)
            if "\n" in text or not text.strip():
                raise Finding(f"{target.__name__}: message not one line: {text!r}") from e


def random_inputs(n: int, seed: int = 0) -> Iterator[bytes]:
    """Pseudo-random inputs for a run without atheris (and for the test suite)."""
    rng = random.Random(seed)
    for _ in range(n):
        head = bytes(rng.randrange(256) for _ in range(16))
        size = rng.choice([0, 1, 4, 16, 64, 512])
        yield head + bytes(rng.randrange(256) for _ in range(size))


def _main(argv: list[str]) -> None:
    if len(argv) > 2 and argv[1] == "--random":
        for i, data in enumerate(random_inputs(int(argv[2]))):
            one_input(data)
            if (i + 1) % 100 == 0:
                print(f"{i + 1} inputs, no finding", file=sys.stderr)
        return
    import atheris  # not a dependency: pip install atheris

    fixtures()  # made before the fuzzing starts, so they do not count as coverage
    atheris.instrument_all()  # the loaders were imported above: instrument them in place
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    _main(sys.argv)
