"""Classification metrics from an output's values: its loss, top-k accuracy, per-class accuracy,
confusion. Against class labels, the losses other than cross-entropy see one-hot targets, as
`Model.targets` gives the kernels."""
from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy, computed stably in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return log_norm - z[np.arange(len(labels)), labels]


def per_sample_loss(kind: str, outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each sample's loss of kind `kind` (see `Output.loss`) against class labels, in float64;
    their mean is the batch's loss as the kernels compute it."""
    if kind == "cross_entropy":
        return cross_entropy(outputs, labels)
    z = outputs.astype(np.float64).reshape(len(outputs), -1)
    target = np.zeros_like(z)
    target[np.arange(len(labels)), labels] = 1.0
    if kind == "mse":
        return ((z - target) ** 2).mean(axis=1)
    if kind == "l1":
        return np.abs(z - target).mean(axis=1)
    if kind == "bce_with_logits":
        return (np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)
    raise ValueError(f"unknown loss {kind!r}")


def scores(kind: str, outputs: np.ndarray) -> np.ndarray:
    """What an output trained with `kind` says per class: probabilities after softmax
    (cross-entropy) or a sigmoid each (bce_with_logits, multi-label); the values themselves
    for a regression loss."""
    if kind == "cross_entropy":
        return softmax(outputs)
    if kind == "bce_with_logits":
        return 1.0 / (1.0 + np.exp(-outputs.astype(np.float64)))
    return outputs.astype(np.float64)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Accumulator:
    """Running totals over an epoch or an evaluation."""

    def __init__(self, classes: int, loss: str = "cross_entropy"):
        self.classes, self.kind = classes, loss
        self.loss = 0.0
        self.count = 0
        self.top1 = 0
        self.top5 = 0
        self.confusion = np.zeros((classes, classes), np.int64)

    def add(self, logits: np.ndarray, labels: np.ndarray, loss: float | None = None) -> None:
        n = len(labels)
        self.loss += (loss * n) if loss is not None else \
            float(per_sample_loss(self.kind, logits, labels).sum())
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
