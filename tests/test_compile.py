"""Whole networks through the CPU compiler: gradients of every spec family against PyTorch,
bitwise determinism, overfitting a batch, steady-state allocation, and the on-disk cache."""
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import cnngraph
from cnngraph.train.optim import SGD

from helpers import ROOT, SPECS, check_net

BLOCKS = f"include: [{SPECS / 'blocks' / 'classic.yaml'}]\n"
FAMILIES = {
    "vgg_block": ((3, 8, 8), "  - vgg_block: {convs: 2, out: 4}\n  - flatten\n"
                             "  - dense: {out: 3}\n"),
    "inception": ((4, 6, 6), "  - inception: {c1: 2, c3_reduce: 2, c3: 3, c5_reduce: 2, c5: 2,"
                             " pool_proj: 2}\n  - global_avgpool\n  - flatten\n"
                             "  - dense: {out: 3}\n"),
    "residual": ((3, 8, 8), "  - basic: {out: 4, stride: 2, project: true}\n"
                            "  - basic: {out: 4}\n  - global_avgpool\n  - flatten\n"
                            "  - dense: {out: 3}\n"),
    "bottleneck": ((4, 7, 7), "  - bottleneck: {width: 2, stride: 2, project: true}\n"
                              "  - bottleneck: {width: 2, paper_stride: true}\n"
                              "  - global_avgpool\n  - flatten\n  - dense: {out: 3}\n"),
    "dense_block": ((3, 6, 6), "  - conv_bn_relu: {out: 4, padding: 1}\n"
                               "  - dense_block: {layers: 2, growth: 3, bn_size: 2}\n"
                               "  - transition: {out: 4}\n  - global_avgpool\n  - flatten\n"
                               "  - dense: {out: 3}\n"),
    "squeeze_excite": ((8, 5, 5), "  - se: {channels: 8, reduction: 4}\n  - global_maxpool\n"
                                  "  - flatten\n  - dense: {out: 3}\n"),
    "googlenet_stem": ((3, 15, 15), "  - conv: {out: 4, kernel: 7, stride: 2, padding: 3}\n"
                                    "  - relu\n"
                                    "  - maxpool: {kernel: 3, stride: 2, ceil_mode: true}\n"
                                    "  - lrn: {size: 5, alpha: 0.0001, beta: 0.75, k: 1}\n"
                                    "  - flatten\n  - dropout: {rate: 0.0}\n"
                                    "  - dense: {out: 3}\n"),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_spec_families_match_pytorch(write_spec, family, dtype):
    shape, layers = FAMILIES[family]
    net = cnngraph.load(write_spec(f"version: 1\ninput: {list(shape)}\n{BLOCKS}layers:\n{layers}"))
    check_net(net, dtype=dtype, batch=3)


@pytest.mark.parametrize("spec", ["lenet", "lenet-bn"])
def test_lenet_matches_pytorch(spec):
    check_net(cnngraph.load(SPECS / f"{spec}.yaml"), dtype="float64", batch=4, fd=False)
    check_net(cnngraph.load(SPECS / f"{spec}.yaml"), dtype="float32", batch=4)


def train_a_bit(spec_path, seed: int, steps: int = 3):
    net = cnngraph.load(spec_path)
    model = cnngraph.compile(net, seed=seed)
    opt = SGD(model, lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, *net.input_shape)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    losses = []
    for _ in range(steps):
        losses.append(model.loss_and_grad(x, y, label_smoothing=0.1))
        opt.step()
    return model, losses


def test_same_seed_is_bitwise_identical(write_spec):
    spec = write_spec(f"version: 1\ninput: [1, 12, 12]\n{BLOCKS}layers:\n"
                      "  - conv_bn_relu: {out: 4, padding: 1}\n  - basic: {out: 4}\n"
                      "  - maxpool: {kernel: 2}\n  - flatten\n  - dropout: {rate: 0.3}\n"
                      "  - dense: {out: 10}\n")
    a, losses_a = train_a_bit(spec, seed=7)
    b, losses_b = train_a_bit(spec, seed=7)
    assert losses_a == losses_b
    assert np.array_equal(a.flat_params, b.flat_params)
    assert np.array_equal(a.flat_buffers, b.flat_buffers)
    c, _ = train_a_bit(spec, seed=8)
    assert not np.array_equal(a.flat_params, c.flat_params)


def test_overfits_a_fixed_batch_with_plain_sgd(write_spec):
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 10, 10]\nlayers:\n  - conv: {out: 8, kernel: 3}\n  - relu\n"
        "  - maxpool: {kernel: 2}\n  - flatten\n  - dense: {out: 32}\n  - relu\n"
        "  - dense: {out: 10}\n"))
    model = cnngraph.compile(net, seed=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 1, 10, 10)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    opt = SGD(model, lr=0.1)
    first = model.loss_and_grad(x, y)
    for _ in range(300):
        model.loss_and_grad(x, y)
        opt.step()
    last = model.loss_and_grad(x, y)
    assert first > 2.0 and last < 0.02
    assert (model.forward(x).argmax(1) == y).all()


