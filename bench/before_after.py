"""A change's effect on speed: this checkout against an earlier commit, measured in one run.

    .venv/bin/python bench/before_after.py REF [--rounds 7] [--repeat 7] [--workloads ...]

Checks REF out into a temporary git worktree and, for each workload of `bench/targets.py`
(by default LeNet b256 and ResNet-18-CIFAR b64; `--workloads` names others, e.g.
mobilenet_v1_cifar; training step and inference), runs the before, the after
and PyTorch in fresh processes, taking turns, `--rounds` times. Each checkout runs its own
`bench/targets.py --child speed` with its own package first on the path. Prints the medians, the
spread (min-max over rounds), the after/before ratio and both ratios to PyTorch. A benchmark,
not a test: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from targets import WORKLOADS  # noqa: E402  (the workloads' specs and batch sizes)

DEFAULT = ("lenet", "resnet18-cifar")


def speed(checkout: Path, framework: str, workload: str, repeat: int, cache: str) -> dict:
    """One child of `checkout`'s bench/targets.py: median seconds per training step and per
    inference call."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "CNNGRAPH_CACHE": cache}
    out = subprocess.run(
        [sys.executable, str(checkout / "bench" / "targets.py"), "--child", "speed", framework,
         workload, str(repeat)], check=True, capture_output=True, text=True, cwd=checkout,
        env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ref", help="the commit to compare against (e.g. the change's base)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=DEFAULT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        before = Path(scratch) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.ref], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            compare(before, args, scratch)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT,
                           check=False, capture_output=True)


def compare(before: Path, args, scratch: str) -> None:
    sides = {"before": (before, "cnngraph"), "after": (ROOT, "cnngraph"), "torch": (ROOT, "torch")}
    caches = {side: tempfile.mkdtemp(dir=scratch) for side in sides}
    print(f"before: {args.ref}; after: this checkout; {args.rounds} rounds, taking turns",
          flush=True)
    print("\n| workload | before | after | after/before | spread before | spread after "
          "| vs PyTorch before | vs PyTorch after |\n|---|---|---|---|---|---|---|---|")
    for workload in args.workloads:
        batch = WORKLOADS[workload][1]
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for _ in range(args.rounds):
            for side, (checkout, framework) in sides.items():
                runs[side].append(speed(checkout, framework, workload, args.repeat,
                                        caches[side]))
        for mode in ("train", "infer"):
            rate = {side: [batch / r[mode] for r in results] for side, results in runs.items()}
            mid = {side: statistics.median(values) for side, values in rate.items()}

            name = f"{workload} b{batch} {'training step' if mode == 'train' else 'inference'}"
            print(f"| {name} | {mid['before']:,.0f} img/s | {mid['after']:,.0f} img/s | "
                  f"{mid['after'] / mid['before']:.3f}x | {spread(rate['before'])} | "
                  f"{spread(rate['after'])} | {mid['before'] / mid['torch']:.2f}x | "
                  f"{mid['after'] / mid['torch']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
