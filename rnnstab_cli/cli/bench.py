"""``rnnstab bench``: updates/s and GFLOP/s of the engine against numpy and PyTorch, measured in
the same run, with the machine's own matrix-product ceiling."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from rnnstab_cli.cli.common import emit_json, note

# Paragraphs as single strings: the help formatter keeps line breaks inside a paragraph.
BENCH_HELP = "\n\n".join(
    [
        "Measure training-update throughput.",
        "For each configuration (the paper's temporal order H=50 I=6 B=20 T=200, a large "
        "model, the models of Tables 1 and 2, plus any --config H,I,B,T[,every|bce][,carry]) "
        "one update is: forward over T steps of a tanh RNN, the cost (cross-entropy at the "
        "last step; with 'every' at every step over I classes, with 'bce' a sigmoid "
        "cross-entropy per input unit at every step; with 'carry' the final state starts the "
        "next update), BPTT, norm clipping, an SGD step, in float32.",
        "Rows: rnnstab on all cores and on one, with Ω (SGD-CR), rnnstab train end to end "
        "(data generation included), independent single-threaded runs on every core (a "
        "sweep's throughput), a hand-written numpy BPTT, and PyTorch's nn.RNN when torch is "
        "installed, on all cores and on one (the engine's one-thread row is compared with "
        "the latter).",
        "GFLOP/s count 6·T·B·(H² + H·I), plus 6·T·B·H·O where every step is scored, per "
        'update; "% ceiling" compares with a large f32 matrix product measured at the start '
        "of the run. With $RNNSTAB_SIMD capping the engine (avx2, portable), OpenBLAS, MKL "
        "and oneDNN are capped at the same level. Rates are the best of three timing "
        "windows; the share of CPU time a virtual machine's host took is printed when it "
        "is 1% or more.",
    ]
)


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def bench(
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config", help="Extra configuration H,I,B,T[,every|bce][,carry] (repeatable)."
        ),
    ] = None,
    only: Annotated[
        bool, typer.Option("--only", help="Measure only the --config configurations.")
    ] = False,
    seconds: Annotated[float, typer.Option(min=0.1, help="Time spent on each measurement.")] = 1.5,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="Threads for the engine and torch (default: all cores)."),
    ] = None,
    no_peers: Annotated[bool, typer.Option("--no-peers", help="Skip numpy and PyTorch.")] = False,
    gpu: Annotated[
        bool,
        typer.Option("--gpu", help="Add a row for the GPU backend (wgpu's first adapter)."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per row on stdout.")
    ] = False,
    startup: Annotated[
        bool,
        typer.Option(
            "--startup/--no-startup",
            help="Also time `rnnstab --help`, `rnnstab tasks` and a bad option (target 0.5 s).",
        ),
    ] = True,
) -> None:
    from rnnstab_cli.simd_env import peer_caps

    # With the engine capped at a lower instruction set, the peers' libraries are capped at
    # the same one; they read these settings when they load, which is below.
    os.environ.update(peer_caps())
    # Imported here, when a benchmark runs: the engine, numpy and rich stay out of start-up.
    from rich.console import Console
    from rich.table import Table

    from rnnstab_cli.bench import PAPER_CONFIGS, BenchConfig, BenchRow, run_benchmark

    configs = [] if only else list(PAPER_CONFIGS)
    configs += [BenchConfig.parse(c) for c in config or []]
    if not configs:
        note("nothing to measure: --only needs at least one --config")
        raise typer.Exit(2)
    quiet = json_out or not sys.stderr.isatty()
    if not quiet:
        note("measuring the matrix-product ceiling, then each configuration …")

    def on_row(row: BenchRow) -> None:
        if json_out:
            emit_json(row.to_json())
        elif not quiet:
            note(f"  {row.config}: {row.implementation} {row.updates_per_s:,.0f} updates/s")

    rows, facts = run_benchmark(
        configs, seconds=seconds, threads=threads, peers=not no_peers, gpu=gpu, on_row=on_row
    )
    from rnnstab_cli.bench.startup import TARGET_SECONDS, measure_startup

    started = measure_startup() if startup else []
    if json_out:
        for st in started:
            emit_json(st.to_json())
        emit_json({"summary": facts})
        return
    table = Table(
        title=f"Training updates, float32 — ceiling {facts['ceiling_gflops']:.0f} GFLOP/s "
        f"(large matmul, {facts['cores']} cores); engine kernels: {facts['simd']}"
        + (
            f"; peers capped: {' '.join(f'{k}={v}' for k, v in caps.items())}"
            if isinstance(caps := facts["peer_caps"], dict)
            else ""
        )
    )
    for col in (
        "config",
        "implementation",
        "threads",
        "updates/s",
        "GFLOP/s",
        "% ceiling",
        "× numpy",
        "× torch",
        "note",
    ):
        table.add_column(
            col, justify="right" if col not in ("config", "implementation", "note") else "left"
        )
    for r in rows:
        table.add_row(
            r.config,
            r.implementation,
            str(r.threads or "—"),
            f"{r.updates_per_s:,.0f}",
            f"{r.gflops:.1f}",
            _fmt(r.pct_of_ceiling, ".1f"),
            _fmt(r.vs_numpy, ".2f"),
            _fmt(r.vs_torch, ".2f"),
            r.note,
        )
    Console(width=200).print(table)
    if started:
        times = Table(title=f"Start-up, fresh interpreter (median of 5; target {TARGET_SECONDS} s)")
        for col in ("command", "median s", "max s", "exit", "within target"):
            times.add_column(col, justify="left" if col == "command" else "right")
        for st in started:
            times.add_row(
                st.command,
                f"{st.median_s:.3f}",
                f"{st.max_s:.3f}",
                str(st.exit_code),
                "yes" if st.within_target else "no",
            )
        Console(width=200).print(times)
    steal = facts["steal_fraction"]
    if isinstance(steal, float) and steal >= 0.01:
        print(
            f"The virtual machine's host took {steal:.0%} of the CPU time during this run "
            "(steal): the rates are below this machine's own, multi-threaded ones most."
        )
    if facts["torch"] is None:
        print("PyTorch is not installed: `pip install 'rnnstab[bench]'` adds the torch column.")
