"""What freezing saves: a training step of ResNet-18-CIFAR (batch 64) with parts of it frozen,
in cnngraph and in PyTorch (`requires_grad = False` on the same tensors), measured in one run.

    .venv/bin/python bench/freezing.py [--repeat 7] [--rounds 3]

Scenarios (train/finetune.py patterns): nothing frozen; the head alone trains (a linear probe
on frozen features: no backward below it at all); the top two stages and the head train (the
backward stops at layer3); and the middle frozen (layer2 and layer3: the backward passes
through them without their weight gradients, to train the stem and layer1 below). Prints each
step's median time, the share of the full step it saves, and the ratio of PyTorch's time to
cnngraph's. Each measurement runs in a process of its own, the frameworks taking turns per
round (see bench/targets.py for why). A benchmark, not a test: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from targets import torch_network  # noqa: E402

from cnngraph.tools.compare import batch_of, median_seconds  # noqa: E402

SPEC, BATCH = "specs/resnet18-cifar.yaml", 64
SCENARIOS = {"nothing": [],                          # what each freezes
             "all but the head": ["conv1", "batchnorm1", "layer*"],
             "stem, layer1, layer2": ["conv1", "batchnorm1", "layer1", "layer2"],
             "layer2, layer3": ["layer2", "layer3"]}


def frozen_net(patterns: list[str]):
    import cnngraph
    from cnngraph.train import finetune
    net = cnngraph.load(ROOT / SPEC)
    return net.with_frozen(finetune.frozen_tensors(net, patterns)[0])


def child_step(framework: str, scenario: str, repeat: str) -> dict:
    """Median seconds of one SGD training step with the scenario's tensors frozen."""
    net = frozen_net(SCENARIOS[scenario])
    x, y = batch_of(net, BATCH)
    if framework == "cnngraph":
        import cnngraph
        from cnngraph.train.optim import SGD
        model = cnngraph.compile(net)
        optimizer = SGD(model, lr=0.01, momentum=0.9)

        def step():
            model.loss_and_grad(x, y)
            optimizer.step()
    else:
        import torch

        from cnngraph.tools.torch_reference import run
        _, params, buffers = torch_network(SPEC)
        frozen = set(net.frozen())
        tensors = {k: torch.tensor(v, requires_grad=k not in frozen) for k, v in params.items()}
        state = {k: torch.tensor(v) for k, v in buffers.items()}
        opt = torch.optim.SGD([t for t in tensors.values() if t.requires_grad], lr=0.01,
                              momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(run(net, tensors, state, xt, True), yt).backward()
            opt.step()
    return {"seconds": median_seconds(step, int(repeat))}


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_step(*args.child)))
        return
    print(f"ResNet-18-CIFAR, batch {BATCH}, SGD with momentum; medians of {args.rounds} rounds")
    print("| frozen | cnngraph step | saved | PyTorch step | saved | PyTorch / cnngraph |")
    print("|---|---|---|---|---|---|")
    full: dict[str, float] = {}
    for scenario in SCENARIOS:
        times: dict[str, list[float]] = {"cnngraph": [], "torch": []}
        for _ in range(args.rounds):
            for framework in times:
                times[framework].append(
                    in_child(framework, scenario, str(args.repeat))["seconds"])
        ours, theirs = (statistics.median(times[f]) for f in ("cnngraph", "torch"))
        ratio = statistics.median(t / o for o, t in zip(times["cnngraph"], times["torch"],
                                                         strict=True))
        full.setdefault("cnngraph", ours)
        full.setdefault("torch", theirs)
        print(f"| {scenario} | {ours * 1e3:.0f} ms | {1 - ours / full['cnngraph']:.0%} | "
              f"{theirs * 1e3:.0f} ms | {1 - theirs / full['torch']:.0%} | {ratio:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
