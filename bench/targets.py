"""Every CPU performance target of cnngraph against PyTorch and onnxruntime, measured in one run.

    .venv/bin/python bench/targets.py [--repeat 7] [--rounds 5] [--parts speed,infer,...]
                                      [--workloads lenet,resnet18-cifar,...]
    (or: make bench)

For LeNet-5 (batch 256), ResNet-18-CIFAR, MobileNet v1 CIFAR and a CIFAR-sized ShuffleNet v2
(bench/specs/; batch 64), CIFAR-sized DenseNet-121 and GoogLeNet (bench/specs/; batch 32, whose
0.89 and 1.45 GMACs an image make a step of 32 cost about as much as ResNet-18-CIFAR's of 64)
and ResNet-50 at 224 (batch 16), with the same data and thread count: images/s of a training
step (forward, softmax cross-entropy, backward, SGD with momentum) and of eval-mode inference
(cnngraph folds batch norm into the convolutions; PyTorch runs its eval mode), medians of
`--repeat` calls or of a second's worth, whichever is more, with cnngraph's achieved GFLOP/s
(two per multiply-add of the conv and dense layers, a training step's three products each:
forward, input and weight gradients) against the sgemm peak measured in the same process (the
roofline note). Then GFLOP/s of the ResNet 3x3 convolutions against one-sgemm-per-core peak; a
depthwise 3x3 layer's forward and backward against its memory-bandwidth bound
(bench/conv_layers.py); the first training step of ResNet-18 in a fresh process with an empty
and a warm kernel cache (medians over `--rounds` rounds, each with a new cache: one fresh
process's warm time ranged 1.73-2.37 s in six runs in a row); and peak RSS of a process that
trains each network. Then inference against onnxruntime (`infer`): LeNet-5, ResNet-18-CIFAR and
MobileNet v2 at 224, batches of 1 and 32, on 1 and 2 threads, onnxruntime running the ONNX
export of the same weights (`Model.export_onnx`) with as many intra-op threads (and one inter-op
thread). And the data pipeline (`loader`): images/s of the training loader with its augmentation
on sets of Fashion-MNIST's and CIFAR-10's shapes, against the training step's images/s of the
network each feeds (LeNet, ResNet-18-CIFAR). Prints a Markdown table of every target. A
benchmark, not a test: run it on a quiet machine.

Each framework runs in its own processes, cnngraph's and PyTorch's taking turns for `--rounds`
rounds (the figures are medians over the rounds): PyTorch's OpenMP threads spin after its ops,
and in a shared process they slowed cnngraph's steps measured after them by up to 25 %. A speed
ratio is the median of the rounds' ratios, each of two times measured one after the other, and
the table shows their range: the load of this shared machine drifts by 15 % and more within
minutes, and a ratio of two medians taken minutes apart moved with it.
"""
from __future__ import annotations

import argparse
import itertools
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

from cnngraph.tools.compare import cnngraph_steps as steps_of  # noqa: E402
from cnngraph.tools.compare import (  # noqa: E402  (the measuring, shared with `bench --compare`)
    measure,
    median_seconds,
    torch_steps,
    torch_values,
)

WORKLOADS = {"lenet": ("specs/lenet.yaml", 256),
             "resnet18-cifar": ("specs/resnet18-cifar.yaml", 64),
             "mobilenet_v1_cifar": ("specs/mobilenet_v1_cifar.yaml", 64),
             "shufflenet_v2_cifar": ("bench/specs/shufflenet_v2_cifar.yaml", 64),
             "densenet121_cifar": ("bench/specs/densenet121_cifar.yaml", 32),
             "googlenet_cifar": ("bench/specs/googlenet_cifar.yaml", 32),
             "resnet50": ("specs/resnet50.yaml", 16)}
RSS_STEPS = 5
# peak RSS of training against PyTorch's: at most as much, and ResNet-50's at most 0.7x
RSS_GOALS = {"resnet50": 0.7}
# the goals: training step speed against PyTorch, and the first ResNet-18 step's seconds with
# an empty and a warm kernel cache
TRAINING_GOALS = {"lenet": 2.0, "resnet18-cifar": 1.5, "mobilenet_v1_cifar": 1.3,
                  "shufflenet_v2_cifar": 1.3, "densenet121_cifar": 1.2, "googlenet_cifar": 1.2,
                  "resnet50": 1.2}
