"""``rnnstab info``: what this installation has — version, cores, the engine's backends and the
GPU adapters wgpu sees, and where data and presets are looked up."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from rnnstab_cli.cli.common import emit_json
from rnnstab_cli.preset_files import preset_source

# The engine, the data-set registry (numpy) and rich are imported when the command runs, so
# that defining it (and `rnnstab --help`) does without them.


def facts() -> dict[str, Any]:
    from rnnstab_cli import __version__, engine
    from rnnstab_cli.datasets import default_data_dir

    data = default_data_dir()
    presets = preset_source()
    return {
        "version": __version__,
        "cores": os.cpu_count(),
        "simd": engine.simd_level(),
        "gpu_backend": engine.has_gpu_backend(),
        "gpu_adapters": engine.gpu_adapters(),
        "data_dir": None if data is None else str(data),
        "presets": str(presets),
        "presets_found": presets.is_dir(),
    }


def info(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Show the version, the engine's backends and the GPU adapters wgpu can see."""
    from rich.console import Console
    from rich.table import Table

    from rnnstab_cli import engine

    f = facts()
    if json_out:
        emit_json(f)
        return
    con = Console()
    con.print(
        f"rnnstab {f['version']} · {f['cores']} cores · engine kernels {f['simd']} "
        f"(cap with ${engine.SIMD_ENV}) · presets in {f['presets']}"
        + ("" if f["presets_found"] else " (MISSING)")
    )
    con.print(f"data sets: {f['data_dir'] or 'RNNSTAB_DATA is not set (pass --data PATH)'}")
    if not f["gpu_backend"]:
        con.print("GPU backend: not built into this installation")
        return
    adapters = f["gpu_adapters"]
    if not adapters:
        con.print(
            "GPU backend: built, but wgpu sees no adapter (--device gpu will refuse; "
            "install a Vulkan, Metal or DX12 driver)"
        )
        return
    table = Table(title="GPU adapters (wgpu)")
    for col in ("name", "backend", "device_type", "driver"):
        table.add_column(col)
    for a in adapters:
        table.add_row(a["name"], a["backend"], a["device_type"], a["driver"])
    con.print(table)
