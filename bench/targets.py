"""Every CPU performance target of cnngraph against PyTorch, measured in one run.

    .venv/bin/python bench/targets.py [--repeat 7]      (or: make bench)

For LeNet-5 (batch 256) and ResNet-18-CIFAR (batch 64), in the same process, same data and
thread count: images/s of a training step (forward, softmax cross-entropy, backward, SGD with
momentum) and of eval-mode inference (cnngraph folds batch norm into the convolutions; PyTorch
runs its eval mode), medians of `--repeat`. Then GFLOP/s of the ResNet 3x3 convolutions
against one-sgemm-per-core peak; the first training step of ResNet-18 in a fresh process with
an empty and a warm kernel cache; and peak RSS of a process that trains each network, cnngraph
and PyTorch in separate processes. Prints a Markdown table of every target. A benchmark, not a
test: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

WORKLOADS = {"lenet": ("specs/lenet.yaml", 256),
             "resnet18-cifar": ("specs/resnet18-cifar.yaml", 64)}
RSS_STEPS = 5


def median_seconds(step, repeat: int) -> float:
    step()
    step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batch_of(net, batch: int):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    return x, rng.integers(0, net.output_shape[0], batch)


def cnngraph_steps(spec: str, batch: int):
    """A compiled model and closures for one training step and one inference call."""
    import cnngraph
    from cnngraph.train.optim import SGD
    net = cnngraph.load(ROOT / spec)
    model = cnngraph.compile(net)
    opt = SGD(model, lr=0.01, momentum=0.9)
    x, y = batch_of(net, batch)

    def train():
        model.loss_and_grad(x, y)
        opt.step()

    return net, model, train, lambda: model.forward(x)


def torch_steps(net, params: dict, buffers: dict, batch: int):
    import torch
    from torch_reference import run
    params = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True)
              for k, v in params.items()}
    buffers = {k: torch.tensor(v, dtype=torch.float32) for k, v in buffers.items()}
    opt = torch.optim.SGD(params.values(), lr=0.01, momentum=0.9)
    x, y = batch_of(net, batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def train():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(run(net, params, buffers, xt, True), yt).backward()
        opt.step()

    def infer():
        with torch.inference_mode():
            return run(net, params, buffers, xt, False)

    return train, infer


def speed(spec: str, batch: int, repeat: int) -> dict:
    import numpy as np
    net, model, train, infer = cnngraph_steps(spec, batch)
    params = {k: np.array(v) for k, v in model.params.items()}
    buffers = {k: np.array(v) for k, v in model.buffers.items()}
    torch_train, torch_infer = torch_steps(net, params, buffers, batch)
    return {"train": (batch / median_seconds(train, repeat),
                      batch / median_seconds(torch_train, repeat)),
            "infer": (batch / median_seconds(infer, repeat),
                      batch / median_seconds(torch_infer, repeat))}


# -- measurements in a fresh process ----------------------------------------------------------
def child_first_step() -> dict:
    start = time.perf_counter()
    net, model, train, _ = cnngraph_steps(*WORKLOADS["resnet18-cifar"])
    train()
    return {"seconds": time.perf_counter() - start}


def child_rss(framework: str, name: str) -> dict:
    spec, batch = WORKLOADS[name]
    if framework == "cnngraph":
        train = cnngraph_steps(spec, batch)[2]
    else:
        import torch

        import cnngraph
        from cnngraph.init import initial_values
        torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
        net = cnngraph.load(ROOT / spec)
        train = torch_steps(net, *initial_values(net, 0), batch)[0]
    for _ in range(RSS_STEPS):
        train()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the parent process.
    status = Path("/proc/self/status").read_text().split("\n")
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return {"rss_mib": peak_kib / 1024}


def in_child(*args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_steps() -> tuple[float, float]:
    """Seconds to the end of the first ResNet-18 training step, empty cache then warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"CNNGRAPH_CACHE": cache, "NUMBA_CACHE_DIR": cache}
        cold = in_child("first-step", env=env)["seconds"]
        warm = in_child("first-step", env=env)["seconds"]
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_first_step() if kind == "first-step" else child_rss(*rest)
        print(json.dumps(result))
        return

    import numba
    import torch
    from conv_layers import LAYERS
    from conv_layers import measure as conv_measure

    from cnngraph.profile import gemm_peak
    threads = numba.get_num_threads()
    torch.set_num_threads(threads)
    print(f"threads: {threads} (numba and torch); torch {torch.__version__}, "
          f"numba {numba.__version__}", flush=True)
    rows = []

    def row(target: str, ours: str, theirs: str, ratio: str, goal: str, met: bool) -> None:
        rows.append(f"| {target} | {ours} | {theirs} | {ratio} | {goal} | "
                    f"{'yes' if met else 'no'} |")
        print(rows[-1], flush=True)

    for name, (spec, batch) in WORKLOADS.items():
        result = speed(spec, batch, args.repeat)
        for mode, goal in (("train", 1.5 if name == "lenet" else 1.0), ("infer", 1.2)):
            ours, theirs = result[mode]
            row(f"{name} b{batch} {'training step' if mode == 'train' else 'inference'}",
                f"{ours:,.0f} img/s", f"{theirs:,.0f} img/s", f"{ours / theirs:.2f}x",
                f">= {goal}x", ours / theirs >= goal)

    peak = gemm_peak()
    print(f"sgemm peak: {peak:.0f} GFLOP/s (one sgemm per core)", flush=True)
    import numpy as np
    rng = np.random.default_rng(0)
    for layer in LAYERS:
        if not layer[0].startswith("resnet"):
            continue
        r = conv_measure(*layer, threads, rng)
        for mode in ("fwd", "bwd"):
            row(f"conv {r['layer']} {'forward' if mode == 'fwd' else 'backward (dx+dw)'}",
                f"{r[mode]:.0f} GFLOP/s", f"{r['torch_' + mode]:.0f} GFLOP/s",
                f"{r[mode] / peak:.0%} of peak", ">= 60% of peak", r[mode] / peak >= 0.6)

    cold, warm = first_steps()
    row("first ResNet-18 step, cold cache", f"{cold:.1f} s", "", "", "<= 15 s", cold <= 15)
    row("first ResNet-18 step, warm cache", f"{warm:.1f} s", "", "", "<= 2 s", warm <= 2)
    for name in WORKLOADS:
        env = {"BENCH_THREADS": str(threads)}
        ours = in_child("rss", "cnngraph", name, env=env)["rss_mib"]
        theirs = in_child("rss", "torch", name, env=env)["rss_mib"]
        row(f"peak RSS training {name}", f"{ours:.0f} MiB", f"{theirs:.0f} MiB",
            f"{ours / theirs:.2f}x", "<= PyTorch", ours <= theirs)

    print("\n| target | cnngraph | PyTorch | ratio | goal | met |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
