"""Plots of one training run from its checkpoint directory's metrics log: loss, test error,
gradient norm with clipping events, ρ(W_rec) against the 1/γ line of §2.1, and — for runs
trained with ``--diagnostics`` — the error-signal profile ‖∂E/∂x_k‖ against the lag T−k as a
heat map over training time (eq. 7's vanishing made visible)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm

from rnnstab_cli.errors import CheckpointError, RnnstabError
from rnnstab_cli.figures.plotting import (
    CLIPPED_COLOUR,
    GUIDE_COLOUR,
    PLAIN_COLOUR,
    check_path,
    new_figure,
    save_figure,
)
from rnnstab_cli.training.checkpoint import METRICS_FILE, load_config, metrics_text


@dataclass(frozen=True)
class RunHistory:
    """The evaluation records of a run, as columns."""

    updates: np.ndarray  # (E,)
    loss: np.ndarray
    test_error: np.ndarray
    grad_norm: np.ndarray
    clip_rate: np.ndarray
    omega: np.ndarray
    spectral_radius: np.ndarray
    sigma_max: np.ndarray | None  # (E,) with diagnostics
    inv_gamma: float | None
    profile: np.ndarray | None  # (E, L) ‖∂E/∂x_k‖ by lag, NaN-padded to the longest
    title: str
    #: The norm threshold in force (mean over the period's updates that had one), for the rules
    #: whose threshold bounds ‖∂E/∂θ‖ (norm, auto, percentile, zscore, skip); None otherwise.
    clip_threshold: np.ndarray | None = None

    def to_json_dict(self) -> dict[str, Any]:
        def col(a: np.ndarray | None) -> list[float | None] | None:
            return None if a is None else [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "updates": [int(u) for u in self.updates],
            "loss": col(self.loss),
            "test_error": col(self.test_error),
            "grad_norm": col(self.grad_norm),
            "clip_rate": col(self.clip_rate),
            "omega": col(self.omega),
            "spectral_radius": col(self.spectral_radius),
            "sigma_max": col(self.sigma_max),
            "inv_gamma": self.inv_gamma,
            "clip_threshold": col(self.clip_threshold),
        }


def load_history(run_dir: str | Path) -> RunHistory:
    """Read ``metrics.jsonl`` of a checkpoint directory; CheckpointError if there is none."""
    d = Path(run_dir)
    path = d / METRICS_FILE
    try:
        lines = metrics_text(d).splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise CheckpointError(
            f"'{d}' has no readable {METRICS_FILE} (a directory written by rnnstab train --out): "
            f"{reason}"
        ) from None
    try:
        recs = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as e:
        raise CheckpointError(f"'{path}' is damaged: line {e.lineno} is not JSON") from None
    recs = [r for r in recs if isinstance(r, dict) and "updates" in r]
    if not recs:
        raise CheckpointError(f"'{path}' holds no evaluations yet")

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in recs])

    diags = [r.get("diagnostics") for r in recs]
    has_diag = all(isinstance(g, dict) for g in diags)
    profile = sigma = None
    inv_gamma = None
    if has_diag:
        sigma = np.array([float(g["sigma_max"]) for g in diags])
        inv_gamma = float(diags[-1]["inv_gamma"])
        rows = [np.asarray(g["error_signal_by_lag"], dtype=float) for g in diags]
        width = max(len(r) for r in rows)
        profile = np.full((len(rows), width), np.nan)
        for i, r in enumerate(rows):
            profile[i, : len(r)] = r
    return RunHistory(
        updates=col("updates"),
        loss=col("loss"),
        test_error=col("test_error"),
        grad_norm=col("grad_norm"),
        clip_rate=col("clip_rate"),
        omega=col("omega"),
        spectral_radius=col("spectral_radius"),
        sigma_max=sigma,
        inv_gamma=inv_gamma,
        profile=profile,
        title=f"training run {d.resolve().name}",
        clip_threshold=col("clip_threshold") if _norm_bound_rule(d) else None,
    )


#: The clipping rules whose threshold is a bound on the gradient norm.
NORM_BOUND_RULES = ("norm", "auto", "percentile", "zscore", "skip")


def _norm_bound_rule(d: Path) -> bool:
    """Whether the run in ``d`` clipped with a rule whose threshold bounds the norm (its
    checkpoint's config says; a directory without a readable one: no)."""
    try:
        return load_config(d).clip_mode in NORM_BOUND_RULES
    except RnnstabError:
        return False


def plot_history(h: RunHistory, path: str | Path) -> Path:
    """Draw the run to ``path`` (PNG or SVG by suffix)."""
    check_path(path)
    panels = 5 if h.profile is not None else 4
    fig = new_figure(6.0 * 2, 3.2 * ((panels + 1) // 2))
    axes = fig.subplots((panels + 1) // 2, 2, squeeze=False).ravel()
    u = h.updates

    ax = axes[0]
    ax.plot(u, h.loss, color=CLIPPED_COLOUR)
    ax.set(title="training loss (mean since the last evaluation)", xlabel="updates", ylabel="loss")

    ax = axes[1]
    ax.plot(u, 100 * h.test_error, color=PLAIN_COLOUR, marker=".")
    ax.axhline(1.0, color=GUIDE_COLOUR, ls="--", lw=1, label="solved (≤ 1%)")
    ax.set(title="test error", xlabel="updates", ylabel="% of sequences wrong")
    ax.legend(loc="upper right")

    ax = axes[2]
    ax.semilogy(u, h.grad_norm, color="black", lw=1, label="‖∂E/∂θ‖ before clipping")
    fired = h.clip_rate > 0
    sc = ax.scatter(
        u[fired],
        h.grad_norm[fired],
        c=100 * h.clip_rate[fired],
        cmap="Reds",
        vmin=0,
        vmax=100,
        s=18,
        zorder=3,
        label="clipping fired",
    )
    if h.clip_threshold is not None and np.isfinite(h.clip_threshold).any():
        ax.semilogy(
            u, h.clip_threshold, color=GUIDE_COLOUR, ls="--", lw=1, label="threshold in force"
        )
    fig.colorbar(sc, ax=ax, label="% of updates clipped")
    ax.set(title="gradient norm (mean since the last evaluation)", xlabel="updates")
    ax.legend(loc="upper left")

    ax = axes[3]
    ax.plot(u, h.spectral_radius, color=CLIPPED_COLOUR, label="ρ(W_rec)")
    if h.sigma_max is not None:
        ax.plot(u, h.sigma_max, color=PLAIN_COLOUR, lw=1, label="σ_max(W_rec)")
    if h.inv_gamma is not None:
        ax.axhline(
            h.inv_gamma,
            color=GUIDE_COLOUR,
            ls="--",
            lw=1,
            label=f"1/γ = {h.inv_gamma:g}: below it gradients vanish (§2.1)",
        )
    ax.set(title="recurrent weights", xlabel="updates")
    ax.legend(loc="best", fontsize="small")

    if h.profile is not None:
        ax = axes[4]
        prof = np.where(h.profile > 0, h.profile, np.nan)
        finite = prof[np.isfinite(prof)]
        norm = (
            LogNorm(vmin=max(finite.min(), finite.max() * 1e-12), vmax=finite.max())
            if finite.size
            else None
        )
        lags = np.arange(prof.shape[1])
        edges_u = np.concatenate([[u[0] - (u[1] - u[0] if len(u) > 1 else 1)], u])
        mesh = ax.pcolormesh(
            edges_u,
            np.append(lags, lags[-1] + 1) - 0.5,
            prof.T,
            norm=norm,
            cmap="viridis",
            shading="flat",
        )
        fig.colorbar(mesh, ax=ax, label="mean ‖∂E/∂x_k‖")
        ax.set(
            title="error signal reaching step k (eq. 7)",
            xlabel="updates",
            ylabel="lag T − k (steps back in time)",
        )
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle(h.title)
    return save_figure(fig, path)
