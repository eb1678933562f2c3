"""The adaptive clipping rules (rust/engine/src/clip_rules.rs) seen from Python: each rule's
threshold against a reference computed here from the norms it saw, the bounds each rule
promises, skipped spikes, checkpoints and resume, ids of old configs, and the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnstab_cli import engine
from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_CHECKPOINT
from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.sweep.spec import id_settings, run_id
from rnnstab_cli.training.checkpoint import (
    BEST_ONLY_FORMAT_VERSION,
    drop_clip_state,
    load_checkpoint,
)
from rnnstab_cli.training.config import TrainConfig, resolve_config
from rnnstab_cli.training.model_settings import CLIP_RULE_KEYS
from rnnstab_cli.training.synthetic import loop

ADAPTIVE = ("auto", "percentile", "zscore", "skip", "agc")


def problem(seed: int, t: int = 8, b: int = 4, i: int = 3, h: int = 10, o: int = 3) -> tuple:
    rng = np.random.default_rng(seed)
    params = engine.init_params(i, h, o, scale=0.6, seed=seed, dtype="float64")
    batches = [
        (
            rng.normal(0, 1, (t, b, i)),
            rng.integers(0, o, (t, b)).astype(np.int64),
            np.ones((t, b)),
        )
        for _ in range(40)
    ]
    return params, batches


def gnorm(grads: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values())))


class Reference:
    """The rules' thresholds as the README defines them, from the norms seen so far."""

    def __init__(self, rule: str, **p: Any) -> None:
        self.rule, self.p = rule, p
        self.norms: list[float] = []
        self.mean = self.var = 0.0

    def threshold(self) -> float | None:
        p, n = self.p, self.norms
        if self.rule == "auto":
            w = p["clip_window"]
            return p["clip_factor"] * float(np.mean(n[-w:])) if len(n) >= w else None
        if self.rule == "percentile":
            return float(np.percentile(n, p["clip_percentile"])) if n else None
        if len(n) < p["clip_warmup"]:
            return None
        if self.rule == "zscore":
            return self.mean + p["clip_z"] * math.sqrt(self.var)
        return p["clip_factor"] * self.mean  # skip

    def observe(self, g: float) -> None:
        if self.rule in ("zscore", "skip"):
            t = self.threshold()
            x = min(g, t) if self.rule == "zscore" and t is not None else g
            if not self.norms:
                self.mean, self.var = x, 0.0
            else:
                beta = self.p["clip_beta"]
                d = x - self.mean
                self.mean += (1 - beta) * d
                self.var = beta * (self.var + (1 - beta) * d * d)
        self.norms.append(g)


rule_params = {
    "auto": st.fixed_dictionaries(
        {"clip_window": st.integers(1, 12), "clip_factor": st.floats(0.2, 3.0)}
    ),
    "percentile": st.fixed_dictionaries({"clip_percentile": st.floats(1.0, 100.0)}),
    "zscore": st.fixed_dictionaries(
        {
            "clip_z": st.floats(0.1, 3.0),
            "clip_beta": st.floats(0.3, 0.99),
            "clip_warmup": st.integers(1, 8),
        }
    ),
    "skip": st.fixed_dictionaries(
        {
            "clip_factor": st.floats(0.8, 2.0),
            "clip_beta": st.floats(0.3, 0.99),
            "clip_warmup": st.integers(1, 8),
        }
    ),
}


@settings(max_examples=25)
@given(
    st.integers(0, 1000),
    st.sampled_from(["auto", "percentile", "zscore", "skip"]),
    st.data(),
)
def test_the_threshold_in_force_is_the_rules_function_of_earlier_norms(
    seed: int, rule: str, data: st.DataObject
) -> None:
    """Each step's threshold matches the reference computed from the norms before it; the
    post-clip norm never exceeds it; a `skip` spike leaves parameters and momentum untouched."""
    p = data.draw(rule_params[rule])
    params, batches = problem(seed)
    tr = engine.Trainer(params, optimizer="momentum", lr=0.3, clip_mode=rule, threads=1, **p)
    ref = Reference(rule, **p)
    for x, y, m in batches:
        before, vel = tr.params, tr.optimizer_state()
        s = tr.step(x, y, m)
        expected = ref.threshold()
        if expected is None:
            assert math.isnan(s.clip_threshold)
        else:
            assert s.clip_threshold == pytest.approx(expected, rel=1e-9)
        post = gnorm(tr.grads)
        if rule == "skip":
            spike = expected is not None and s.grad_norm > expected
            assert s.skipped == spike and not s.clipped
            if spike:
                after = tr.params
                assert all(np.array_equal(before[k], after[k]) for k in before)
                vel_after = tr.optimizer_state()
                assert vel is not None and vel_after is not None
                assert all(np.array_equal(vel[k], vel_after[k]) for k in vel)
        elif expected is not None:
            assert post <= expected * (1 + 1e-9)
            assert s.clipped == (s.grad_norm >= expected)
        else:
            assert post == pytest.approx(s.grad_norm, rel=1e-12) and not s.clipped
        ref.observe(s.grad_norm)


