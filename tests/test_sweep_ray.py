"""`rnnstab sweep --backend ray` on a real, private Ray instance (started by the sweep itself
on 127.0.0.1 with 2 CPUs, no dashboard, stopped at the end): every run becomes a Ray task,
the driver stores the results, and they equal a local sweep's bit for bit
(rnnstab_cli/sweep/ray_backend.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rnnstab_cli.cli import main
from rnnstab_cli.sweep.run import plan_sweep, run_sweep
from rnnstab_cli.sweep.store import ResultStore

if os.environ.get("CI"):
    import ray  # CI installs the ray extra (scripts/setup.sh): never skip these there
else:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rnnstab[ray]'")

SPEC = """
name = "ray-small"
preset = "temporal-order"
[base]
hidden = 6
batch = 4
max_updates = 200
eval_every = 100
eval_sequences = 300
screen_sequences = 60
lr = 0.05
[axes]
method = ["sgd", "sgd-c", "sgd-cr"]
len = [10, 12]
seed = [0]
"""


@pytest.fixture
def no_leftover_ray() -> Iterator[None]:
    yield
    if ray.is_initialized():  # the sweep failed half-way: stop what it started
        ray.shutdown()


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _loopback(hex_addr: str) -> bool:
    if len(hex_addr) == 8:  # IPv4, little-endian: the first octet is the last byte
        return hex_addr[6:8] == "7F"
    return hex_addr in ("00000000000000000000000001000000",) or (
        hex_addr.startswith("0000000000000000FFFF0000") and hex_addr[-2:] == "7F"
    )


def non_loopback_listeners(pids: set[int]) -> list[str]:
    """LISTEN sockets of ``pids`` bound to anything but the loopback address."""
    inodes = _socket_inodes(pids)
    bad = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state == "0A" and inode in inodes and not _loopback(local.split(":")[0]):
                bad.append(f"{table} {local}")
    return bad


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_sweep_on_a_private_ray_instance_matches_the_local_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leftover_ray: None
) -> None:
    spec = tmp_path / "ray-small.toml"
    spec.write_text(SPEC)
    plan = plan_sweep(spec)
    seen: list[dict[str, Any]] = []

    def on_run(record: dict[str, Any]) -> None:
        if not seen:  # while Ray runs: where do its processes listen?
            node = ray.nodes()[0]
            record["_node_ip"] = node["NodeManagerAddress"]
            record["_listeners"] = non_loopback_listeners(_descendants(os.getpid()))
            record["_n_processes"] = len(_descendants(os.getpid()))
        seen.append(record)

    ray_db = tmp_path / "ray.db"
    summary = run_sweep(plan, ray_db, backend="ray", jobs=2, on_run=on_run)
    assert not ray.is_initialized(), "the private Ray instance was not shut down"
    assert summary.ran == 6 and summary.missing == 0 and not summary.interrupted
    assert seen[0]["_node_ip"] == "127.0.0.1"
    assert seen[0]["_n_processes"] > 0  # Ray's own processes were there to inspect
    assert seen[0]["_listeners"] == [], "Ray listened beyond the loopback address"

    local_db = tmp_path / "local.db"
    assert main(["sweep", str(spec), "--store", str(local_db), "--no-runs-dir", "-q"]) == 0
    capsys.readouterr()
    with ResultStore.open_readonly(ray_db) as a, ResultStore.open_readonly(local_db) as b:
        on_ray = {r.run_id: r for r in a.runs()}
        local = {r.run_id: r for r in b.runs()}
    assert set(on_ray) == set(local) == {r.run_id for r in plan.runs}
    assert {r.backend for r in on_ray.values()} == {"ray"}
    for rid, r in on_ray.items():
        same = (r.outcome, r.updates, r.test_error, r.test_sequences)
        assert same == (local[rid].outcome, local[rid].updates, local[rid].test_error,
                        local[rid].test_sequences)  # fmt: skip
    assert any(r.outcome == "solved" for r in on_ray.values())

    # The same command again through Ray: nothing is missing, so nothing starts (not even Ray).
    code = main(["sweep", str(spec), "--store", str(ray_db), "--backend", "ray", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out.splitlines()[-1])["ran"] == 0
