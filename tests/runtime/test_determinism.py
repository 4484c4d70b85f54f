"""Same seed, same thread count: bitwise the same weights whatever the state of the kernel cache
(issue 17)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import cnngraph
from cnngraph.runtime.backend import available_cores

SPEC = """version: 1
input: [16, 4, 4]
layers:
  - conv: {out: 16, kernel: 3, padding: 1}
  - relu
  - flatten
  - dense: {out: 4}
"""

TRAIN = """
import sys
import numpy as np
import cnngraph
from cnngraph.train.optim import SGD
model = cnngraph.compile(cnngraph.load(sys.argv[1]), seed=5)
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 16, 4, 4)).astype(np.float32)
opt = SGD(model, 0.1, momentum=0.9)
for _ in range(2):
    model.loss_and_grad(x, np.array([1, 3]))
    opt.step()
np.savez(sys.argv[2], **model.host_params())
"""

# A change to a transform that conv/cpu.py's Winograd kernels call from another file: the same
# sums, associated otherwise (it moves the weights by ~1e-7)
OLD, NEW = "return m0 + plus + plus2, ", "return m0 + (plus + plus2), "


def _train(package_root: Path, spec: Path, cache: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package_root), "NUMBA_CACHE_DIR": str(cache / "numba"),
           "CNNGRAPH_CACHE": str(cache / "cnngraph"), "NUMBA_NUM_THREADS": "2"}
    subprocess.run([sys.executable, "-c", TRAIN, str(spec), str(out)], env=env, check=True,
                   capture_output=True, cwd=package_root)
    with np.load(out) as saved:
        return dict(saved)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_warm_cache_trains_bitwise_as_a_cold_one_even_after_a_kernel_edit(write_spec,
                                                                            tmp_path):
    """A copy of the package trains in a fresh cache (cold); then a kernel source that the conv
    kernels call from another file changes. Training again from that cache (warm) must give what
    a fresh cache gives: Numba checks only the changed function's own file, and used to run the
    old transform from the conv kernels' cache entries. A warm rerun gives the same again."""
    spec = write_spec(SPEC)
    root = tmp_path / "src"
    package = Path(cnngraph.__file__).parent
    shutil.copytree(package, root / "cnngraph", ignore=shutil.ignore_patterns("__pycache__"))
    before = _train(root, spec, tmp_path / "first", tmp_path / "before.npz")
    transforms = root / "cnngraph" / "ops" / "conv" / "cpu" / "transforms.py"
    text = transforms.read_text()
    assert text.count(OLD) == 1
    transforms.write_text(text.replace(OLD, NEW))
    warm = _train(root, spec, tmp_path / "first", tmp_path / "warm.npz")
    cold = _train(root, spec, tmp_path / "second", tmp_path / "cold.npz")
    assert _same(warm, cold)
    assert not _same(before, cold)          # the edit did change the computation
    assert _same(_train(root, spec, tmp_path / "second", tmp_path / "again.npz"), cold)


FUSED_SPEC = """version: 1
input: [16, 4, 4]
layers:
  - conv: {out: 8, kernel: 1}
  - sigmoid
  - flatten
  - dense: {out: 4}
  - tanh
  - dense: {out: 4}
"""
SIGMOID_ROW = ('Row("sigmoid", "sigmoid(x)", "dy * y * (one - y)", 4, ("output",), {}, '
               'lambda args: None),')
TANH_ROW = 'Row("tanh", "tanh(x)", "dy * (one - y * y)", 5, ("output",), {}, lambda args: None),'


