"""Fig. 3 of Pascanu, Mikolov & Bengio (2013): the bifurcation diagram of a one-unit RNN.

Section 2.2 ("Drawing similarities with dynamical systems") re-uses Doya's (1993) example: the
autonomous map of eq. (8) with the recurrent weight fixed at w = 5.0 and the bias b free,

    x_{t+1} = F(x_t) = w·σ(x_t) + b,        σ the logistic sigmoid.

Its fixed points x_∞ = F(x_∞) are the attractors (|F'(x)| = |w·σ'(x)| < 1, stable) and the
boundaries between their basins (|F'(x)| > 1, unstable). Solving F(x) = x for b gives the
whole curve at once, parametrised by x:

    b(x) = x − w·σ(x),                                                      (branch curve)

and the curve folds back where db/dx = 1 − w·σ'(x) = 0, i.e. w·σ'(x) = 1: a saddle-node
bifurcation, where an attractor and a basin boundary are born or annihilate together. With
σ' = σ(1 − σ) this happens at σ(x) = (1 ± √(1 − 4/w))/2, which exists only for w > 4.
As b decreases from +∞ a new attractor emerges at b₁ and the old one disappears at b₂ < b₁;
between them two attractors coexist (the paper's "rich regime") and the unstable branch (the
paper's dashed line) is the boundary between their basins. A state x_0 that sits on that
boundary for some b is where a tiny change of b sends x_∞ to the other attractor: the
basin-boundary crossing (unfilled circle) that makes the gradient explode, and at w = 5,
x_0 = 0.5 exactly the wall of Fig. 6.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import expit, logit

from rnnstab_cli import engine
from rnnstab_cli.errors import UsageError
from rnnstab_cli.figures.plotting import (
    GUIDE_COLOUR,
    STABLE_COLOUR,
    check_path,
    new_figure,
    save_figure,
)

__all__ = [
    "DEFAULT_B_RANGE",
    "DEFAULT_X_RANGE",
    "PAPER_W",
    "Bifurcation",
    "FixedPoints",
    "basin_boundary_b",
    "compute_bifurcation",
    "fixed_points",
    "iterate_map",
    "plot_bifurcation",
    "saddle_nodes",
]

FloatArray = npt.NDArray[np.float64]

#: Fig. 3's caption: "fixed recurrent weight of 5.0 and adjustable bias b".
PAPER_W: Final[float] = 5.0
# The diagram is symmetric about (b, x) = (−w/2, 0) (b(−x) = −b(x) − w); at w = 5 the fold
# spans b ∈ (−2.66, −2.34), and [−4, −1] × [−4, 4] shows it with both outer branches well
# settled (|x_∞| ≈ 3 at the ends).
DEFAULT_B_RANGE: Final[tuple[float, float]] = (-4.0, -1.0)
DEFAULT_X_RANGE: Final[tuple[float, float]] = (-4.0, 4.0)
#: x_0 of section 2.3 (Fig. 6), whose basin-boundary crossing is marked.
DEFAULT_MARK_X0: Final[float] = 0.5


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise UsageError(f"{name} must be finite, got {value!r}")
    return v


def _range(name: str, r: tuple[float, float]) -> tuple[float, float]:
    lo, hi = _finite(f"{name} lower end", r[0]), _finite(f"{name} upper end", r[1])
    if not lo < hi:
        raise UsageError(f"{name} must be an increasing pair (lo, hi), got {r!r}")
    return lo, hi


def _slope(w: float, x: npt.ArrayLike) -> FloatArray:
    """F'(x) = w·σ'(x) = w·σ(x)(1 − σ(x))."""
    s = expit(np.asarray(x, dtype=np.float64))
    return w * s * (1.0 - s)


# ------------------------------------------------------------------------ fixed points of F


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class FixedPoints:
    """All fixed points of F for one (w, b), sorted by x: ``x (K,)``, ``slope (K,)`` = F'(x),
    ``stable (K,)`` = |F'(x)| < 1 (attractor) else a basin boundary."""

    x: FloatArray
    slope: FloatArray
    stable: npt.NDArray[np.bool_]

    @property
    def attractors(self) -> FloatArray:
        return self.x[self.stable]

    @property
    def boundaries(self) -> FloatArray:
        return self.x[~self.stable]


