"""``rnnstab eval``: score a trained checkpoint on fresh sequences of other lengths (the
paper's generalisation test: models trained up to length 200 still solve length 400); for a
natural-task checkpoint (music, ptb-char), the table's metric on a whole split (``--split``).

Exit codes: 0 measured (whatever the error rate); 2 bad usage; 3 data error; 4 checkpoint
error; 130 Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# What the command does lives in cli/eval_run.py, imported when it runs, so that defining the
# options (and `rnnstab --help`) needs neither numpy nor the engine.

EVAL_HELP = "\n\n".join(
    [
        "Error rate of a trained model on N fresh sequences per length.",
        "A length counts as solved when at most 1% of the sequences are errors (the paper's "
        "criterion, on 10,000 sequences by default). The paper's models generalise to "
        "sequences twice as long as those they were trained on.",
        "Example: rnnstab eval runs/to-200 --len 200 --len 400",
        "A natural-task checkpoint (music, ptb-char) is scored on whole splits with the table's "
        "metric: NLL per time step in nats (Table 1) or bits per character (Table 2), using the "
        "parameters of the best validation score (--last: the last ones).",
        "Example: rnnstab eval runs/nottingham --split valid --split test",
        "Exit codes: 0 measured (whatever the error rate) · 2 bad usage · 3 data error · "
        "4 checkpoint error · 130 interrupted.",
    ]
)


def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory (from train --out).")],
    lengths: Annotated[
        list[int] | None,
        typer.Option(
            "--len",
            help="Sequence length to test; repeat for several. Default: the training maximum.",
        ),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option("--n", help="Fresh test sequences per length.  [default: 10000, the paper's]"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the test sequences.")] = 0,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Engine threads (0: one per core).")
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per length (or split).")
    ] = False,
    splits: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help="Natural tasks: train | valid | test; repeat for several. Default: test.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Natural tasks: the data file or folder, if not where it was trained."
        ),
    ] = None,
    last: Annotated[
        bool,
        typer.Option(
            "--last", help="Natural tasks: score the last parameters, not the best validation's."
        ),
    ] = False,
) -> None:
    """Error rate of a trained model on N fresh sequences per length (``--help``: EVAL_HELP)."""
    from rnnstab_cli.cli.eval_run import run_eval

    run_eval(
        checkpoint,
        lengths=lengths or [],
        n=n,
        seed=seed,
        threads=threads,
        json_lines=json_lines,
        splits=splits or [],
        data=data,
        last=last,
    )
