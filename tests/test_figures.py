"""Tests for rnnstab_cli.figures: Figs. 3 and 6 of Pascanu, Mikolov & Bengio (2013) and the
W_rec spectrum plot.

The engine's numbers are checked against an independent numpy implementation of the 50-step
recursion of eq. (8) (forward-mode derivatives, itself checked by finite differences), and the
figures against the paper's statements: the wall is where the gradient norm peaks (§2.3),
clipping bounds the step while a plain step jumps off the wall (Fig. 6, Algorithm 1), and for
w = 5 two attractors coexist exactly between the saddle-nodes b₂ < b₁ (§2.2, Fig. 3).
Grids are small so the whole file runs in a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnstab_cli.errors import UsageError
from rnnstab_cli.figures import (
    compute_bifurcation,
    compute_error_surface,
    compute_spectrum,
    descend,
    error_and_grad,
    example_spectrum,
    fixed_points,
    plot_bifurcation,
    plot_error_surface,
    plot_spectrum,
    saddle_nodes,
)
from rnnstab_cli.figures.bifurcation import basin_boundary_b, iterate_map
from rnnstab_cli.figures.error_surface import (
    DEFAULT_LR,
    DEFAULT_START,
    DEFAULT_STEPS,
    DEFAULT_THRESHOLD,
)
from rnnstab_cli.figures.plotting import check_path

FloatArray = npt.NDArray[np.float64]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sigmoid(x: FloatArray | float) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def reference_e50(
    w: float, b: float, steps: int = 50, x0: float = 0.5, target: float = 0.7
) -> tuple[float, float, float]:
    """E_T = (σ(x_T) − target)² of x_t = w·σ(x_{t−1}) + b and (∂E/∂w, ∂E/∂b), by carrying the
    derivatives of x_t forward through the recursion (no backprop, no engine)."""
    x, dx_dw, dx_db = x0, 0.0, 0.0
    for _ in range(steps):
        s = float(sigmoid(x))
        ds = s * (1.0 - s)
        # x_t = w·σ(x_{t−1}) + b  ⇒  dx_t = σ(x_{t−1})·dw + db + w·σ'(x_{t−1})·dx_{t−1}
        dx_dw = s + w * ds * dx_dw
        dx_db = 1.0 + w * ds * dx_db
        x = w * s + b
    s = float(sigmoid(x))
    de_dx = 2.0 * (s - target) * s * (1.0 - s)
    return (s - target) ** 2, de_dx * dx_dw, de_dx * dx_db


# Points on both sides of the wall, on the smooth valley, on the plateaus and near the cusp.
REFERENCE_POINTS = [(2.0, -1.0), (3.0, 0.5), (4.5, -2.2), (4.9, -2.4), (6.0, -1.0), (-1.5, 2.0)]


# ------------------------------------------------------------------------- Fig. 6: numbers


def test_numpy_reference_agrees_with_finite_differences() -> None:
    # The reference must itself be right before it can judge the engine.
    h = 1e-6
    for w, b in [(2.0, -1.0), (4.5, -2.2), (3.0, 0.5)]:
        _, gw, gb = reference_e50(w, b)
        fd_w = (reference_e50(w + h, b)[0] - reference_e50(w - h, b)[0]) / (2 * h)
        fd_b = (reference_e50(w, b + h)[0] - reference_e50(w, b - h)[0]) / (2 * h)
        assert gw == pytest.approx(fd_w, rel=1e-5, abs=1e-9)
        assert gb == pytest.approx(fd_b, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("chunk", [1, 16])
def test_engine_error_and_gradient_match_numpy_recursion(chunk: int) -> None:
    w = np.array([p[0] for p in REFERENCE_POINTS])
    b = np.array([p[1] for p in REFERENCE_POINTS])
    e, gw, gb = error_and_grad(w, b, chunk=chunk)
    for i, (wi, bi) in enumerate(REFERENCE_POINTS):
        re, rw, rb = reference_e50(wi, bi)
        assert e[i] == pytest.approx(re, rel=1e-10, abs=1e-15)
        assert gw[i] == pytest.approx(rw, rel=1e-8, abs=1e-13)
        assert gb[i] == pytest.approx(rb, rel=1e-8, abs=1e-13)


def test_engine_indexing_gives_x_t_after_t_steps() -> None:
    # One step from x_0 = 0.5: x_1 = w·σ(0.5) + b, so E_1 = (σ(x_1) − 0.7)² in closed form; an
    # off-by-one (x_0 or x_2 scored) would not match.
    w, b = 3.0, -1.0
    x1 = w * sigmoid(0.5) + b
    e, _, gb = error_and_grad(w, b, steps=1)
    assert float(e) == pytest.approx(float((sigmoid(x1) - 0.7) ** 2), rel=1e-12)
    assert float(gb) == pytest.approx(
        float(2 * (sigmoid(x1) - 0.7) * sigmoid(x1) * (1 - sigmoid(x1)))
    )
    for steps in (2, 7, 50):
        assert float(error_and_grad(w, b, steps=steps)[0]) == pytest.approx(
            reference_e50(w, b, steps=steps)[0], rel=1e-10
        )


def test_batched_units_agree_with_one_call_per_point() -> None:
    # Block-diagonal batching is only valid if units do not interact; chunk=7 also exercises
    # a last chunk that is not full.
    rng = np.random.default_rng(3)
    w = rng.uniform(3.0, 7.0, (5, 9))
    b = rng.uniform(-4.0, 2.0, (5, 9))
    single = error_and_grad(w, b, chunk=1)
    for chunk in (7, 16, 64):
        batched = error_and_grad(w, b, chunk=chunk)
        for got, want in zip(batched, single, strict=True):
            assert got.shape == (5, 9)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-14)


def test_wall_is_where_the_gradient_norm_peaks() -> None:
    # §2.3: the wall of high curvature is where ‖∂E/∂θ‖ explodes. Along w at fixed b the
    # largest gradient norm must sit at the steepest change of E, be orders of magnitude above
    # the median, and lie where x_0 = 0.5 is the unstable fixed point: 0.5 = w·σ(0.5) + b.
    # (b = −2.45 crosses the wall at w ≈ 4.74, past the cusp, where it is already sharp.)
    b = -2.45
    w = np.linspace(3.5, 5.5, 4001)
    e, gw, gb = error_and_grad(w, np.full_like(w, b))
    norm = np.hypot(gw, gb)
    k = int(np.argmax(norm))
    steepest = int(np.argmax(np.abs(np.diff(e))))  # between w[steepest] and w[steepest + 1]
    assert k in (steepest, steepest + 1)
    assert norm[k] > 1e3 * np.median(norm)
    # E jumps across the wall: from the high-error side (x_50 on the low attractor) to the
    # low-error side, where σ(x_50) passes 0.7 right at the foot of the wall.
    assert e[: k - 1].min() > 0.2 and e[k + 1 :].min() < 1e-3
    w_theory = (0.5 - b) / float(sigmoid(0.5))
    assert w[k] == pytest.approx(w_theory, abs=2e-3)


def test_wall_at_w5_is_the_basin_boundary_crossing_of_fig3() -> None:
    # Fig. 3 and Fig. 6 describe the same event: at w = 5 the gradient along b peaks where
    # x_0 = 0.5 crosses the basin boundary (the unstable branch) of the bifurcation diagram.
    cross = basin_boundary_b(5.0, 0.5)
    assert cross is not None
    b = np.linspace(cross - 0.05, cross + 0.05, 4001)
    _, gw, gb = error_and_grad(np.full_like(b, 5.0), b)
    assert b[int(np.argmax(np.hypot(gw, gb)))] == pytest.approx(cross, abs=1e-4)


# ---------------------------------------------------------------------- Fig. 6: descent


@pytest.fixture(scope="module")
def small_surface():  # type: ignore[no-untyped-def]
    """The default figure (start, lr, threshold, 40 steps) on a small grid."""
    return compute_error_surface(n_w=12, n_b=10)


def test_clipping_bounds_every_step_and_plain_sgd_jumps_off_the_wall(small_surface) -> None:  # type: ignore[no-untyped-def]
    plain, clipped = small_surface.plain, small_surface.clipped
    bound = DEFAULT_LR * DEFAULT_THRESHOLD
    assert plain.step_lengths.size == clipped.step_lengths.size == DEFAULT_STEPS
    assert np.all(clipped.step_lengths <= bound * (1 + 1e-12))
    assert plain.step_lengths.max() > 10 * bound
    # The jump comes from a huge gradient (the wall), not from a long run of moderate ones.
    k = int(np.argmax(plain.step_lengths))
    assert plain.grad_norm[k] > 50 * np.median(plain.grad_norm[:k])
    # Until the wall both runs are the same (clipping is idle below the threshold)...
    assert not clipped.clipped[:k].any()
    np.testing.assert_array_equal(plain.points[: k + 1], clipped.points[: k + 1])
    # ...then plain SGD lands on the flat plateau σ(x_50) ≈ 1 (E ≈ 0.09) and stays, while
    # the clipped run goes on down the valley.
    assert plain.loss[-1] == pytest.approx(0.09, abs=2e-3)
    assert plain.grad_norm[-1] < 1e-3
    assert clipped.loss[-1] < 0.01 < plain.loss[-1]


def test_clipped_steps_are_algorithm_1(small_surface) -> None:  # type: ignore[no-untyped-def]
    # Algorithm 1: a step is rescaled iff ‖g‖ ≥ threshold, to length lr·threshold, along −g.
    tr = small_surface.clipped
    over = tr.grad_norm >= DEFAULT_THRESHOLD
    assert over.any() and (~over).any()
    np.testing.assert_array_equal(tr.clipped, over)
    lengths = tr.step_lengths
    np.testing.assert_allclose(lengths[over], DEFAULT_LR * DEFAULT_THRESHOLD, rtol=1e-12)
    np.testing.assert_allclose(lengths[~over], DEFAULT_LR * tr.grad_norm[~over], rtol=1e-12)
    for k in np.flatnonzero(over):
        _, gw, gb = error_and_grad(*tr.points[k])
        step = tr.points[k + 1] - tr.points[k]
        g = np.array([float(gw), float(gb)])
        cos = -step @ g / (np.linalg.norm(step) * np.linalg.norm(g))
        assert cos == pytest.approx(1.0, abs=1e-12)


def test_descent_loss_is_the_error_at_each_iterate() -> None:
    tr = descend(DEFAULT_START, lr=DEFAULT_LR, n_steps=5)
    assert tr.points.shape == (6, 2) and tr.loss.shape == (6,) and tr.grad_norm.shape == (5,)
    for p, e in zip(tr.points, tr.loss, strict=True):
        assert e == pytest.approx(reference_e50(*p)[0], rel=1e-10)
    # Plain SGD: θ_{k+1} = θ_k − lr·∇E(θ_k).
    _, gw, gb = reference_e50(*DEFAULT_START)
    np.testing.assert_allclose(
        tr.points[1], np.array(DEFAULT_START) - DEFAULT_LR * np.array([gw, gb]), rtol=1e-10
    )


def test_surface_grid_layout_and_dumps(small_surface) -> None:  # type: ignore[no-untyped-def]
    g = small_surface.grid
    assert g.w.shape == (12,) and g.b.shape == (10,) and g.loss.shape == (10, 12)
    # loss[i, j] is at (w[j], b[i]).
    i, j = 7, 3
    assert g.loss[i, j] == pytest.approx(reference_e50(g.w[j], g.b[i])[0], rel=1e-10)
    d = json.loads(json.dumps(small_surface.to_json_dict()))
    assert d["paper_figure"] == 6 and d["model"]["steps"] == 50
    assert np.array(d["grid"]["loss"]).shape == (10, 12)
    assert len(d["trajectories"]) == 2 and d["trajectories"][1]["threshold"] == DEFAULT_THRESHOLD
    rows = small_surface.to_csv_rows()
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    parsed = list(csv.reader(io.StringIO(buf.getvalue())))
    assert parsed[0] == ["series", "step", "w", "b", "loss", "grad_w", "grad_b", "clipped"]
    series = [r[0] for r in parsed[1:]]
    assert series.count("grid") == series.count("zoom") == 120
    assert series.count("sgd") == series.count("sgd_clipped") == DEFAULT_STEPS + 1
    assert all(len(r) == 8 for r in parsed)


def test_zoom_grid_frames_the_runs_at_the_wall(small_surface) -> None:  # type: ignore[no-untyped-def]
    z, c = small_surface.zoom, small_surface.clipped
    assert z.w[0] < c.points[:, 0].min() and c.points[:, 0].max() < z.w[-1]
    assert z.b[0] < c.points[:, 1].min() and c.points[:, 1].max() < z.b[-1]
    # The wall passes through the zoom: it holds both sides of the cliff.
    assert z.loss.max() > 0.2 and z.loss.min() < 0.01


@pytest.mark.parametrize(
    "kwargs",
    [
        {"w_range": (5.0, 3.0)},
        {"b_range": (0.0, float("nan"))},
        {"n_w": 1},
        {"lr": 0.0},
        {"threshold": -1.0},
        {"n_steps": -1},
    ],
)
def test_error_surface_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        compute_error_surface(**({"n_w": 4, "n_b": 4} | kwargs))  # type: ignore[arg-type]


def test_plot_error_surface_writes_png_and_svg(tmp_path: Path) -> None:
    # 20 steps (the wall is met at step 15) keep the arrow count, and so the time, down.
    data = compute_error_surface(n_w=8, n_b=8, n_steps=20)
    png = plot_error_surface(data, tmp_path / "sub" / "fig6.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    svg = plot_error_surface(data, tmp_path / "fig6.svg")
    assert "<svg" in svg.read_text()[:2000]
    with pytest.raises(UsageError, match="suffix"):
        plot_error_surface(data, tmp_path / "fig6.pdf")
    assert not (tmp_path / "fig6.pdf").exists()


# ------------------------------------------------------------------------ Fig. 3: numbers

W = 5.0


def analytic_saddle_nodes(w: float) -> tuple[float, float]:
    """The brief's closed form: w·σ'(x) = 1 ⇒ σ(x) = (1 ± √(1 − 4/w))/2, b = x − w·σ(x)."""
    out = []
    for sign in (-1.0, 1.0):
        s = (1 + sign * np.sqrt(1 - 4 / w)) / 2
        x = np.log(s / (1 - s))
        out.append(x - w * s)
    return max(out), min(out)  # b₁ > b₂


def test_saddle_nodes_match_the_analytic_values() -> None:
    b, x = saddle_nodes(W)
    b1, b2 = analytic_saddle_nodes(W)
    assert b[0] == pytest.approx(b1, abs=1e-12) and b[1] == pytest.approx(b2, abs=1e-12)
    assert b1 == pytest.approx(-2.344390, abs=1e-6) and b2 == pytest.approx(-2.655610, abs=1e-6)
    # They are fixed points (x = w·σ(x) + b) with slope exactly 1 (tangency).
    np.testing.assert_allclose(W * sigmoid(x) + b, x, atol=1e-12)
    np.testing.assert_allclose(W * sigmoid(x) * (1 - sigmoid(x)), 1.0, atol=1e-12)
    assert saddle_nodes(3.9)[0].size == 0


def test_number_of_fixed_points_changes_exactly_at_the_bifurcations() -> None:
    b1, b2 = analytic_saddle_nodes(W)
    for bif in (b1, b2):
        counts = {len(fixed_points(W, bif + d).x) for d in (-1e-4, 1e-4)}
        assert counts == {1, 3}
    assert len(fixed_points(W, b1 + 1e-4).x) == 1 and len(fixed_points(W, b2 - 1e-4).x) == 1


def test_two_attractors_strictly_between_b2_and_b1_one_outside() -> None:
    # §2.2: "In the interval (b_1, b_2) we are in a rich regime, where there are two
    # attractors"; outside it there is one.
    b1, b2 = analytic_saddle_nodes(W)
    for b in np.linspace(b2, b1, 41)[1:-1]:
        fp = fixed_points(W, b)
        assert fp.stable.tolist() == [True, False, True], b  # boundary between attractors
        np.testing.assert_allclose(W * sigmoid(fp.x) + b, fp.x, atol=1e-12)
    for b in np.concatenate([np.linspace(-8.0, b2 - 0.01, 30), np.linspace(b1 + 0.01, 3, 30)]):
        fp = fixed_points(W, b)
        assert fp.stable.tolist() == [True], b


def test_iterating_the_map_converges_to_the_computed_attractors() -> None:
    # The engine's dynamics (independent of the root finder): from 161 starts every orbit ends
    # on a computed attractor, each attractor is reached, and the unstable fixed point
    # separates the basins.
    starts = np.linspace(-8.0, 8.0, 161)
    for b in (-3.0, -2.6, -2.5, -2.4, -2.0):
        fp = fixed_points(W, b)
        keep = np.all(np.abs(starts[:, None] - fp.boundaries[None, :]) > 0.05, axis=1)
        final = iterate_map(W, b, starts[keep], 400)
        nearest = np.abs(final[:, None] - fp.attractors[None, :]).min(axis=1)
        assert nearest.max() < 1e-8, b
        reached = {int(np.argmin(np.abs(fp.attractors - v))) for v in final}
        assert reached == set(range(fp.attractors.size)), b
        if fp.boundaries.size:
            above = starts[keep] > fp.boundaries[0]
            np.testing.assert_allclose(final[above], fp.attractors[-1], atol=1e-8)
            np.testing.assert_allclose(final[~above], fp.attractors[0], atol=1e-8)


@given(w=st.floats(0.1, 3.9), b=st.floats(-10.0, 10.0))
def test_below_w4_there_is_always_exactly_one_attractor(w: float, b: float) -> None:
    # w·σ' ≤ w/4 < 1: F − id is strictly decreasing, so one fixed point, and it is stable.
    fp = fixed_points(w, b)
    assert fp.stable.tolist() == [True]


@given(w=st.floats(4.5, 12.0), b=st.floats(-14.0, 2.0))
def test_three_fixed_points_iff_b_in_the_bistable_interval(w: float, b: float) -> None:
    bifs, _ = saddle_nodes(w)
    b1, b2 = float(bifs[0]), float(bifs[1])
    if min(abs(b - b1), abs(b - b2)) < 1e-3:
        return  # too close to a tangency for a sign-change scan to be a fair test
    fp = fixed_points(w, b)
    assert len(fp.x) == (3 if b2 < b < b1 else 1)


def test_bifurcation_diagram_data() -> None:
    d = compute_bifurcation()
    # The branch curve is made of fixed points, classified by |F'| < 1.
    np.testing.assert_allclose(W * sigmoid(d.x_curve) + d.b_curve, d.x_curve, atol=1e-12)
    np.testing.assert_array_equal(d.stable, np.abs(d.slope) < 1)
    # The fold of the curve (where b(x) turns) is at the saddle-nodes.
    mid = np.abs(d.x_curve) < 2
    b1, b2 = analytic_saddle_nodes(W)
    assert d.b_curve[mid].max() == pytest.approx(b1, abs=1e-4)
    assert d.b_curve[mid].min() == pytest.approx(b2, abs=1e-4)
    assert d.bistable_interval == pytest.approx((b2, b1))
    # Vector field x_{t+1} − x_t from the engine equals the map.
    bb, xx = np.meshgrid(d.field_b, d.field_x)
    np.testing.assert_allclose(d.field, W * sigmoid(xx) + bb - xx, atol=1e-12)
    # x_0 = 0.5 crosses the basin boundary inside the bistable interval, as an unstable point.
    assert d.cross_b is not None and b2 < d.cross_b < b1
    fp = fixed_points(W, d.cross_b)
    assert np.min(np.abs(fp.boundaries - 0.5)) < 1e-9


def test_bifurcation_dumps_and_plot(tmp_path: Path) -> None:
    d = compute_bifurcation(n_curve=101, n_field=(5, 4))
    j = json.loads(json.dumps(d.to_json_dict()))
    assert j["paper_figure"] == 3 and [p["name"] for p in j["bifurcations"]] == ["b1", "b2"]
    assert np.array(j["vector_field"]["dx"]).shape == (4, 5)
    rows = d.to_csv_rows()
    assert rows[0] == ["kind", "b", "x", "slope"] and len(rows) == 1 + 101 + 2 + 1
    assert {r[0] for r in rows[1:]} == {"stable", "unstable", "b1", "b2", "crossing"}
    png = plot_bifurcation(d, tmp_path / "fig3.png")
    again = plot_bifurcation(d, tmp_path / "fig3-again.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert png.read_bytes() == again.read_bytes()  # deterministic: no timestamps
    assert "<svg" in plot_bifurcation(d, tmp_path / "fig3.svg").read_text()[:2000]
    # No bifurcation at all for w < 4: still a valid (single-branch) diagram.
    d3 = compute_bifurcation(w=3.0, n_curve=51, n_field=(3, 3))
    assert d3.bistable_interval is None and d3.stable.all()
    assert plot_bifurcation(d3, tmp_path / "w3.png").stat().st_size > 0


# ---------------------------------------------------------------------------- spectrum


def test_spectrum_matches_numpy_eigvals_and_radius() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.3, (9, 9)), rng.normal(0, 0.1, (9, 9))
    sp = compute_spectrum({"W_rec": a}, b, activation="sigmoid")
    for got, m in ((sp.before, a), (sp.after, b)):
        want = np.linalg.eigvals(m)
        # Same multiset: match each computed eigenvalue with its nearest reference value.
        assert got.shape == want.shape
        assert np.abs(got[:, None] - want[None, :]).min(axis=1).max() < 1e-12
        assert np.abs(want[:, None] - got[None, :]).min(axis=1).max() < 1e-12
        assert np.all(np.diff(np.abs(got)) <= 1e-12)  # sorted by decreasing modulus
    assert sp.radius_before == pytest.approx(np.abs(np.linalg.eigvals(a)).max(), rel=1e-12)
    assert sp.radius_after == pytest.approx(np.abs(sp.after).max(), rel=1e-12)
    assert sp.gamma == 0.25 and sp.to_json_dict()["explosion_radius"] == 4.0


def test_spectrum_dumps_plot_and_errors(tmp_path: Path) -> None:
    sp = compute_spectrum(np.array([[0.0, -2.0], [2.0, 0.0]]), np.eye(2) * 0.5)
    j = json.loads(json.dumps(sp.to_json_dict()))
    assert sorted(v[1] for v in j["before"]["eigenvalues"]) == pytest.approx([-2.0, 2.0])
    rows = sp.to_csv_rows()
    assert rows[0] == ["which", "index", "real", "imag", "abs"] and len(rows) == 5
    for name in ("spec.png", "spec.svg"):
        out = plot_spectrum(sp, tmp_path / name)
        assert out.stat().st_size > 1000
    assert plot_spectrum(example_spectrum(), tmp_path / "ex.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(UsageError):
        compute_spectrum(np.ones((2, 3)), np.eye(2))
    with pytest.raises(UsageError):
        compute_spectrum(np.eye(2), np.eye(2), activation="softplus")
    with pytest.raises(UsageError):
        compute_spectrum(np.eye(2), np.array([[np.nan, 0.0], [0.0, 1.0]]))


def test_example_spectrum_is_the_documented_pair() -> None:
    sp = example_spectrum()
    assert sp.before.size == sp.after.size == 50
    assert sp.radius_after == pytest.approx(1.1, rel=1e-12)
    assert 0.5 < sp.radius_before < 1.0  # N(0, 0.1²), H = 50: ρ ≈ 0.1·√50 ≈ 0.71
    # Rescaling multiplies every eigenvalue by the same factor.
    np.testing.assert_allclose(sp.after, sp.before * (1.1 / sp.radius_before), atol=1e-10)


def test_check_path_accepts_only_png_and_svg() -> None:
    assert check_path("a/b.PNG")[1] == "png" and check_path("x.svg")[1] == "svg"
    for bad in ("x.pdf", "x", "x.png.bak"):
        with pytest.raises(UsageError):
            check_path(bad)