def fixed_points(w: float, b: float, samples: int = 4001) -> FixedPoints:
    """Every root of f(x) = w·σ(x) + b − x, found by sign changes of f on a fine grid and
    refined with Brent's method (to ~1e-14).

    All roots lie in [b + min(0, w), b + max(0, w)] because w·σ(x) lies strictly between 0 and
    w, so that interval (widened by 1) is scanned with ``samples`` points. A root where f only
    touches zero — exactly at a bifurcation value of b — has no sign change and is missed; for
    every other b the grid is far finer than the spacing of the (at most three) roots.
    """
    w, b = _finite("w", w), _finite("b", b)
    if not isinstance(samples, int | np.integer) or samples < 3:
        raise UsageError(f"samples must be an integer ≥ 3, got {samples!r}")

    def f(x: float) -> float:
        return float(w * expit(x) + b - x)

    xs = np.linspace(b + min(0.0, w) - 1.0, b + max(0.0, w) + 1.0, samples)
    fs = w * expit(xs) + b - xs
    roots: list[float] = []
    for i in range(samples - 1):
        if fs[i] == 0.0:
            roots.append(float(xs[i]))
        elif fs[i] * fs[i + 1] < 0.0:
            roots.append(float(brentq(f, xs[i], xs[i + 1], xtol=1e-14)))
    x = np.array(sorted(roots))
    slope = _slope(w, x)
    return FixedPoints(x=x, slope=slope, stable=np.abs(slope) < 1.0)


def saddle_nodes(w: float) -> tuple[FloatArray, FloatArray]:
    """The saddle-node bifurcations of F: ``(b, x)`` arrays, ``b`` in decreasing order, so
    ``b[0] = b₁`` (a new attractor emerges as b decreases) and ``b[1] = b₂`` (one disappears).

    They solve w·σ'(x) = 1: σ(x) = (1 ± √(1 − 4/w))/2, x = logit(σ), b = x − w·σ(x). Empty for
    w ≤ 4, where F has a single fixed point for every b.
    """
    w = _finite("w", w)
    if w <= 4.0:
        return np.empty(0), np.empty(0)
    r = np.sqrt(1.0 - 4.0 / w)
    s = np.array([(1.0 - r) / 2.0, (1.0 + r) / 2.0])  # lower σ first: it gives the larger b
    x = logit(s)
    return x - w * s, x


def basin_boundary_b(w: float, x0: float) -> float | None:
    """The b at which x0 is the unstable fixed point (the basin boundary) of F, or None if x0
    is never one: there F(x0) = x0 gives b = x0 − w·σ(x0), and it is a boundary when
    |w·σ'(x0)| > 1."""
    w, x0 = _finite("w", w), _finite("x0", x0)
    if abs(float(_slope(w, x0))) <= 1.0:
        return None
    return float(x0 - w * expit(x0))


def iterate_map(w: float, b: float, x0: npt.ArrayLike, steps: int) -> FloatArray:
    """x_steps of x_{t+1} = w·σ(x_t) + b from every start in ``x0`` (any shape), run by the
    engine as a batch of one-unit networks with no input (eq. (8) as eq. (2))."""
    w, b = _finite("w", w), _finite("b", b)
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise UsageError(f"steps must be a positive integer, got {steps!r}")
    starts = np.asarray(x0, dtype=np.float64)
    params = {
        "W_rec": np.array([[w]]),
        "W_in": np.zeros((1, 1)),
        "b": np.array([b]),
        "W_out": np.ones((1, 1)),
        "b_out": np.zeros(1),
    }
    inputs = np.zeros((int(steps), starts.size, 1))  # (T, B, I=1): autonomous
    _, final = engine.forward(
        params, inputs, activation="sigmoid", x0=starts.reshape(-1, 1), return_state=True
    )
    return np.asarray(final)[:, 0].reshape(starts.shape)  # (B, H=1) → x0's shape