@settings(max_examples=25)
@given(st.integers(0, 1000), st.floats(1e-3, 1.0))
def test_agc_bounds_every_units_ratio(seed: int, lam: float) -> None:
    params, batches = problem(seed)
    tr = engine.Trainer(params, lr=0.1, clip_mode="agc", clip_lambda=lam, threads=1)
    for x, y, m in batches[:5]:
        w = tr.params
        s = tr.step(x, y, m)
        assert s.clip_threshold == lam
        g = tr.grads
        for name, gt in g.items():
            rows = gt.reshape(gt.shape[0], -1) if gt.ndim == 2 else gt.reshape(-1, 1)
            wrows = w[name].reshape(rows.shape)
            gn = np.linalg.norm(rows, axis=1)
            wn = np.maximum(np.linalg.norm(wrows, axis=1), engine_agc_eps())
            assert np.all(gn <= lam * wn * (1 + 1e-9)), name


def engine_agc_eps() -> float:
    return 1e-3  # rnnstab_engine::AGC_EPS


def test_an_adaptive_rule_is_norm_clipping_with_its_threshold() -> None:
    """`auto` equals Algorithm 1 applied by hand with the threshold the rule says, step by
    step (SGD: θ ← θ − lr·clip(g, t))."""
    params, batches = problem(3)
    tr = engine.Trainer(params, lr=0.2, clip_mode="auto", clip_window=3, clip_factor=0.8, threads=1)
    theta = {k: v.copy() for k, v in params.items()}
    ref = Reference("auto", clip_window=3, clip_factor=0.8)
    fired = 0
    for x, y, m in batches[:15]:
        s = tr.step(x, y, m)
        lg = engine.loss_and_grads(
            theta,
            x,
            y,
            m,
            activation="tanh",
            loss="softmax_ce",
            alpha=0.0,
            omega_form="norm",
            time_reduction="sum",
        )
        t = ref.threshold()
        g, n = engine.clip_norm(lg.grads, t) if t is not None else (lg.grads, gnorm(lg.grads))
        assert n == pytest.approx(s.grad_norm, rel=1e-12)
        fired += int(t is not None and n >= t)
        theta = {k: theta[k] - 0.2 * g[k] for k in theta}
        ref.observe(n)
        for k in theta:
            np.testing.assert_allclose(tr.params[k], theta[k], rtol=1e-10, atol=1e-13)
    assert fired > 0


def test_a_percentile_over_a_constant_history_is_norm_clipping_at_that_constant() -> None:
    """With a learning rate too small to move θ, every step sees the same norm c; the
    percentile rule then clips exactly as Algorithm 1 at threshold c would."""
    params, batches = problem(5)
    x, y, m = batches[0]
    tr = engine.Trainer(params, lr=1e-300, clip_mode="percentile", clip_percentile=37.0, threads=1)
    first = tr.step(x, y, m)
    assert math.isnan(first.clip_threshold)
    for _ in range(5):
        s = tr.step(x, y, m)
        assert s.clip_threshold == first.grad_norm == s.grad_norm
        assert s.clipped  # ‖g‖ ≥ t fires, as in Algorithm 1
    ref, _ = engine.clip_norm(
        engine.loss_and_grads(
            params,
            x,
            y,
            m,
            activation="tanh",
            loss="softmax_ce",
            alpha=0.0,
            omega_form="norm",
            time_reduction="sum",
        ).grads,
        first.grad_norm,
    )
    for k in ref:
        np.testing.assert_allclose(tr.grads[k], ref[k], rtol=1e-12)


@pytest.mark.parametrize("rule", ["auto", "zscore"])
def test_a_rule_that_never_fires_is_no_clipping_bit_for_bit(rule: str) -> None:
    params, batches = problem(7)
    never = {"auto": {"clip_window": 1000}, "zscore": {"clip_z": 1e6}}[rule]
    a = engine.Trainer(params, lr=0.1, clip_mode=rule, threads=1, **never)
    b = engine.Trainer(params, lr=0.1, clip_mode="none", threads=1)
    for x, y, m in batches[:10]:
        a.step(x, y, m)
        b.step(x, y, m)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in params)


