"""The mapping between rnnstab's network of eq. (2) and the state dict of ``torch.nn.RNN`` +
``torch.nn.Linear``, and the safetensors files that hold it. Neither direction needs torch: the
files are written and read with numpy. (:mod:`rnnstab_cli.training.transfer` puts checkpoints
through it: ``rnnstab export`` and ``rnnstab import``.)

The file holds six tensors (the biases may be absent on import: ``bias=False`` modules)::

    rnn.weight_ih_l0 (H, I)   rnn.weight_hh_l0 (H, H)   rnn.bias_ih_l0 (H,)   rnn.bias_hh_l0 (H,)
    readout.weight   (O, H)   readout.bias     (O,)

so that, with ``meta`` the file's metadata header::

    model = torch.nn.ModuleDict({
        "rnn": torch.nn.RNN(I, H, nonlinearity=meta["nonlinearity"]),  # batch_first=False
        "readout": torch.nn.Linear(H, O),
    })
    model.load_state_dict(safetensors.torch.load_file(path))  # strict
    h, _ = model["rnn"](u)      # u (T, B, I); h0 left to torch's default, zeros
    y = model["readout"](h)     # (T, B, O): what rnnstab's engine outputs

The header (string values) also says the sizes (``input_size``, ``hidden_size``,
``output_size``), rnnstab's activation and how it was mapped (``mapping``), the task, the
``loss`` the read-out was trained with and the ``output`` nonlinearity that turns y into
predictions (``softmax`` over classes, ``identity`` for regression, ``sigmoid`` per unit for
piano rolls), the dtype, the rnnstab version, and the run's full config (JSON) with, for
ptb-char, its symbols: so an exported file imports back without any option.

Derivation. rnnstab runs eq. (2), ``x_t = W_rec·σ(x_{t−1}) + W_in·u_t + b`` from ``x_0 = 0``,
and reads out from the activated state, ``y_t = W_out·σ(x_t) + b_out`` (``bptt/infer.rs::forward``).
With ``h_t = σ(x_t)`` this is ``h_t = σ(W_in·u_t + b + W_rec·h_{t−1})``, ``y_t = W_out·h_t +
b_out``: torch's ``h_t = tanh(W_ih·u_t + b_ih + W_hh·h_{t−1} + b_hh)`` and ``Linear`` with

    W_ih = W_in,  W_hh = W_rec,  b_ih = b,  b_hh = 0,  readout = (W_out, b_out),

provided σ is torch's nonlinearity (tanh, or relu) and the initial states agree: rnnstab's
``h_0 = σ(x_0) = σ(0)`` is 0 for tanh and relu, torch's default ``h0`` is zeros. A learned,
non-zero x0 gives ``h_0 ≠ 0``, which a state dict cannot hold: refused.

Sigmoid units (the paper's music and PTB models) have no ``torch.nn.RNN`` nonlinearity, and
``σ(0) = ½`` is not torch's zero start; they are refused unless ``sigmoid_as_tanh`` is asked for,
which writes an exact reparametrisation: ``σ(x) = (1 + tanh(x/2))/2``, so ``k_t = tanh(x_t/2) =
2h_t − 1`` obeys ``k_t = tanh(W_in/2·u_t + W_rec/4·k_{t−1} + b/2 + W_rec·𝟙/4)`` from ``k_0 =
tanh(0) = 0`` (torch's zero start), and ``y_t = W_out/2·k_t + b_out + W_out·𝟙/2``. The
outputs are the same function; torch's hidden state is then 2σ(x_t) − 1, not σ(x_t) (the
header says ``mapping = sigmoid-as-tanh``, and import undoes it). The scalings by ½ and ¼ are
exact in binary floating point; the row sums round once.

Import folds ``b = b_ih + b_hh``: torch adds both biases to the same pre-activation, so the
model is the same function (the sum rounds once, where torch adds them in its own order).
Multi-layer, bidirectional, LSTM and GRU state dicts, and tensors beyond the RNN and its
read-out, are refused: rnnstab's model is one recurrent layer and one affine read-out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rnnstab_cli.errors import DataError, UsageError

FORMATS: Final[tuple[str, ...]] = ("torch",)
#: The header's ``format``: a file with it was written by ``rnnstab export``.
FORMAT: Final[str] = "rnnstab-torch-rnn"
FORMAT_VERSION: Final[str] = "1"
#: Prefixes of the two modules' keys: ``ModuleDict({"rnn": RNN, "readout": Linear})``.
RNN_PREFIX: Final[str] = "rnn."
READOUT_PREFIX: Final[str] = "readout."
#: How rnnstab's activation became torch's nonlinearity.
DIRECT: Final[str] = "direct"
SIGMOID_AS_TANH: Final[str] = "sigmoid-as-tanh"
#: rnnstab activations that are a ``torch.nn.RNN`` nonlinearity as they are.
TORCH_NONLINEARITIES: Final[tuple[str, ...]] = ("tanh", "relu")
#: The nonlinearity each loss puts on the read-out's y to make predictions.
OUTPUT_OF_LOSS: Final[dict[str, str]] = {
    "softmax_ce": "softmax",
    "mse": "identity",
    "bce": "sigmoid",
}
#: A safetensors header larger than this is damage (six tensors need a few hundred bytes;
#: the config and PTB's symbols a few kilobytes).
MAX_HEADER: Final[int] = 16 * 2**20
#: The most bytes a model file may have (it is read whole): 2³⁰ float32 weights, a W_rec of
#: 32k hidden units, well past what rnnstab trains.
MAX_FILE: Final[int] = 4 * 2**30
_ST_DTYPES: Final[dict[str, str]] = {"F32": "float32", "F64": "float64"}
_RNN_KEY: Final = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


# --------------------------------------------------------------------------------------------
# The mapping itself: rnnstab parameters ↔ torch tensors


def to_torch(
    params: Mapping[str, np.ndarray], activation: str, *, sigmoid_as_tanh: bool = False
) -> tuple[dict[str, np.ndarray], str, str]:
    """The state dict of eq. (2)'s parameters (``W_rec``, ``W_in``, ``b``, ``W_out``,
    ``b_out``, maybe ``x0``), with torch's nonlinearity and the mapping used (see the module
    docstring). UsageError, in one line, for a model ``torch.nn.RNN`` cannot express."""
    x0 = params.get("x0")
    if x0 is not None and np.any(x0 != 0):
        raise UsageError(
            "this model starts from a learned non-zero x0, so h_0 = σ(x0) ≠ 0; torch.nn.RNN "
            "starts from zeros unless h0 is passed at every call, and a state dict cannot hold it"
        )
    w_rec, w_in, b = params["W_rec"], params["W_in"], params["b"]
    w_out, b_out = params["W_out"], params["b_out"]
    if activation in TORCH_NONLINEARITIES:
        nonlinearity, mapping = activation, DIRECT
        w_ih, w_hh, b_ih = w_in, w_rec, b
        lin_w, lin_b = w_out, b_out
    elif activation == "sigmoid" and sigmoid_as_tanh:
        nonlinearity, mapping = "tanh", SIGMOID_AS_TANH
        dt = w_rec.dtype
        # Row sums in float64, rounded once to the model's dtype.
        rec_rows = w_rec.astype(np.float64).sum(axis=1)
        out_rows = w_out.astype(np.float64).sum(axis=1)
        w_ih, w_hh = w_in * dt.type(0.5), w_rec * dt.type(0.25)
        lin_w = w_out * dt.type(0.5)
        with np.errstate(over="ignore"):  # checked just below
            b_ih = (b.astype(np.float64) / 2 + rec_rows / 4).astype(dt)
            lin_b = (b_out.astype(np.float64) + out_rows / 2).astype(dt)
        if not (np.isfinite(b_ih).all() and np.isfinite(lin_b).all()):
            raise UsageError(f"the tanh form's biases of this sigmoid model overflow {dt}")
    elif activation == "sigmoid":
        raise UsageError(
            "sigmoid units have no torch.nn.RNN equivalent (its nonlinearity is tanh or relu, "
            "and it starts from h0 = 0, not σ(0) = 0.5); the paper's music and PTB models use "
            "them: --sigmoid-as-tanh writes the equivalent tanh RNN (the same outputs) instead"
        )
    else:
        raise UsageError(
            f"{activation} units have no torch.nn.RNN equivalent (its nonlinearity is tanh or relu)"
        )
    state = {
        f"{RNN_PREFIX}weight_ih_l0": w_ih,
        f"{RNN_PREFIX}weight_hh_l0": w_hh,
        f"{RNN_PREFIX}bias_ih_l0": b_ih,
        f"{RNN_PREFIX}bias_hh_l0": np.zeros_like(b),
        f"{READOUT_PREFIX}weight": lin_w,
        f"{READOUT_PREFIX}bias": lin_b,
    }
    return {k: np.ascontiguousarray(v) for k, v in state.items()}, nonlinearity, mapping


def from_torch(
    state: Mapping[str, np.ndarray],
    mapping: str,
    where: str,
    *,
    rnn_prefix: str = RNN_PREFIX,
    readout_prefix: str = READOUT_PREFIX,
) -> dict[str, np.ndarray]:
    """eq. (2)'s parameters from a ``torch.nn.RNN`` + ``Linear`` state dict (``b = b_ih +
    b_hh``; missing biases are zeros), in float64. DataError naming ``where`` for a state
    dict that is not one recurrent layer and one read-out of fitting shapes."""
    if rnn_prefix == readout_prefix:
        raise UsageError(f"the RNN's and the read-out's key prefixes are both {rnn_prefix!r}")
    rnn = _module(state, rnn_prefix, readout_prefix, where)
    matches = {}
    for key in sorted(rnn):
        m = _RNN_KEY.match(key)
        if m is None:
            raise DataError(f"{where}: {rnn_prefix}{key} is not a torch.nn.RNN tensor")
        matches[key] = m
    layers = 1 + max(int(m.group(3)) for m in matches.values())
    for key, m in matches.items():
        if m.group(4):
            raise DataError(
                f"{where}: {rnn_prefix}{key} belongs to a bidirectional RNN; rnnstab's model "
                "runs one direction"
            )
        if layers > 1:
            raise DataError(
                f"{where}: a {layers}-layer RNN ({rnn_prefix}*_l{layers - 1}); rnnstab's model "
                "has one layer"
            )
        if m.group(2) == "hr":
            raise DataError(f"{where}: {rnn_prefix}{key} is an LSTM projection, not an RNN's")
    readout = _module(state, readout_prefix, rnn_prefix, where)
    for key in readout:
        if key not in ("weight", "bias"):
            raise DataError(f"{where}: {readout_prefix}{key} is not a torch.nn.Linear tensor")
    known = {rnn_prefix + k for k in rnn} | {readout_prefix + k for k in readout}
    extra = sorted(set(state) - known)
    if extra:
        raise DataError(
            f"{where}: unexpected tensor {extra[0]!r}; rnnstab's model is one torch.nn.RNN "
            f"({rnn_prefix}*) and one Linear read-out ({readout_prefix}*)"
        )

    def need(name: str, key: str, ndim: int) -> np.ndarray:
        a = (rnn if name == "rnn" else readout).get(key)
        prefix = rnn_prefix if name == "rnn" else readout_prefix
        if a is None:
            raise DataError(f"{where}: {prefix}{key} is missing")
        if a.ndim != ndim or 0 in a.shape:
            raise DataError(
                f"{where}: {prefix}{key} has shape {list(a.shape)}, expected {ndim} "
                "non-empty dimension(s)"
            )
        if not np.isfinite(a).all():
            raise DataError(f"{where}: {prefix}{key} holds NaN or infinite values")
        return a.astype(np.float64)

    w_ih = need("rnn", "weight_ih_l0", 2)
    w_hh = need("rnn", "weight_hh_l0", 2)
    h = w_hh.shape[1]
    if w_hh.shape[0] != h:
        rows = w_hh.shape[0]
        kind = {3 * h: "a GRU's (3H rows)", 4 * h: "an LSTM's (4H rows)"}.get(rows, "not square")
        raise DataError(
            f"{where}: {rnn_prefix}weight_hh_l0 has shape {list(w_hh.shape)}: {kind}; "
            "only a torch.nn.RNN maps to rnnstab's model"
        )
    if w_ih.shape[0] != h:
        raise DataError(
            f"{where}: {rnn_prefix}weight_ih_l0 has shape {list(w_ih.shape)}, expected "
            f"[{h}, input_size] for {h} hidden units"
        )
    b = np.zeros(h)
    for key in ("bias_ih_l0", "bias_hh_l0"):
        if key in rnn:
            bias = need("rnn", key, 1)
            if bias.shape != (h,):
                raise DataError(
                    f"{where}: {rnn_prefix}{key} has shape {list(bias.shape)}, expected [{h}]"
                )
            b = b + bias
    w_lin = need("readout", "weight", 2)
    if w_lin.shape[1] != h:
        raise DataError(
            f"{where}: {readout_prefix}weight has shape {list(w_lin.shape)}, expected "
            f"[output_size, {h}] for {h} hidden units"
        )
    b_lin = np.zeros(w_lin.shape[0])
    if "bias" in readout:
        b_lin = need("readout", "bias", 1)
        if b_lin.shape != (w_lin.shape[0],):
            raise DataError(
                f"{where}: {readout_prefix}bias has shape {list(b_lin.shape)}, expected "
                f"[{w_lin.shape[0]}]"
            )
    if mapping == DIRECT:
        return {"W_rec": w_hh, "W_in": w_ih, "b": b, "W_out": w_lin, "b_out": b_lin}
    if mapping == SIGMOID_AS_TANH:  # the inverse of to_torch's reparametrisation
        return {
            "W_rec": 4 * w_hh,
            "W_in": 2 * w_ih,
            "b": 2 * b - 2 * w_hh.sum(axis=1),
            "W_out": 2 * w_lin,
            "b_out": b_lin - w_lin.sum(axis=1),
        }
    raise DataError(f"{where}: unknown mapping {mapping!r} in its header")


def _module(
    state: Mapping[str, np.ndarray], prefix: str, other: str, where: str
) -> dict[str, np.ndarray]:
    """The tensors under ``prefix``, keyed by the rest of their name; a key under both
    prefixes (one may be empty, or extend the other) goes to the longer one."""
    found = {
        k[len(prefix) :]: v
        for k, v in state.items()
        if k.startswith(prefix) and not (len(other) > len(prefix) and k.startswith(other))
    }
    if not found:
        keys = ", ".join(sorted(state)[:6]) or "none"
        raise DataError(
            f"{where}: no tensor under {prefix!r} (its keys: {keys}); name the modules with "
            "--rnn-prefix and --readout-prefix"
        )
    return found


# --------------------------------------------------------------------------------------------
# Files


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of a safetensors file; DataError (one line) when it is
    missing, not safetensors, or holds tensors other than float32/float64."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE:
            raise DataError(f"{str(p)!r} is larger than {MAX_FILE // 2**30} GiB")
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no model file at {str(p)!r}") from None
    except IsADirectoryError:
        raise DataError(
            f"{str(p)!r} is a directory; import reads a .safetensors file (export writes one)"
        ) from None
    except OSError as e:
        raise DataError(f"cannot read {str(p)!r}: {e.strerror or e}") from None
    header = _header(data, p)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise DataError(f"{str(p)!r}: its safetensors metadata is not a table of strings")
    for key, info in header.items():
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if dtype not in _ST_DTYPES:
            raise DataError(
                f"{str(p)!r}: tensor {key!r} is {dtype!r}; rnnstab reads float32 or float64 (F32, "
                "F64) tensors"
            )
    try:
        arrays = dict(st_load(data))
    except SafetensorError as e:
        raise DataError(f"{str(p)!r} is not a valid safetensors file ({e})") from None
    return arrays, dict(meta)


def _header(data: bytes, p: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, read before the tensors so that a dtype numpy
    cannot hold (bfloat16) is named instead of failing inside the loader."""
    bad = DataError(f"{str(p)!r} is not a safetensors file")
    if len(data) < 8:
        raise bad
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise bad
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad from None
    if not isinstance(header, dict):
        raise bad
    return header


def write_model_file(
    path: str | os.PathLike[str], state: Mapping[str, np.ndarray], meta: Mapping[str, str]
) -> None:
    """``state`` and ``meta`` as a safetensors file at ``path``, written under a temporary
    name and moved into place (no half-written file under the name); UsageError when the
    path cannot be written."""
    p = Path(path)
    data = st_save(dict(state), metadata=dict(meta))
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, p)
    except OSError as e:
        raise UsageError(f"cannot write {str(p)!r}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