def test_steady_state_steps_allocate_no_arrays():
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    model = cnngraph.compile(net)
    x = np.random.default_rng(0).standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = np.arange(64) % 10
    for batch in (64, 8):                          # warm: plans bound, kernels compiled
        model.loss_and_grad(x[:batch], y[:batch])
    tracemalloc.start()
    for batch in (64, 8, 64):                      # a smaller last batch reuses the arenas
        model.loss_and_grad(x[:batch], y[:batch])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    activations = 64 * 6 * 28 * 28 * 4             # one activation tensor of this step
    assert peak < 64 * 1024 < activations


def test_planned_memory_reuses_buffers():
    net = cnngraph.load(SPECS / "resnet18-cifar.yaml")
    model = cnngraph.compile(net)
    plan = model.program(True).plan
    total = sum(b.size for b in plan.buffers.values() if b.per_sample and b.dtype == "float")
    assert plan.extent[("float", True)] < 0.6 * total   # lifetimes let buffers share memory
    infer = model.program(False).plan
    assert infer.extent[("float", True)] < 0.2 * total


CACHE_PROBE = """
import numpy as np, cnngraph, sys
net = cnngraph.load(sys.argv[1])
model = cnngraph.compile(net)
x = np.zeros((2, *net.input_shape), np.float32)
model.loss_and_grad(x, [0, 1]); model.forward(x)
from numba.core.registry import CPUDispatcher
mod = model.program(True).module
modules = {sys.modules[getattr(mod, k).__module__] for k in dir(mod) if k.endswith("_cpu")}
kernels = [v for m in modules for v in vars(m).values() if isinstance(v, CPUDispatcher)]
print(sum(sum(k.stats.cache_misses.values()) for k in kernels),
      sum(sum(k.stats.cache_hits.values()) for k in kernels))
"""


def test_second_process_loads_every_kernel_from_the_disk_cache():
    spec = str(SPECS / "lenet-bn.yaml")
    run = [sys.executable, "-c", CACHE_PROBE, spec]
    subprocess.run(run, check=True, capture_output=True, cwd=ROOT)
    misses, hits = map(int, subprocess.run(run, check=True, capture_output=True, text=True,
                                           cwd=ROOT).stdout.split())
    assert misses == 0 and hits > 0


NRT_PROBE = """
import numba, numpy as np, cnngraph, sys
from numba.core.runtime import rtsys
from cnngraph.kernels.cpu import chunks
chunks.MIN_PARALLEL = 0      # every kernel splits alike at both batch sizes
calls = [0]                  # chunk kernel calls, each passed its arrays from Python
run = chunks._Pool.run
def counted(pool, kernel, count, args):
    calls[0] += count
    return run(pool, kernel, count, args)
chunks._Pool.run = counted
net = cnngraph.load(sys.argv[1])
model = cnngraph.compile(net)
counts = []
for n in (8, 32):            # (at least the 8 chunks: batch norm cuts no more than n)
    x = np.zeros((n, *net.input_shape), np.float32)
    model.loss_and_grad(x, np.zeros(n, np.int64))
    before, calls[0] = rtsys.get_allocation_stats().alloc, 0
    model.loss_and_grad(x, np.zeros(n, np.int64))
    counts.append(rtsys.get_allocation_stats().alloc - before)
print(*counts, calls[0])
"""


@pytest.mark.parametrize("spec", ["lenet-bn", "fmnist-resnet"])
def test_kernels_allocate_nothing_that_grows_with_the_batch(spec):
    """Numba's runtime counts every allocation; a step's count must not depend on the batch
    size (no per-sample temporaries) and stays at the few wrappers per array argument that
    passing arrays from Python to each chunk kernel call costs (calls counted at the pool)."""
    out = subprocess.run([sys.executable, "-c", NRT_PROBE, str(SPECS / f"{spec}.yaml")],
                         check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "NUMBA_NRT_STATS": "1"}).stdout
    small, large, chunk_calls = map(int, out.split())
    assert small == large
    assert large <= 8 * chunk_calls
