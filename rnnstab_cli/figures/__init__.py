"""The analysis figures of Pascanu, Mikolov & Bengio (2013), computed with the engine.

Each figure is a ``compute_*`` function returning a dataclass of numpy arrays (with
``to_json_dict()`` and ``to_csv_rows()`` for machine-readable dumps) and a ``plot_*(data,
path)`` function that writes PNG or SVG according to the path's suffix:

- Fig. 6 (§2.3), the error surface of a one-unit RNN with its wall, and plain vs. clipped
  gradient descent: :func:`compute_error_surface`, :func:`plot_error_surface`.
- Fig. 3 (§2.2), the bifurcation diagram of the same unit with w = 5 (Doya, 1993):
  :func:`compute_bifurcation`, :func:`plot_bifurcation`.
- The spectrum of W_rec before/after training against the 1 and 1/γ circles (§2.1):
  :func:`compute_spectrum`, :func:`plot_spectrum`.

:func:`render_examples` writes the figures shipped in ``docs/figures``.
"""

from __future__ import annotations

from pathlib import Path

from rnnstab_cli.figures.bifurcation import (
    Bifurcation,
    FixedPoints,
    compute_bifurcation,
    fixed_points,
    plot_bifurcation,
    saddle_nodes,
)
from rnnstab_cli.figures.error_surface import (
    ErrorSurface,
    SurfaceGrid,
    Trajectory,
    compute_error_surface,
    descend,
    error_and_grad,
    plot_error_surface,
)
from rnnstab_cli.figures.spectrum import (
    Spectrum,
    compute_spectrum,
    example_spectrum,
    plot_spectrum,
)

__all__ = [
    "Bifurcation",
    "ErrorSurface",
    "FixedPoints",
    "Spectrum",
    "SurfaceGrid",
    "Trajectory",
    "compute_bifurcation",
    "compute_error_surface",
    "compute_spectrum",
    "descend",
    "error_and_grad",
    "example_spectrum",
    "fixed_points",
    "plot_bifurcation",
    "plot_error_surface",
    "plot_spectrum",
    "render_examples",
    "saddle_nodes",
]


def render_examples(out_dir: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Render every figure with its defaults into ``out_dir`` (the files in ``docs/figures``):
    ``fig6-error-surface``, ``fig3-bifurcation`` and ``spectrum-example`` in each format."""
    out = Path(out_dir)
    surface, bifurcation, spectrum = (
        compute_error_surface(),
        compute_bifurcation(),
        example_spectrum(),
    )
    written: list[Path] = []
    for fmt in formats:
        written.append(plot_error_surface(surface, out / f"fig6-error-surface.{fmt}"))
        written.append(plot_bifurcation(bifurcation, out / f"fig3-bifurcation.{fmt}"))
        written.append(plot_spectrum(spectrum, out / f"spectrum-example.{fmt}"))
    return written