def test_renumbered_fused_activations_are_not_read_from_a_stale_cache(write_spec, tmp_path):
    """The conv and dense kernels apply a fused activation by its code (its row's place in
    ops/pointwise/). Swapping the sigmoid and tanh rows renumbers both: a warm cache must not
    hand back kernels that apply the other activation for a code."""
    spec = write_spec(FUSED_SPEC)
    root = tmp_path / "src"
    package = Path(cnngraph.__file__).parent
    shutil.copytree(package, root / "cnngraph", ignore=shutil.ignore_patterns("__pycache__"))
    before = _train(root, spec, tmp_path / "first", tmp_path / "before.npz")
    rows = root / "cnngraph" / "ops" / "pointwise" / "__init__.py"
    text = rows.read_text()
    assert text.count(SIGMOID_ROW) == 1 and text.count(TANH_ROW) == 1
    rows.write_text(text.replace(SIGMOID_ROW, "@@").replace(TANH_ROW, SIGMOID_ROW)
                    .replace("@@", TANH_ROW))
    warm = _train(root, spec, tmp_path / "first", tmp_path / "warm.npz")
    cold = _train(root, spec, tmp_path / "second", tmp_path / "cold.npz")
    assert _same(warm, cold) and _same(before, cold)    # the same computation, renumbered


# Batch norm and convolutions with fused activations, dense layers, pooling: the kernels whose
# sums used to depend on the cache's state (a fused activation's code compiled into the kernel
# that calls it, or linked from the cache) or on the thread count (dense cut its GEMMs per thread)
MIXED_SPEC = """version: 1
input: [3, 12, 12]
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - batchnorm
  - sigmoid
  - avgpool: {kernel: 2, stride: 2}
  - conv: {out: 8, kernel: 3, padding: 1}
  - tanh
  - flatten
  - dense: {out: 32}
  - batchnorm
  - sigmoid
  - dense: {out: 10}
"""

TRAIN_MIXED = """
import sys
import numpy as np
import cnngraph
from cnngraph.train.optim import SGD
net = cnngraph.load(sys.argv[1])
model = cnngraph.compile(net, seed=5, chunks=int(sys.argv[3]) or None)   # (train.shards)
rng = np.random.default_rng(0)
opt = SGD(model, 0.1, momentum=0.9)
for _ in range(3):
    x = rng.standard_normal((48, *net.input_shape)).astype(np.float32)
    model.loss_and_grad(x, rng.integers(0, 10, 48))
    opt.step()
np.savez(sys.argv[2], **model.host_params())
"""


def _train_mixed(spec: Path, cache: Path, out: Path, threads: int, chunks: int = 4) -> dict:
    """Three steps in a process of `threads` threads; `chunks` 0: the default count."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache / "numba"),
           "CNNGRAPH_CACHE": str(cache / "cnngraph"), "NUMBA_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-c", TRAIN_MIXED, str(spec), str(out), str(chunks)],
                   env=env, check=True, capture_output=True)
    with np.load(out) as saved:
        return dict(saved)


def test_the_same_bits_from_a_cold_cache_a_warm_one_and_any_thread_count(write_spec, tmp_path):
    """Three steps of a network whose kernels sum over chunks, fuse activations and call
    OpenBLAS, with a fixed chunk count (train.shards): a fresh cache on 2 threads, then that
    cache warm on 1 and 3 threads, all bitwise the same. (LeNet-BN's gradients differed in
    60,105 of 62,158 values between 1 and 2 threads, and in 55,308 between a cold and a warm
    cache.)"""
    spec = write_spec(MIXED_SPEC)
    cache = tmp_path / "cache"
    cold = _train_mixed(spec, cache, tmp_path / "cold.npz", 2)
    for threads in (1, 3):      # a warm cache and another thread count at once
        warm = _train_mixed(spec, cache, tmp_path / f"warm{threads}.npz", threads)
        assert _same(cold, warm), f"{threads} threads, warm cache"
    # the default chunk count, one per CPU: the same bits on 1 thread as on all of them
    cores = available_cores()
    default = [_train_mixed(spec, cache, tmp_path / f"default{t}.npz", t, chunks=0)
               for t in sorted({1, cores})]
    assert _same(default[0], default[-1])
