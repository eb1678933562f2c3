"""Shared matplotlib helpers for the paper's figures.

Figures are built on :class:`matplotlib.figure.Figure` objects with an Agg canvas, never through
``pyplot``: pyplot keeps global state and may pick an interactive backend, while a bare Figure
renders with Agg (PNG) or the SVG backend chosen by the file's suffix. So a command-line run
never opens a window, two figures drawn in one process never interfere, and importing this
module does not change the backend of a user's own session (no ``matplotlib.use``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rnnstab_cli.errors import UsageError

__all__ = ["FORMATS", "check_path", "new_figure", "save_figure"]

#: File suffixes a plot can be written as, and the matplotlib format each one selects.
FORMATS: Final[dict[str, str]] = {".png": "png", ".svg": "svg"}

#: Colours used consistently across the figures (colour-blind safe Okabe–Ito pairs).
PLAIN_COLOUR: Final[str] = "#D55E00"  # unclipped SGD, "before" spectra
CLIPPED_COLOUR: Final[str] = "#0072B2"  # clipped SGD, "after" spectra
STABLE_COLOUR: Final[str] = "black"
GUIDE_COLOUR: Final[str] = "0.45"

_DPI: Final[int] = 150
# Fixed metadata so rendering the same data twice gives byte-identical files (no dates).
_METADATA: Final[dict[str, dict[str, str | None]]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
}


def check_path(path: str | Path) -> tuple[Path, str]:
    """The output path and its format, or :class:`UsageError` if the suffix is not one we write."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot write a figure to '{p}': the suffix must be one of {', '.join(FORMATS)}"
        )
    return p, fmt


def new_figure(width: float, height: float) -> Figure:
    """A blank figure of ``width`` × ``height`` inches with a constrained layout, drawn by Agg
    whatever ``MPLBACKEND`` says."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG or SVG according to ``path``'s suffix, creating parent folders.

    Returns the path written. The suffix is checked before anything is drawn to disk, so a bad
    path never leaves a half-written file behind.
    """
    p, fmt = check_path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, format=fmt, dpi=_DPI, metadata=_METADATA[fmt])
    except OSError as e:
        raise UsageError(f"cannot write a figure to {str(p)!r}: {e.strerror or e}") from None
    return p
