"""`cnngraph landscape`: the loss surface around trained weights (Li, Xu, Taylor, Studer and
Goldstein, "Visualizing the Loss Landscape of Neural Nets", 2018).

Two random Gaussian directions in weight space, each filter-normalised: every filter (a
conv's output channel, a dense layer's row) of a direction is scaled to the norm of the same
filter of the weights, so that the plot is comparable across networks and scale-invariant
layers. As in the paper, vectors (biases, batch-norm weights and biases) get no direction,
and batch norm runs in evaluation mode with the trained running statistics. The loss, mean
cross-entropy on a fixed set of samples, is evaluated at θ + α·d1 + β·d2 on a grid of α and β
in [-span, span]; at the origin it is the trained network's loss on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CnngraphError


class PlotError(CnngraphError):
    """A picture that cannot be drawn (matplotlib is missing)."""


def direction(params: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
    """A filter-normalised random direction: for every tensor of two or more dimensions, a
    Gaussian draw with each filter (slice along the first axis) scaled to that filter's norm
    in `params`; zero for vectors."""
    found = {}
    for name, value in params.items():
        value = np.asarray(value, np.float64)
        if value.ndim < 2:
            found[name] = np.zeros_like(value)
            continue
        draw = rng.standard_normal(value.shape)
        axes = tuple(range(1, value.ndim))
        norms = [np.sqrt((t * t).sum(axis=axes, keepdims=True)) for t in (value, draw)]
        found[name] = draw * norms[0] / np.maximum(norms[1], 1e-12)
    return found


@dataclass
class Surface:
    alphas: np.ndarray        # (grid,)
    betas: np.ndarray         # (grid,)
    losses: np.ndarray        # (grid, grid): losses[i, j] at alphas[i], betas[j]

    def save(self, path: Path) -> None:
        np.savez(path, alphas=self.alphas, betas=self.betas, losses=self.losses)


def mean_loss(model, x: np.ndarray, labels: np.ndarray, batch: int = 256) -> float:
    """Mean cross-entropy of the main output over (x, labels), in evaluation mode."""
    from ..train.metrics import cross_entropy
    total = 0.0
    for start in range(0, len(x), batch):
        logits = model.forward(x[start:start + batch])
        total += float(cross_entropy(logits, labels[start:start + batch]).sum())
    return total / len(x)


def surface(model, x: np.ndarray, labels: np.ndarray, grid: int = 25, span: float = 1.0,
            seed: int = 0) -> Surface:
    """The loss on (x, labels) over a grid × grid plane through the model's weights; the
    weights are restored afterwards."""
    rng = np.random.default_rng(seed)
    base = {k: np.array(v, np.float64) for k, v in model.host_params().items()}
    first, second = direction(base, rng), direction(base, rng)
    steps = np.linspace(-span, span, grid)
    losses = np.empty((grid, grid))
    try:
        for i, alpha in enumerate(steps):
            for j, beta in enumerate(steps):
                for name, value in base.items():
                    moved = value + alpha * first[name] + beta * second[name]
                    model.backend.from_host(moved.astype(model.dtype), model.params[name])
                losses[i, j] = mean_loss(model, x, labels)
    finally:
        for name, value in base.items():
            model.backend.from_host(value.astype(model.dtype), model.params[name])
    return Surface(steps, steps.copy(), losses)


def plot(found: Surface, path: Path, title: str) -> None:
    """A contour plot of the surface and the 1-D slice through the origin along the first
    direction, side by side, as a PNG (needs matplotlib: the `plot` extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("the picture needs matplotlib: pip install 'cnngraph[plot]' (the "
                        "values are in the .npz beside it)") from None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    levels = np.linspace(found.losses.min(), min(found.losses.max(), 10 * found.losses.min()
                                                 + 5), 30)
    contour = left.contour(found.alphas, found.betas, found.losses.T, levels=levels,
                           cmap="viridis")
    left.clabel(contour, contour.levels[::5], fontsize=7)
    left.plot(0, 0, "r+", markersize=10)
    left.set_xlabel("direction 1 (α)")
    left.set_ylabel("direction 2 (β)")
    left.set_title("loss contours")
    middle = len(found.betas) // 2
    right.plot(found.alphas, found.losses[:, middle], marker=".")
    right.set_xlabel("direction 1 (α), β = 0")
    right.set_ylabel("loss")
    right.set_title("1-D slice")
    right.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
