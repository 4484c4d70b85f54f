"""The helper process of runtime/warm.py: it builds the network that a parent process is about
to train, and compiles the kernels of its training step in the reverse order (see warm.py)."""
from __future__ import annotations

import os
import pickle
import sys
from dataclasses import replace

import numpy as np

from ..jit import load_module
from ..ops import REGISTRY
from ..passes.autodiff import Backward
from .codegen import step_source
from .cpu import CpuBackend
from .model import Model, Program


def compile_step(net, dtype: str, seed: int, chunks: int) -> None:
    """Compile (and so cache) the kernels of a network's training step, layer by layer in the
    reverse of a step's order: after the loss, the backward pass from the network's input end,
    the convolutions first, then the forward pass from its output end. (The statements' order
    does not matter here: the buffers hold zeros, and only the argument types count.) The
    backward kernels of ops that `backward_compiles_slowly` (conv) take the longest, and this
    process needs them early in its backward pass, while the main process compiles the forward
    pass in about the same time (bench/results/runtime.md)."""
    model = Model(net, CpuBackend(chunks), dtype, seed)
    program = model.program(True)
    reversed_net = replace(program.net, nodes=program.net.nodes[::-1])
    steps = sorted(program.plan.steps[::-1],
                   key=lambda step: not _compiles_slowly(program.net, step))
    plan = replace(program.plan, steps=steps)
    source = step_source(reversed_net, model.lowerings, plan, model.backend)
    reversed_program = Program(reversed_net, plan, load_module(source, "cpu_train_reversed"))
    v = model.bind(reversed_program, 1)
    for arena in reversed_program.arenas.values():
        arena[...] = 0
    model.run_backward(reversed_program, v, model.targets(np.zeros(1, np.int64), 1), 0.0, 1)
    model.run_forward(reversed_program, v, True, 0)


def _compiles_slowly(net, step) -> bool:
    """A backward step of an op whose backward kernels are the slow ones to compile."""
    return isinstance(step, Backward) \
        and REGISTRY[net.node(step.node).op].backward_compiles_slowly


if __name__ == "__main__":
    os.nice(5)
    compile_step(*pickle.loads(sys.stdin.buffer.read()))
