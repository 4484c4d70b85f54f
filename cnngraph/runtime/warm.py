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
where this process caught up: on ResNet-18's first step it still compiled the convs' slow
backward kernels itself, where now it compiles only the small kernels its backward pass
needs first (see warm_helper.compile_step, the helper's side). Nothing depends on the helper: it
may finish, fail or be killed. It runs at a lower priority, so it takes the core that
compilation leaves idle.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

HELPER = "CNNGRAPH_COMPILE_HELPER"      # set in the helper; "off" in a parent disables it
HELPER_MODULE = "cnngraph.runtime.warm_helper"     # the helper's side (it builds a Model)


def start(model) -> subprocess.Popen | None:
    """The helper for a model's training step, or None: inside a helper, when disabled, on one
    core, or when the cache already holds the loss kernel that every training step compiles."""
    if os.environ.get(HELPER) or (os.cpu_count() or 1) < 2 or not cache_is_cold():
        return None
    try:
        helper = subprocess.Popen(
            [sys.executable, "-m", HELPER_MODULE], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, HELPER: "1"})
        assert helper.stdin is not None          # (stdin=PIPE)
        helper.stdin.write(pickle.dumps((model.net, model.dtype.name, model.seed,
                                          model.backend.chunks)))
        helper.stdin.close()
    except OSError:          # no helper then (it only ever saves time)
        return None
    return helper


def cache_is_cold() -> bool:
    """Whether the loss kernel's cache index is missing. (It is found through Numba's cache
    internals; where they differ from Numba 0.6x's, no helper starts.)"""
    from ..kernels.cpu.support import softmax_xent_cpu
    try:
        index = softmax_xent_cpu._cache._cache_file._index_path  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return not os.path.exists(index)
