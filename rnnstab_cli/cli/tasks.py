"""``rnnstab tasks``: the synthetic tasks and their presets with the paper's settings, and the
natural tasks' presets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rnnstab_cli.cli.common import emit_json
from rnnstab_cli.preset_files import preset_dir, shipped_sweep_dir, shipped_sweep_names
from rnnstab_cli.toml_files import read_toml

# training.config (numpy, the task generators) and rich are imported by the functions that use
# them, so that defining the command (and `rnnstab --help`) does without them.


def preset_rows() -> list[dict[str, Any]]:
    """One row per synthetic-task preset, with its resolved settings."""
    from rnnstab_cli.training.config import load_preset, preset_config, preset_names

    rows = []
    for name in preset_names():
        cfg = preset_config(name)
        task = cfg.make_task()
        rows.append(
            {
                "name": name,
                "task": cfg.task,
                "task_options": dict(cfg.task_options),
                "description": load_preset(name).get("description", ""),
                "kind": task.kind,
                "inputs": task.n_in,
                "outputs": task.n_out,
                "loss": task.loss,
                "len": str(cfg.length),
                "method": cfg.method,
                "hidden": cfg.hidden,
                "activation": cfg.activation,
                "lr": cfg.lr,
                "alpha": cfg.alpha,
                "clip": cfg.clip,
                "init": f"{cfg.init}({cfg.init_scale:g})",
                "batch": cfg.batch,
                "max_updates": cfg.max_updates,
                "eval_every": cfg.eval_every,
            }
        )
    return rows


def sweep_rows() -> list[dict[str, str]]:
    """One row per shipped sweep spec: the name `rnnstab sweep` takes, and its description."""
    rows = []
    for name in shipped_sweep_names():
        raw = read_toml(shipped_sweep_dir() / f"{name}.toml", "sweep spec")
        rows.append({"name": name, "description": str(raw.get("description", ""))})
    return rows


def tasks(
    json_out: Annotated[
        bool, typer.Option("--json", help='One JSON object on stdout: {"presets": [...]}.')
    ] = False,
) -> None:
    """List the presets (the paper's settings for each task) and the shipped sweep specs."""
    from rich.console import Console
    from rich.table import Table

    from rnnstab_cli.training.config import load_preset, natural_preset_names

    rows = preset_rows()
    natural = [
        {"name": n, "description": load_preset(n).get("description", "")}
        for n in natural_preset_names()
    ]
    sweeps = sweep_rows()
    if json_out:
        emit_json(
            {
                "presets": rows,
                "natural_presets": natural,
                "preset_dir": str(preset_dir()),
                "sweeps": sweeps,
            }
        )
        return
    table = Table(title=f"Presets in {preset_dir()}", title_justify="left")
    for col in ("name", "in/out", "loss", "len", "hidden", "lr", "α", "clip", "budget"):
        table.add_column(col, justify="left" if col in ("name", "loss") else "right")
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['inputs']}/{r['outputs']}",
            r["loss"],
            r["len"],
            f"{r['hidden']} {r['activation']}",
            f"{r['lr']:g}",
            f"{r['alpha']:g}",
            f"{r['clip']:g}",
            f"{r['max_updates']:,}",
        )
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or file gets the whole table, not 80 columns
        console = Console(highlight=False, width=120)
    console.print(table)
    for r in rows:
        if r["description"]:
            console.print(f"  {r['name']}: {r['description']}")
    if natural:
        console.print("\nNatural tasks (§4.2, trained epoch by epoch; data from --data PATH):")
        for r in natural:
            console.print(f"  {r['name']}: {r['description']}")
    if sweeps:
        console.print("\nSweep specs shipped with rnnstab (rnnstab sweep NAME --store FILE.db):")
        for r in sweeps:
            console.print(f"  {r['name']}: {r['description']}")
