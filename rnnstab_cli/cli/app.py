"""The Typer application: one command per module, composed here."""

from __future__ import annotations

import typer

from rnnstab_cli.cli.bench import BENCH_HELP, bench
from rnnstab_cli.cli.common import EXIT_CODES_HELP
from rnnstab_cli.cli.eval import EVAL_HELP, eval_command
from rnnstab_cli.cli.export import EXPORT_HELP, export_command
from rnnstab_cli.cli.figure import figure_app
from rnnstab_cli.cli.import_model import IMPORT_HELP, import_command
from rnnstab_cli.cli.info import info
from rnnstab_cli.cli.plot import PLOT_HELP, plot_command
from rnnstab_cli.cli.report import REPORT_HELP, report_command
from rnnstab_cli.cli.reproduce import REPRODUCE_HELP, reproduce_command
from rnnstab_cli.cli.sweep import SWEEP_HELP, sweep_command
from rnnstab_cli.cli.tasks import tasks
from rnnstab_cli.cli.train import TRAIN_HELP, train

app = typer.Typer(
    name="rnnstab",
    help=(
        "Train recurrent networks stably: gradient clipping and the Ω regulariser of "
        "Pascanu, Mikolov & Bengio (2013), on a Rust engine.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    # A traceback is for bugs; user mistakes become "Error: …" lines in main().
    pretty_exceptions_enable=False,
)
app.command("train", help=TRAIN_HELP, short_help="Train on a synthetic task until solved.")(train)
app.command(
    "eval", help=EVAL_HELP, short_help="Score a checkpoint on fresh sequences of other lengths."
)(eval_command)
app.command(
    "export", help=EXPORT_HELP, short_help="Write a checkpoint's model as a PyTorch state dict."
)(export_command)
app.command(
    "import", help=IMPORT_HELP, short_help="Make a checkpoint from a PyTorch RNN state dict."
)(import_command)
app.command("tasks")(tasks)
app.command(
    "bench", help=BENCH_HELP, short_help="Measure training throughput against numpy and PyTorch."
)(bench)
app.add_typer(figure_app, name="figure")
app.command("info")(info)
app.command("sweep", help=SWEEP_HELP, short_help="Run a grid of training runs into a store.")(
    sweep_command
)
app.command("report", help=REPORT_HELP, short_help="Success-rate table of a result store.")(
    report_command
)
app.command("plot", help=PLOT_HELP, short_help="Fig. 7: success rate vs. sequence length.")(
    plot_command
)
app.command(
    "reproduce",
    help=REPRODUCE_HELP,
    short_help="Run the paper's experiments into a campaign directory; write its report.",
)(reproduce_command)