FIRST_STEP_GOALS = (8, 1)
INFERENCE = {"lenet": "specs/lenet.yaml", "resnet18-cifar": "specs/resnet18-cifar.yaml",
             "mobilenet_v2": "specs/mobilenet_v2.yaml"}
INFERENCE_BATCHES, INFERENCE_THREADS = (1, 32), (1, 2)
NETWORKS = [*WORKLOADS, *(name for name in INFERENCE if name not in WORKLOADS)]
# the data pipeline: a set of each dataset's shape (random pixels, 10,240 images), its batch and
# the augmentation its specs train with, and the network whose training step it feeds
LOADERS = {"fashion-mnist": ((1, 28, 28), "lenet", {"crop_padding": 2, "hflip": True}),
           "cifar-10": ((3, 32, 32), "resnet18-cifar", {"crop_padding": 4, "hflip": True})}
PARTS = ("speed", "convs", "depthwise", "first-step", "rss", "infer", "loader")


def cnngraph_steps(spec: str, batch: int):
    """The network, its compiled model and closures for one training step (returning its
    loss) and one inference call (returning the logits)."""
    import cnngraph
    net = cnngraph.load(ROOT / spec)
    return (net, *steps_of(net, batch))


def child_speed(framework: str, name: str, repeat: str) -> dict:
    """Median seconds of a training step and of an inference call; and, for checking that both
    frameworks time the same computation, the first rows of the logits and the loss of the first
    step, from the initial weights (measured before the timed steps change them)."""
    import numpy as np
    spec, batch = WORKLOADS[name]
    roofline = {}
    if framework == "cnngraph":
        from cnngraph.kernels.cpu.peak import gemm_peak
        from cnngraph.tools.summary import analyse
        net, _, train, infer = cnngraph_steps(spec, batch)
        totals = analyse(net)["totals"]
        # for the roofline: multiply-adds an image (conv and dense layers') and the machine's
        # sgemm peak, measured in this process beside the steps
        roofline = {"train_macs": totals["train_macs"], "infer_macs": totals["macs"],
                    "peak": gemm_peak()}
    else:
        train, infer = torch_steps(*torch_network(spec), batch)
    logits = np.asarray(infer(), np.float64)[:4].tolist()
    first_loss = float(train())
    return {"train": median_seconds(train, int(repeat)),
            "infer": median_seconds(infer, int(repeat)),
            "logits": logits, "first_loss": first_loss, **roofline}


def child_convs(framework: str) -> dict:
    """GFLOP/s of the ResNet 3x3 layers' passes; for cnngraph also the sgemm peak, measured in
    the same process."""
    import numba
    import numpy as np
    from conv_layers import LAYERS, measure, measure_torch
    threads = numba.get_num_threads()
    layers = [layer for layer in LAYERS if layer[0].startswith("resnet")]
    if framework == "torch":
        return {"layers": [measure_torch(*layer, threads, np.random.default_rng(0))
                           for layer in layers]}
    from cnngraph.kernels.cpu.peak import gemm_peak
    return {"peak": gemm_peak(),
            "layers": [measure(*layer, threads, np.random.default_rng(0)) for layer in layers]}


def torch_network(spec: str):
    """The network and its initial values (the same as cnngraph's), with PyTorch on the
    benchmark's thread count."""
    import cnngraph
    net = cnngraph.load(ROOT / spec)
    return (net, *torch_values(net))


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
        train = torch_steps(*torch_network(spec), batch)[0]
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


def first_steps(rounds: int) -> tuple[list[float], list[float]]:
    """Seconds to the end of the first ResNet-18 training step in a fresh process, with an empty
    cache then with the cache that left, once per round (each round with a new cache)."""
    cold, warm = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            env = {"CNNGRAPH_CACHE": cache, "NUMBA_CACHE_DIR": cache}
            cold.append(in_child("first-step", env=env)["seconds"])
            warm.append(in_child("first-step", env=env)["seconds"])
    return cold, warm


