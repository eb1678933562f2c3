"""``rnnstab bench``: training-update throughput of the engine against named peers.

Everything is measured in the same run on the same machine: the engine (one thread and all
cores, Ω off and on), a hand-written numpy BPTT, PyTorch's ``nn.RNN`` when torch is installed,
independent single-threaded runs on every core (what a sweep gets), and the machine's own f32
matrix-product ceiling. See :mod:`.measure` and :mod:`.peers`.
"""

from rnnstab_cli.bench.measure import PAPER_CONFIGS, BenchConfig, BenchRow, run_benchmark

__all__ = ["PAPER_CONFIGS", "BenchConfig", "BenchRow", "run_benchmark"]
