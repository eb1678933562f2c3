"""Progress displays on stderr (training/progress.py)."""

from __future__ import annotations

import io

from rich.console import Console

from rnnstab_cli.training.config import resolve_config
from rnnstab_cli.training.progress import LogProgress, RichProgress, make_progress
from rnnstab_cli.training.synthetic.loop import run_training

CFG = resolve_config(
    {"task": "temporal-order", "len": "10:14", "hidden": 4, "batch": 4, "max_updates": 60,
     "eval_every": 30, "eval_sequences": 100, "screen_sequences": 20}
)  # fmt: skip


def test_rich_display_shows_the_statistics() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    run_training(CFG, progress=RichProgress(console))
    text = buf.getvalue()
    for needle in ("upd/s", "loss", "pre-clip", "clipped", "Ω", "test error", "ρ(W_rec)"):
        assert needle in text
    assert "test lengths are drawn from the training range 10:14" in text  # the whole range


def test_log_lines_are_plain() -> None:
    buf = io.StringIO()
    run_training(CFG, progress=LogProgress(buf, interval=0))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3  # start + one per evaluation
    assert all(line.startswith("rnnstab: ") for line in lines)
    assert "\x1b[" not in buf.getvalue()
    assert "test error" in lines[-1] and "of 100" in lines[-1]


def test_quiet_and_plain() -> None:
    assert make_progress(quiet=True) is None
    assert isinstance(make_progress(plain=True), LogProgress)
