"""Training speed of the CUDA backend on a real GPU, against the device's peak and PyTorch.

    python bench/gpu.py [--repeat 10] [--workload SPEC:BATCH ...] [--input C,H,W]

By default, for LeNet-5 (batch 256) and ResNet-18-CIFAR (batch 128): images/s of a float32
training step
(forward, loss, backward, SGD with momentum, all on the device), achieved GFLOP/s of the
step's convolution and dense arithmetic against the device's theoretical FP32 peak, and, when
a CUDA build of PyTorch is installed, PyTorch's images/s on the same GPU and the ratio. Then
`cnngraph bench`'s per-layer view of the last workload. Needs a GPU; runs unchanged on any.
(Under NUMBA_ENABLE_CUDASIM=1, with a tiny `--input`, it runs in the simulator: that is how
the test suite checks this script.)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import cnngraph  # noqa: E402
from cnngraph.tools.profile import profile_step, render  # noqa: E402
from cnngraph.tools.summary import analyse  # noqa: E402
from cnngraph.train.optim import SGD  # noqa: E402

WORKLOADS = ["specs/lenet.yaml:256", "specs/resnet18-cifar.yaml:128"]


def median_seconds(step, sync, repeat: int) -> float:
    for _ in range(3):
        step()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_images_per_s(net, model, x, y, repeat: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    from cnngraph.tools.torch_reference import run
    dev = torch.device("cuda")
    params = {k: torch.tensor(v, device=dev, requires_grad=True)
              for k, v in model.host_params().items()}
    buffers = {k: torch.tensor(v, device=dev) for k, v in model.host_buffers().items()}
    opt = torch.optim.SGD(params.values(), lr=0.01, momentum=0.9)

    def step():
        xt = torch.from_numpy(x).pin_memory().to(dev, non_blocking=True)
        yt = torch.from_numpy(y).to(dev, non_blocking=True)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(run(net, params, buffers, xt, True), yt).backward()
        opt.step()

    return len(x) / median_seconds(step, torch.cuda.synchronize, repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workload", nargs="+", default=WORKLOADS, metavar="SPEC:BATCH")
    parser.add_argument("--input", help="override the specs' input shape, C,H,W")
    args = parser.parse_args()
    shape = tuple(int(d) for d in args.input.split(",")) if args.input else None
    from numba import cuda
    for workload in args.workload:
        spec, batch = workload.rsplit(":", 1)
        batch = int(batch)
        net = cnngraph.load(ROOT / spec, input_shape=shape)  # an absolute SPEC stays itself
        model = cnngraph.compile(net, backend="cuda")
        peak, source = model.backend.peak_gflops(model.dtype)
        opt = SGD(model, lr=0.01, momentum=0.9)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
        y = rng.integers(0, net.output_shape[0], batch)

        def step(model=model, opt=opt, x=x, y=y):
            model.loss_and_grad(x, y)
            opt.step()

        seconds = median_seconds(step, cuda.synchronize, args.repeat)
        flops = 2 * analyse(net, batch=batch)["totals"]["train_macs"] * batch
        ours = batch / seconds
        line = (f"{net.name:>15} batch {batch}: cnngraph {ours:9,.0f} img/s, "
                f"{flops / seconds / 1e9:8,.0f} GFLOP/s = {flops / seconds / 1e9 / peak:5.1%} "
                f"of {peak:,.0f} ({source})")
        theirs = torch_images_per_s(net, model, x, y, args.repeat)
        line += "; PyTorch on this GPU: " + (
            f"{theirs:,.0f} img/s, ratio {ours / theirs:.2f}x" if theirs else
            "not available (no CUDA build of PyTorch installed)")
        print(line, flush=True)
    print(render(profile_step(model, batch, args.repeat)))


if __name__ == "__main__":
    main()
