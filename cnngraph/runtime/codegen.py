"""Generate the step functions of one network as readable Python source.

`forward(v, p, s, training, seed, first, shards)` runs every op's forward kernel in topological
order and returns the main output (`first`: the index of v's first sample in the step's whole
batch). `loss_and_backward(v, p, g, s, targets, smoothing, batch, ready, shards)` runs each
output's weighted loss, which also seeds that output's gradient, then the backward schedule
(explicit sums where a tensor fans out), calling `ready(node)` once a node's parameter
gradients are complete (a data-parallel step starts summing them over the workers while the
backward pass goes on: train/parallel.py). `targets` holds one array per output, in
`Network.outputs` order, then a teacher's logits per output that learns soft targets, in
`Network.distilled` order; each loss is a mean over `batch` samples, of which `v` holds all
or, in a data-parallel step, one worker's. `v` holds the planned buffers bound for the
current batch, `p` / `g` the parameters and their gradients, `s` the non-trainable buffers.

With the exact reduction (`backend.shards`), a training step runs each op shard by shard:
`shards` lists the samples [lo, hi) of each, every call sees its shard's slice of the batch,
and parameter gradients go to the shard's row of `g` (k). A shard's calls are then the same
however the batch is shared out among workers: the same GEMM shapes, so the same bits
(OpenBLAS rounds by a product's shape). Batch norm takes `shards` itself.

The source is written to a content-addressed file and imported, so it can be read, and
`cnngraph compile --emit DIR` writes it out next to the kernels it calls.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..ir import Network
from ..ops.base import fmt_shape, numel
from ..ops.lowering import (
    BATCH,
    FIRST,
    SHARDS,
    Alone,
    Kernel,
    Lowering,
    Ref,
    Var,
    Wants,
    ident,
    scratch_name,
)
from ..passes.autodiff import Sum, grad_name

SUM = Kernel("cnngraph.kernels.{target}.support", "sum_{target}")
# Each loss kernel fills its output's gradient and returns its weighted loss added to `total`
# (where the backend keeps the loss: a float on the CPU, a device scalar on a GPU).
LOSSES = {kind: Kernel("cnngraph.kernels.{target}.support", f"{name}_{{target}}")
          for kind, name in (("cross_entropy", "softmax_xent"), ("mse", "mse"), ("l1", "l1"),
                             ("bce_with_logits", "bce_with_logits"))}
DISTILL = Kernel("cnngraph.kernels.{target}.support", "distill_{target}")
WIDTH = 100        # generated lines are wrapped at this width, as the project's own code


def _v(name: str) -> str:
    return f"v.{ident(name)}"


@dataclass(frozen=True)
class _Names:
    """What one node's Refs are called in the step code (dx[i] is None where not wanted)."""

    node: str
    x: list[str]
    y: str
    dy: str | None = None
    dx: tuple[str | None, ...] = ()
    alone: tuple[bool, ...] = ()
    # shard by shard (the exact reduction): the per-sample scratch, which is sliced [lo:hi] as
    # the op's inputs and outputs are, and its gradients go to shard k's row; None: as a whole
    per_sample: frozenset[str] | None = None

    def tensor(self, ref: Ref) -> str:
        if ref.kind == "x":
            name = self.x[int(ref.key)]
        elif ref.kind == "dx":   # where not wanted, input i stands in (the kernel reads neither)
            name = self.dx[int(ref.key)] or self.x[int(ref.key)]
        elif ref.kind == "y":
            name = self.y
        elif ref.kind == "dy":
            assert self.dy is not None, "dy is named in backward calls only"
            name = self.dy
        elif ref.kind == "scratch":
            name = _v(scratch_name(self.node, str(ref.key), ref.backward))
        else:
            prefix = {"param": "p", "grad": "g", "buffer": "s"}[ref.kind]
            name = f"{prefix}.{ident(f'{self.node}.{ref.key}')}"
        if self.per_sample is not None:
            if ref.kind in ("x", "dx", "y", "dy") or \
                    (ref.kind == "scratch" and ref.key in self.per_sample):
                name += "[lo:hi]"
            elif ref.kind == "grad":
                name += "[k]"
        if not ref.shape:
            return name
        dims = ", ".join(f"{name}.shape[0]" if d == BATCH else str(d) for d in ref.shape)
        return f"{name}.reshape({dims})"

    def arg(self, value) -> str:
        if isinstance(value, Ref):
            return self.tensor(value)
        if isinstance(value, Var):
            return "first + lo" if value == FIRST and self.per_sample is not None else \
                value.name
        if isinstance(value, Wants):
            return str(self.dx[value.index] is not None)
        if isinstance(value, Alone):
            return str(self.alone[value.index])
        if isinstance(value, tuple):
            return "(" + "".join(f"{self.arg(item)}, " for item in value).rstrip() + ")"
        return repr(value)


