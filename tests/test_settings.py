"""The settings' declarations (rnnstab_cli/training/settings.py) and what is derived from them:
key lists, value checks, per-kind defaults, resume roles, the engine's arguments."""

from __future__ import annotations

import dataclasses
import inspect
from typing import get_type_hints

import numpy as np
import pytest

from rnnstab_cli import _engine, engine
from rnnstab_cli.engine_options import TrainerOptions
from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.spec import run_id
from rnnstab_cli.training.config import (
    RESUMABLE_KEYS,
    TRAJECTORY_KEYS,
    TrainConfig,
    all_config_keys,
    normalise_layer,
)
from rnnstab_cli.training.model_settings import CLIP_RULE_KEYS, CLIP_RULE_PARAMS, ModelSettings
from rnnstab_cli.training.natural.config import NATURAL_RESUMABLE_KEYS, NaturalConfig
from rnnstab_cli.training.run_session import engine_trainer
from rnnstab_cli.training.settings import declared, defaults, engine_arguments, keys_with_role


def _synthetic(**kw: object) -> TrainConfig:
    return TrainConfig(task="temporal-order", length="50", **kw)


def test_every_setting_has_help_and_a_role() -> None:
    for cls in (TrainConfig, NaturalConfig):
        for d in declared(cls):
            assert d.spec.help.strip(), d.key
            assert d.spec.role in ("trajectory", "rule", "verdict", "resumable", "label")
    keys = all_config_keys()
    assert "preset" not in keys  # written by rnnstab, not set by people
    assert {"len", "epochs", "clip_window", "description", "per_method"} <= set(keys)


def test_shared_settings_take_their_natural_defaults_in_natural_runs() -> None:
    synthetic, natural = defaults(TrainConfig), defaults(NaturalConfig)
    # The appendix's temporal-order set-up against the neutral natural one.
    assert (synthetic["hidden"], natural["hidden"]) == (50, 300)
    assert (synthetic["activation"], natural["activation"]) == ("tanh", "sigmoid")
    assert (synthetic["time_reduction"], natural["time_reduction"]) == ("sum", "mean")
    assert synthetic["seed"] == natural["seed"] == 0
    # A natural config built without them has them.
    n = NaturalConfig(task="music", dataset="jsb")
    assert (n.hidden, n.lr, n.clip, n.batch) == (300, 1.0, 8.0, 1)
    # Both kinds declare every shared setting once, in the shared class.
    shared = {d.key for d in declared(ModelSettings)}
    assert shared <= {d.key for d in declared(NaturalConfig)}
    assert shared <= {d.key for d in declared(TrainConfig)}


