"""Metrics from an output's values. Classification (`Accumulator`): its loss, top-k accuracy,
per-class accuracy, confusion; against class labels, the losses other than cross-entropy see
one-hot targets, as `Model.targets` gives the kernels. Regression against array targets
(`Regression`): its loss, MSE, MAE and PSNR. Each has a `score`, the figure a progress line
shows beside the loss (`SCORE`: accuracy, PSNR)."""
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

    SCORE = "acc"

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

    @property
    def score(self) -> float:
        return self.top1 / max(self.count, 1)

    def result(self) -> dict:
        per_class = self.confusion.diagonal() / np.maximum(self.confusion.sum(axis=1), 1)
        return {"loss": self.loss / max(self.count, 1), "acc": self.top1 / max(self.count, 1),
                "top5": self.top5 / max(self.count, 1), "per_class": per_class.tolist(),
                "confusion": self.confusion.tolist(), "count": self.count}


def target_peak(targets: np.ndarray) -> float:
    """The peak signal of PSNR for a set of targets: 1 for targets in [0, 1] (images as
    floats), 255 for targets in [0, 255], else their range."""
    low, high = float(targets.min()), float(targets.max())
    if low >= 0 and high <= 1:
        return 1.0
    if low >= 0 and high <= 255:
        return 255.0
    return max(high - low, 1e-12)


class Regression:
    """Running totals of a regression output against array targets: the output's own loss
    (`mse` or `l1`), the mean squared and absolute errors, and PSNR, the mean over samples of
    10 log10(peak^2 / the sample's MSE) (`target_peak`)."""

    SCORE = "psnr"

    def __init__(self, loss: str, peak: float):
        self.kind, self.peak = loss, peak
        self.loss = self.squared = self.absolute = self.decibels = 0.0
        self.count = 0

    def add(self, outputs: np.ndarray, targets: np.ndarray, loss: float | None = None) -> None:
        n = len(targets)
        error = outputs.astype(np.float64).reshape(n, -1) - targets.reshape(n, -1)
        squared, absolute = (error ** 2).mean(axis=1), np.abs(error).mean(axis=1)
        own = squared if self.kind == "mse" else absolute
        self.loss += loss * n if loss is not None else float(own.sum())
        self.squared += float(squared.sum())
        self.absolute += float(absolute.sum())
        self.decibels += float((10 * np.log10(self.peak ** 2 / np.maximum(squared, 1e-30))).sum())
        self.count += n

    @property
    def score(self) -> float:
        return self.decibels / max(self.count, 1)

    def state_dict(self) -> dict:
        return {"loss": self.loss, "count": self.count, "squared": self.squared,
                "absolute": self.absolute, "decibels": self.decibels}

    def load_state_dict(self, state: dict) -> None:
        self.loss, self.count = float(state["loss"]), int(state["count"])
        self.squared, self.absolute = float(state["squared"]), float(state["absolute"])
        self.decibels = float(state["decibels"])

    def result(self) -> dict:
        count = max(self.count, 1)
        return {"loss": self.loss / count, "mse": self.squared / count,
                "mae": self.absolute / count, "psnr": self.score, "count": self.count}


def totals(loss: str, classes: int, peak: float | None = None):
    """The running totals of an output trained with `loss`: a Regression where its targets are
    arrays (`peak` given), else a classification Accumulator over `classes`."""
    return Accumulator(classes, loss) if peak is None else Regression(loss, peak)
