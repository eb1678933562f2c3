"""The benchmark's bookkeeping (not its speed: speed is measured by `rnnstab bench`, never
asserted by a test)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli import engine
from rnnstab_cli.bench import BenchConfig, measure, run_benchmark
from rnnstab_cli.bench.measure import cpu_steal, steal_fraction, update_memory
from rnnstab_cli.bench.peers import NumpyBptt
from rnnstab_cli.errors import UsageError


def test_rows_cover_the_implementations_and_count_flops_consistently() -> None:
    # I = 6 is the temporal order problem's input width, so the end-to-end row is measured.
    cfg = BenchConfig(8, 6, 4, 10)
    rows, facts = run_benchmark([cfg], seconds=0.05, threads=2, sweep_row=False)
    assert float(facts["ceiling_gflops"]) > 0
    impls = [r.implementation for r in rows]
    assert impls.count("rnnstab") == 3  # all threads, one thread, with Ω
    assert "numpy BPTT" in impls
    assert "rnnstab train" in impls
    np_rate = next(r.updates_per_s for r in rows if r.implementation == "numpy BPTT")
    for r in rows:
        assert r.config == "H=8 I=6 B=4 T=10"
        assert r.updates_per_s > 0
        assert r.gflops == pytest.approx(r.updates_per_s * 6 * 10 * 4 * (64 + 48) / 1e9)
        assert r.vs_numpy == pytest.approx(r.updates_per_s / np_rate)
    assert any("Ω costs" in r.note for r in rows)
    assert any("end to end" in r.note for r in rows)
    torch_rates = {r.threads: r.updates_per_s for r in rows if r.implementation == "PyTorch nn.RNN"}
    if torch_rates:  # torch is installed: measured on both thread counts, each row vs its own
        assert set(torch_rates) == {1, 2}
        for r in rows:
            if r.implementation == "rnnstab":
                peer = torch_rates[1 if r.threads == 1 else 2]
                assert r.vs_torch == pytest.approx(r.updates_per_s / peer)
    steal = facts["steal_fraction"]
    assert steal is None or 0.0 <= float(steal) <= 1.0  # type: ignore[arg-type]


def test_steal_is_read_from_the_kernels_cpu_line(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 20 800 5 0 5 70 30 0\ncpu0 50 0 10 400 2 0 2 35 15 0\n")
    assert cpu_steal(str(stat)) == (70, 1000)
    assert steal_fraction((70, 1000), (120, 1500)) == pytest.approx(0.1)
    assert steal_fraction(None, (120, 1500)) is None
    assert cpu_steal(str(tmp_path / "missing")) is None
    stat.write_text("intr 1 2 3\n")
    assert cpu_steal(str(stat)) is None


def test_memory_is_measured_against_what_bptt_must_hold() -> None:
    cfg = BenchConfig(64, 6, 32, 200)
    used, needed = update_memory(cfg)
    # h_t and g_t for 32 × 201 slots of 64 units, inputs and output gradients, gradients.
    params = 64 * 64 + 64 * 6 + 64 + 4 * 64 + 4
    assert needed == 4 * (2 * 32 * 201 * 64 + 32 * 201 * (6 + 4) + params)
    # The workspace (3.5 MB here) is allocated by the first update, so RSS must grow by at
    # least most of it; a reading of zero would mean the peak was not reset or not read.
    assert 0.5 * needed < used < 3 * needed


def test_memory_counts_the_kept_v_where_every_step_is_scored() -> None:
    # Every step scored, trained with Ω: the engine keeps v_t beside h_t and g_t.
    cfg = BenchConfig(64, 6, 32, 100, "every")
    used, needed = update_memory(cfg)
    params = 64 * 64 + 64 * 6 + 64 + 6 * 64 + 6
    assert needed == 4 * (3 * 32 * 101 * 64 + 32 * 101 * (6 + 6) + params)
    assert 0.5 * needed < used < 3 * needed


def test_config_parsing() -> None:
    assert BenchConfig.parse("50,6,20,200") == BenchConfig(50, 6, 20, 200)
    assert BenchConfig.parse("500,50,32,200,every,carry") == BenchConfig(
        500, 50, 32, 200, "every", carry=True
    )
    assert BenchConfig.parse("300, 88, 1, 200, bce") == BenchConfig(300, 88, 1, 200, "bce")
    for bad in ("50,6,20", "a,b,c,d", "50,6,0,200", "5,6,2,2,every,bce", "5,6,2,2,often"):
        with pytest.raises(UsageError, match="H,I,B,T"):
            BenchConfig.parse(bad)


def test_every_step_configurations_score_every_step_and_count_the_read_out() -> None:
    table2 = BenchConfig(16, 5, 2, 10, "every", carry=True)
    assert (table2.outputs, table2.loss, table2.every_step) == (5, "softmax_ce", True)
    assert table2.flops == 6 * 10 * 2 * (16 * 16 + 16 * 5 + 16 * 5)
    assert table2.label() == "H=16 I=5 B=2 T=10 every carry"
    music = BenchConfig(16, 8, 1, 10, "bce", name="Table 1")
    assert (music.outputs, music.loss) == (8, "bce")
    assert music.label() == "H=16 I=8 B=1 T=10 bce (Table 1)"
    rows, _ = run_benchmark([table2, music], seconds=0.05, threads=1, sweep_row=False)
    for r in rows:
        assert r.updates_per_s > 0
    # The numpy peer is written for the last-step problems only.
    assert all(r.implementation != "numpy BPTT" for r in rows)


def test_a_capped_engine_caps_the_peers_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnstab_cli.simd_env import peer_caps

    monkeypatch.delenv("RNNSTAB_SIMD", raising=False)
    assert peer_caps() == {}
    monkeypatch.setenv("RNNSTAB_SIMD", "avx2")
    assert peer_caps()["OPENBLAS_CORETYPE"] == "Haswell"
    assert peer_caps()["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    monkeypatch.setenv("RNNSTAB_SIMD", "avx512")
    assert peer_caps() == {}


def test_numpy_peer_computes_the_engines_update() -> None:
    """The numpy peer does the same work as the engine (a fair comparison): from the same
    weights and batch, one update gives the same loss and the same new weights."""
    peer = NumpyBptt(6, 2, 3, 4, 5)
    start = {k: v.copy() for k, v in peer.params.items()}
    mask = np.zeros((5, 4), np.float32)
    mask[-1] = 1
    targets = np.zeros((5, 4), np.int64)
    targets[-1] = peer.y
    tr = engine.Trainer(start, lr=peer.lr, clip_mode="norm", clip=peer.clip)
    st = tr.step(peer.x, targets, mask)
    peer()
    assert st.loss == pytest.approx(peer.loss, rel=1e-5)
    for k, v in tr.params.items():
        # float32 throughout; both sides round differently in products over T·B terms.
        np.testing.assert_allclose(v, peer.params[k], rtol=1e-5, atol=1e-7)


def test_rate_counts_a_window_the_host_stole_from_only_when_no_quiet_one_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (steal, total) readings, two per window: the first three windows lose half their CPU time
    # to the host, the fourth none. The stolen windows are given the faster calls, so picking
    # by speed alone would choose them.
    readings = [(0, 0), (50, 100), (50, 100), (100, 200), (100, 200), (150, 300)]
    readings += [(150, 300), (150, 400)]
    taken = []

    def fake_steal(stat: str = "/proc/stat") -> tuple[int, int]:
        taken.append(1)
        return readings[len(taken) - 1]

    monkeypatch.setattr(measure, "cpu_steal", fake_steal)

    def update() -> None:
        window = (len(taken) - 1) // 2
        time.sleep(0.001 if window < 3 else 0.004)

    r = measure.rate(update, seconds=0.003, warmup=0, windows=3)
    assert len(taken) == 8  # three stolen windows, then one more, which was quiet
    assert r < 1 / 0.004 * 1.01  # the quiet window's rate, not the stolen ones' (≈ 1000/s)


def test_rates_take_their_windows_in_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    # A clock that each call of an update moves on by that update's cost: the rates are then
    # exact, whatever the machine is doing.
    clock = [0.0]
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(measure, "cpu_steal", lambda stat="/proc/stat": None)
    calls: list[str] = []

    def update(tag: str, cost: float) -> Callable[[], None]:
        def call() -> None:
            calls.append(tag)
            clock[0] += cost

        return call

    fast, slow = measure.rates(
        [update("a", 0.001), update("b", 0.004)], seconds=0.03, warmup=1, windows=3
    )
    # One warm-up call each, then a window of a, a window of b, and again, three times.
    turns = [tag for i, tag in enumerate(calls) if i == 0 or calls[i - 1] != tag]
    assert turns == ["a", "b"] + ["a", "b"] * 3
    assert calls.count("a") == 1 + 3 * 10 and calls.count("b") == 1 + 3 * 3
    assert fast == pytest.approx(1000) and slow == pytest.approx(250)


def test_startup_is_timed_in_fresh_interpreters_with_the_expected_exit_codes() -> None:
    from rnnstab_cli.bench.startup import COMMANDS, measure_startup

    rows = measure_startup(repeats=1)
    assert [r.command for r in rows] == ["rnnstab " + " ".join(argv) for argv, _ in COMMANDS]
    for row, (_, expected) in zip(rows, COMMANDS, strict=True):
        assert row.exit_code == expected, row  # each command really ran (help, tasks, usage)
        assert 0.0 < row.median_s <= row.max_s < 60.0
