"""A natural run's progress on stderr: a live Rich bar over the epoch's updates with the last
statistics, and one line per epoch. Nothing when stderr is not a terminal, with ``--quiet``
or with ``--json`` (stdout belongs to the data)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.metrics import UNITS
from rnnstab_cli.training.natural.records import EpochRecord, NaturalProgressSink
from rnnstab_cli.training.progress import num, updates_bar


def run_title(config: NaturalConfig) -> str:
    clip = f"clip {config.clip_mode}" + (f" {config.clip:g}" if config.clip_mode != "none" else "")
    alpha = f"α {config.alpha:g}" + (" (1/t)" if config.alpha_schedule == "1/t" else "")
    return (
        f"{config.label} · {config.method} · lr {config.lr:g} · {alpha} · {clip} · "
        f"{config.hidden} {config.activation} units · batch {config.batch} × {config.seq_len}"
    )


def epoch_line(record: EpochRecord) -> str:
    """``epoch 3: train 3.61 · valid 3.70 nats/step · lr 1 → 0.5 · α 0.167 · ‖g‖ … · 12.3s``."""
    unit = UNITS[record.metric]
    if record.epoch == 0:
        return f"untrained: valid {num(record.valid, '.4f')} {unit}"
    lr = f"lr {record.lr:g}" + (f" → {record.next_lr:g}" if record.next_lr != record.lr else "")
    part = "" if record.complete else f" (stopped after {record.epoch_updates:,} updates)"
    return (
        f"epoch {record.epoch}{part}: train {num(record.train, '.4f')} · valid "
        f"{num(record.valid, '.4f')} {unit} · {lr} · α {record.alpha:.4g} · ‖g‖ mean "
        f"{num(record.grad_norm_mean, '.3g')} max {num(record.grad_norm_max, '.3g')} · "
        f"clipped {num(None if record.clip_rate is None else 100 * record.clip_rate, '.1f')}% "
        f"· {record.epoch_time:.1f}s"
    )


class RichNaturalProgress:
    """Live bar over the current epoch's updates, plus one printed line per epoch."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar = updates_bar(console)
        self._live = Live(self._bar, console=console, refresh_per_second=4)
        self._task = self._bar.add_task("", total=1, visible=False)
        self._total = 1
        self._stats = ""

    def start(self, config: NaturalConfig, updates_per_epoch: int, resumed_at: int) -> None:
        self.console.print(f"[bold]rnnstab train[/] {run_title(config)}", highlight=False)
        if resumed_at:
            self.console.print(f"  resuming at {resumed_at:,} updates", highlight=False)
        self._total = updates_per_epoch
        self._live.start()

    def epoch_start(self, epoch: int, done: int, lr: float, alpha: float) -> None:
        self._bar.update(
            self._task, description=f"epoch {epoch}", total=self._total, completed=done,
            visible=True,
        )  # fmt: skip
        self._stats = f"lr {lr:g} · α {alpha:.4g}"
        self._render("")

    def update(self, done: int, loss: float, grad_norm: float, clipped: bool) -> None:
        self._bar.update(self._task, completed=done)
        self._render(f"loss {num(loss, '.4f')} · ‖g‖ {num(grad_norm, '.3g')}")

    def evaluating(self, split: str) -> None:
        self._render(f"scoring the {split} split…")

    def epoch_end(self, record: EpochRecord) -> None:
        self.console.print("  " + epoch_line(record), highlight=False)

    def _render(self, extra: str) -> None:
        line = " · ".join(s for s in (self._stats, extra) if s)
        self._live.update(Group(self._bar, Text("  " + line)))

    def finish(self) -> None:
        self._live.stop()


def make_natural_progress(quiet: bool = False, plain: bool = False) -> NaturalProgressSink | None:
    """The live display when stderr is a terminal, else nothing (``quiet``/``plain`` too)."""
    if quiet or plain:
        return None
    console = Console(stderr=True)
    return RichNaturalProgress(console) if console.is_terminal else None