def _wrap(head: str, args: list[str], tail: str = ")") -> list[str]:
    """`head(arg, arg, ...)` on one line, or wrapped with continuation lines aligned after the
    parenthesis where it is wider than WIDTH (the body is indented by 4)."""
    line = head + "(" + ", ".join(args) + tail
    if len(line) + 4 <= WIDTH:
        return [line]
    lines, current = [], head + "("
    indent = " " * len(current)
    for i, text in enumerate(args):
        piece = text + (", " if i < len(args) - 1 else tail)
        if len(current) + len(piece.rstrip()) + 4 > WIDTH and current != indent \
                and current != head + "(":
            lines.append(current.rstrip())
            current = indent
        current += piece
    return [*lines, current]


def _render(calls, names: _Names, target: str) -> list[str]:
    lines = []
    for call in calls:
        if call.only_if_wanted is not None and names.dx[call.only_if_wanted] is None:
            continue
        _, function = call.kernel.on(target)
        lines += _wrap(function, [f"{k}={names.arg(v)}" for k, v in call.args.items()])
    if names.per_sample is None:
        return lines
    return ["for k, (lo, hi) in enumerate(shards):", "    if hi > lo:",
            *(f"        {line}" for line in lines)]


def _names(node, lowering: Lowering, by_shard: bool, **grads) -> _Names:
    """A node's names; `by_shard`: its calls run shard by shard, unless its kernels take the
    step's shards themselves (`SHARDS`: batch norm's statistics need every sample)."""
    whole = any(value == SHARDS for call in (*lowering.forward, *(lowering.backward or ()))
                for value in call.args.values())
    per_sample = frozenset(k for k, scratch in lowering.scratch.items() if scratch.per_sample)
    return _Names(node.name, [_v(t) for t in node.inputs], _v(node.name), **grads,
                  per_sample=per_sample if by_shard and not whole else None)


def _imports(net: Network, lowerings, target: str) -> list[str]:
    modules: dict[str, set[str]] = {}
    for lowering in lowerings:
        for kernel in lowering.kernels():
            module, function = kernel.on(target)
            modules.setdefault(module, set()).add(function)
    distill = (DISTILL,) if net.distilled else ()
    for kernel in (SUM, *distill, *(LOSSES[output.loss] for output in net.outputs)):
        module, function = kernel.on(target)
        modules.setdefault(module, set()).add(function)
    lines = []
    for module, functions in sorted(modules.items()):
        line = f"from {module} import {', '.join(sorted(functions))}"
        fits = len(line) <= WIDTH
        lines += [line] if fits else _wrap(f"from {module} import ", sorted(functions))
    return lines


def _timed(lines: list[str], slot: int, profile: bool, sync: str) -> list[str]:
    """A node's lines, bracketed by clock reads when profiling (times[slot] accumulates); on a
    device, `sync` waits for the launched kernels before each read."""
    if not profile:
        return lines
    wait = [sync] if sync else []
    return [*wait, "_t = _clock()", *lines, *wait, f"_times[{slot}] += _clock() - _t"]


def _loss_lines(net: Network, target: str) -> list[str]:
    """The calls of the outputs' loss kernels, each adding to the loss so far: output k's
    against `targets[k]` (left out where its weight is 0), then the soft-target loss of each
    output that learns them, against its teacher's logits, adding to the gradient where the
    output's own loss wrote it. A loss kernel sees (N, features): a map output is passed
    flat."""
    lines: list[str] = []

    def flat(tensor: str, shape) -> str:
        return _v(tensor) + ("" if len(shape) == 1 else
                             f".reshape({_v(tensor)}.shape[0], {numel(shape)})")

    for k, output in enumerate(net.outputs):
        if not output.weight:
            continue
        shape = net.shape_of(output.node)
        names = ("logits", "labels", "dlogits") if output.loss == "cross_entropy" else \
            ("outputs", "targets", "doutputs")
        args = [f"{names[0]}={flat(output.node, shape)}", f"{names[1]}=targets[{k}]",
                f"{names[2]}={flat(grad_name(output.node), shape)}",
                *(["smoothing=smoothing"] if output.loss == "cross_entropy" else []),
                f"weight={output.weight!r}", "batch=batch",
                "total=" + ("loss" if lines else "None")]
        lines += [f"# {output.name}: {output.loss} of {output.node}, weight {output.weight:g}",
                  *_wrap(f"loss = {LOSSES[output.loss].on(target)[1]}", args)]
    for j, output in enumerate(net.distilled):
        assert output.distill is not None
        shape = net.shape_of(output.node)
        t, w = output.distill.temperature, output.distill.weight
        args = [f"outputs={flat(output.node, shape)}", f"teacher=targets[{len(net.outputs) + j}]",
                f"doutputs={flat(grad_name(output.node), shape)}", f"temperature={t!r}",
                f"weight={w!r}", f"add={bool(output.weight)}", "batch=batch",
                "total=" + ("loss" if lines else "None")]
        lines += [f"# {output.name}: soft targets of a teacher at temperature {t:g}, weight "
                  f"{w:g}", *_wrap(f"loss = {DISTILL.on(target)[1]}", args)]
    return lines


