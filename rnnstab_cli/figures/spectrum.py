"""The eigenvalues of W_rec before and after training, against the circles of section 2.1.

Section 2.1 of Pascanu, Mikolov & Bengio (2013) bounds the Jacobian ∂x_t/∂x_{t−1} =
W_recᵀ·diag(σ'(x_{t−1})) by ‖W_rec‖·γ with γ = sup|σ'|: if the largest |eigenvalue| λ₁ of
W_rec is below 1/γ the long-term gradient components vanish (sufficient), and λ₁ > 1/γ is
necessary for them to explode. For tanh γ = 1 and 1/γ is the unit circle; for the sigmoid
γ = 1/4, so the explosion boundary is the circle of radius 4. Plotting the spectrum on the
complex plane with these circles shows in which regime a network starts and ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rnnstab_cli import engine
from rnnstab_cli.errors import UsageError
from rnnstab_cli.figures.plotting import (
    CLIPPED_COLOUR,
    GUIDE_COLOUR,
    PLAIN_COLOUR,
    check_path,
    new_figure,
    save_figure,
)

__all__ = ["GAMMA", "Spectrum", "compute_spectrum", "example_spectrum", "plot_spectrum"]

ComplexArray = npt.NDArray[np.complex128]

#: γ = sup_x |σ'(x)| for each activation (section 2.1: "for tanh we have γ = 1 while for
#: sigmoid we have γ = 1/4"); relu and linear have slope at most 1.
GAMMA: Final[dict[str, float]] = engine.GAMMA


def _w_rec(name: str, params: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """W_rec from a parameter dict, or the matrix itself; checked square and finite."""
    w = params["W_rec"] if isinstance(params, Mapping) else params
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise UsageError(f"{name}: W_rec must be a non-empty square matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise UsageError(f"{name}: W_rec has non-finite entries")
    return w


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class Spectrum:
    """Eigenvalues of W_rec ``before (H,)`` and ``after (H,)`` (complex, sorted by decreasing
    modulus), their spectral radii λ₁, and γ of ``activation`` if one was given."""

    before: ComplexArray
    after: ComplexArray
    radius_before: float
    radius_after: float
    activation: str | None
    gamma: float | None
    label_before: str = "before training"
    label_after: str = "after training"
    title: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        def pairs(z: ComplexArray) -> list[list[float]]:
            return [[float(v.real), float(v.imag)] for v in z]

        return {
            "figure": "spectrum",
            "section": "2.1",
            "activation": self.activation,
            "gamma": self.gamma,
            "explosion_radius": None if self.gamma is None else 1.0 / self.gamma,
            "before": {
                "label": self.label_before,
                "spectral_radius": self.radius_before,
                "eigenvalues": pairs(self.before),
            },
            "after": {
                "label": self.label_after,
                "spectral_radius": self.radius_after,
                "eigenvalues": pairs(self.after),
            },
        }

    def to_csv_rows(self) -> list[list[str | int | float]]:
        """Header first; one row per eigenvalue: which matrix, rank by modulus, real, imag,
        modulus."""
        rows: list[list[str | int | float]] = [["which", "index", "real", "imag", "abs"]]
        for which, z in (("before", self.before), ("after", self.after)):
            for i, v in enumerate(z):
                rows.append([which, i, float(v.real), float(v.imag), float(abs(v))])
        return rows


def _sorted_eigs(w: np.ndarray) -> ComplexArray:
    lam = np.linalg.eigvals(w).astype(np.complex128)
    # Stable order (modulus, then angle) so dumps of the same matrix are identical.
    order = np.lexsort((np.angle(lam), -np.abs(lam)))
    return lam[order]


def compute_spectrum(
    params_before: Mapping[str, np.ndarray] | np.ndarray,
    params_after: Mapping[str, np.ndarray] | np.ndarray,
    activation: str | None = None,
    label_before: str = "before training",
    label_after: str = "after training",
    title: str | None = None,
) -> Spectrum:
    """Eigenvalues of W_rec in two parameter sets (dicts with ``"W_rec"`` or the matrices).

    The spectral radius is the engine's :func:`~rnnstab_cli.engine.spectral_radius` (the
    paper's λ₁). With ``activation`` the plot adds the 1/γ circle of section 2.1.
    """
    if activation is not None and activation not in GAMMA:
        raise UsageError(f"unknown activation '{activation}'; expected one of: {', '.join(GAMMA)}")
    wb, wa = _w_rec("params_before", params_before), _w_rec("params_after", params_after)
    return Spectrum(
        before=_sorted_eigs(wb),
        after=_sorted_eigs(wa),
        radius_before=engine.spectral_radius(wb),
        radius_after=engine.spectral_radius(wa),
        activation=activation,
        gamma=None if activation is None else GAMMA[activation],
        label_before=label_before,
        label_after=label_after,
        title=title,
    )


def plot_spectrum(data: Spectrum, path: str | Path) -> Path:
    """Draw both spectra on the complex plane to ``path`` (PNG or SVG by suffix).

    The unit circle is always drawn; for an activation with γ ≠ 1 (the sigmoid) the 1/γ
    circle too, since that, not 1, is where section 2.1 puts the onset of explosion.
    """
    check_path(path)  # fail before drawing anything
    fig = new_figure(7.0, 8.2)
    ax = fig.add_subplot(1, 1, 1)
    t = np.linspace(0.0, 2.0 * np.pi, 721)
    ax.plot(np.cos(t), np.sin(t), color=GUIDE_COLOUR, lw=1.2, label="unit circle |λ| = 1")
    extent = max(1.0, data.radius_before, data.radius_after)
    if data.gamma is not None and data.gamma != 1.0:
        r = 1.0 / data.gamma
        ax.plot(
            r * np.cos(t),
            r * np.sin(t),
            color=GUIDE_COLOUR,
            lw=1.2,
            ls="--",
            label=f"|λ| = 1/γ = {r:g} ({data.activation}: explosion needs λ₁ > 1/γ)",
        )
        extent = max(extent, r)
    for z, radius, label, colour, marker in (
        (data.before, data.radius_before, data.label_before, PLAIN_COLOUR, "o"),
        (data.after, data.radius_after, data.label_after, CLIPPED_COLOUR, "x"),
    ):
        ax.plot(
            z.real,
            z.imag,
            marker,
            color=colour,
            ms=5,
            mfc="none" if marker == "o" else colour,
            ls="none",
            label=rf"{label}: $\rho(W_{{rec}})$ = {radius:.3g}",
        )
        ax.plot(radius * np.cos(t), radius * np.sin(t), color=colour, lw=0.8, ls=":")
    lim = 1.12 * extent
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0.0, color=GUIDE_COLOUR, lw=0.5)
    ax.axvline(0.0, color=GUIDE_COLOUR, lw=0.5)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title(
        data.title or "Eigenvalues of $W_{rec}$ (Pascanu, Mikolov & Bengio 2013, §2.1)",
        fontsize=11,
    )
    # Below the axes: inside, it would hide eigenvalues near the circles.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), fontsize=8, frameon=False)
    return save_figure(fig, path)


#: The example's settings: the paper's synthetic-task networks have 50 tanh units with
#: weights N(0, 0.1²) (appendix); 1.1 is just past the λ₁ > 1/γ = 1 line of section 2.1.
EXAMPLE_HIDDEN: Final[int] = 50
EXAMPLE_SCALE: Final[float] = 0.1
EXAMPLE_RADIUS: Final[float] = 1.1


def example_spectrum(seed: int = 0) -> Spectrum:
    """Two *untrained* W_rec for the docs: N(0, 0.1²) as initialised by the engine, and the
    same matrix rescaled to spectral radius 1.1 (tanh, so 1/γ = 1)."""
    before = engine.init_params(1, EXAMPLE_HIDDEN, 1, init="normal", scale=EXAMPLE_SCALE, seed=seed)
    after = engine.init_params(
        1,
        EXAMPLE_HIDDEN,
        1,
        init="normal",
        scale=EXAMPLE_SCALE,
        seed=seed,
        spectral_radius_target=EXAMPLE_RADIUS,
    )
    return compute_spectrum(
        before,
        after,
        activation="tanh",
        label_before=(
            rf"$W_{{rec}} \sim \mathcal{{N}}(0, {EXAMPLE_SCALE:g}^2)$, H = {EXAMPLE_HIDDEN}"
        ),
        label_after=f"same, rescaled to ρ = {EXAMPLE_RADIUS:g}",
        title=(
            "Eigenvalues of $W_{rec}$ (Pascanu, Mikolov & Bengio 2013, §2.1)\n"
            "EXAMPLE with two random, untrained matrices:\n"
            rf"$\mathcal{{N}}(0, {EXAMPLE_SCALE:g}^2)$ init vs. the same rescaled to "
            f"spectral radius {EXAMPLE_RADIUS:g} (tanh: 1/γ = 1)"
        ),
    )
