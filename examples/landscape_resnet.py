"""Loss landscapes of ResNet-18-CIFAR with and without skip connections (Li et al. 2018).

    .venv/bin/python examples/landscape_resnet.py [--out runs/landscape] [--train 10000]
        [--epochs 4] [--grid 21] [--samples 500]

CIFAR-10 is not shipped with the project and nothing is downloaded, so the data is
Fashion-MNIST in CIFAR's shape: each 28x28 image zero-padded to 32x32 and repeated over three
channels. `--train` training images (an equal number per class, drawn with a fixed seed) train
specs/resnet18-cifar.yaml twice with one recipe, as shipped and with `--param skip=false` (no
shortcut in any block: the plain 18-layer network). Each is then mapped with
`cnngraph landscape` on the first `--samples` test images, with the same random directions
(seed 0). Both the train and the landscape step are the command line a user would type; this
script prints them as it runs them.

Writes examples/results/landscape_resnet18_cifar.png (the two surfaces as contours on the same
levels, and their 1-D slices) and prints, as Markdown, each network's test accuracy, its loss at
the trained weights and how fast the loss rises away from them.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from cnngraph.train.config import DATASETS
from cnngraph.train.readers import load_dataset

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "resnet18-cifar.yaml"
CNNGRAPH = [str(Path(sys.executable).parent / "cnngraph")]  # the venv's command line
VARIANTS = {"with skip connections": "skip=true", "without (plain)": "skip=false"}


def cifar_shaped(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) uint8 images as (N, 3, 32, 32): a 2-pixel zero border, grey to RGB."""
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return np.repeat(padded, 3, axis=1)


def write_data(folder: Path, train_count: int, seed: int = 0) -> Path:
    source = DATASETS["fashion-mnist"]
    train, test = load_dataset(source, "train"), load_dataset(source, "test")
    rng = np.random.default_rng(seed)
    per_class = train_count // 10
    pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(train.y == c), per_class,
                                              replace=False) for c in range(10)]))
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "train.npz", x=cifar_shaped(train.x[pick]), y=train.y[pick])
    np.savez(folder / "test.npz", x=cifar_shaped(test.x), y=test.y)
    return folder


def command(*args: str, capture: bool = False) -> str:
    """Run `cnngraph ARGS`, shown as typed; its standard output when `capture`."""
    print("$ " + " ".join(shlex.quote(str(a)) for a in ("cnngraph", *args)), flush=True)
    done = subprocess.run([*CNNGRAPH, *args], check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)
    return done.stdout or ""


def ring_means(losses: np.ndarray, alphas: np.ndarray, radii=(0.25, 0.5, 1.0)) -> list[float]:
    """The mean loss over the grid points at distance `r` (within half a grid step) from the
    trained weights, for each r: how steeply the surface rises around its centre."""
    a, b = np.meshgrid(alphas, alphas, indexing="ij")
    distance = np.hypot(a, b)
    step = alphas[1] - alphas[0]
    return [float(losses[np.abs(distance - r) <= step / 2].mean()) for r in radii]


def plot(surfaces: dict[str, dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    lowest = min(float(s["losses"].min()) for s in surfaces.values())
    levels = np.linspace(lowest, lowest + 5.0, 21)  # the same levels on both: comparable
    for axis, (name, s) in zip(axes[:2], surfaces.items(), strict=True):
        grid = np.minimum(s["losses"], levels[-1])
        shown = axis.contour(s["alphas"], s["betas"], grid.T, levels=levels, cmap="viridis")
        axis.clabel(shown, levels[::4], fontsize=7, fmt="%.1f")
        axis.plot(0, 0, "r+", markersize=10)
        axis.set_title(f"ResNet-18-CIFAR {name}")
        axis.set_xlabel("direction 1")
        axis.set_ylabel("direction 2")
        axis.set_aspect("equal")
    middle = len(next(iter(surfaces.values()))["betas"]) // 2
    for name, s in surfaces.items():
        axes[2].plot(s["alphas"], s["losses"][:, middle], marker=".", label=name)
    axes[2].set_yscale("log")
    axes[2].set_title("1-D slice along direction 1")
    axes[2].set_xlabel("direction 1")
    axes[2].set_ylabel("test loss")
    axes[2].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/landscape"))
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--span", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--picture", type=Path,
                        default=ROOT / "examples" / "results" / "landscape_resnet18_cifar.png")
    args = parser.parse_args()
    data = write_data(args.out / "data", args.train)
    surfaces, rows = {}, []
    for name, param in VARIANTS.items():
        run = args.out / param.replace("=", "-")
        command("train", str(SPEC), "--param", param, "--data", str(data), "--out", str(run),
                "--overwrite", "--epochs", str(args.epochs), "--set", "train.batch_size=128",
                "--set", "train.optimizer=sgd", "--set", "train.lr=0.05",
                "--set", "train.momentum=0.9", "--set", "train.weight_decay=0.0005",
                "--set", "train.schedule=cosine", "--set", "train.val_split=0.1",
                "--set", "train.report=false")
        command("landscape", str(SPEC), "--weights", str(run / "best.npz"), "--data", str(data),
                "--grid", str(args.grid), "--span", str(args.span), "--samples",
                str(args.samples), "-o", str(run / "landscape.png"))
        with np.load(run / "landscape.npz") as found:
            surfaces[name] = {key: found[key] for key in ("alphas", "betas", "losses")}
        test = json.loads(command("eval", str(SPEC), "--weights", str(run / "best.npz"),
                                  "--data", str(data), "--json", capture=True))
        middle = args.grid // 2
        rows.append((name, test["acc"], float(surfaces[name]["losses"][middle, middle]),
                     *ring_means(surfaces[name]["losses"], surfaces[name]["alphas"]),
                     float(surfaces[name]["losses"].max())))
    args.picture.parent.mkdir(parents=True, exist_ok=True)
    plot(surfaces, args.picture)
    print(f"\nResNet-18-CIFAR on CIFAR-shaped Fashion-MNIST, {args.train:,} training images, "
          f"{args.epochs} epochs; loss over {args.samples} test images, {args.grid}x"
          f"{args.grid} grid on [-{args.span}, {args.span}]^2:\n")
    print("| network | test accuracy | loss at the weights | mean loss at r=0.25 | r=0.5 | "
          "r=1 | max |\n|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]:.4f} | " + " | ".join(f"{v:.3f}" for v in row[2:]) + " |")
    print(f"\nwrote {args.picture}")


if __name__ == "__main__":
    main()
