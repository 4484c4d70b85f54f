"""What a backend is to the rest of cnngraph: a `Target` that lowers a network's nodes (all the
memory planner needs, so `cnngraph summary` plans memory without loading Numba), and the
`Backend` protocol that `Model`, the optimisers and the trainer call (runtime/cpu.py and
runtime/cuda.py implement it)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..ir import Node
from ..ops import REGISTRY
from ..ops.lowering import Context, Lowering


def default_threads() -> int:
    """The threads Numba's kernels start with, found without importing Numba: what
    `numba.get_num_threads()` returns until `set_num_threads` is called. Numba reads
    NUMBA_NUM_THREADS (ignoring a value that is not an integer), else counts the CPUs this
    process may run on."""
    try:
        return int(os.environ["NUMBA_NUM_THREADS"])
    except (KeyError, ValueError):
        return available_cores()


def available_cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_chunks(chunks: int | None = None) -> int:
    """The CPU target's chunk count: `chunks` where given (`train.shards`), else one per CPU
    this process may run on (or per thread, where there are more threads). A sum over chunks
    depends on their number, never on the threads that run them: so a run gives the same bits
    on any number of threads up to the CPUs (NUMBA_NUM_THREADS=1 as the default), and a run
    that sets train.shards on any number at all. (More chunks than threads cost some speed: a
    chunk of fewer samples stacks fewer of them into each GEMM, and ResNet-18-CIFAR's steps at
    batch 64 ran 20-25 % slower with 8 chunks on 2 threads; bench/results/runtime.md.)"""
    return chunks or max(default_threads(), available_cores())


@dataclass(frozen=True)
class Target:
    """A target as the lowerings see it: its name ("cpu" or "cuda"), the parts its kernels
    split their work into (`Context.chunks`) and the shards a step computes apart
    (`Context.shards`)."""
    name: str
    chunks: int = 0
    shards: int = 0

    def lower(self, node: Node, training: bool = True, small_batch: bool = False) -> Lowering:
        """The node's lowering (its op's `lower`, for this target; see `Context`)."""
        lowering: Lowering = REGISTRY[node.op].lower(
            node, Context(self.chunks, training, self.name, self.shards, small_batch))
        return lowering


class Backend(Protocol):
    """A target's memory and kernels. Arrays are the backend's own (NumPy arrays on the CPU,
    device arrays on a GPU); `host_memory` says whether they are NumPy arrays."""
    name: str
    host_memory: bool
    small_batch: int                # inference of batches below this many samples compiles
    #                                 apart (`plan.compiled_net`; 0: never)
    profile_imports: list[str]      # the lines a profiled step's code imports
    sync: str                       # the statement a profiled step waits for its kernels with

    def lower(self, node: Node, training: bool = True, small_batch: bool = False) -> Lowering:
        ...

    def before_first_training_step(self, model: Any) -> None: ...

    def empty(self, size: int, dtype: Any) -> Any: ...

    def zeros(self, array: Any) -> None: ...

    def to_host(self, array: Any) -> np.ndarray: ...

    def from_host(self, array: np.ndarray, out: Any) -> None: ...

    def upload(self, array: np.ndarray, out: Any, staged: bool = False) -> None: ...

    def stage(self, x: np.ndarray, labels: np.ndarray) -> bool: ...

    def unstage(self) -> None: ...

    def device_labels(self, labels: np.ndarray, staged: bool = False, slot: int = 0) -> Any:
        """One output's targets where the kernels read them (`slot`: the output's index; only
        slot 0, class labels, is ever staged)."""

    def scalar(self, value: Any) -> float: ...

    def snapshot(self, array: Any) -> np.ndarray: ...

    def squared_norm(self, array: Any) -> float: ...

    def scale(self, array: Any, factor: float) -> None: ...

    def fold(self, folds: tuple[Any, ...], params: dict[str, Any], buffers: dict[str, Any],
             folded: dict[str, Any]) -> None: ...

    def synchronize(self) -> None: ...

    def peak_gflops(self, dtype: Any) -> tuple[float, str]: ...