# ---------------------------------------------------------------------------------- diagram


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class Bifurcation:
    """Fig. 3's data for recurrent weight ``w``.

    The branch curve ``(b_curve, x_curve)`` with ``slope`` = F'(x) and ``stable`` per point;
    the saddle-nodes ``b_bif`` = (b₁, b₂) at ``x_bif``; the vector field x_{t+1} − x_t,
    ``field (n_x, n_b)`` on the grid ``field_b (n_b,)`` × ``field_x (n_x,)`` (computed with the
    engine); and the basin-boundary crossing ``(cross_b, mark_x0)`` of a chosen initial state
    (None when that state is never a boundary).
    """

    w: float
    b_range: tuple[float, float]
    x_range: tuple[float, float]
    x_curve: FloatArray
    b_curve: FloatArray
    slope: FloatArray
    stable: npt.NDArray[np.bool_]
    b_bif: FloatArray
    x_bif: FloatArray
    field_b: FloatArray
    field_x: FloatArray
    field: FloatArray
    mark_x0: float | None
    cross_b: float | None

    @property
    def bistable_interval(self) -> tuple[float, float] | None:
        """(b₂, b₁): the b where two attractors coexist, or None if there is none."""
        return (float(self.b_bif[1]), float(self.b_bif[0])) if self.b_bif.size == 2 else None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "figure": "bifurcation",
            "paper_figure": 3,
            "model": {"equation": "x_{t+1} = w*sigmoid(x_t) + b", "w": self.w},
            "b_range": list(self.b_range),
            "x_range": list(self.x_range),
            "bifurcations": [
                {"name": f"b{i + 1}", "b": float(b), "x": float(x)}
                for i, (b, x) in enumerate(zip(self.b_bif, self.x_bif, strict=True))
            ],
            "bistable_interval": (list(self.bistable_interval) if self.bistable_interval else None),
            "branch": {
                "b": self.b_curve.tolist(),
                "x": self.x_curve.tolist(),
                "slope": self.slope.tolist(),
                "stable": self.stable.tolist(),
            },
            "vector_field": {
                "b": self.field_b.tolist(),
                "x": self.field_x.tolist(),
                "dx": self.field.tolist(),
            },
            "basin_boundary_crossing": (
                {"x0": self.mark_x0, "b": self.cross_b} if self.cross_b is not None else None
            ),
        }

    def to_csv_rows(self) -> list[list[str | int | float]]:
        """Header first; one row per branch point (``kind`` = ``stable`` or ``unstable``), then
        the bifurcations (``b1``, ``b2``) and the basin-boundary crossing (``crossing``)."""
        rows: list[list[str | int | float]] = [["kind", "b", "x", "slope"]]
        for b, x, s, st in zip(self.b_curve, self.x_curve, self.slope, self.stable, strict=True):
            rows.append(["stable" if st else "unstable", float(b), float(x), float(s)])
        for i, (b, x) in enumerate(zip(self.b_bif, self.x_bif, strict=True)):
            rows.append([f"b{i + 1}", float(b), float(x), 1.0])
        if self.cross_b is not None and self.mark_x0 is not None:
            rows.append(
                ["crossing", self.cross_b, self.mark_x0, float(_slope(self.w, self.mark_x0))]
            )
        return rows


def compute_bifurcation(
    w: float = PAPER_W,
    b_range: tuple[float, float] = DEFAULT_B_RANGE,
    x_range: tuple[float, float] = DEFAULT_X_RANGE,
    n_curve: int = 2001,
    n_field: tuple[int, int] = (25, 17),
    mark_x0: float | None = DEFAULT_MARK_X0,
) -> Bifurcation:
    """Fig. 3: the fixed points x_∞ of x_{t+1} = w·σ(x_t) + b against b.

    The branch curve is b(x) = x − w·σ(x) sampled at ``n_curve`` x in ``x_range`` (exact, and
    it passes the folds smoothly where root finding in b would lose them); ``n_field = (n_b,
    n_x)`` sets the grid of the vector field. ``mark_x0`` (default: Fig. 6's x_0 = 0.5) adds
    the b at which that initial state lies on a basin boundary.
    """
    w = _finite("w", w)
    b_lo, b_hi = _range("b_range", b_range)
    x_lo, x_hi = _range("x_range", x_range)
    if not isinstance(n_curve, int | np.integer) or n_curve < 3:
        raise UsageError(f"n_curve must be an integer ≥ 3, got {n_curve!r}")
    if len(n_field) != 2 or any(not isinstance(n, int | np.integer) or n < 2 for n in n_field):
        raise UsageError(f"n_field must be two integers ≥ 2, got {n_field!r}")
    x = np.linspace(x_lo, x_hi, n_curve)
    b = x - w * expit(x)
    slope = _slope(w, x)
    b_bif, x_bif = saddle_nodes(w)
    # Vector field x_{t+1} − x_t: one step of the engine's map from every grid state.
    fb = np.linspace(b_lo, b_hi, n_field[0])
    fx = np.linspace(x_lo, x_hi, n_field[1])
    field = np.stack([iterate_map(w, bj, fx, 1) - fx for bj in fb], axis=1)  # (n_x, n_b)
    cross = None if mark_x0 is None else basin_boundary_b(w, mark_x0)
    return Bifurcation(
        w=w,
        b_range=(b_lo, b_hi),
        x_range=(x_lo, x_hi),
        x_curve=x,
        b_curve=b,
        slope=slope,
        stable=np.abs(slope) < 1.0,
        b_bif=b_bif,
        x_bif=x_bif,
        field_b=fb,
        field_x=fx,
        field=field,
        mark_x0=None if mark_x0 is None else float(mark_x0),
        cross_b=cross,
    )


