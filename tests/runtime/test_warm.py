"""The helper process that compiles a training step's kernels on a cold cache, in reverse."""
import json
import os
import subprocess
import sys

import cnngraph
from cnngraph.runtime import warm

SPEC = """version: 1
input: [2, 6, 6]
layers:
  - conv: {out: 3, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - maxpool: {kernel: 2}
  - flatten
  - dense: {out: 4}
"""

HELP = """
import json, sys
from numba.core import event
import cnngraph
from cnngraph.runtime.warm_helper import compile_step
order, depth = [], [0]
class Outermost(event.Listener):      # the kernels the step calls, not the functions they call
    def on_start(self, ev):
        depth[0] += 1
        if depth[0] == 1:
            order.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev):
        depth[0] -= 1
event.register("numba:compile", Outermost())
compile_step(cnngraph.load(sys.argv[1]), "float64", 0, 8)
print(json.dumps(order))
"""

TRAIN = """
import json, sys
import numpy as np
import cnngraph
from cnngraph.ops.pooling import cpu as pooling
model = cnngraph.compile(cnngraph.load(sys.argv[1]), dtype="float64")
x, labels = np.random.default_rng(0).standard_normal((3, 2, 6, 6)), np.array([0, 1, 3])
loss = model.loss_and_grad(x, labels)
print(json.dumps({"loss": loss,
                  "backward_loaded": sum(pooling._maxpool_bwd.stats.cache_hits.values()),
                  "forward_loaded": sum(pooling._maxpool_fwd.stats.cache_hits.values())}))
"""


def test_a_helpers_kernels_come_in_reverse_and_are_loaded_by_the_next_process(write_spec,
                                                                             tmp_path):
    """In fresh caches: the helper compiles the loss, then the backward pass from the input
    end, then the forward pass from the output end; a process that then trains loads those
    kernels rather than compiling them."""
    spec = write_spec(SPEC)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "CNNGRAPH_CACHE": str(tmp_path / "cnngraph")}
    helped = subprocess.run([sys.executable, "-c", HELP, str(spec)], env=env, check=True,
                            capture_output=True, text=True)
    order = json.loads(helped.stdout.strip().splitlines()[-1])
    at = {name: order.index(name) for name in order}
    assert order[0] == "softmax_xent_cpu"
    assert at["flat_bwd"] < at["_gradient_pass"] < at["_maxpool_bwd"] < at["_dense_bwd"] \
        < at["_dense_fwd"] < at["_maxpool_fwd"] < at["_normalise"] < at["_flat_fwd"]
    out = subprocess.run([sys.executable, "-c", TRAIN, str(spec)], env=env, check=True,
                         capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backward_loaded"] >= 1 and result["forward_loaded"] >= 1
    assert result["loss"] > 0


def test_a_helper_starts_only_on_a_cold_cache(write_spec, monkeypatch):
    model = cnngraph.compile(cnngraph.load(write_spec(SPEC)))
    assert warm.start(model) is None                    # disabled here (tests/conftest.py)
    monkeypatch.delenv(warm.HELPER)
    monkeypatch.setattr(warm, "cache_is_cold", lambda: False)
    assert warm.start(model) is None
    monkeypatch.setattr(warm, "cache_is_cold", lambda: True)
    helper = warm.start(model)
    assert helper is not None and helper.wait(timeout=300) == 0


def test_the_backend_hears_of_the_first_training_step_once(write_spec, monkeypatch):
    import numpy as np

    from cnngraph.runtime.cpu import CpuBackend
    calls = []
    monkeypatch.setattr(CpuBackend, "before_first_training_step",
                        lambda self, model: calls.append(model))
    model = cnngraph.compile(cnngraph.load(write_spec(SPEC)), dtype="float64")
    x, labels = np.random.default_rng(0).standard_normal((3, 2, 6, 6)), np.array([0, 1, 3])
    model.forward(x)                                     # inference first: no call
    assert calls == []
    model.loss_and_grad(x, labels)
    model.loss_and_grad(x, labels, input_grad=True)      # another training program
    model.program(True, profile=True)
    assert calls == [model]
