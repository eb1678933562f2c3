"""Start-up of the command line: defining the commands, `rnnstab --help` and a mistyped option
load none of the heavy libraries; each command imports what it uses when it runs
(rnnstab_cli/cli: <command>.py defines the options, <command>_run.py does the work)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Never needed to define the commands or to answer --help or a usage error.
HEAVY = ("matplotlib", "scipy", "ray", "torch")
#: Not needed either before a command runs: the engine and numpy.
ENGINE = ("numpy", "rnnstab_cli._engine")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.__stdout__)"
    p = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(p.stdout.strip().splitlines()[-1]))


def run_main(*argv: str) -> str:
    """Code that runs the CLI in-process with ``argv``, output silenced, exit code kept."""
    return (
        "import contextlib, io\nfrom rnnstab_cli.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):"
        f"\n    code = main({list(argv)!r})\n"
    )


def test_the_probe_sees_heavy_imports() -> None:
    assert {"matplotlib", "scipy"} <= modules_after("import rnnstab_cli.figures")


def test_importing_the_app_loads_no_heavy_library() -> None:
    loaded = modules_after("from rnnstab_cli.cli.app import app")
    assert "rnnstab_cli.cli.app" in loaded
    assert not loaded & {*HEAVY, *ENGINE}


@pytest.mark.parametrize(
    "argv", [["--help"], ["train", "--help"], ["train", "--bogus"], ["sweep", "--help"]]
)
def test_help_and_usage_errors_load_no_heavy_library(argv: list[str]) -> None:
    loaded = modules_after(run_main(*argv))
    assert not loaded & {*HEAVY, *ENGINE}


def test_tasks_loads_no_plotting_or_cluster_library() -> None:
    loaded = modules_after(run_main("tasks") + "assert code == 0\n")
    assert "numpy" in loaded  # it resolves every preset
    assert not loaded & set(HEAVY)
    # Resolving a preset needs neither the engine's trainer nor either training loop.
    assert not loaded & {
        "rnnstab_cli.engine",
        "rnnstab_cli.training.synthetic.loop",
        "rnnstab_cli.training.natural.loop",
        "rnnstab_cli.training.natural.checkpoint",
    }