def plot_bifurcation(data: Bifurcation, path: str | Path) -> Path:
    """Draw Fig. 3 to ``path`` (PNG or SVG by suffix) and return the path.

    Attractors solid and bold, basin boundaries dashed, saddle-nodes b₁, b₂ as filled circles,
    the two-attractor interval (b₂, b₁) shaded, the vector field as gray arrows and, if
    computed, the basin-boundary crossing of x_0 as an unfilled circle.
    """
    check_path(path)  # fail before drawing anything
    fig = new_figure(8.5, 6.2)
    ax = fig.add_subplot(1, 1, 1)

    # Gray arrows of x_{t+1} − x_t; lengths compressed (tanh) so that steps of 0.01 and of 5
    # are both visible, pointing towards the attractor that state goes to.
    bb, xx = np.meshgrid(data.field_b, data.field_x)
    dx = data.field
    cell = (data.x_range[1] - data.x_range[0]) / max(data.field_x.size - 1, 1)
    length = 0.8 * cell * np.tanh(np.abs(dx) / cell) * np.sign(dx)
    ax.quiver(
        bb,
        xx - length / 2,  # centre each arrow on its grid state
        np.zeros_like(length),
        length,
        angles="xy",
        scale_units="xy",
        scale=1.0,
        color=GUIDE_COLOUR,
        alpha=0.55,
        width=0.0025,
        headwidth=4,
        headlength=4,
        zorder=1,
    )

    iv = data.bistable_interval
    if iv is not None:
        ax.axvspan(
            *iv,
            color="#F0E442",
            alpha=0.35,
            lw=0,
            zorder=0,
            label=f"two attractors: b ∈ ({iv[0]:.3f}, {iv[1]:.3f})",
        )

    # Branches: split the curve into runs of equal stability so each is drawn in its style.
    edges = np.flatnonzero(np.diff(data.stable.astype(np.int8))) + 1
    labelled: set[bool] = set()
    for seg in np.split(np.arange(data.x_curve.size), edges):
        if seg.size == 0:
            continue
        # Extend by one point so consecutive runs meet at the fold instead of leaving a gap.
        seg = np.arange(max(seg[0] - 1, 0), min(seg[-1] + 2, data.x_curve.size))
        st = bool(data.stable[seg[len(seg) // 2]])
        ax.plot(
            data.b_curve[seg],
            data.x_curve[seg],
            "-" if st else "--",
            color=STABLE_COLOUR,
            lw=2.6 if st else 1.4,
            zorder=3,
            label=None
            if st in labelled
            else ("attractor (|w·σ′(x)| < 1)" if st else "basin boundary (|w·σ′(x)| > 1)"),
        )
        labelled.add(st)

    for i, (b, x) in enumerate(zip(data.b_bif, data.x_bif, strict=True)):
        ax.plot(
            b,
            x,
            "o",
            color=STABLE_COLOUR,
            ms=8,
            zorder=4,
            label="saddle-node bifurcation (w·σ′(x) = 1)" if i == 0 else None,
        )
        ax.annotate(
            f"$b_{i + 1}$ = {b:.3f}",
            (b, x),
            xytext=(10 if i == 0 else -10, -16 if i == 0 else 12),
            textcoords="offset points",
            ha="left" if i == 0 else "right",
            fontsize=10,
        )
    if data.cross_b is not None and data.mark_x0 is not None:
        ax.plot(
            data.cross_b,
            data.mark_x0,
            "o",
            mfc="white",
            mec=STABLE_COLOUR,
            mew=1.6,
            ms=8,
            zorder=4,
            label=f"basin boundary crossed by $x_0$ = {data.mark_x0:g} (Fig. 6's wall)",
        )
        ax.axhline(data.mark_x0, color=GUIDE_COLOUR, lw=0.8, ls=":", zorder=1)

    ax.set_xlim(*data.b_range)
    ax.set_ylim(*data.x_range)
    ax.set_xlabel("b (bias)")
    ax.set_ylabel(r"$x_\infty$ (fixed point of $x \mapsto w\,\sigma(x) + b$)")
    ax.set_title(
        "Fig. 3 of Pascanu, Mikolov & Bengio (2013), §2.2 (after Doya 1993):\n"
        rf"bifurcation diagram of the one-unit RNN $x_{{t+1}} = w\,\sigma(x_t) + b$, "
        rf"$w = {data.w:g}$",
        fontsize=11,
    )
    ax.legend(loc="upper left", fontsize=8, framealpha=0.95)
    return save_figure(fig, path)
