"""How close does a natural-task epoch come to the engine's own rate? A measurement, runnable as::

    python scripts/bench_natural_epoch.py --task music --dataset nottingham --data PATH
    python scripts/bench_natural_epoch.py --task ptb-char --data PATH

For the task's preset it prints:

1. the epoch as `rnnstab train` runs it (one epoch from a fresh start, in this process): its
   training time (the epoch record's ``epoch_time``) and the time spent scoring the
   validation split;
2. the same epoch's updates (the same batches, a fresh trainer from the same initial
   parameters) given to the engine alone, one `Trainer.step` call each, with nothing else
   around them;
3. the ratio of the two: the share of the engine's rate an epoch of training keeps.

Run it on a quiet machine (nothing else on the cores). The figures quoted in the README's
performance section came from this script.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from rnnstab_cli.training.natural.config import natural_preset_config
from rnnstab_cli.training.natural.data import epoch_batches, load_natural_data
from rnnstab_cli.training.natural.loop import make_natural_trainer, run_natural
from rnnstab_cli.training.run_session import initial_params


def engine_alone(config: Any) -> tuple[int, float]:
    """(updates, seconds) of the first epoch's updates through the bare trainer."""
    data = load_natural_data(config)
    trainer = make_natural_trainer(config, initial_params(config, data.n_in, data.n_out))
    batches = list(epoch_batches(config, data, 1))
    start = time.perf_counter()
    for b in batches:
        trainer.step(b.inputs, b.targets, b.mask)
    return len(batches), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", required=True, choices=("music", "ptb-char"))
    ap.add_argument("--dataset", help="the music data set (jsb, nottingham, piano-midi, musedata)")
    ap.add_argument("--data", required=True, help="the data file or folder")
    args = ap.parse_args()
    flags = {"data": args.data, "epochs": 1}
    if args.dataset:
        flags["dataset"] = args.dataset
    config = natural_preset_config(args.task, **flags)
    records: list[Any] = []
    with tempfile.TemporaryDirectory() as out:
        run_natural(config, out_dir=out, on_epoch=records.append)
    record = records[-1]
    updates, alone = engine_alone(config)
    print(f"{config.preset}: {updates} updates, method {config.method}")
    print(f"  rnnstab train: {record.epoch_time:.2f} s training, {record.eval_time:.2f} s scoring")
    print(f"  engine alone:  {alone:.2f} s ({updates / alone:.0f} updates/s)")
    print(f"  the epoch keeps {100 * alone / record.epoch_time:.0f}% of the engine's rate")


if __name__ == "__main__":
    main()
