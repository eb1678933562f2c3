"""What a run will need, checked before anything large is allocated.

Sizes come from the user (``--len``, ``--batch``, ``--hidden``, an eval length), and a size
that cannot be allocated used to end in a numpy ``MemoryError`` traceback or an engine abort
half-way into a run. :func:`require` compares an estimate with the memory this process can
still get — the smallest of the system's available memory, the address-space limit
(``ulimit -v``) and the cgroup's limit — and refuses at once, in one line, when the run cannot
fit. The estimates count the large buffers only (states, batches, parameters), so a run that
is refused would certainly have failed; one that passes may still be tight.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Final

from rnnstab_cli.errors import UsageError

#: Bytes of a float64; the engine stores some per-row sums in f64 whatever the dtype.
F64: Final[int] = 8


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _address_space_left() -> int | None:
    """What ``ulimit -v`` leaves: the soft limit minus the address space already mapped."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)


def _cgroup_left() -> int | None:
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        current = int((base / "memory.current").read_text().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """The memory this process can still allocate, or None when nothing says."""
    if os.environ.get("RNNSTAB_MEMORY_BYTES"):
        # For tests and for machines whose limits the checks above cannot see.
        try:
            return int(os.environ["RNNSTAB_MEMORY_BYTES"])
        except ValueError:
            raise UsageError(
                "RNNSTAB_MEMORY_BYTES must be an integer number of bytes, "
                f"got {os.environ['RNNSTAB_MEMORY_BYTES']!r}"
            ) from None
    sources = (_meminfo_available(), _address_space_left(), _cgroup_left())
    known = [b for b in sources if b is not None]
    return min(known) if known else None


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def require(nbytes: int, what: str, hint: str) -> None:
    """UsageError (exit 2) when ``what`` needs more than the memory available."""
    avail = available_bytes()
    if avail is not None and nbytes > avail:
        raise UsageError(
            f"{what} needs about {human(nbytes)} of memory, more than the {human(avail)} "
            f"available; {hint}"
        )


def model_bytes(hidden: int, n_in: int, n_out: int, itemsize: int) -> int:
    """Parameters, gradients, optimiser state and their copies across the binding (the
    initialisation draws in float64)."""
    p = hidden * hidden + hidden * (n_in + 1) + n_out * (hidden + 1)
    return p * (2 * F64 + 6 * itemsize)


def bptt_bytes(steps: int, batch: int, hidden: int, n_in: int, n_out: int, itemsize: int) -> int:
    """The engine's BPTT work buffers for one batch: states h and error signals g
    ``(B, T+1, H)``, ∂E/∂y ``(B, T+1, O)``, the inputs with a ones column, Ω's per-pair
    numbers."""
    rows = batch * (steps + 1)
    return rows * ((2 * hidden + n_out + n_in + 1) * itemsize + 2 * F64 + 1)


def batches_bytes(steps: int, batch: int, n_in: int, n_out: int, itemsize: int, k: int) -> int:
    """``k`` sampled batches: inputs ``(T, B, I)``, int64 or float targets and the mask, with
    one more copy of each while the sampler builds them."""
    return 2 * k * steps * batch * ((n_in + 1) * itemsize + max(F64, n_out * itemsize))


def forward_bytes(steps: int, batch: int, hidden: int, n_in: int, n_out: int, itemsize: int) -> int:
    """An evaluation forward pass: the test batch, its outputs (the engine's and numpy's
    copies) and the two states per example the engine keeps."""
    return (
        batches_bytes(steps, batch, n_in, n_out, itemsize, 1)
        + 2 * steps * batch * n_out * itemsize
        + 3 * batch * hidden * itemsize
    )
