"""Classification metrics from logits: loss, top-k accuracy, per-class accuracy, confusion."""
from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy, computed stably in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return log_norm - z[np.arange(len(labels)), labels]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Accumulator:
    """Running totals over an epoch or an evaluation."""

    def __init__(self, classes: int):
        self.classes = classes
        self.loss = 0.0
        self.count = 0
        self.top1 = 0
        self.top5 = 0
        self.confusion = np.zeros((classes, classes), np.int64)

    def add(self, logits: np.ndarray, labels: np.ndarray, loss: float | None = None) -> None:
        n = len(labels)
        self.loss += (loss * n) if loss is not None else float(cross_entropy(logits, labels).sum())
        self.count += n
        predicted = logits.argmax(axis=1)
        self.top1 += int((predicted == labels).sum())
        k = min(5, self.classes)
        top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
        self.top5 += int((top == labels[:, None]).any(axis=1).sum())
        np.add.at(self.confusion, (labels, predicted), 1)

    def state_dict(self) -> dict:
        """The running totals as JSON values (a mid-epoch checkpoint carries them)."""
        return {"loss": self.loss, "count": self.count, "top1": self.top1, "top5": self.top5,
                "confusion": self.confusion.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.loss, self.count = float(state["loss"]), int(state["count"])
        self.top1, self.top5 = int(state["top1"]), int(state["top5"])
        self.confusion = np.array(state["confusion"], np.int64).reshape(self.confusion.shape)

    def result(self) -> dict:
        per_class = self.confusion.diagonal() / np.maximum(self.confusion.sum(axis=1), 1)
        return {"loss": self.loss / max(self.count, 1), "acc": self.top1 / max(self.count, 1),
                "top5": self.top5 / max(self.count, 1), "per_class": per_class.tolist(),
                "confusion": self.confusion.tolist(), "count": self.count}