def child_depthwise(framework: str) -> dict:
    """Seconds of the first DEPTHWISE layer's passes; for cnngraph also the streaming
    bandwidths, measured in the same process. Medians of 21 calls: the layer's passes on
    freshly allocated tensors run slower for their first several calls (forward 4.0 ms as a
    median of 5, 2.85 ms of 21, in one process: measured), and a training loop calls them
    thousands of times."""
    import numba
    import numpy as np
    from conv_layers import DEPTHWISE, measure_depthwise, stream_bandwidths
    threads = numba.get_num_threads()
    figures = measure_depthwise(*DEPTHWISE[0], threads, np.random.default_rng(0), repeat=21,
                                torch=framework == "torch")
    return {**figures, **({"bandwidths": stream_bandwidths(threads)}
                          if framework == "cnngraph" else {})}


def child_infer(framework: str, name: str, batch: str, repeat: str) -> dict:
    """Median seconds of an inference call of a batch, by cnngraph or by onnxruntime on the
    ONNX export of the same initial weights, on NUMBA_NUM_THREADS threads (set by the parent);
    and the first logits, for checking that both ran the same network."""
    import cnngraph
    return measure(framework, cnngraph.load(ROOT / INFERENCE[name]), int(batch), int(repeat),
                   train=False)


def child_loader(name: str) -> dict:
    """Images/s of the training loader (`loader.batches`, augmenting and normalising, on the
    calling thread as `cnngraph train`'s prefetch thread runs it) over an epoch of a set of the
    dataset's shape, median of 3 epochs."""
    import numpy as np

    from cnngraph.train.loader import Augment, Normalizer, batches
    shape, network, augment = LOADERS[name]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10240, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, len(x))
    normalizer = Normalizer.fit(x)

    def epoch():
        for _ in batches(x, y, WORKLOADS[network][1], normalizer, np.random.default_rng(1),
                         Augment(**augment)):
            pass

    return {"images_per_s": len(x) / median_seconds(epoch, 3)}


