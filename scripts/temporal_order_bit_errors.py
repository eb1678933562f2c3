"""Which of the two symbols a solved temporal-order model gets wrong beyond its training lengths.

    python scripts/temporal_order_bit_errors.py docs/reproduction [--n 10000]

For every solved single model of the campaign's generalisation section (temporal order), the
error of the first and of the second A/B symbol separately, on fresh sequences of length 200,
300 and 400 (test seed 0, as `rnnstab eval` draws them), and the share of the wrong answers that
are the right pair of symbols in the wrong order (AB for BA or BA for AB). A bit at 50% is lost;
the class is right only when both are. The reproduction's notes quote this table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rnnstab_cli import engine
from rnnstab_cli.sweep.store import ResultStore
from rnnstab_cli.training.checkpoint import load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="the campaign directory")
    ap.add_argument("--n", type=int, default=10_000, help="sequences per length")
    args = ap.parse_args()
    section = args.dir / "generalisation"
    with ResultStore.open_readonly(section / "store.db") as store:
        rows = [r for r in store.runs() if r.config["task"] == "temporal-order" and r.solved]
    head = " | ".join(f"len {n}: 1st / 2nd, swapped" for n in (200, 300, 400))
    print(f"| study settings | seed | {head} |")
    print("|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: json.dumps(r.config, sort_keys=True)):
        ck = load_checkpoint(section / str(r.run_dir))
        task = ck.config.make_task()
        cells = []
        for length in (200, 300, 400):
            batch = task.sample(args.n, length, np.random.default_rng(0))
            inputs = batch.inputs.astype(ck.params["W_rec"].dtype)
            pred = engine.forward(ck.params, inputs, activation=ck.config.activation)[-1].argmax(-1)
            label = batch.targets[-1]
            first = np.mean((pred >> 1) != (label >> 1))
            second = np.mean((pred & 1) != (label & 1))
            wrong = pred != label
            # AB = 1 and BA = 2: the order swapped is the other of the two.
            swapped = wrong & (label % 3 != 0) & (pred == 3 - label)
            share = swapped.sum() / max(int(wrong.sum()), 1)
            cells.append(f"{first:.1%} / {second:.1%}, {share:.0%}")
        c = r.config
        what = f"clip {c['clip']}, init {c['init']}, stop at {c.get('solve_error', 0.01)}"
        if c.get("task_options"):
            what += f", positions {c['task_options'].get('positions')}"
        print(f"| {what} | {c['seed']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
