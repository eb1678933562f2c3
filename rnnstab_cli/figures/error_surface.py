"""Fig. 6 of Pascanu, Mikolov & Bengio (2013): the error surface of a one-unit RNN and its wall.

Section 2.3 ("The geometrical interpretation") trains the single hidden unit of eq. (8),

    x_t = w·σ(x_{t−1}) + b,        x_0 = 0.5,  σ the logistic sigmoid,  no input,

to reach a target after 50 steps, with the error E_50 = (σ(x_50) − 0.7)². Where x_0 sits on
the boundary between the two basins of attraction of the map (section 2.2, Fig. 3), x_50 moves
from one attractor to the other for a tiny change of (w, b): the surface has a steep *wall*
along which ‖∂E/∂(w, b)‖ explodes. A plain gradient step that lands on the wall is thrown far
away; a step rescaled by norm clipping (Algorithm 1, section 3.2) stays next to it.

Everything is computed with the project's engine, by writing eq. (8) as the general model of
eq. (2) with H = I = O = 1: W_rec = [[w]], b = [b], W_in = [[0]] with zero inputs, W_out =
[[1]], b_out = [0], the sigmoid activation and the squared-error loss masked to the last step,
so that the engine's loss *is* E_50 and its gradients for W_rec and b *are* ∂E/∂w and ∂E/∂b.
Many (w, b) points go through one engine call as independent units: a diagonal W_rec couples
no two units, so unit i of an H-unit network is exactly the one-unit model at (w_i, b_i), and
the summed loss Σ_i E_i has ∂/∂w_i = ∂E_i/∂w_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rnnstab_cli import engine
from rnnstab_cli.errors import UsageError
from rnnstab_cli.figures.plotting import (
    CLIPPED_COLOUR,
    PLAIN_COLOUR,
    check_path,
    new_figure,
    save_figure,
)

__all__ = [
    "DEFAULT_B_RANGE",
    "DEFAULT_GRID",
    "DEFAULT_LR",
    "DEFAULT_START",
    "DEFAULT_STEPS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_W_RANGE",
    "PAPER_STEPS",
    "PAPER_TARGET",
    "PAPER_X0",
    "ErrorSurface",
    "SurfaceGrid",
    "Trajectory",
    "compute_error_surface",
    "descend",
    "error_and_grad",
    "plot_error_surface",
    "zoom_window",
]

FloatArray = npt.NDArray[np.float64]

# Section 2.3: "train the model to have a specific target value after 50 steps",
# E_50 = (σ(x_50) − 0.7)², x_0 = .5.
PAPER_STEPS: Final[int] = 50
PAPER_TARGET: Final[float] = 0.7
PAPER_X0: Final[float] = 0.5

# Default view and descent settings, chosen by exploring the surface (tests pin the
# behaviour they are meant to show):
# - The wall runs along the (w, b) where x_0 = 0.5 is the unstable fixed point of eq. (8),
#   b ≈ 0.5 − w·σ(0.5), from the cusp (w, b) ≈ (4, −2) where the map becomes bistable
#   (w > 4 = 1/max σ'). For w ≳ 5.5 the wall is thinner than 1e-5 in b, so a grid shows only
#   a step in E; for 4 < w < 5 it is 1e-4 … 1e-1 wide, so gradient descent can land on it.
#   w ∈ [3, 8] shows the smooth valley before the cusp and the sharp wall after it;
#   b ∈ [−4, 4] also holds the plateau σ(x_50) → 1 (E = 0.09) where the plain step lands.
DEFAULT_W_RANGE: Final[tuple[float, float]] = (3.0, 8.0)
DEFAULT_B_RANGE: Final[tuple[float, float]] = (-4.0, 4.0)
DEFAULT_GRID: Final[int] = 200
# - From this start on the low-error side, both runs follow the same path down the valley
#   for 15 steps (‖g‖ grows from 0.05 to 0.13, below the threshold, so clipping is idle and
#   E falls to 0.005). Step 15 lands on the wall, where ‖g‖ ≈ 13: the plain step has length
#   ≈ 6.5 and throws (w, b) to ≈ (7.4, 3.5) on the plateau (E = 0.09, ‖g‖ ≈ 2e-5: learning
#   stops), while the clipped step has length lr·threshold = 0.25, back into the valley,
#   which the clipped run then follows to E < 1e-3 (a few more clipped kicks off the wall).
#   The threshold sits above every norm met before the wall (≤ 0.13) and two orders of
#   magnitude below the wall's, in the spirit of section 3.2's heuristic (set it from
#   "statistics on the average norm").
DEFAULT_START: Final[tuple[float, float]] = (4.7, -1.7)
DEFAULT_LR: Final[float] = 0.5
DEFAULT_THRESHOLD: Final[float] = 0.5
DEFAULT_STEPS: Final[int] = 40

# Units per engine call when evaluating many (w, b) points. The engine's kernels are dense,
# so a call costs ~H² per step: 16 units balance that against the per-call overhead (a
# 200×200 grid takes ~0.3 s this way, ~4 s with one call per point, ~2.5 s with 256).
_CHUNK: Final[int] = 16


# ---------------------------------------------------------------------------- engine wrapper


def _as_float(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise UsageError(f"{name} must be finite, got {value!r}")
    return v


def _engine_chunk(
    w: FloatArray, b: FloatArray, steps: int, x0: float, target: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """E_50, ∂E/∂w, ∂E/∂b for the (H,) points (w_i, b_i) in one engine call."""
    h = w.size
    params = {
        "W_rec": np.diag(w),  # (H, H): diagonal, so unit i only feeds itself
        "W_in": np.zeros((h, 1)),  # (H, I=1): eq. (8) has no input
        "b": b.copy(),  # (H,)
        "W_out": np.eye(h),  # (O=H, H): y_i = σ(x_i), so the loss of unit i is E_i
        "b_out": np.zeros(h),  # (O,)
    }
    inputs = np.zeros((steps, 1, 1))  # (T, B=1, I=1)
    targets = np.full((steps, 1, h), target)  # (T, B, O)
    mask = np.zeros((steps, 1))  # (T, B): only the last step is scored, E = E_50
    mask[-1] = 1.0
    # The engine's x0 is the state *before* the first step (x_1 = W_rec·σ(x_0) + b), so T =
    # steps transitions end on x_T = x_50 exactly as in eq. (8).
    res, final = engine.loss_grads_and_state(
        params, inputs, targets, mask, x0=np.full(h, x0), activation="sigmoid", loss="mse"
    )
    # The engine reports only the summed loss; each unit's E_i comes from the final state
    # x_T (B=1, H) it also returns, through the same squared error.
    if h == 1:
        loss = np.array([res.loss])  # the engine's own E_50
    else:
        loss = (1.0 / (1.0 + np.exp(-np.asarray(final)[0])) - target) ** 2  # (H,)
    return loss, np.diag(res.grads["W_rec"]).copy(), np.asarray(res.grads["b"]).copy()


def error_and_grad(
    w: npt.ArrayLike,
    b: npt.ArrayLike,
    steps: int = PAPER_STEPS,
    x0: float = PAPER_X0,
    target: float = PAPER_TARGET,
    chunk: int = _CHUNK,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """E_T = (σ(x_T) − target)² and its gradient (∂E/∂w, ∂E/∂b) for eq. (8), via the engine.

    ``w`` and ``b`` broadcast against each other; the three results have their broadcast
    shape. ``chunk`` points share one engine call as independent units of a diagonal W_rec
    (``chunk=1`` makes one call per point, the plain H = 1 model).
    """
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise UsageError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(chunk, int | np.integer) or chunk < 1:
        raise UsageError(f"chunk must be a positive integer, got {chunk!r}")
    x0 = _as_float("x0", x0)
    target = _as_float("target", target)
    wb, bb = np.broadcast_arrays(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if not (np.all(np.isfinite(wb)) and np.all(np.isfinite(bb))):
        raise UsageError("w and b must be finite")
    shape = wb.shape
    wf, bf = wb.ravel(), bb.ravel()
    loss, gw, gb = (np.empty(wf.size) for _ in range(3))
    for lo in range(0, wf.size, chunk):
        sl = slice(lo, lo + chunk)
        loss[sl], gw[sl], gb[sl] = _engine_chunk(wf[sl], bf[sl], int(steps), x0, target)
    return loss.reshape(shape), gw.reshape(shape), gb.reshape(shape)


# ----------------------------------------------------------------------------- descent paths


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class Trajectory:
    """Gradient descent on (w, b) for the one-unit model.

    ``points (N+1, 2)`` are the iterates (w, b) including the start; ``loss (N+1,)`` is E_50 at
    each; ``grad_norm (N,)`` is ‖∂E/∂(w, b)‖ at the iterate each step started from, before
    clipping; ``clipped (N,)`` says whether Algorithm 1 rescaled that step. ``threshold`` is
    None for plain SGD.
    """

    label: str
    lr: float
    threshold: float | None
    points: FloatArray
    loss: FloatArray
    grad_norm: FloatArray
    clipped: npt.NDArray[np.bool_]

    @property
    def step_lengths(self) -> FloatArray:
        """‖θ_{k+1} − θ_k‖ for each of the N steps."""
        return np.linalg.norm(np.diff(self.points, axis=0), axis=1)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "lr": self.lr,
            "threshold": self.threshold,
            "w": self.points[:, 0].tolist(),
            "b": self.points[:, 1].tolist(),
            "loss": self.loss.tolist(),
            "grad_norm": self.grad_norm.tolist(),
            "clipped": self.clipped.tolist(),
        }


def descend(
    start: tuple[float, float],
    lr: float,
    n_steps: int,
    threshold: float | None = None,
    steps: int = PAPER_STEPS,
    x0: float = PAPER_X0,
    target: float = PAPER_TARGET,
    label: str | None = None,
) -> Trajectory:
    """``n_steps`` of gradient descent on E_T from ``start = (w, b)`` with learning rate ``lr``.

    With a ``threshold`` every gradient goes through the engine's norm clipping (Algorithm 1:
    if ‖g‖ ≥ threshold, g ← threshold·g/‖g‖), so no step is longer than lr·threshold.
    Only w and b are trained; W_in, W_out and b_out stay at the values that make the engine's
    model eq. (8), so their gradients are zeroed before clipping and add nothing to ‖g‖.
    """
    lr = _as_float("lr", lr)
    if lr <= 0:
        raise UsageError(f"lr must be > 0, got {lr}")
    if not isinstance(n_steps, int | np.integer) or n_steps < 0:
        raise UsageError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    if threshold is not None:
        threshold = _as_float("threshold", threshold)
        if threshold <= 0:
            raise UsageError(f"threshold must be > 0, got {threshold}")
    if len(start) != 2:
        raise UsageError(f"start must be a pair (w, b), got {start!r}")
    theta = np.array([_as_float("start w", start[0]), _as_float("start b", start[1])])
    points, losses, norms, clipped = [theta.copy()], [], [], []
    for _ in range(n_steps + 1):
        e, gw, gb = error_and_grad(theta[0], theta[1], steps=steps, x0=x0, target=target)
        losses.append(float(e))
        if len(points) == n_steps + 1:
            break  # the loss at the last iterate is recorded; no step from it
        grads = {
            "W_rec": np.array([[float(gw)]]),
            "W_in": np.zeros((1, 1)),
            "b": np.array([float(gb)]),
            "W_out": np.zeros((1, 1)),
            "b_out": np.zeros(1),
        }
        norm = float(np.hypot(gw, gb))
        if threshold is not None:
            grads, _ = engine.clip_norm(grads, threshold)
        g = np.array([grads["W_rec"][0, 0], grads["b"][0]])
        norms.append(norm)
        clipped.append(not np.array_equal(g, [gw, gb]))
        theta = theta - lr * g
        points.append(theta.copy())
    name = label or ("SGD" if threshold is None else f"SGD, clipped at {threshold:g}")
    return Trajectory(
        label=name,
        lr=lr,
        threshold=threshold,
        points=np.array(points),
        loss=np.array(losses),
        grad_norm=np.array(norms, dtype=np.float64),
        clipped=np.array(clipped, dtype=bool),
    )


# ------------------------------------------------------------------------------ the surface


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class SurfaceGrid:
    """E_T and its gradient on a rectangular (w, b) grid.

    ``w (n_w,)``, ``b (n_b,)``; ``loss``, ``grad_w``, ``grad_b`` are ``(n_b, n_w)`` with
    ``loss[i, j]`` at ``(w[j], b[i])`` (rows follow b, as an image's y axis).
    """

    w: FloatArray
    b: FloatArray
    loss: FloatArray
    grad_w: FloatArray
    grad_b: FloatArray

    @property
    def grad_norm(self) -> FloatArray:
        """‖∂E/∂(w, b)‖ on the grid, ``(n_b, n_w)``."""
        return np.hypot(self.grad_w, self.grad_b)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "w": self.w.tolist(),
            "b": self.b.tolist(),
            "loss": self.loss.tolist(),
            "grad_w": self.grad_w.tolist(),
            "grad_b": self.grad_b.tolist(),
        }

    def csv_rows(self, series: str) -> list[list[str | int | float]]:
        """One row per grid point in :meth:`ErrorSurface.to_csv_rows`'s columns."""
        ww, bb = np.meshgrid(self.w, self.b)
        cols = (ww, bb, self.loss, self.grad_w, self.grad_b)
        return [
            [series, "", *(float(c) for c in vals), ""]
            for vals in zip(*(c.ravel() for c in cols), strict=True)
        ]

    @classmethod
    def compute(
        cls,
        w_range: tuple[float, float],
        b_range: tuple[float, float],
        n_w: int,
        n_b: int,
        steps: int = PAPER_STEPS,
        x0: float = PAPER_X0,
        target: float = PAPER_TARGET,
    ) -> SurfaceGrid:
        """Evaluate E_T and ∂E/∂(w, b) at ``n_w × n_b`` evenly spaced points of the ranges."""
        w_lo, w_hi = _check_range("w_range", w_range)
        b_lo, b_hi = _check_range("b_range", b_range)
        for name, n in (("n_w", n_w), ("n_b", n_b)):
            if not isinstance(n, int | np.integer) or n < 2:
                raise UsageError(f"{name} must be an integer ≥ 2, got {n!r}")
        w = np.linspace(w_lo, w_hi, n_w)
        b = np.linspace(b_lo, b_hi, n_b)
        ww, bb = np.meshgrid(w, b)  # (n_b, n_w) each
        loss, gw, gb = error_and_grad(ww, bb, steps=steps, x0=x0, target=target)
        return cls(w=w, b=b, loss=loss, grad_w=gw, grad_b=gb)


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class ErrorSurface:
    """Fig. 6's data: E_T on a (w, b) grid, a finer grid around the wall where the runs meet
    it (``zoom``), and two descent runs with the same start and lr, ``plain`` (unclipped) and
    ``clipped`` (Algorithm 1)."""

    grid: SurfaceGrid
    zoom: SurfaceGrid
    plain: Trajectory
    clipped: Trajectory
    steps: int
    x0: float
    target: float

    def to_json_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready lists (grids row-major in b)."""
        return {
            "figure": "error-surface",
            "paper_figure": 6,
            "model": {
                "equation": "x_t = w*sigmoid(x_{t-1}) + b; E = (sigmoid(x_T) - target)^2",
                "steps": self.steps,
                "x0": self.x0,
                "target": self.target,
            },
            "grid": self.grid.to_json_dict(),
            "zoom": self.zoom.to_json_dict(),
            "trajectories": [self.plain.to_json_dict(), self.clipped.to_json_dict()],
        }

    def to_csv_rows(self) -> list[list[str | int | float]]:
        """A tidy table, header first: one row per grid point (``series`` = ``grid`` or
        ``zoom``, ``step`` empty) and one per iterate of each run (``series`` = ``sgd`` or
        ``sgd_clipped``; ``grad_norm`` and ``clipped`` describe the step taken *from* that
        iterate, empty for the last)."""
        rows: list[list[str | int | float]] = [
            ["series", "step", "w", "b", "loss", "grad_w", "grad_b", "clipped"]
        ]
        rows += self.grid.csv_rows("grid")
        rows += self.zoom.csv_rows("zoom")
        for name, tr in (("sgd", self.plain), ("sgd_clipped", self.clipped)):
            for k, (wv, bv) in enumerate(tr.points):
                has_step = k < tr.clipped.size
                rows.append(
                    [
                        name,
                        k,
                        float(wv),
                        float(bv),
                        float(tr.loss[k]),
                        "",
                        "",
                        int(tr.clipped[k]) if has_step else "",
                    ]
                )
        return rows


def _check_range(name: str, r: tuple[float, float]) -> tuple[float, float]:
    lo, hi = _as_float(f"{name} lower end", r[0]), _as_float(f"{name} upper end", r[1])
    if not lo < hi:
        raise UsageError(f"{name} must be an increasing pair (lo, hi), got {r!r}")
    return lo, hi


def zoom_window(
    plain: Trajectory, clipped: Trajectory
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (w, b) box holding the clipped run and the plain run up to its longest step (the
    jump off the wall), padded by 15 %: where the two runs meet the wall."""
    k = int(np.argmax(plain.step_lengths)) if plain.step_lengths.size else 0
    pts = np.vstack([clipped.points, plain.points[: k + 1]])  # (M, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.15 * (hi - lo) + 1e-3  # the floor keeps a box around a run that did not move
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def compute_error_surface(
    w_range: tuple[float, float] = DEFAULT_W_RANGE,
    b_range: tuple[float, float] = DEFAULT_B_RANGE,
    n_w: int = DEFAULT_GRID,
    n_b: int = DEFAULT_GRID,
    start: tuple[float, float] = DEFAULT_START,
    lr: float = DEFAULT_LR,
    threshold: float = DEFAULT_THRESHOLD,
    n_steps: int = DEFAULT_STEPS,
    steps: int = PAPER_STEPS,
    x0: float = PAPER_X0,
    target: float = PAPER_TARGET,
) -> ErrorSurface:
    """Fig. 6: E_T and ∂E/∂(w, b) on an ``n_w × n_b`` grid (and on a zoom grid of the same
    size around the wall where the runs meet it), plus plain and clipped descent from
    ``start`` with the same ``lr`` for ``n_steps`` steps.

    The defaults are the paper's model (T = 50, x_0 = 0.5, target 0.7) and a view, start,
    learning rate and clipping threshold that show the wall and the two behaviours of
    section 2.3 (see the module constants for why).
    """
    grid = SurfaceGrid.compute(w_range, b_range, n_w, n_b, steps=steps, x0=x0, target=target)
    plain = descend(start, lr, n_steps, None, steps, x0, target)
    clipped = descend(start, lr, n_steps, threshold, steps, x0, target)
    zw, zb = zoom_window(plain, clipped)
    zoom = SurfaceGrid.compute(zw, zb, n_w, n_b, steps=steps, x0=x0, target=target)
    return ErrorSurface(
        grid=grid,
        zoom=zoom,
        plain=plain,
        clipped=clipped,
        steps=int(steps),
        x0=float(x0),
        target=float(target),
    )


# ---------------------------------------------------------------------------------- drawing


def plot_error_surface(data: ErrorSurface, path: str | Path) -> Path:
    """Draw Fig. 6 to ``path`` (PNG or SVG by suffix) and return the path.

    (a) The surface E_T(w, b) in 3-D, as in the paper, with both runs drawn on it. (b) The
    plane seen from above, shaded by log10 ‖∂E/∂(w, b)‖ so the wall is the thin dark ridge,
    with E contours and the runs as arrows: solid for plain SGD, dashed for clipped SGD (the
    paper's dashed arrows). (c) A zoom on the wall where the clipped run stays.
    """
    check_path(path)  # fail before drawing anything

    fig = new_figure(19.0, 6.0)
    ax3 = fig.add_subplot(1, 3, 1, projection="3d", computed_zorder=False)
    ax2 = fig.add_subplot(1, 3, 2)
    axz = fig.add_subplot(1, 3, 3)
    _draw_surface_3d(ax3, data)
    vmax = max(float(data.grid.grad_norm.max()), float(data.zoom.grad_norm.max()), 1e-3)
    mesh = _draw_plan(ax2, data, data.grid, vmax)
    _draw_plan(axz, data, data.zoom, vmax, zoom=True)
    fig.colorbar(
        mesh,
        ax=[ax2, axz],
        shrink=0.9,
        label=r"$\|\partial\mathcal{E}/\partial(w,b)\|$ (log scale)",
    )
    start = data.plain.points[0]
    big = int(np.argmax(data.plain.step_lengths)) if data.plain.step_lengths.size else 0
    ax3.set_title("(a) error surface", fontsize=10)
    ax2.set_title(
        f"(b) from above: start ({start[0]:g}, {start[1]:g}), lr = {data.plain.lr:g}, "
        f"{data.plain.grad_norm.size} steps",
        fontsize=10,
    )
    axz.set_title(
        f"(c) zoom: at step {big} plain SGD meets ‖g‖ = {_at(data.plain.grad_norm, big):.3g}",
        fontsize=10,
    )
    fig.suptitle(
        "Fig. 6 of Pascanu, Mikolov & Bengio (2013), §2.3: error surface "
        rf"$\mathcal{{E}}_{{{data.steps}}} = (\sigma(x_{{{data.steps}}}) - {data.target:g})^2$ "
        rf"of the one-unit RNN $x_t = w\,\sigma(x_{{t-1}}) + b$, $x_0 = {data.x0:g}$"
        "\nA high-curvature wall: plain SGD (solid) is thrown off it, "
        "SGD with norm clipping (Algorithm 1, dashed) stays beside it",
        fontsize=11,
    )
    return save_figure(fig, path)


def _at(a: FloatArray, k: int) -> float:
    return float(a[k]) if a.size else float("nan")


def _draw_surface_3d(ax: Any, data: ErrorSurface) -> None:
    """E over the grid as a 3-D surface, seen from the valley side so the wall faces us."""
    g = data.grid
    ww, bb = np.meshgrid(g.w, g.b)
    ax.plot_surface(
        ww,
        bb,
        g.loss,
        cmap="viridis",
        rcount=g.b.size,  # full resolution: a coarser mesh smears the wall into a ramp
        ccount=g.w.size,
        linewidth=0,
        antialiased=False,
        alpha=0.9,
        rasterized=True,  # 40 000 facets: as vectors the SVG would weigh ~8 MB
    )
    for tr, colour, style in (
        (data.plain, PLAIN_COLOUR, "-"),
        (data.clipped, CLIPPED_COLOUR, "--"),
    ):
        inside = _inside(tr.points, g)
        pts, z = tr.points[inside], tr.loss[inside]
        ax.plot(pts[:, 0], pts[:, 1], z, style, color=colour, lw=1.6, marker="o", ms=2.5)
    ax.set_xlabel("w (recurrent weight)")
    ax.set_ylabel("b (bias)")
    ax.set_zlabel(rf"$\mathcal{{E}}_{{{data.steps}}}$", labelpad=2)
    ax.set_box_aspect(None, zoom=0.92)  # leave room for the z label beside panel (b)
    ax.view_init(elev=35, azim=120)


def _draw_plan(
    ax: Any, data: ErrorSurface, grid: SurfaceGrid, vmax: float, zoom: bool = False
) -> Any:
    """The (w, b) plane from above; returns the shaded mesh for a shared colour bar."""
    from matplotlib import colors  # local: keep importing the module cheap for the CLI

    ww, bb = np.meshgrid(grid.w, grid.b)
    # Floor the norm: on the plateau it is ~1e-7 and would eat the colour range.
    mesh = ax.pcolormesh(
        ww,
        bb,
        np.maximum(grid.grad_norm, 1e-4),
        shading="auto",
        cmap="Greys",
        norm=colors.LogNorm(vmin=1e-4, vmax=vmax),
        rasterized=True,  # keeps the SVG small: 40 000 cells as one image
    )
    cs = ax.contour(
        ww,
        bb,
        grid.loss,
        levels=[0.001, 0.01, 0.03, 0.06, 0.1, 0.2, 0.3, 0.4],
        cmap="viridis",
        linewidths=0.8,
    )
    ax.clabel(cs, fontsize=6, fmt="E=%g")
    # Plain SGD wide and below, clipped SGD thin, dashed and on top: until the wall the runs
    # coincide, and clipping keeps the direction, so the clipped step at the wall lies on the
    # plain one; this way both stay visible where they overlap.
    _draw_path(ax, data.plain, PLAIN_COLOUR, "-", lw=2.6, zorder=4)
    _draw_path(ax, data.clipped, CLIPPED_COLOUR, "--", lw=1.2, zorder=5)
    s = data.plain.points[0]
    ax.plot(*s, "o", color="w", mec="k", ms=7, zorder=6, label="start")
    ax.set_xlim(grid.w[0], grid.w[-1])
    ax.set_ylim(grid.b[0], grid.b[-1])
    if not zoom:
        ax.legend(loc="upper left", fontsize=8, framealpha=0.95)
    ax.set_xlabel("w (recurrent weight)")
    ax.set_ylabel("b (bias)")
    return mesh


def _inside(points: FloatArray, grid: SurfaceGrid) -> npt.NDArray[np.bool_]:
    """Which iterates lie in the plotted (w, b) window (a 3-D axis does not clip lines)."""
    return (
        (points[:, 0] >= grid.w[0])
        & (points[:, 0] <= grid.w[-1])
        & (points[:, 1] >= grid.b[0])
        & (points[:, 1] <= grid.b[-1])
    )


def _draw_path(ax: Any, tr: Trajectory, colour: str, style: str, lw: float, zorder: float) -> None:
    """One run as a chain of arrows, one per step, ending in a square."""
    pts = tr.points
    ax.plot(pts[:, 0], pts[:, 1], style, color=colour, lw=lw, label=_legend(tr), zorder=zorder)
    for k in range(len(pts) - 1):
        (x0, y0), (x1, y1) = pts[k], pts[k + 1]
        if np.hypot(x1 - x0, y1 - y0) < 1e-12:
            continue
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": lw,
                "ls": style,
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 8 + 2 * lw,
            },
            zorder=zorder,
        )
    ax.plot(*pts[-1], "s", color=colour, mec="k", ms=6, zorder=zorder + 0.5)


def _legend(tr: Trajectory) -> str:
    longest = float(tr.step_lengths.max()) if tr.step_lengths.size else 0.0
    kind = "SGD" if tr.threshold is None else f"SGD + norm clipping at {tr.threshold:g}"
    return f"{kind}: longest step {longest:.3g}, final E = {tr.loss[-1]:.2g}"
