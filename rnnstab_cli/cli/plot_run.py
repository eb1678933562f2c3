"""What ``rnnstab plot`` does once its options are parsed (cli/plot.py defines them): Fig. 7
from a result store, or one run's training curves from its directory.
"""

from __future__ import annotations

from pathlib import Path

from rnnstab_cli.cli.common import emit_json, note
from rnnstab_cli.errors import UsageError
from rnnstab_cli.figures.plotting import check_path
from rnnstab_cli.sweep.plot import default_subtitle, default_title, plot_success, success_curves
from rnnstab_cli.sweep.report import parse_keys, pooled_settings, select_runs
from rnnstab_cli.sweep.store import ResultStore


def _one_key(text: str | None, option: str, default: str) -> str:
    keys = parse_keys(text, option, [default])
    if len(keys) != 1:
        raise UsageError(f"{option} takes one key, got {text!r}")
    return keys[0]


def run_plot(
    *,
    store: Path,
    out: Path,
    by: str | None,
    x: str | None,
    sweep: str | None,
    where: list[str] | None,
    title: str | None,
    json_out: bool,
) -> None:
    """What `rnnstab plot` does with its parsed options."""
    check_path(out)  # a bad suffix fails before the store is read
    if store.is_dir():
        from rnnstab_cli.figures.training_run import load_history, plot_history

        history = load_history(store)
        path = plot_history(history, out)
        if json_out:
            emit_json({"event": "plot", "path": str(path), "run": history.to_json_dict()})
        else:
            note(f"Wrote {path}")
        return
    by_key = _one_key(by, "--by", "method")
    x_key = _one_key(x, "--x", "len")
    if by_key == x_key:
        raise UsageError("--by and --x must be different keys")
    with ResultStore.open_readonly(store) as st:
        sel = select_runs(st, sweep=sweep, where=where or [])
    curves = success_curves(sel.runs, by=by_key, x=x_key)
    mixed = pooled_settings(sel.runs, [by_key, x_key])
    if mixed:
        note(f"note: points pool runs that differ in {', '.join(mixed)}; filter with --where")
    path = plot_success(
        curves,
        out,
        title=title if title is not None else default_title(sel.runs),
        subtitle=default_subtitle(sel.runs),
        xlabel="sequence length T" if x_key == "len" else x_key,
    )
    if json_out:
        emit_json(
            {
                "event": "plot",
                "path": str(path),
                "by": by_key,
                "x": x_key,
                "curves": [
                    {"value": c.value, "x": c.xs, "solved": c.solved, "total": c.totals}
                    for c in curves
                ],
            }
        )
    else:
        note(f"Wrote {path}")