@pytest.mark.parametrize("rule", ADAPTIVE)
def test_results_do_not_depend_on_the_thread_count(rule: str) -> None:
    params, batches = problem(11, h=40, b=16)
    runs = []
    for threads in (1, 3):
        tr = engine.Trainer(
            params, lr=0.3, clip_mode=rule, threads=threads, clip_warmup=3, clip_window=3
        )
        stats = [tr.step(*bt) for bt in batches[:12]]
        runs.append((tr.params, [s.clip_threshold for s in stats], tr.clip_state()))
    (p1, t1, c1), (p3, t3, c3) = runs
    assert all(np.array_equal(p1[k], p3[k]) for k in p1)
    assert np.array_equal(np.array(t1), np.array(t3), equal_nan=True)
    assert np.array_equal(c1, c3)


def test_steps_reports_the_threshold_per_update() -> None:
    params, batches = problem(2)
    tr = engine.Trainer(params, lr=0.1, clip_mode="percentile", threads=1)
    xs, ys, ms = (np.stack([b[i] for b in batches[:6]]) for i in range(3))
    st_ = tr.steps(xs, ys, ms)
    assert st_.clip_threshold.shape == (6,) and math.isnan(st_.clip_threshold[0])
    assert np.all(np.isfinite(st_.clip_threshold[1:]))


def test_the_clip_state_round_trips_through_a_new_trainer() -> None:
    params, batches = problem(4)
    a = engine.Trainer(params, lr=0.1, clip_mode="zscore", clip_warmup=2, threads=1)
    for bt in batches[:5]:
        a.step(*bt)
    b = engine.Trainer(a.params, lr=0.1, clip_mode="zscore", clip_warmup=2, threads=1)
    b.set_clip_state(a.clip_state())
    for bt in batches[5:10]:
        sa, sb = a.step(*bt), b.step(*bt)
        assert sa == sb
    assert all(np.array_equal(a.params[k], b.params[k]) for k in params)


# --- configs, ids, checkpoints, command line ------------------------------------------------


def tiny(**over: Any) -> TrainConfig:
    flags = {
        "task": "temporal-order", "len": "10:14", "hidden": 6, "batch": 4, "max_updates": 240,
        "eval_every": 70, "chunk": 25, "eval_sequences": 300, "screen_sequences": 60,
        "lr": 0.05,
    } | over  # fmt: skip
    return resolve_config(flags)


def test_rule_keys_enter_a_config_and_its_id_only_under_their_rule() -> None:
    plain = tiny()
    assert not set(CLIP_RULE_KEYS) & set(plain.to_dict())
    # A rule key given to a config whose rule does not use it changes nothing.
    assert run_id(tiny(clip_window=7)) == run_id(plain)
    auto = tiny(clip_mode="auto")
    assert {"clip_window", "clip_factor"} <= set(auto.to_dict())
    assert "clip_window" not in id_settings(auto)  # at its default
    assert id_settings(tiny(clip_mode="auto", clip_window=7))["clip_window"] == 7
    assert run_id(tiny(clip_mode="auto", clip_window=7)) != run_id(auto)
    assert TrainConfig.from_dict(auto.to_dict()) == auto


def test_an_adaptive_run_resumes_bit_for_bit(tmp_path: Path) -> None:
    cfg = tiny(clip_mode="percentile", clip_percentile=50.0, lr=0.2)
    straight = loop.run_training(cfg)
    half = loop.run_training(cfg.replace(max_updates=120), out_dir=tmp_path)
    assert half.updates == 120
    saved = load_checkpoint(tmp_path).clip_state
    assert saved is not None and len(saved) == 4 + 120  # header + every norm seen
    resumed = loop.run_training(cfg, out_dir=tmp_path, resume=True)
    assert resumed.updates == straight.updates == 240
    for k in straight.params:
        assert np.array_equal(straight.params[k], resumed.params[k]), k
    comparable = [e.to_json() | {"wall_time": 0, "eval_index": 0} for e in straight.evals[-2:]]
    again = [e.to_json() | {"wall_time": 0, "eval_index": 0} for e in resumed.evals[-2:]]
    assert comparable == again
    assert all(e["clip_threshold"] is not None for e in again)