CHILDREN = {"first-step": child_first_step, "rss": child_rss, "speed": child_speed,
            "convs": child_convs, "depthwise": child_depthwise, "infer": child_infer,
            "loader": child_loader}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="Which targets to measure, of " + ", ".join(PARTS))
    parser.add_argument("--workloads", default=",".join(NETWORKS),
                        help="The networks of the speed, rss and infer parts, of "
                             + ", ".join(NETWORKS))
    parser.add_argument("--readme", action="store_true",
                        help="Write each measured part's table into README.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(CHILDREN[kind](*rest)))
        return

    import numba
    import torch
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"--parts: unknown {', '.join(sorted(parts - set(PARTS)))}")
    chosen = args.workloads.split(",")
    if set(chosen) - set(NETWORKS):
        parser.error(f"--workloads: unknown {', '.join(sorted(set(chosen) - set(NETWORKS)))}")
    if args.readme and set(chosen) != set(NETWORKS) and parts & {"speed", "rss", "infer"}:
        parser.error("--readme writes whole tables: measure every workload")
    workloads = [name for name in WORKLOADS if name in chosen]
    inference = [name for name in INFERENCE if name in chosen]
    threads = numba.get_num_threads()
    print(f"threads: {threads} (numba and torch); torch {torch.__version__}, "
          f"numba {numba.__version__}; {args.rounds} rounds", flush=True)
    rows: dict[str, list[str]] = {}

    def row(part: str, target: str, ours: str, theirs: str, ratio: str, goal: str,
            met: bool) -> None:
        rows.setdefault(part, []).append(f"| {target} | {ours} | {theirs} | {ratio} | {goal} | "
                                         f"{'yes' if met else 'no'} |")
        print(rows[part][-1], flush=True)

    def median(results: list[dict], *keys) -> float:
        values = []
        for result in results:
            for key in keys:
                result = result[key]
            values.append(result)
        return statistics.median(values)

    if "speed" in parts:
        for name in workloads:
            batch = WORKLOADS[name][1]
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(in_child("speed", "cnngraph", name, str(args.repeat)))
                theirs.append(in_child("speed", "torch", name, str(args.repeat)))
            for mode, goal in (("train", TRAINING_GOALS[name]), ("infer", 1.2)):
                mine, other = batch / median(ours, mode), batch / median(theirs, mode)
                # each round's ratio of the two times measured side by side, then their median:
                # the machine's load drifts between rounds, and pairing cancels most of it
                ratios = sorted(t[mode] / o[mode] for o, t in zip(ours, theirs, strict=True))
                ratio = statistics.median(ratios)
                # the roofline: achieved GFLOP/s (2 per multiply-add) against the sgemm peak of
                # the same process, each round's, then their median
                flops = [2 * o[f"{mode}_macs"] * batch / o[mode] / 1e9 for o in ours]
                share = statistics.median(f / o["peak"] for f, o in zip(flops, ours, strict=True))
                row("speed",
                    f"{name} b{batch} {'training step' if mode == 'train' else 'inference'}",
                    f"{rate(mine)} img/s, {statistics.median(flops):.0f} GFLOP/s "
                    f"({share:.0%} of peak)", f"{rate(other)} img/s",
                    f"{ratio:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})", f">= {goal}x",
                    ratio >= goal)

    if "convs" in parts:
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(in_child("convs", "cnngraph"))
            theirs.append(in_child("convs", "torch"))
        peak = median(ours, "peak")
        print(f"sgemm peak: {peak:.0f} GFLOP/s (one sgemm per core)", flush=True)
        for i, layer in enumerate(ours[0]["layers"]):
            for mode in ("fwd", "bwd"):
                mine = median([r["layers"][i] for r in ours], mode)
                other = median([r["layers"][i] for r in theirs], mode)
                row("convs",
                    f"conv {layer['layer']} {'forward' if mode == 'fwd' else 'backward (dx+dw)'}"
                    f" ({layer['path']})",
                    f"{mine:.0f} GFLOP/s", f"{other:.0f} GFLOP/s", f"{mine / peak:.0%} of peak",
                    ">= 60% of peak", mine / peak >= 0.6)

    if "depthwise" in parts:
        from conv_layers import DEPTHWISE, bound
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(in_child("depthwise", "cnngraph"))
            theirs.append(in_child("depthwise", "torch"))
        # each round's time against the bound at the bandwidth measured beside it, in the same
        # process: the machine's memory bandwidth drifts by tens of percent between rounds
        ratios = sorted((r["fwd"] + r["bwd"]) / bound(DEPTHWISE[0], r["bandwidths"]) for r in ours)
        bandwidths = {kind: median(ours, "bandwidths", kind) for kind in ("scale", "triad")}
        least = bound(DEPTHWISE[0], bandwidths)
        mine_fwd = median(ours, "fwd")
        mine = mine_fwd + median(ours, "bwd")
        other = median(theirs, "fwd") + median(theirs, "bwd")
        ratio = statistics.median(ratios)
        print(f"stream scale {bandwidths['scale'] / 1e9:.1f}, "
              f"triad {bandwidths['triad'] / 1e9:.1f} GB/s: bound {least * 1e3:.2f} ms; "
              f"cnngraph forward {mine_fwd * 1e3:.1f} ms, "
              f"backward {(mine - mine_fwd) * 1e3:.1f} ms; x bound per round "
              + ", ".join(f"{r:.2f}" for r in ratios), flush=True)
        row("depthwise", f"conv {DEPTHWISE[0][0]} forward+backward ({ours[0]['path']})",
            f"{mine * 1e3:.1f} ms", f"{other * 1e3:.1f} ms", f"{ratio:.2f}x bound",
            "<= 1.5x bound", ratio <= 1.5)

    if "first-step" in parts:
        colds, warms = first_steps(args.rounds)
        print("first steps, cold: " + ", ".join(f"{t:.1f}" for t in colds) + " s; warm: "
              + ", ".join(f"{t:.2f}" for t in warms) + " s", flush=True)
        cold, warm = statistics.median(colds), statistics.median(warms)
        row("first-step", "first ResNet-18 step, cold cache", f"{cold:.1f} s", "", "",
            f"<= {FIRST_STEP_GOALS[0]} s", cold <= FIRST_STEP_GOALS[0])
        row("first-step", "first ResNet-18 step, warm cache", f"{warm:.1f} s", "", "",
            f"<= {FIRST_STEP_GOALS[1]} s", warm <= FIRST_STEP_GOALS[1])

    if "rss" in parts:
        for name in workloads:
            ours = in_child("rss", "cnngraph", name)["rss_mib"]
            theirs = in_child("rss", "torch", name)["rss_mib"]
            goal = RSS_GOALS.get(name, 1.0)
            row("rss", f"peak RSS training {name} b{WORKLOADS[name][1]}", f"{ours:.0f} MiB",
                f"{theirs:.0f} MiB", f"{ours / theirs:.2f}x", f"<= {goal}x PyTorch's",
                ours <= goal * theirs)

    if "infer" in parts:
        for name, batch, count in itertools.product(inference, INFERENCE_BATCHES,
                                                    INFERENCE_THREADS):
            ours, theirs = [], []
            for _ in range(args.rounds):
                threads_env = {"NUMBA_NUM_THREADS": str(count)}
                ours.append(in_child("infer", "cnngraph", name, str(batch), str(args.repeat),
                                     env=threads_env))
                theirs.append(in_child("infer", "onnxruntime", name, str(batch),
                                       str(args.repeat), env=threads_env))
            gap = max(abs(a - b) for o, t in zip(ours, theirs, strict=True)
                      for a, b in zip(sum(o["logits"], []), sum(t["logits"], []), strict=True))
            ratios = sorted(t["infer"] / o["infer"] for o, t in zip(ours, theirs, strict=True))
            ratio = statistics.median(ratios)
            row("infer", f"{name} b{batch} inference, {count} thread{'s' if count > 1 else ''} "
                f"(logits within {gap:.0e})", duration(median(ours, "infer")),
                f"{duration(median(theirs, 'infer'))} (onnxruntime)",
                f"{ratio:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})", ">= 1.3x", ratio >= 1.3)

    if "loader" in parts:
        for name, (_, network, augment) in LOADERS.items():
            loads, steps = [], []
            for _ in range(args.rounds):
                loads.append(in_child("loader", name)["images_per_s"])
                steps.append(WORKLOADS[network][1]
                             / in_child("speed", "cnngraph", network, str(args.repeat))["train"])
            ratios = sorted(load / step for load, step in zip(loads, steps, strict=True))
            ratio = statistics.median(ratios)
            row("loader", f"data pipeline, {name} shapes ({', '.join(augment)}), against the "
                f"{network} training step", f"{statistics.median(loads):,.0f} img/s",
                f"{statistics.median(steps):,.0f} img/s (the step)",
                f"{ratio:.1f}x ({ratios[0]:.1f}-{ratios[-1]:.1f})", ">= 3x", ratio >= 3)

    print("\n" + HEADER)
    print("\n".join(line for part in rows.values() for line in part))
    if args.readme:
        write_readme(rows, f"Measured by `make bench` on {time.strftime('%Y-%m-%d %H:%M')}, "
                           f"commit {commit()}, {args.rounds} rounds, {threads} threads.")


