"""The natural tasks' presets, config layers and schedules (training/natural/config.py,
schedule.py, and the natural keys of training/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnstab_cli.errors import UsageError
from rnnstab_cli.training.config import (
    all_config_keys,
    natural_preset_names,
    preset_dir,
    preset_names,
    resolve_config,
)
from rnnstab_cli.training.natural import (
    NaturalConfig,
    natural_preset_config,
    resolve_natural_config,
)
from rnnstab_cli.training.natural.schedule import EarlyStopping, LrStep, alpha_at, next_lr

NATURAL_PRESETS = {
    "music-piano-midi",
    "music-nottingham",
    "music-musedata",
    "music-jsb",
    "ptb-char",
    "ptb-char-5ahead",
}


def test_natural_presets_are_listed_apart_from_the_synthetic_ones() -> None:
    assert set(natural_preset_names()) == NATURAL_PRESETS
    assert not NATURAL_PRESETS & set(preset_names())


@pytest.mark.parametrize("name", sorted(NATURAL_PRESETS))
def test_presets_resolve_and_cite_the_paper(name: str) -> None:
    cfg = natural_preset_config(name)
    assert cfg.preset == name and cfg.activation == "sigmoid" and cfg.seq_len == 200
    text = (preset_dir() / f"{name}.toml").read_text()
    assert "appendix" in text and "Table" in text


def test_music_presets_have_the_appendix_numbers() -> None:
    for ds in ("piano-midi", "nottingham"):
        c = resolve_natural_config({"task": "music", "dataset": ds})
        assert c.preset == f"music-{ds}" and c.loss == "bce" and c.metric == "nll"
        assert (c.hidden, c.lr, c.clip, c.time_reduction) == (300, 1.0, 8.0, "mean")
        assert (c.alpha, c.alpha_schedule, c.lr_halving) == (0.5, "1/t", True)
        assert c.alpha_at(2) == 0.25  # the appendix's α_t = 1/(2t)
    m = resolve_natural_config({"task": "music", "dataset": "musedata"})
    assert (m.hidden, m.lr, m.alpha, m.alpha_schedule) == (400, 0.5, 0.1, "1/t")
    # "We fixed hyper-parameters across the three runs": only clipping and α change.
    c = resolve_natural_config({"task": "music", "dataset": "nottingham", "method": "sgd-c"})
    assert (c.lr, c.clip_mode, c.alpha) == (1.0, "norm", 0.0)
    s = resolve_natural_config({"task": "music", "dataset": "nottingham", "method": "sgd"})
    assert (s.lr, s.clip_mode, s.alpha) == (1.0, "none", 0.0)


def test_ptb_presets_have_the_appendix_numbers_per_method() -> None:
    def cfg(name: str, method: str) -> NaturalConfig:
        return resolve_natural_config({"task": name, "method": method})

    c = cfg("ptb-char", "sgd-cr")
    assert (c.hidden, c.train_biases, c.clip, c.time_reduction) == (500, False, 45.0, "sum")
    assert (c.lr, c.alpha, c.alpha_schedule, c.ahead) == (0.05, 0.01, "constant", 1)
    assert (c.loss, c.metric) == ("softmax_ce", "bpc")
    assert (cfg("ptb-char", "sgd-c").lr, cfg("ptb-char", "sgd-c").alpha) == (0.01, 0.0)
    assert (cfg("ptb-char", "sgd").lr, cfg("ptb-char", "sgd").clip_mode) == (0.001, "none")
    f = cfg("ptb-char-5ahead", "sgd-cr")
    assert (f.ahead, f.lr, f.alpha, f.alpha_schedule) == (5, 0.05, 0.05, "1/t")
    assert cfg("ptb-char-5ahead", "sgd-c").lr == 0.1
    # A flag still beats the per-method table.
    assert resolve_natural_config({"task": "ptb-char", "method": "sgd-c", "lr": 0.3}).lr == 0.3


def test_layers_and_aliases(tmp_path: Path) -> None:
    f = tmp_path / "run.toml"
    f.write_text('task = "ptb-char"\nbatch = 8\n[per_method.sgd-c]\nlr = 0.02\n')
    c = resolve_natural_config({"method": "sgd-c", "len": 50}, f)
    assert (c.batch, c.lr, c.seq_len) == (8, 0.02, 50)  # file's per_method beats the preset's
    assert NaturalConfig.from_dict(c.to_dict()) == c
    assert set(c.to_dict()) <= set(all_config_keys()) | {"preset"}


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ({"task": "music"}, "needs --dataset"),
        ({"task": "music", "dataset": "ptb-char"}, "does not fit task"),
        ({"task": "music-jsb", "ahead": 5}, "ptb-char only"),
        ({"task": "ptb-char", "method": "sgd-c", "alpha": 0.1}, "needs --method sgd-cr"),
        ({"task": "ptb-char", "epochs": 0}, "epochs must be ≥ 1"),
        ({"task": "ptb-char", "alpha_schedule": "exp"}, "unknown alpha_schedule"),
        ({"task": "ptb-char", "eval_every": 10}, "synthetic tasks only"),
        ({"task": "ptb-char", "len": "50:200"}, "fixed --len"),
        ({"task": "ptb-char", "device": "gpu"}, "CPU engine"),
        ({"task": "music-jsb", "per_method": {"sgd-x": {}}}, "unknown method"),
        ({"task": "music-jsb", "per_method": {"sgd": {"method": "sgd-c"}}}, "cannot depend"),
        ({"task": "temporal-order"}, "not a natural task"),
    ],
)
def test_bad_natural_settings(flags: dict, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        resolve_natural_config(flags)


def test_synthetic_runs_refuse_natural_keys_and_tasks() -> None:
    with pytest.raises(UsageError, match="natural tasks"):
        resolve_config({"task": "temporal-order", "len": 50, "epochs": 3})
    with pytest.raises(UsageError, match="natural task"):
        resolve_config({"task": "music-nottingham"})
    with pytest.raises(UsageError, match="natural task"):
        resolve_config({"task": "ptb-char"})


def test_lr_halves_only_when_the_epoch_error_rises() -> None:
    def lr(prev: float | None, error: float, rule: str | None = "train-rise") -> float:
        return next_lr(1.0, rule, previous_error=prev, error=error).lr

    assert lr(None, 5.0) == 1.0  # first epoch: nothing to compare with
    assert lr(5.0, 4.0) == 1.0
    assert lr(5.0, 5.0) == 1.0  # equal is not a rise
    assert lr(5.0, 5.1) == 0.5
    assert lr(5.0, 5.1, None) == 1.0  # schedule off
    with pytest.raises(ValueError, match="unknown learning-rate rule"):
        lr(5.0, 5.1, "sometimes")


def test_valid_stall_halves_from_the_first_stall_and_converges_at_the_second() -> None:
    def step(prev: float | None, valid: float, halving: bool, lr: float = 1.0) -> LrStep:
        # The training error rising must not matter to this rule.
        return next_lr(
            lr, "valid-stall", previous_error=1.0, error=2.0, previous_valid=prev,
            valid=valid, halving=halving,
        )  # fmt: skip

    assert step(None, 2.0, False) == LrStep(1.0)  # first epoch: nothing to compare with
    assert step(2.0, 1.9, False) == LrStep(1.0)  # 5 % better: no stall
    # Better by less than a factor 1.003 (rnnlm's min_improvement) is a stall.
    assert step(2.0, 2.0 / 1.002, False) == LrStep(0.5, halving=True)
    assert step(2.0, 2.0 / 1.004, False) == LrStep(1.0)
    assert step(2.0, 2.1, False) == LrStep(0.5, halving=True)  # worse: a stall too
    # Once halving, every epoch halves until the next stall, which ends the run at that rate.
    assert step(2.0, 1.9, True, lr=0.5) == LrStep(0.25, halving=True)
    assert step(2.0, 2.0 / 1.002, True, lr=0.25) == LrStep(0.25, halving=True, converged=True)


def test_alpha_schedules() -> None:
    assert [alpha_at(0.5, "1/t", t) for t in (1, 2, 3, 4)] == [0.5, 0.25, 0.5 / 3, 0.125]
    assert [alpha_at(0.01, "constant", t) for t in (1, 7)] == [0.01, 0.01]
    with pytest.raises(ValueError):
        alpha_at(0.5, "1/t", 0)


def test_early_stopping_counts_complete_epochs_without_improvement() -> None:
    s = EarlyStopping()
    s, better = s.update(3.0, 1, complete=True)
    assert better and (s.best, s.best_epoch) == (3.0, 1)
    s, better = s.update(3.1, 2, complete=True)
    assert not better and s.bad_epochs == 1 and not s.exhausted(2)
    s, _ = s.update(3.2, 3, complete=False)  # a budget-cut epoch does not count
    assert s.bad_epochs == 1
    s, _ = s.update(3.0, 3, complete=True)  # equal is no improvement
    assert s.exhausted(2) and not s.exhausted(0)
    s, better = s.update(2.9, 4, complete=True)
    assert better and s.bad_epochs == 0 and s.best_epoch == 4
