"""``rnnstab export`` and ``rnnstab import``: a model as the state dict of ``torch.nn.RNN`` +
``torch.nn.Linear`` and back (:mod:`rnnstab_cli.torch_state`, :mod:`rnnstab_cli.training.transfer`).

The exported tensors are checked, always, against an independent numpy forward written in
torch's documented convention (``h_t = tanh(W_ih·u_t + b_ih + W_hh·h_{t−1} + b_hh)`` from
``h_0 = 0``, then ``y_t = W·h_t + b``), and against torch itself when it is installed (it is
optional: the exporter never needs it). Round trips through a file give back the checkpoint's
outputs; bad files and options are in ``tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from safetensors.numpy import save as st_save

from rnnstab_cli import engine
from rnnstab_cli.cli import main
from rnnstab_cli.datasets import DATA_ENV, load_dataset
from rnnstab_cli.errors import RnnstabError
from rnnstab_cli.taskgen import make_task
from rnnstab_cli.torch_state import READOUT_PREFIX, RNN_PREFIX, from_torch, to_torch
from rnnstab_cli.training.checkpoint import load_checkpoint
from rnnstab_cli.training.natural import load_natural_checkpoint
from rnnstab_cli.training.transfer import export_checkpoint, import_model

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is optional and not installed")

KEYS = {
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "readout.weight",
    "readout.bias",
}


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)


# --------------------------------------------------------------------------------------------
# Two independent forwards in float64: torch's convention, and rnnstab's eq. (2)


def _act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    raise AssertionError(name)


def torch_convention_forward(
    state: dict[str, np.ndarray],
    u: np.ndarray,
    nonlinearity: str,
    rnn: str = RNN_PREFIX,
    readout: str = READOUT_PREFIX,
) -> np.ndarray:
    """torch.nn.RNN (one layer, h0 = 0, time-major) then Linear, as torch documents them;
    absent biases are zeros, as with ``bias=False``."""
    f = {k: v.astype(np.float64) for k, v in state.items()}
    w_ih, w_hh = f[f"{rnn}weight_ih_l0"], f[f"{rnn}weight_hh_l0"]
    h_size = w_hh.shape[0]
    b_ih = f.get(f"{rnn}bias_ih_l0", np.zeros(h_size))
    b_hh = f.get(f"{rnn}bias_hh_l0", np.zeros(h_size))
    w = f[f"{readout}weight"]
    b = f.get(f"{readout}bias", np.zeros(w.shape[0]))
    h = np.zeros((u.shape[1], h_size))
    ys = []
    for u_t in u.astype(np.float64):
        h = _act(nonlinearity, u_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        ys.append(h @ w.T + b)
    return np.stack(ys)


def eq2_states(p: dict[str, np.ndarray], u: np.ndarray, activation: str) -> np.ndarray:
    """σ(x_t) for t = 0..T of eq. (2) from x_0 = 0, ``(T+1, B, H)``."""
    f = {k: v.astype(np.float64) for k, v in p.items()}
    h = _act(activation, np.zeros((u.shape[1], f["W_rec"].shape[0])))
    hs = [h]
    for u_t in u.astype(np.float64):
        h = _act(activation, h @ f["W_rec"].T + u_t @ f["W_in"].T + f["b"])
        hs.append(h)
    return np.stack(hs)


#: Unit roundoff.
UNIT = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


def error_bound(
    p: dict[str, np.ndarray],
    u: np.ndarray,
    activation: str,
    dtype: np.dtype,
    mapped: dict[str, np.ndarray] | None = None,
) -> float:
    """A bound on |y − y_exact| for any float forward of eq. (2) in ``dtype`` (rnnstab's,
    torch's), so that two of them differ by at most twice this.

    Why it holds: a pre-activation is a sum of n = I + H + 1 products (inputs, recurrent
    terms, bias); summed in any order, in pieces too (+2 for joining them), its error is at
    most γ_{n+2}·Σ|terms| with γ_k = k·u/(1 − k·u). The activation adds its own error: for
    f32, rnnstab's vectorised tanh and sigmoid are within 5e-7 absolutely (kernels.rs,
    tested there) and torch's within a few ulp; f64 uses libm (≤ 1 ulp); relu is exact. tanh
    and relu are 1-Lipschitz and the sigmoid ¼-Lipschitz, so a state error e_{t−1} becomes at
    most L·‖W_rec‖_∞·e_{t−1} in the next state. The read-out adds ‖W_out‖_∞·e_t and its own
    γ_{H+3}·Σ|W_out h| + |b_out|. ``mapped`` (the sigmoid-as-tanh tensors) adds the rounding
    of its two biases, the row sums rounded once: u·|b_ih| in x/2, u·|readout.bias| in y.
    The magnitudes are taken from the exact (float64) states; the factor 2 at the end covers
    the second computation and the difference between computed and exact magnitudes, which
    is of second order.
    """
    unit = UNIT[np.dtype(dtype)]
    f = {k: v.astype(np.float64) for k, v in p.items()}
    h_size, n_in = f["W_in"].shape

    def gamma(k: int) -> float:
        return k * unit / (1 - k * unit)

    lip = 0.25 if activation == "sigmoid" else 1.0
    act_err = 0.0 if activation == "relu" else (5e-7 if unit > 1e-10 else 4 * unit)
    per_step_bias = 0.0
    out_bias = 0.0
    if mapped is not None:
        per_step_bias = 2 * unit * np.abs(mapped["rnn.bias_ih_l0"].astype(np.float64)).max()
        out_bias = unit * np.abs(mapped["readout.bias"].astype(np.float64)).max()
    hs = eq2_states(p, u, activation)
    w_rec_inf = np.abs(f["W_rec"]).sum(axis=1).max()
    w_out_inf = np.abs(f["W_out"]).sum(axis=1).max()
    e, worst = 0.0, 0.0
    for t in range(u.shape[0]):
        terms = (
            np.abs(u[t].astype(np.float64)) @ np.abs(f["W_in"]).T
            + np.abs(hs[t]) @ np.abs(f["W_rec"]).T
            + np.abs(f["b"])
        ).max()
        e = lip * (w_rec_inf * e + gamma(n_in + h_size + 3) * terms + per_step_bias) + act_err
        out_terms = (np.abs(hs[t + 1]) @ np.abs(f["W_out"]).T + np.abs(f["b_out"])).max()
        worst = max(worst, w_out_inf * e + gamma(h_size + 3) * out_terms + out_bias)
    return 2 * worst


# --------------------------------------------------------------------------------------------
# The mapping, on random models


@dataclass(frozen=True)
class Case:
    params: dict[str, np.ndarray]
    inputs: np.ndarray
    activation: str
    dtype: np.dtype


@st.composite
def models(draw: st.DrawFn, activations: tuple[str, ...] = ("tanh", "relu", "sigmoid")) -> Case:
    h = draw(st.integers(1, 12))
    i = draw(st.integers(1, 6))
    o = draw(st.integers(1, 5))
    t = draw(st.integers(1, 25))
    b = draw(st.integers(1, 4))
    activation = draw(st.sampled_from(activations))
    dtype = np.dtype(draw(st.sampled_from(["float32", "float64"])))
    # ‖W_rec‖_∞ up to 1.2: long enough memories to matter, bounded growth of rounding errors.
    radius = draw(st.floats(0.05, 1.2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w_rec = rng.normal(0, 1, (h, h))
    w_rec *= radius / np.abs(w_rec).sum(axis=1).max()
    params = {
        "W_rec": w_rec,
        "W_in": rng.normal(0, 0.7, (h, i)),
        "b": rng.normal(0, 0.5, h),
        "W_out": rng.normal(0, 1.0, (o, h)),
        "b_out": rng.normal(0, 1.0, o),
    }
    params = {k: v.astype(dtype) for k, v in params.items()}
    inputs = rng.uniform(-1, 1, (t, b, i)).astype(dtype)
    return Case(params, inputs, activation, dtype)


@given(models())
def test_the_exported_tensors_compute_rnnstabs_outputs_in_torchs_convention(c: Case) -> None:
    state, nonlinearity, mapping = to_torch(c.params, c.activation, sigmoid_as_tanh=True)
    assert set(state) == KEYS
    assert all(a.dtype == c.dtype for a in state.values())
    assert nonlinearity == ("relu" if c.activation == "relu" else "tanh")
    assert mapping == ("sigmoid-as-tanh" if c.activation == "sigmoid" else "direct")
    if mapping == "direct":  # the tensors themselves, not just the function
        np.testing.assert_array_equal(state["rnn.weight_ih_l0"], c.params["W_in"])
        np.testing.assert_array_equal(state["rnn.weight_hh_l0"], c.params["W_rec"])
        np.testing.assert_array_equal(state["rnn.bias_ih_l0"], c.params["b"])
        assert not state["rnn.bias_hh_l0"].any()
    y = engine.forward(c.params, c.inputs, c.activation, threads=1)
    y_ref = torch_convention_forward(state, c.inputs, nonlinearity)
    tol = error_bound(
        c.params, c.inputs, c.activation, c.dtype, state if mapping != "direct" else None
    )
    assert np.abs(y - y_ref).max() <= tol, (np.abs(y - y_ref).max(), tol)


@given(models())
def test_mapping_there_and_back_gives_the_model_back(c: Case) -> None:
    state, _, mapping = to_torch(c.params, c.activation, sigmoid_as_tanh=True)
    back = {k: v.astype(c.dtype) for k, v in from_torch(state, mapping, "test").items()}
    if mapping == "direct":
        for k, v in c.params.items():  # b + 0 and the casts are exact
            np.testing.assert_array_equal(back[k], v, err_msg=k)
        return
    y = engine.forward(c.params, c.inputs, "sigmoid", threads=1)
    y_back = engine.forward(back, c.inputs, "sigmoid", threads=1)
    # Two roundings of the biases (there and back), each within error_bound's allowance.
    tol = 2 * error_bound(c.params, c.inputs, "sigmoid", c.dtype, state)
    assert np.abs(y - y_back).max() <= tol


@given(models(("tanh", "relu")), st.booleans(), st.booleans())
def test_torchs_two_biases_fold_into_one(c: Case, rnn_bias: bool, readout_bias: bool) -> None:
    """A foreign state dict: b_hh non-zero, or no biases at all (bias=False modules)."""
    rng = np.random.default_rng(c.inputs.size)
    h, o = c.params["W_rec"].shape[0], c.params["W_out"].shape[0]
    state = {
        "rnn.weight_ih_l0": c.params["W_in"],
        "rnn.weight_hh_l0": c.params["W_rec"],
        "readout.weight": c.params["W_out"],
    }
    if rnn_bias:
        state["rnn.bias_ih_l0"] = rng.normal(0, 0.5, h).astype(c.dtype)
        state["rnn.bias_hh_l0"] = rng.normal(0, 0.5, h).astype(c.dtype)
    if readout_bias:
        state["readout.bias"] = rng.normal(0, 1, o).astype(c.dtype)
    params = {k: v.astype(c.dtype) for k, v in from_torch(state, "direct", "test").items()}
    y = engine.forward(params, c.inputs, c.activation, threads=1)
    y_ref = torch_convention_forward(state, c.inputs, c.activation)
    # The fold b = b_ih + b_hh rounds once: one more term in each pre-activation's sum.
    assert np.abs(y - y_ref).max() <= error_bound(params, c.inputs, c.activation, c.dtype)


def test_models_torch_cannot_express_are_refused() -> None:
    p = engine.init_params(3, 4, 2, seed=0)
    with pytest.raises(ValueError, match=r"sigmoid units.*--sigmoid-as-tanh"):
        to_torch(p, "sigmoid")
    with pytest.raises(ValueError, match="linear units"):
        to_torch(p, "linear")
    x0 = engine.init_params(3, 4, 2, seed=0, learn_x0=True)
    to_torch(x0, "tanh")  # x0 = 0: h_0 = tanh(0) = 0, torch's start
    x0["x0"][1] = 0.5
    with pytest.raises(ValueError, match="x0"):
        to_torch(x0, "tanh")


def _torch_module(meta: dict[str, str], dtype: str):  # type: ignore[no-untyped-def]
    import torch

    i, h, o = (int(meta[k]) for k in ("input_size", "hidden_size", "output_size"))
    model = torch.nn.ModuleDict(
        {
            "rnn": torch.nn.RNN(i, h, nonlinearity=meta["nonlinearity"], batch_first=False),
            "readout": torch.nn.Linear(h, o),
        }
    )
    return model.to(getattr(torch, dtype))


def _torch_outputs(model, u: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        h, _ = model["rnn"](torch.from_numpy(np.ascontiguousarray(u)))
        return model["readout"](h).numpy()


@needs_torch
@settings(max_examples=40)
@given(models())
def test_torch_loads_the_state_dict_and_computes_the_same_outputs(c: Case) -> None:
    from safetensors.torch import load as torch_load

    state, nonlinearity, mapping = to_torch(c.params, c.activation, sigmoid_as_tanh=True)
    h, i = c.params["W_in"].shape
    meta = {
        "input_size": str(i),
        "hidden_size": str(h),
        "output_size": str(c.params["W_out"].shape[0]),
        "nonlinearity": nonlinearity,
    }
    model = _torch_module(meta, str(c.dtype))
    model.load_state_dict(torch_load(st_save(state)), strict=True)
    y_torch = _torch_outputs(model, c.inputs)
    y = engine.forward(c.params, c.inputs, c.activation, threads=1)
    tol = error_bound(
        c.params, c.inputs, c.activation, c.dtype, state if mapping != "direct" else None
    )
    assert np.abs(y - y_torch).max() <= tol


# --------------------------------------------------------------------------------------------
# The commands, on trained checkpoints


def _train(out: Path, *args: str) -> None:
    quick = ["--set", "eval_sequences=20", "--set", "screen_sequences=10", "-q"]
    code = main(
        ["train", *args, "--max-updates", "30", "--eval-every", "15", *quick, "--out", str(out)]
    )
    assert code in (0, 10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    _train(root / "to", "--task", "temporal-order", "--len", "12", "--hidden", "8")
    _train(
        root / "add",
        *("--task", "addition", "--len", "10", "--hidden", "6", "--activation", "relu"),
        *("--dtype", "float64"),
    )
    ptb = root / "data" / "ptb_char"
    ptb.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (ptb / f"ptb.char.{split}.txt").write_text("a b c d e f\nb c a d\n" * 60)
    for name, act in (("ptb-tanh", "tanh"), ("ptb-sigmoid", "sigmoid")):
        small = ["--hidden", "8", "--len", "10", "--epochs", "2", "-q"]
        argv = ["train", "--task", "ptb-char", "--data", str(root / "data"), *small]
        assert main([*argv, "--activation", act, "--out", str(root / name)]) == 0
    return {
        "to": root / "to",
        "add": root / "add",
        "ptb-tanh": root / "ptb-tanh",
        "ptb-sigmoid": root / "ptb-sigmoid",
        "data": root / "data",
    }


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "np") as f:
        return dict(f.metadata())


def _eval_rows(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    capsys.readouterr()
    assert main(["eval", *argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for r in rows:
        del r["checkpoint"], r["updates"]
    return rows


@pytest.mark.parametrize("run", ["to", "add"])
def test_export_writes_the_checkpoints_model_for_torch(
    run: str, runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "model.safetensors"
    assert main(["export", str(runs[run]), "--format", "torch", "-o", str(out)]) == 0
    ck = load_checkpoint(runs[run])
    cfg, task = ck.config, make_task(ck.config.task)
    state = load_file(str(out))
    assert set(state) == KEYS
    meta = _metadata(out)
    assert meta["format"] == "rnnstab-torch-rnn" and meta["module"] == "torch.nn.RNN"
    assert (meta["input_size"], meta["hidden_size"], meta["output_size"]) == (
        str(task.n_in),
        str(cfg.hidden),
        str(task.n_out),
    )
    assert meta["nonlinearity"] == meta["activation"] == cfg.activation
    assert meta["task"] == cfg.task and meta["loss"] == task.loss
    assert meta["output"] == {"softmax_ce": "softmax", "mse": "identity"}[task.loss]
    assert meta["dtype"] == cfg.dtype and meta["rnnstab_version"]
    assert json.loads(meta["config"]) == json.loads(json.dumps(cfg.to_dict()))
    batch = task.sample(8, cfg.length.hi, np.random.default_rng(1))
    u = batch.inputs.astype(cfg.dtype)
    y = engine.forward(ck.params, u, cfg.activation, threads=1)
    y_ref = torch_convention_forward(state, u, meta["nonlinearity"])
    assert np.abs(y - y_ref).max() <= error_bound(ck.params, u, cfg.activation, u.dtype)
    if HAS_TORCH:
        from safetensors.torch import load_file as torch_load_file

        model = _torch_module(meta, cfg.dtype)
        model.load_state_dict(torch_load_file(str(out)), strict=True)
        y_torch = _torch_outputs(model, u)
        assert np.abs(y - y_torch).max() <= error_bound(ck.params, u, cfg.activation, u.dtype)


@pytest.mark.parametrize("run", ["to", "add"])
def test_export_then_import_gives_the_same_model(
    run: str, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, back = tmp_path / "m.safetensors", tmp_path / "back"
    assert main(["export", str(runs[run]), "-o", str(out)]) == 0
    assert main(["import", str(out), "-o", str(back)]) == 0
    a, b = load_checkpoint(runs[run]), load_checkpoint(back)
    assert b.config == a.config
    assert set(b.params) == set(a.params)
    for k in a.params:  # the direct mapping is exact: the same bits
        np.testing.assert_array_equal(b.params[k], a.params[k], err_msg=k)
    length = str(a.config.length.hi)
    assert _eval_rows(capsys, str(back), "--n", "300", "--len", length) == _eval_rows(
        capsys, str(runs[run]), "--n", "300", "--len", length
    )


def test_a_foreign_state_dict_imports_with_its_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A torch model saved under other module names, in float64, with b_hh ≠ 0 and a read-out
    without bias: rnnstab scores it as torch computes it."""
    rng = np.random.default_rng(7)
    h, i, o = 5, 6, 4  # temporal order: 6 inputs, 4 classes
    state = {
        "encoder.weight_ih_l0": rng.normal(0, 0.5, (h, i)),
        "encoder.weight_hh_l0": rng.normal(0, 0.3, (h, h)),
        "encoder.bias_ih_l0": rng.normal(0, 0.5, h),
        "encoder.bias_hh_l0": rng.normal(0, 0.5, h),
        "head.weight": rng.normal(0, 1, (o, h)),
    }
    path = tmp_path / "foreign.safetensors"
    save_file(state, str(path))
    out = tmp_path / "ck"
    argv = ["import", str(path), "-o", str(out), "--task", "temporal-order", "--len", "20"]
    prefixes = ["--rnn-prefix", "encoder.", "--readout-prefix", "head."]
    assert main([*argv, *prefixes]) == 0
    ck = load_checkpoint(out)
    assert ck.params["W_in"].dtype == np.float64 and ck.config.dtype == "float64"
    assert (ck.config.hidden, ck.config.activation, ck.config.length.hi) == (h, "tanh", 20)
    np.testing.assert_array_equal(
        ck.params["b"], state["encoder.bias_ih_l0"] + state["encoder.bias_hh_l0"]
    )
    assert not ck.params["b_out"].any()
    u = make_task("temporal-order").sample(4, 20, np.random.default_rng(0)).inputs.astype(float)
    y = engine.forward(ck.params, u, "tanh", threads=1)
    y_ref = torch_convention_forward(state, u, "tanh", rnn="encoder.", readout="head.")
    assert np.abs(y - y_ref).max() <= error_bound(ck.params, u, "tanh", np.dtype(np.float64))
    assert len(_eval_rows(capsys, str(out), "--n", "50")) == 1
    # A bare torch.nn.RNN's keys have no prefix.
    bare = tmp_path / "bare.safetensors"
    save_file({k.replace("encoder.", ""): v for k, v in state.items()}, str(bare))
    argv_bare = ["import", str(bare), "-o", str(tmp_path / "bare"), *argv[4:]]
    assert main([*argv_bare, "--rnn-prefix", "", "--readout-prefix", "head."]) == 0
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "bare").params["b"], ck.params["b"])
    # As float32 on request, and as a relu RNN when told so.
    out32 = tmp_path / "ck32"
    assert (
        main([*argv, "-o", str(out32), "--dtype", "float32", "--activation", "relu", *prefixes])
        == 0
    )
    ck32 = load_checkpoint(out32)
    assert ck32.config.dtype == "float32" and ck32.config.activation == "relu"