def rate(images_per_s: float) -> str:
    """A throughput to three significant figures at least (ResNet-50 trains at ~5 img/s)."""
    return f"{images_per_s:,.0f}" if images_per_s >= 100 else f"{images_per_s:.3g}"


def duration(seconds: float) -> str:
    """A call's time to three significant figures at least (LeNet's batch 1 takes ~40 us)."""
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} us"


HEADER = "| target | cnngraph | PyTorch (or as named) | ratio | goal | met |\n" \
         "|---|---|---|---|---|---|"


def write_readme(rows: dict[str, list[str]], stamp: str, readme: Path = ROOT / "README.md"
                 ) -> None:
    """Each measured part's table into the README, between its `<!-- targets:PART -->` and
    `<!-- /targets:PART -->` lines: a run of some parts leaves the others' tables as they were,
    each under the line that says when it was measured."""
    text = readme.read_text()
    for part, lines in rows.items():
        begin, end = f"<!-- targets:{part} -->", f"<!-- /targets:{part} -->"
        if begin not in text or end not in text:
            raise SystemExit(f"{readme.name} has no {begin} ... {end} block")
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = f"{head}{begin}\n{stamp}\n\n{HEADER}\n" + "\n".join(lines) + f"\n{end}{tail}"
    readme.write_text(text)


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
