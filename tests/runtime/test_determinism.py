"""Same seed, same thread count: bitwise the same weights whatever the state of the kernel cache
(issue 17).

One copy of the package trains a network before and after two edits to its kernel sources, from
a cache made before the edits (warm) and from a fresh one (cold), and on several thread counts.
The runs are shared by the tests below: each cold start compiles every kernel, in a process of
its own, and that is most of this module's time."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnngraph
from cnngraph.runtime.backend import available_cores

# Batch norm and convolutions with fused activations, dense layers, pooling: the kernels whose
# sums used to depend on the cache's state (a fused activation's code compiled into the kernel
# that calls it, or linked from the cache) or on the thread count (dense cut its GEMMs per
# thread). The second conv (16 channels in and out, 6x6) runs by Winograd.
SPEC = """version: 1
input: [3, 12, 12]
layers:
  - conv: {out: 16, kernel: 3, padding: 1}
  - batchnorm
  - sigmoid
  - avgpool: {kernel: 2, stride: 2}
  - conv: {out: 16, kernel: 3, padding: 1}
  - tanh
  - flatten
  - dense: {out: 32}
  - batchnorm
  - sigmoid
  - dense: {out: 10}
"""

TRAIN = """
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

# The edits. A transform that the Winograd kernels (winograd.py) call from another file: the
# same sums, associated otherwise (it moves the weights by ~1e-7). And the sigmoid and tanh rows
# of ops/pointwise/ swapped: the conv, batch-norm and dense kernels apply a fused activation by
# its code, its row's place, so both are renumbered (the same computation).
TRANSFORM = ("ops/conv/cpu/transforms.py", "return m0 + plus + plus2, ",
             "return m0 + (plus + plus2), ")
SIGMOID_ROW = ('Row("sigmoid", "sigmoid(x)", "dy * y * (one - y)", 4, ("output",), {}, '
               'lambda args: None),')
TANH_ROW = 'Row("tanh", "tanh(x)", "dy * (one - y * y)", 5, ("output",), {}, lambda args: None),'
ROWS = "ops/pointwise/__init__.py"


def _train(package_root: Path, spec: Path, cache: Path, out: Path, threads: int = 2,
           chunks: int = 4) -> dict:
    """Three steps in a process of `threads` threads; `chunks` 0: the default count."""
    env = {**os.environ, "PYTHONPATH": str(package_root), "NUMBA_CACHE_DIR": str(cache / "numba"),
           "CNNGRAPH_CACHE": str(cache / "cnngraph"), "NUMBA_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-c", TRAIN, str(spec), str(out), str(chunks)], env=env,
                   check=True, capture_output=True, cwd=package_root)
    with np.load(out) as saved:
        return dict(saved)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _edit(package: Path, file: str, old: str, new: str) -> None:
    path = package / file
    text = path.read_text()
    assert text.count(old) == 1, (file, old)
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """The weights of each run, by name. "before": the unedited copy, cache "first"; then the
    edits, and "warm": cache "first"; "cold": cache "second"; the rest warm from "second"."""
    folder = tmp_path_factory.mktemp("determinism")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC)
    root, first, second = folder / "src", folder / "first", folder / "second"
    package = root / "cnngraph"
    shutil.copytree(Path(cnngraph.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))

    def train(name: str, cache: Path, **how) -> dict:
        return _train(root, spec, cache, folder / f"{name}.npz", **how)

    weights = {"before": train("before", first)}
    _edit(package, *TRANSFORM)
    _edit(package, ROWS, SIGMOID_ROW, "@@")
    _edit(package, ROWS, TANH_ROW, SIGMOID_ROW)
    _edit(package, ROWS, "@@", TANH_ROW)
    weights["warm"] = train("warm", first)
    weights["cold"] = train("cold", second)
    for threads in (1, 2, 3):
        weights[f"warm on {threads}"] = train(f"warm{threads}", second, threads=threads)
    # the default chunk count, one per CPU: on 1 thread and on all of them
    for threads in sorted({1, available_cores()}):
        weights[f"default on {threads}"] = train(f"default{threads}", second, threads=threads,
                                                 chunks=0)
    return weights


def test_a_warm_cache_trains_bitwise_as_a_cold_one_even_after_kernel_edits(runs):
    """Training from the cache made before the edits (warm) must give what a fresh cache gives.
    Numba checks only the changed function's own file: the Winograd kernels used to run the old
    transform from their cache entries, and a kernel could apply the activation that its code
    used to mean."""
    assert not _same(runs["before"], runs["cold"])      # the edits did change the computation
    assert _same(runs["warm"], runs["cold"])


def test_the_same_bits_from_a_cold_cache_a_warm_one_and_any_thread_count(runs):
    """A network whose kernels sum over chunks, fuse activations and call OpenBLAS, with a fixed
    chunk count (train.shards): a fresh cache on 2 threads, then that cache warm on 1, 2 and 3
    threads, all bitwise the same; and with the default chunk count, the same bits on 1 thread as
    on all of them. (LeNet-BN's gradients differed in 60,105 of 62,158 values between 1 and 2
    threads, and in 55,308 between a cold and a warm cache.)"""
    for threads in (1, 2, 3):
        assert _same(runs["cold"], runs[f"warm on {threads}"]), f"{threads} threads, warm cache"
    defaults = [v for k, v in sorted(runs.items()) if k.startswith("default")]
    assert _same(defaults[0], defaults[-1])
