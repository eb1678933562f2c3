"""Presets, config files, flags and the paper's method names (training/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnstab_cli.errors import UsageError
from rnnstab_cli.taskgen import TASK_NAMES
from rnnstab_cli.training.config import (
    LengthRange,
    TrainConfig,
    all_config_keys,
    parse_length,
    preset_config,
    preset_names,
    resolve_config,
)

PAPER_PRESETS = {
    "addition",
    "multiplication",
    "temporal-order",
    "temporal-order-3bit",
    "random-permutation",
    "memorization",
    "memorization-20bit",
}


def test_every_paper_experiment_has_a_preset_that_resolves() -> None:
    assert PAPER_PRESETS <= set(preset_names())
    for name in preset_names():
        cfg = preset_config(name)
        assert cfg.task in TASK_NAMES
        assert cfg.method == "sgd-cr"
        assert cfg.max_updates > 0 and cfg.eval_every > 0


def test_temporal_order_preset_has_the_papers_numbers() -> None:
    cfg = preset_config("temporal-order")
    assert (cfg.hidden, cfg.activation, cfg.lr, cfg.alpha, cfg.clip) == (50, "tanh", 0.001, 2, 6)
    assert (cfg.init, cfg.init_scale, cfg.batch, cfg.clip_mode) == ("normal", 0.1, 20, "norm")
    assert cfg.length == LengthRange(50, 200)
    assert cfg.make_task().loss == "softmax_ce"


def test_presets_cite_the_paper() -> None:
    from rnnstab_cli.training.config import preset_dir

    for name in PAPER_PRESETS:
        text = (preset_dir() / f"{name}.toml").read_text()
        assert "appendix" in text, name


def test_other_presets_follow_the_appendix() -> None:
    assert preset_config("addition").lr == 0.01
    assert preset_config("addition").alpha == 0.5
    assert preset_config("temporal-order-3bit").hidden == 100
    assert preset_config("random-permutation").alpha == 1.0
    mem20 = preset_config("memorization-20bit")
    assert mem20.task == "memorization"
    assert dict(mem20.task_options) == {"pattern_length": 10, "n_values": 5}


@pytest.mark.parametrize(
    ("method", "clip_mode", "alpha"),
    [("sgd", "none", 0.0), ("sgd-c", "norm", 0.0), ("sgd-cr", "norm", 2.0)],
)
def test_method_mapping(method: str, clip_mode: str, alpha: float) -> None:
    cfg = resolve_config({"task": "temporal-order", "len": "50", "method": method})
    assert (cfg.method, cfg.clip_mode, cfg.alpha) == (method, clip_mode, alpha)


def test_clip_mode_flag_overrides_the_method() -> None:
    cfg = resolve_config({"task": "temporal-order", "method": "sgd-c", "clip_mode": "value"})
    assert cfg.clip_mode == "value"


def test_alpha_with_a_method_that_has_omega_off_is_refused() -> None:
    with pytest.raises(UsageError, match="sgd-cr"):
        resolve_config({"task": "temporal-order", "method": "sgd", "alpha": 1.0})
    with pytest.raises(UsageError, match="sgd-cr"):
        TrainConfig(task="temporal-order", length=LengthRange(50, 50), method="sgd-c", alpha=1.0)


def test_precedence_preset_then_file_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "run.toml"
    f.write_text('task = "temporal-order"\nlr = 0.01\nhidden = 30\nmax-updates = 7\n')
    cfg = resolve_config({"hidden": 40}, f)
    assert cfg.lr == 0.01  # file beats preset
    assert cfg.hidden == 40  # flag beats file
    assert cfg.max_updates == 7  # dashes are accepted in TOML keys
    assert cfg.alpha == 2.0  # preset where nobody overrides
    assert cfg.preset == "temporal-order"


def test_flag_task_beats_file_task(tmp_path: Path) -> None:
    f = tmp_path / "run.toml"
    f.write_text('task = "addition"\n')
    assert resolve_config({"task": "temporal-order"}, f).task == "temporal-order"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("lerning_rate = 0.1\n", "unknown key 'lerning_rate'"),
        ("hiden = 3\n", "did you mean 'hidden'"),
        ("lr = 'fast'\n", "lr must be a number"),
        ("hidden = 2.5\n", "hidden must be an integer"),
        ("lr = [\n", "not valid TOML"),
    ],
)
def test_bad_config_files(tmp_path: Path, body: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('task = "temporal-order"\n' + body)
    with pytest.raises(UsageError, match=match):
        resolve_config({}, f)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resolve_config({"task": "temporal-order"}, tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        ({"task": "nope"}, "unknown task 'nope'"),
        ({"task": "temporal-order", "lr": -0.1}, "lr must be > 0"),
        ({"task": "temporal-order", "len": "5"}, "too short"),
        ({"task": "temporal-order", "len": "200:50"}, "MIN ≤ MAX"),
        ({"task": "temporal-order", "hidden": 0}, "hidden must be ≥ 1"),
        ({"task": "temporal-order", "activation": "cube"}, "unknown activation"),
        ({"task": "temporal-order", "device": "tpu"}, "device"),
        ({"task": "temporal-order", "method": "adam"}, "unknown method"),
        ({"len": "50"}, "no task given"),
    ],
)
def test_bad_values_are_usage_errors(flags: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        resolve_config(flags)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("200", (200, 200)), ("50:200", (50, 200)), (" 7 ", (7, 7)), (12, (12, 12))],
)
def test_parse_length(text: object, expected: tuple[int, int]) -> None:
    r = parse_length(text)
    assert (r.lo, r.hi) == expected


@pytest.mark.parametrize("text", ["", "a", "1:2:3", "0", "-5", "50-200", "3.5", True])
def test_parse_length_rejects(text: object) -> None:
    with pytest.raises(UsageError):
        parse_length(text)


def test_to_dict_round_trips_and_uses_config_keys() -> None:
    cfg = resolve_config({"task": "memorization-20bit", "len": "20:30", "threads": 2})
    d = cfg.to_dict()
    assert set(d) <= set(all_config_keys()) | {"preset"}
    assert TrainConfig.from_dict(d) == cfg


def test_chunk_is_fixed_at_construction() -> None:
    cfg = resolve_config({"task": "temporal-order", "eval_every": 40})
    assert cfg.chunk == 40
    assert cfg.replace(eval_every=1000).chunk == 40  # a resumed run keeps its batches
    assert resolve_config({"task": "temporal-order"}).chunk == 100
