"""On a cold kernel cache, a second process compiles a training step's kernels alongside this
one, in the opposite order.

Numba compiles one function at a time in a process, and a network's first training step compiles
every kernel it calls, forward pass then backward pass, on one core while the other waits. The
helper builds the same network, binds a batch of one and runs the step's kernels on zeroed buffers
(the values do not matter, only the argument types), which writes them to the on-disk cache: the
backward pass from the network's input end (its convolutions first), then the forward pass from the
output end, the reverse of the order this process first calls them in. This process loads each
kernel the helper has finished when it comes to it and compiles the rest itself, so the two meet in
the middle. Helping in the same order had them compile the same kernels at once from the point
where this process caught up: on ResNet-18's first step it still compiled the convs' backward
kernels itself (1.8-2.4 s each), where now it compiles only the small kernels its backward pass
needs first (see compile_step). Nothing depends on the helper: it may finish, fail or be killed. It
runs at a lower priority, so it takes the core that compilation leaves idle.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import replace

import numpy as np

from ..passes.autodiff import Backward

HELPER = "CNNGRAPH_COMPILE_HELPER"      # set in the helper; "off" in a parent disables it


def start(model) -> subprocess.Popen | None:
    """The helper for a model's training step, or None: inside a helper, when disabled, on one
    core, or when the cache already holds the loss kernel that every training step compiles."""
    if os.environ.get(HELPER) or (os.cpu_count() or 1) < 2 or not cache_is_cold():
        return None
    try:
        helper = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, HELPER: "1"})
        helper.stdin.write(pickle.dumps((model.net, model.dtype.name, model.seed)))
        helper.stdin.close()
    except OSError:          # no helper then (it only ever saves time)
        return None
    return helper


def cache_is_cold() -> bool:
    """Whether the loss kernel's cache index is missing. (It is found through Numba's cache
    internals; where they differ from Numba 0.6x's, no helper starts.)"""
    from ..kernels.cpu.support import softmax_xent_cpu
    try:
        index = softmax_xent_cpu._cache._cache_file._index_path
    except AttributeError:
        return False
    return not os.path.exists(index)


def compile_step(net, dtype: str, seed: int) -> None:
    """Compile (and so cache) the kernels of a network's training step, layer by layer in the
    reverse of a step's order: after the loss, the backward pass from the network's input end,
    the convolutions first, then the forward pass from its output end. (The statements' order
    does not matter here: the buffers hold zeros, and only the argument types count.) A conv's
    backward kernels take the longest to compile (2-3 s each, against 0.2-0.7 for the others),
    and this process needs them early in its backward pass; ResNet-18's forward pass takes it
    ~8 s to compile, about as long as the helper takes for the convs' backward kernels."""
    from ..jit import load_module
    from .codegen import step_source
    from .cpu import CpuBackend
    from .model import Model
    model = Model(net, CpuBackend(), dtype, seed)
    program = model.program(True)
    reversed_net = replace(program.net, nodes=program.net.nodes[::-1])
    steps = sorted(program.plan.steps[::-1], key=lambda step: not _is_conv(program.net, step))
    source = step_source(reversed_net, model.lowerings, replace(program.plan, steps=steps),
                         model.backend)
    module = load_module(source, "cpu_train_reversed")
    v = model._bind(program, 1)
    for arena in program.arenas.values():
        arena[...] = 0
    module.loss_and_backward(v, model._p, model._g, model._s, np.zeros(1, np.int64), 0.0)
    module.forward(v, model._p, model._s, True, 0)


def _is_conv(net, step) -> bool:
    return isinstance(step, Backward) and net.node(step.node).op == "conv"


if __name__ == "__main__":
    os.nice(5)
    compile_step(*pickle.loads(sys.stdin.buffer.read()))
