"""How data-parallel training scales (`cnngraph bench SPEC --workers N`): a training step timed
on 1, 2, 4, ... of the N workers, with the communication it waits for after its backward pass
(the allreduce that the backward pass did not hide), and an estimate for clusters from the ring
allreduce's cost model.

A ring allreduce of M bytes over p nodes sends 2(p - 1) messages of M/p bytes from each node
(reduce-scatter, then allgather), so with a link of latency α and bandwidth β it takes

    T_comm(p) = 2(p - 1) α + 2 (p - 1)/p · M/β

With each node training its own batch of the same size (weak scaling), a step takes
T_comp + T_comm(p) when the allreduce follows the backward pass, and max(T_comp, T_comm(p)) at
best when it overlaps it fully (cnngraph sums the gradients in buckets as the backward pass
completes them: train/parallel.py; the last bucket's sum always follows it); the speed-up over
one node is p T_comp divided by that. T_comp is measured here (a node like this machine), M is
the model's gradient in bytes (float32), and α, β are stated per link below: typical MPI
figures, assumptions rather than measurements.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# (latency α in seconds, bandwidth β in bytes per second): MPI over TCP on 10 and 25 GbE, and
# over 100 Gb/s InfiniBand (EDR) with RDMA
LINKS = {"10 GbE": (30e-6, 1.25e9), "25 GbE": (20e-6, 3.125e9),
         "100 Gb InfiniBand": (2e-6, 12.5e9)}
NODES = (8, 16, 32, 64)


@dataclass
class Measured:
    workers: int
    batch: int            # the global batch, cut among the workers
    step_s: float         # the median step, communication included
    comm_s: float         # of which the wait after the backward pass: the allreduce it did not
    #                       hide, and the slowest worker

    @property
    def comm_share(self) -> float:
        return self.comm_s / self.step_s if self.step_s else 0.0


def ring_allreduce_s(nodes: int, size_bytes: float, alpha: float, beta: float) -> float:
    """T_comm(p) of the module's doc."""
    if nodes < 2:
        return 0.0
    return 2 * (nodes - 1) * alpha + 2 * (nodes - 1) / nodes * size_bytes / beta


def estimate(compute_s: float, size_bytes: float, nodes: int, link: str) -> dict:
    """The step time and speed-up over one node of `nodes` nodes on `link`, after the backward
    pass and fully overlapped with it."""
    comm = ring_allreduce_s(nodes, size_bytes, *LINKS[link])
    after, overlapped = compute_s + comm, max(compute_s, comm)
    return {"comm_s": comm, "step_s": after, "speedup": nodes * compute_s / after,
            "overlapped_speedup": nodes * compute_s / overlapped}


def time_steps(model, world, batch: int, repeat: int) -> tuple[float, float]:
    """The median step and allreduce seconds of the world's workers training a global batch of
    `batch`, each its shards of it (train/parallel.py), after two warm-up steps."""
    from ..train.parallel import DEFAULT_SHARDS, Replicas
    rng = np.random.default_rng(0)
    net = model.net
    x = rng.standard_normal((batch, *net.input_shape)).astype(model.dtype)
    labels = rng.integers(0, net.output_shape[0], batch)
    replicas = Replicas(world, model, DEFAULT_SHARDS)
    lo, hi = replicas.bounds(batch)
    steps, comms = [], []
    for i in range(repeat + 2):
        began = time.perf_counter()
        loss = model.loss_and_grad(
            x[lo:hi], labels[lo:hi], batch=batch, first=lo, ready=replicas.begin(),
            shards=replicas.local_shards(batch) if model.shards else None,
            reduce=False) if hi > lo else 0.0
        reduced = time.perf_counter()
        replicas.reduce(loss, batch, (False, False))
        done = time.perf_counter()
        if i >= 2:
            steps.append(done - began)
            comms.append(done - reduced if replicas.reduces else 0.0)   # (not a call's time)
    return float(np.median(steps)), float(np.median(comms))


def measure(model_for: Callable[[int], Any], world, batch: int,
            repeat: int) -> list[Measured]:
    """Steps timed on 1, 2, 4, ... and all of the world's workers (the first n ranks each
    time, the others waiting), as rank 0 saw them; `model_for(n)`: a worker's model where
    n workers train."""
    from ..train.parallel import World
    sizes = sorted({n for n in (2 ** k for k in range(8)) if n <= world.size} | {world.size})
    found = []
    for n in sizes:
        if n == 1:
            group = World(timeout=world.timeout) if world.rank == 0 else None
        else:
            comm = world.comm.Split(0 if world.rank < n else 1, world.rank)
            group = World(world.rank, n, comm, world.timeout) if world.rank < n else None
        if group is not None:
            step, comm_s = time_steps(model_for(n), group, batch, repeat)
            found.append(Measured(n, batch, step, comm_s))
        world.bcast(None, f"the steps of {n} workers")
    return found


def render(spec: str, measured: list[Measured], grad_bytes: int) -> str:
    lines = [f"{spec}: data-parallel training steps measured here (median), gradient "
             f"{grad_bytes / 2**20:.1f} MiB",
             f"{'workers':>7} {'batch':>6} {'per worker':>10} {'step ms':>9} "
             f"{'waited ms':>12} {'share':>6} {'images/s':>9}"]
    for m in measured:
        lines.append(f"{m.workers:7d} {m.batch:6d} {m.batch // m.workers:10d} "
                     f"{m.step_s * 1e3:9.1f} {m.comm_s * 1e3:12.2f} {m.comm_share:6.1%} "
                     f"{m.batch / m.step_s:9.1f}")
    base = measured[0]
    compute = base.step_s - base.comm_s
    lines += ["", f"Estimate for p nodes like this one, each training a batch of {base.batch} "
              f"(T_comp {compute * 1e3:.0f} ms measured on 1), ring allreduce of "
              f"{grad_bytes / 2**20:.1f} MiB: T_comm = 2(p-1)a + 2(p-1)/p M/b; speed-up over "
              "one node, allreduce after the backward pass / fully overlapped (T_comm)",
              f"{'link':<18} " + " ".join(f"{f'p={p}':>20}" for p in NODES)]
    for link in LINKS:
        cells = []
        for p in NODES:
            e = estimate(compute, grad_bytes, p, link)
            cells.append(f"{e['speedup']:.1f}/{e['overlapped_speedup']:.1f}x "
                         f"({e['comm_s'] * 1e3:.1f} ms)".rjust(20))
        lines.append(f"{link:<18} " + " ".join(cells))
    return "\n".join(lines)