def step_source(net: Network, lowerings: dict[str, Lowering], plan, backend,
                profile: bool = False) -> str:
    """The step module; with `profile`, each layer's forward and backward lines add their
    duration to `_times` (forward of node i at slot i, its backward at slot F + i, the sums of
    fan-out gradients at slot 2F, the loss at 2F + 1)."""
    target = backend.name
    lines = [f'"""Step functions of `{net.name}` ({target}), generated by cnngraph from '
             f'{net.file}."""', *_imports(net, lowerings.values(), target)]
    count = len(net.nodes)
    if profile:
        lines += ["from time import perf_counter as _clock", *backend.profile_imports,
                  f"_times = [0.0] * {2 * count + 2}"]
    by_shard = bool(backend.shards) and plan.training
    lines += ["", "", "def forward(v, p, s, training, seed, first, shards):"]
    for i, node in enumerate(net.nodes):
        names = _names(node, lowerings[node.name], by_shard)
        lines.append(f"    # {node.name}: {node.op}({', '.join(node.inputs)}) -> "
                     f"{fmt_shape(node.shape)}")
        timed = _timed(_render(lowerings[node.name].forward, names, target), i, profile,
                       backend.sync)
        lines += [f"    {line}" for line in timed]
    lines.append(f"    return {_v(net.output)}")
    if plan.training:
        loss = _loss_lines(net, target)
        lines += ["", "", "def loss_and_backward(v, p, g, s, targets, smoothing, batch, ready, "
                  "shards):",
                  *(f"    {line}" for line in _timed(loss, 2 * count + 1, profile, backend.sync))]
        index = {node.name: i for i, node in enumerate(net.nodes)}
        for step in plan.steps:
            if isinstance(step, Sum):
                lines.append(f"    # {step.tensor} feeds {len(step.parts)} layers: sum their "
                             "gradients")
                parts = "(" + ", ".join(_v(p) for p in step.parts) + ",)"
                total = _wrap(SUM.on(target)[1], [_v(grad_name(step.tensor)), parts])
                lines += [f"    {line}" for line in _timed(total, 2 * count, profile,
                                                            backend.sync)]
                continue
            node = net.node(step.node)
            names = _names(node, lowerings[node.name], by_shard, dy=_v(grad_name(node.name)),
                           dx=tuple(_v(d) if d is not None else None for d in step.dx),
                           alone=step.alone)
            wanted = [*(t for t, d in zip(node.inputs, step.dx, strict=True) if d is not None),
                      *(k for k in node.params if k not in node.frozen)]
            lines.append(f"    # {node.name}: gradients of {', '.join(wanted or ['nothing'])}")
            lines += [f"    {line}" for line in
                      _timed(_render(lowerings[node.name].backward, names, target),
                             count + index[node.name], profile, backend.sync)]
            if any(k not in node.frozen for k in node.params):
                lines.append(f"    ready({node.name!r})")
        lines.append("    return loss")
    return "\n".join(lines) + "\n"


def emit(model, folder) -> list[Path]:
    """Write a model's step code (training, inference, and inference of batches smaller than
    its chunks where that differs) and the source of every kernel module it calls to
    `folder`; returns the paths written."""
    import inspect
    out = Path(folder)
    (out / "kernels").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kernel_files: dict[str, str] = {}     # module -> its source file
    programs = {"train": model.program(True), "infer": model.program(False)}
    small = model.program(False, small_batch=True) if model.backend.small_batch else None
    if small is not None and small is not programs["infer"]:
        programs["infer_small_batch"] = small
    for mode, program in programs.items():
        module = program.module
        path = out / f"step_{mode}.py"
        path.write_text(inspect.getsource(module))
        written.append(path)
        for value in vars(module).values():
            function = getattr(value, "py_func", value)    # a Numba dispatcher, or Python
            if inspect.isfunction(function) and function.__module__ != module.__name__:
                kernel_files[function.__module__] = inspect.getfile(function)
    for name in list(kernel_files):       # and the generated kernels they call (fused activations)
        for value in vars(sys.modules[name]).values():
            function = getattr(value, "py_func", value)
            if inspect.isfunction(function) and function.__module__.startswith("cnngraph_gen_"):
                kernel_files[function.__module__] = inspect.getfile(function)
    for module, source in sorted(kernel_files.items()):
        path = out / "kernels" / f"{module}.py"
        path.write_text(Path(source).read_text())
        written.append(path)
    return written