def test_a_finished_run_drops_its_clip_state_and_scores_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """drop_clip_state: the percentile rule's state (every norm so far) leaves a finished run's
    checkpoint, which still evaluates the same but can no longer be continued."""
    cfg = tiny(clip_mode="percentile", max_updates=100, eval_every=50)
    unfinished = tmp_path / "half"
    loop.run_training(cfg.replace(max_updates=50), out_dir=unfinished)
    (unfinished / "state.json").write_text(
        (unfinished / "state.json").read_text().replace('"max_updates": 50', '"max_updates": 99')
    )
    assert drop_clip_state(unfinished) is False  # not finished under its own config: kept
    assert load_checkpoint(unfinished).clip_state is not None

    ck = tmp_path / "done"
    loop.run_training(cfg, out_dir=ck)
    evaluate = ["eval", str(ck), "--len", "10", "--n", "200", "--json"]
    assert main(evaluate) == 0
    before = capsys.readouterr().out
    clip_file = next(ck.glob("clip-*.safetensors"))
    assert drop_clip_state(ck) is True
    assert not clip_file.exists()
    state = json.loads((ck / "state.json").read_text())
    assert "clip" not in state["files"] and state["clip_state_dropped"] is True
    assert state["format_version"] == BEST_ONLY_FORMAT_VERSION
    dropped = load_checkpoint(ck)
    assert dropped.clip_state is None and dropped.clip_state_dropped
    assert main(evaluate) == 0
    assert capsys.readouterr().out == before
    # Idempotent; and a crash between state.json and the file's removal is finished next time.
    assert drop_clip_state(ck) is True
    clip_file.write_bytes(b"left by a crash")
    assert drop_clip_state(ck) is True and not clip_file.exists()

    # Continuing it is a one-line checkpoint error, never a run from a fresh rule state.
    code = main(["train", "--resume", str(ck), "--max-updates", "200"])
    err = capsys.readouterr().err
    assert code == EXIT_CHECKPOINT
    assert len(err.strip().splitlines()) == 1
    assert "kept without its clipping rule's state" in err and "Traceback" not in err
    # A state.json that lists the file it says was dropped is damage, said as such.
    state["files"]["clip"] = {"name": clip_file.name, "sha256": "0" * 64}
    (ck / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=r"damaged.*says was dropped"):
        load_checkpoint(ck)


def test_a_sweep_retrains_a_dropped_run_whose_budget_was_raised(tmp_path: Path) -> None:
    """A stored run that dropped its clipping state cannot continue; when a sweep asks it for
    more updates, its worker trains it again from the start, to the same trajectory."""
    from rnnstab_cli.sweep.worker import RunTask, execute_run

    cfg = tiny(clip_mode="percentile", max_updates=100, eval_every=50)
    straight = loop.run_training(cfg.replace(max_updates=150))
    run_dir = tmp_path / "run"
    loop.run_training(cfg, out_dir=run_dir)
    assert drop_clip_state(run_dir) is True
    raised = cfg.replace(max_updates=150)
    out = execute_run(RunTask("r", raised.to_dict(), str(run_dir), "local-process"))
    assert out["outcome"] in ("solved", "unsolved") and out["updates"] == 150, out
    assert "cannot be continued, restarted" in out["note"]
    again = load_checkpoint(run_dir)
    for k, v in straight.params.items():
        assert np.array_equal(again.params[k], v), k


def test_resume_refuses_another_rule_parameter(tmp_path: Path) -> None:
    cfg = tiny(clip_mode="auto", max_updates=50, eval_every=50)
    loop.run_training(cfg, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="clip_window"):
        loop.run_training(
            cfg.replace(max_updates=100, clip_window=5), out_dir=tmp_path, resume=True
        )


def test_a_checkpoint_without_the_rule_state_still_loads(tmp_path: Path) -> None:
    """Checkpoints of the rules that keep no state (all of them before the adaptive rules)
    have no clip file; they load and resume as before."""
    cfg = tiny(max_updates=50, eval_every=50)
    loop.run_training(cfg, out_dir=tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    assert "clip" not in state["files"]
    assert load_checkpoint(tmp_path).clip_state is None
    r = loop.run_training(cfg.replace(max_updates=80), out_dir=tmp_path, resume=True)
    assert r.updates == 80


@pytest.mark.parametrize("rule", ADAPTIVE)
def test_a_short_cli_training_per_rule(
    rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "--task", "temporal-order", "--len", "10", "--clip-mode", rule,
         "--max-updates", "200", "--eval-every", "100", "--hidden", "8", "--batch", "5",
         "--set", "eval_sequences=100", "--set", "screen_sequences=50", "--set", "clip_warmup=5",
         "--json", "--out", str(tmp_path / rule)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code in (0, 10), err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    evals = [e for e in lines if e.get("event") == "eval"]
    assert evals and all("clip_threshold" in e for e in evals)
    assert evals[-1]["clip_threshold"] is not None
    metrics = (tmp_path / rule / "metrics.jsonl").read_text().splitlines()
    assert json.loads(metrics[-1])["clip_threshold"] == evals[-1]["clip_threshold"]
