"""Training-step speed of cnngraph against PyTorch on the same network, data and threads.

    .venv/bin/python bench/train_step.py [--repeat 7]

Both run forward, softmax cross-entropy, backward and an SGD update; PyTorch runs the network
through the IR-to-PyTorch translator in bench/torch_reference.py. Prints the median images/s
of each and the ratio. A benchmark, not a test: run it on a quiet machine.
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

import torch  # noqa: E402
from torch_reference import run  # noqa: E402

import cnngraph  # noqa: E402
from cnngraph.train.optim import SGD  # noqa: E402

WORKLOADS = [("specs/lenet.yaml", 256), ("specs/resnet18-cifar.yaml", 64)]


def median_seconds(step, repeat: int) -> float:
    step()
    step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(spec: str, batch: int, repeat: int) -> None:
    net = cnngraph.load(ROOT / spec)
    model = cnngraph.compile(net)
    opt = SGD(model, lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    y = rng.integers(0, net.output_shape[0], batch)

    def ours():
        model.loss_and_grad(x, y)
        opt.step()

    params = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    torch_opt = torch.optim.SGD(params.values(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def theirs():
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(run(net, params, buffers, xt, True), yt).backward()
        torch_opt.step()

    t_ours = median_seconds(ours, repeat)
    t_torch = median_seconds(theirs, repeat)
    print(f"{net.name:>15} batch {batch:>3}: cnngraph {batch / t_ours:8.0f} img/s "
          f"({t_ours * 1e3:6.1f} ms)  pytorch {batch / t_torch:8.0f} img/s "
          f"({t_torch * 1e3:6.1f} ms)  ratio {t_torch / t_ours:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import numba
    torch.set_num_threads(numba.get_num_threads())
    print(f"threads: {numba.get_num_threads()} (numba and torch)")
    for spec, batch in WORKLOADS:
        measure(spec, batch, args.repeat)


if __name__ == "__main__":
    main()