@needs_torch
def test_a_state_dict_saved_by_torch_imports_and_computes_what_torch_computes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from safetensors.torch import save_file as torch_save_file

    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        {"rnn": torch.nn.RNN(6, 5, nonlinearity="relu"), "readout": torch.nn.Linear(5, 4)}
    )
    path = tmp_path / "torch.safetensors"
    torch_save_file(model.state_dict(), str(path))  # metadata {"format": "pt"}: not rnnstab's
    out = tmp_path / "ck"
    argv = ["import", str(path), "-o", str(out), "--task", "temporal-order", "--len", "20"]
    assert main([*argv, "--activation", "relu"]) == 0
    ck = load_checkpoint(out)
    u = make_task("temporal-order").sample(6, 20, np.random.default_rng(0)).inputs
    y = engine.forward(ck.params, u, "relu", threads=1)
    y_torch = _torch_outputs(model, u)
    assert np.abs(y - y_torch).max() <= error_bound(ck.params, u, "relu", u.dtype)
    # What does not map: said in one line, exit 3.
    refused = {
        "LSTM": torch.nn.LSTM(6, 5),
        "GRU": torch.nn.GRU(6, 5),
        "2-layer": torch.nn.RNN(6, 5, num_layers=2),
        "bidirectional": torch.nn.RNN(6, 5, bidirectional=True),
    }
    for needle, rnn in refused.items():
        other = torch.nn.ModuleDict({"rnn": rnn, "readout": torch.nn.Linear(5, 4)})
        torch_save_file(other.state_dict(), str(path))
        capsys.readouterr()
        assert main(["import", str(path), "-o", str(tmp_path / needle), *argv[4:]]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def test_natural_tanh_model_round_trips(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, back = tmp_path / "ptb.safetensors", tmp_path / "back"
    assert main(["export", str(runs["ptb-tanh"]), "-o", str(out)]) == 0
    meta = _metadata(out)
    orig = load_natural_checkpoint(runs["ptb-tanh"])
    assert meta["kind"] == "natural" and meta["task"] == "ptb-char"
    assert meta["loss"] == "softmax_ce" and meta["output"] == "softmax"
    assert meta["params"] == "best" and json.loads(meta["vocab"]) == orig.vocab
    assert main(["import", str(out), "-o", str(back)]) == 0
    got = load_natural_checkpoint(back)
    assert got.vocab == orig.vocab and got.config.activation == "tanh"
    assert orig.best_params is not None
    for k, v in orig.best_params.items():
        np.testing.assert_array_equal(got.params[k], v, err_msg=k)
    data = str(runs["data"])
    assert _eval_rows(capsys, str(back), "--split", "valid", "--data", data) == [
        {**r, "epoch": 0, "params": "last"}
        for r in _eval_rows(capsys, str(runs["ptb-tanh"]), "--split", "valid", "--data", data)
    ]


def test_sigmoid_models_need_the_reparametrisation(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The paper's natural models (sigmoid units): refused as they are, exported exactly as
    the equivalent tanh RNN on request, and imported back."""
    out, back = tmp_path / "ptb.safetensors", tmp_path / "back"
    capsys.readouterr()
    assert main(["export", str(runs["ptb-sigmoid"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sigmoid" in err[0] and "--sigmoid-as-tanh" in err[0]
    assert not out.exists()
    assert main(["export", str(runs["ptb-sigmoid"]), "-o", str(out), "--sigmoid-as-tanh"]) == 0
    meta = _metadata(out)
    assert (meta["activation"], meta["nonlinearity"], meta["mapping"]) == (
        "sigmoid",
        "tanh",
        "sigmoid-as-tanh",
    )
    ck = load_natural_checkpoint(runs["ptb-sigmoid"])
    params = ck.best_params if ck.best_params is not None else ck.params
    state = load_file(str(out))
    u = np.eye(len(ck.vocab or []), dtype=np.float32)[
        np.random.default_rng(0).integers(0, 6, (30, 3))
    ]
    y = engine.forward(params, u, "sigmoid", threads=1)
    y_ref = torch_convention_forward(state, u, "tanh")
    assert np.abs(y - y_ref).max() <= error_bound(params, u, "sigmoid", u.dtype, state)
    if HAS_TORCH:
        from safetensors.torch import load_file as torch_load_file

        model = _torch_module(meta, "float32")
        model.load_state_dict(torch_load_file(str(out)), strict=True)
        assert np.abs(y - _torch_outputs(model, u)).max() <= error_bound(
            params, u, "sigmoid", u.dtype, state
        )
    assert main(["import", str(out), "-o", str(back)]) == 0
    got = load_natural_checkpoint(back)
    assert got.config.activation == "sigmoid"
    y_back = engine.forward(got.params, u, "sigmoid", threads=1)
    assert np.abs(y - y_back).max() <= 2 * error_bound(params, u, "sigmoid", u.dtype, state)
    data = str(runs["data"])
    (a,) = _eval_rows(capsys, str(runs["ptb-sigmoid"]), "--split", "valid", "--data", data)
    (b,) = _eval_rows(capsys, str(back), "--split", "valid", "--data", data)
    assert b["value"] == pytest.approx(a["value"], rel=1e-5)


def test_foreign_natural_models(runs: dict[str, Path], tmp_path: Path) -> None:
    """ptb-char takes its symbols from the data set; music has 88 notes in and out."""
    rng = np.random.default_rng(3)

    def foreign(n: int, h: int = 4) -> Path:
        path = tmp_path / f"f{n}.safetensors"
        save_file(
            {
                "rnn.weight_ih_l0": rng.normal(0, 1, (h, n)).astype(np.float32),
                "rnn.weight_hh_l0": rng.normal(0, 0.3, (h, h)).astype(np.float32),
                "readout.weight": rng.normal(0, 1, (n, h)).astype(np.float32),
            },
            str(path),
        )
        return path

    vocab = load_dataset("ptb-char", runs["data"]).vocab  # type: ignore[union-attr]
    ptb = tmp_path / "ptb"
    argv = ["import", str(foreign(len(vocab))), "-o", str(ptb), "--task", "ptb-char"]
    assert main([*argv, "--data", str(runs["data"])]) == 0
    assert load_natural_checkpoint(ptb).vocab == list(vocab)
    music = tmp_path / "music"
    argv = ["import", str(foreign(88)), "-o", str(music), "--task", "music"]
    assert main([*argv, "--dataset", "jsb"]) == 0
    got = load_natural_checkpoint(music)
    assert (got.config.task, got.config.dataset, got.config.loss) == ("music", "jsb", "bce")
    assert got.config.activation == "tanh" and got.config.hidden == 4


@settings(max_examples=60)
@given(data=st.data())
def test_a_damaged_model_file_imports_or_is_refused_in_one_line(
    runs: dict[str, Path], data: st.DataObject
) -> None:
    """Bytes of an exported file overwritten anywhere (header, metadata, tensors): import
    either writes a checkpoint or raises one of rnnstab's one-line errors, nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        export_checkpoint(runs["to"], path)
        raw = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at] = data.draw(st.integers(0, 255))
        cut = data.draw(st.sampled_from([len(raw), len(raw) - 1, len(raw) // 2]))
        path.write_bytes(bytes(raw[:cut]))
        try:
            import_model(
                path, Path(tmp) / "ck", task=data.draw(st.sampled_from([None, "temporal-order"]))
            )
        except RnnstabError as e:
            assert "\n" not in str(e)


def test_start_up_does_not_import_torch() -> None:
    code = (
        "import sys; from rnnstab_cli.cli import main; main(['export', '--help']); "
        "import rnnstab_cli.training.transfer; assert 'torch' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
