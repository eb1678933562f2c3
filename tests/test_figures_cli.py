"""`rnnstab figure …` and the training-run plot, driven the way users call them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli.cli import main
from rnnstab_cli.figures.training_run import load_history, plot_history


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short temporal-order run with diagnostics, evaluated every 40 updates."""
    d = tmp_path_factory.mktemp("run") / "ckpt"
    code = main(
        [
            "train",
            "--task",
            "temporal-order",
            "--len",
            "20",
            "--hidden",
            "8",
            "--batch",
            "8",
            "--max-updates",
            "120",
            "--eval-every",
            "40",
            "--set",
            "eval_sequences=200",
            "--set",
            "screen_sequences=0",
            "--out",
            str(d),
            "-q",
        ]
    )
    assert code == 10  # not solved in 120 updates, as expected
    return d


def test_bifurcation_json_has_the_two_saddle_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["figure", "bifurcation", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    text = json.dumps(data)
    assert "-2.344" in text and "-2.655" in text  # b₁, b₂ for w = 5


def test_error_surface_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "fig6.png"
    assert main(["figure", "error-surface", "--grid", "20", "--steps", "5", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectrum_of_a_checkpoint(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["figure", "spectrum", str(run_dir), "--json", "-o", str(tmp_path / "s.svg")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["after"]["spectral_radius"] != data["before"]["spectral_radius"]  # W_rec moved
    assert data["after"]["label"] == "after 120 updates"
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["figure", "bifurcation", "-o", "x.jpg"], 2, "suffix"),
        (["figure", "spectrum", "/nonexistent/ckpt"], 4, "/nonexistent/ckpt"),
        (["figure", "bifurcation", "--json", "--csv"], 2, "one of --json and --csv"),
    ],
)
def test_bad_figure_requests_are_one_line_errors(
    argv: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and needle in err[0]


def test_run_history_shows_the_vanishing_error_signal(run_dir: Path, tmp_path: Path) -> None:
    h = load_history(run_dir)
    np.testing.assert_array_equal(h.updates, [40, 80, 120])
    assert h.profile is not None and h.sigma_max is not None and h.inv_gamma == 1.0
    assert h.profile.shape == (3, 21)  # lags 0..T for T = 20
    first = h.profile[0]
    # With small initial weights (ρ < 1 = 1/γ) the signal shrinks with the lag (§2.1): the
    # far end is orders of magnitude below the near end.
    assert h.spectral_radius[0] < 1.0
    assert first[-1] < 1e-2 * first[1]
    assert (h.sigma_max >= h.spectral_radius - 1e-9).all()  # σ_max bounds ρ
    out = plot_history(h, tmp_path / "run.png")
    assert out.stat().st_size > 10_000


def test_plot_draws_a_run_directory(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.svg"
    assert main(["plot", str(run_dir), "-o", str(out)]) == 0
    assert "error signal" in out.read_text()
