"""The other workers of a data-parallel training step, as the kernels that need the whole
batch see them: batch norm normalises with the statistics of every worker's samples, not its
own (synchronised batch norm), so that how the batch is shared out does not change the
result. A kernel calls `gather(part)` for every worker's part in rank order; train/parallel.py
connects the world of a data-parallel run, and a plain run has no other workers.

Every worker must make the same gathers in the same order. A worker without samples in a step
(a last batch smaller than the number of workers) runs no kernels: it stands in for them with
`stand_in(count)`, `count` being what the step's lowerings declare (`Lowering.collectives`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

_gather: Callable[[Any], list] | None = None


def connect(gather: Callable[[Any], list] | None) -> None:
    """Route the kernels' gathers through `gather` (an object in, every worker's in rank order
    out); None: this process trains alone."""
    global _gather
    _gather = gather


def gather(part: Any) -> list:
    """Every worker's `part` in rank order, leaving out those without samples in this step."""
    if _gather is None:
        return [part]
    return [p for p in _gather(part) if p is not None]


def stand_in(count: int) -> None:
    """Take part in `count` gathers without samples (see the module's doc)."""
    if _gather is not None:
        for _ in range(count):
            _gather(None)
