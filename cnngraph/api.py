"""The Python API: `load` a spec file (or `loads` its text) into a shape-inferred `Network`,
`compile` it into a `Model`, and print its `summary`."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .ir import Network
from .passes.infer import infer
from .spec.expand import expand_file, expand_text


def load(path: str | Path, input_shape: tuple[int, ...] | None = None,
         params: Mapping[str, Any] | None = None) -> Network:
    """Parse, validate, expand and shape-infer a spec file.

    `input_shape` (C, H, W) overrides the spec's `input`; `params` sets the spec's own
    parameters (its top-level `params:`, e.g. `{"width": 0.5}`). Raises `SpecError` listing
    every problem found, each with file:line:column, the path in the spec and a hint.
    """
    expanded = expand_file(path, params=params)
    if input_shape is not None:
        expanded = replace(expanded, input_shape=tuple(input_shape))
    return infer(expanded)


def loads(text: str, input_shape: tuple[int, ...] | None = None,
          params: Mapping[str, Any] | None = None, name: str = "<string>") -> Network:
    """`load` for a spec given as YAML text; errors are located in `name`, and `include:`
    paths are relative to the working directory."""
    expanded = expand_text(text, name, params)
    if input_shape is not None:
        expanded = replace(expanded, input_shape=tuple(input_shape))
    return infer(expanded)


def summary(net: Network, depth: int | None = None, batch: int = 1,
            columns: tuple[str, ...] | None = None, print_fn: Callable[[str], Any] = print
            ) -> None:
    """Print the table `cnngraph summary` prints (through `print_fn`, as Keras' summary
    does); `cnngraph.tools.summary.analyse` gives it as data."""
    from .tools.summary import analyse, render
    print_fn(render(analyse(net, batch=batch), depth, columns))


def compile(net: Network, backend: str = "cpu", dtype: str = "float32", seed: int = 0,
            chunks: int | None = None, shards: int = 0):
    """Compile a loaded network for a backend: returns a `Model` with initialised parameters.

    `dtype` is float32 or float64; `seed` fixes the initialisation and dropout masks. On the
    CPU, `chunks` is how many parts the kernels cut their work into (default: one per
    thread): results depend on it, never on the number of threads, so a fixed `chunks` gives
    the same bits on any. `shards` (CPU): a training step computes that many shards of its
    batch apart, each op called once a shard, and sums their gradients exactly (the exact
    reduction, `train.reduction: exact`; `Model.loss_and_grad`).
    """
    from .runtime.model import Model
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, received {dtype!r}")
    if backend == "cpu":
        from .runtime.cpu import CpuBackend
        return Model(net, CpuBackend(chunks, shards), dtype, seed)
    if shards:
        raise ValueError("the exact reduction (shards) runs on the CPU backend")
    if backend == "cuda":
        from .runtime.cuda import CudaBackend
        return Model(net, CudaBackend(), dtype, seed)
    raise ValueError(f"unknown backend {backend!r} (available: cpu, cuda)")
