"""Using trained weights: `evaluate` an output on a dataset, and read a checkpoint back
(`load_for_inference` compiles it, `load_weights` only checks and returns its tensors)."""
from __future__ import annotations

import math
import time
from pathlib import Path

from ..api import compile as compile_net
from ..ir import MAIN, Network
from ..ops.base import numel
from . import checkpoint
from .loader import Normalizer, Prefetch, batches
from .metrics import target_peak, totals
from .parallel import World, merge_states, shard_bounds
from .progress import Progress
from .readers import Dataset


def evaluate(model, data: Dataset, normalizer: Normalizer, batch_size: int,
             output: str = MAIN, peak: float | None = None,
             progress: Progress | None = None, world: World | None = None) -> dict:
    """The metrics of one output (the main one unless named) on a dataset (metrics.py): its own
    loss, unweighted, and accuracy; or against array targets MSE, MAE and PSNR (of peak
    `peak`, by default the targets'). `progress` shows a bar while it works. The workers of a
    data-parallel run (`world`) each evaluate a slice, and all return the whole's metrics."""
    head = model.net.output_named(output)
    found = totals(head.loss, numel(model.net.shape_of(head.node)),
                   (peak or target_peak(data.y)) if data.regression else None)
    if world is not None and world.size > 1:
        lo, hi = shard_bounds(len(data), world.size, world.rank, world.size)
        data = Dataset(data.x[lo:hi], data.y[lo:hi], data.source, data.classes)
    began, steps = time.perf_counter(), math.ceil(len(data) / batch_size)
    if progress:
        progress.start("eval", steps)
    for step, (images, labels) in enumerate(
            Prefetch(batches(data.x, data.y, batch_size, normalizer)), 1):
        found.add(model.forward(images, output=output), labels)
        if progress:
            progress.update(step, found.loss / found.count, (found.SCORE, found.score),
                            found.count / max(time.perf_counter() - began, 1e-9))
    if progress:
        progress.clear()
    if world is not None and world.size > 1:
        found.load_state_dict(merge_states(world.allgather(found.state_dict(),
                                                           "the evaluation's metrics")))
    return found.result()


def load_for_inference(net: Network, weights: Path, dtype: str = "float32"):
    """A compiled model with a checkpoint's weights, and the checkpoint's metadata."""
    params, buffers, _, meta = checkpoint.load(Path(weights))
    model = compile_net(net, dtype=dtype)
    checkpoint.restore(model, params, buffers, Path(weights))
    return model, Normalizer.from_record(meta["normalizer"]), meta


def load_weights(net: Network, weights: Path):
    """A checkpoint's parameters and buffers for `net` (names and shapes checked), its
    normaliser and its metadata, without compiling anything (what an export needs)."""
    params, buffers, _, meta = checkpoint.load(Path(weights))
    checkpoint.check_fits(net.param_shapes(), params, "parameter", Path(weights))
    checkpoint.check_fits(net.buffer_shapes(), buffers, "buffer", Path(weights))
    return params, buffers, Normalizer.from_record(meta["normalizer"]), meta