def test_roles_give_the_resume_and_identity_key_sets() -> None:
    assert set(RESUMABLE_KEYS) == {
        "max_updates", "eval_every", "eval_sequences", "screen_sequences", "threads", "device",
        "diagnostics",
    }  # fmt: skip
    assert {"task", "len", "lr", "clip", "alpha", "chunk", "seed"} <= set(TRAJECTORY_KEYS)
    assert not set(TRAJECTORY_KEYS) & set(RESUMABLE_KEYS)
    assert set(NATURAL_RESUMABLE_KEYS) == {"epochs", "max_updates", "patience", "threads", "data"}
    assert keys_with_role(TrainConfig, "verdict") == ("solve_error",)
    assert CLIP_RULE_PARAMS["auto"] == ("clip_window", "clip_factor")
    assert CLIP_RULE_PARAMS["norm"] == ()
    assert set(CLIP_RULE_KEYS) == {k for ks in CLIP_RULE_PARAMS.values() for k in ks}


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("hidden", 0, "hidden must be ≥ 1"),
        ("lr", 0.0, "lr must be > 0"),
        ("momentum", 1.0, "momentum must be < 1"),
        ("clip_percentile", 101.0, "clip_percentile must be ≤ 100"),
        ("clip_beta", 1.0, "clip_beta must be < 1"),
        ("clip_window", 2_000_000, "clip_window must be ≤ 1,000,000"),
        ("activation", "softplus", "unknown activation 'softplus'"),
        ("nonfinite", "ignore", "expected one of: skip, shrink, error"),
        ("threads", 0, "threads must be ≥ 1"),
        ("diagnostics", 1, "diagnostics must be true or false"),
    ],
)
def test_declared_ranges_and_choices_are_checked(key: str, value: object, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        _synthetic(**{key: value})


def test_file_values_are_checked_against_the_declared_type() -> None:
    assert normalise_layer({"lr": 1}, source="f") == {"lr": 1.0}  # a float setting
    assert normalise_layer({"threads": 0}, source="f") == {"threads": None}  # one per core
    with pytest.raises(UsageError, match="f: hidden must be an integer"):
        normalise_layer({"hidden": 5.0}, source="f")
    with pytest.raises(UsageError, match="f: lr_halving must be true or false"):
        normalise_layer({"lr_halving": "yes"}, source="f")
    with pytest.raises(UsageError, match="did you mean 'clip_z'"):
        normalise_layer({"clip_zz": 1.0}, source="f")


def test_engine_arguments_use_the_bindings_names() -> None:
    args = engine_arguments(_synthetic(clip_mode="auto"))
    # One name for one meaning from the config file to the binding: the threshold is `clip`,
    # the rule `clip_mode`, Ω's weight `alpha`.
    assert (args["clip_mode"], args["clip"], args["alpha"]) == ("auto", 6.0, 2.0)
    native = set(inspect.signature(_engine.Trainer).parameters)
    python = set(get_type_hints(TrainerOptions))  # engine.Trainer's **options
    for cls in (TrainConfig, NaturalConfig):
        for d in declared(cls):
            if d.spec.engine:
                assert d.name in native and d.name in python, d.name
    assert "method" not in args and "seed" not in args  # not the engine's business


def test_a_new_setting_is_one_declaration() -> None:
    """`rho` and `eps` (rmsprop's decay, rmsprop's and adagrad's guard) became settings by one
    declaration each in ModelSettings; the engine already took them. From it alone: the config
    key and its help, the type and range checks, the trajectory role (a resumed run must
    agree), the trainer's argument, and run ids that stay as they were at the default."""
    assert "rho" in all_config_keys() and "rho" in TRAJECTORY_KEYS
    assert normalise_layer({"rho": 0.5}, source="f") == {"rho": 0.5}
    with pytest.raises(UsageError, match="rho must be < 1"):
        _synthetic(rho=1.0)
    with pytest.raises(UsageError, match="eps must be > 0"):
        NaturalConfig(task="music", dataset="jsb", eps=0.0)
    params = engine.init_params(6, 4, 4, seed=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(5, 2, 6))
    y = np.zeros((5, 2), dtype=np.int64)
    m = np.ones((5, 2))
    after = {}
    for rho in (0.5, 0.9):
        config = _synthetic(optimizer="rmsprop", rho=rho, lr=0.01)
        assert engine_arguments(config)["rho"] == rho
        tr = engine_trainer(config, params, loss="softmax_ce")
        tr.step(x, y, m)
        tr.step(x, y, m)
        after[rho] = tr.params["W_rec"]
    assert not np.array_equal(after[0.5], after[0.9])  # the engine used it
    # At its default the new setting leaves every run id as it was; set, it names a new run.
    plain = _synthetic()
    assert run_id(plain) == run_id(plain.replace(rho=0.9))
    assert run_id(plain) != run_id(plain.replace(rho=0.5))


def test_configs_are_frozen_and_keyword_only() -> None:
    c = _synthetic()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 1.0
    with pytest.raises(TypeError):
        TrainConfig("temporal-order", "50")
    assert c.replace(lr=0.5).lr == 0.5
    with pytest.raises(UsageError, match="lr must be > 0"):
        c.replace(lr=-1.0)
