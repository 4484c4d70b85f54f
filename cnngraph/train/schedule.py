"""Learning-rate schedules, evaluated per step so warm-up and cosine decay are smooth.

constant; step (multiply by `gamma` every `step_size` epochs); multistep (at each of
`milestones`); exponential (`gamma` per epoch); cosine (from the base rate to `min_lr` over
the run); plateau (multiply by `factor` when the validation loss has not improved by more
than `threshold` (relative) for `patience` epochs: AlexNet's and VGG's "divide by 10 when the
validation error stops improving"). Any schedule may start with `warmup_epochs` of linear
warm-up from 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Schedule:
    base_lr: float
    kind: str = "constant"
    epochs: int = 1
    step_size: int = 30
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    min_lr: float = 0.0
    factor: float = 0.1
    patience: int = 2
    threshold: float = 1e-4
    warmup_epochs: float = 0.0
    # plateau state, saved in checkpoints
    scale: float = 1.0
    best: float = math.inf
    bad_epochs: int = 0
    history: list = field(default_factory=list)

    def lr(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        """The rate for `step` of `epoch` (both from 0)."""
        progress = epoch + step / max(steps_per_epoch, 1)
        if self.warmup_epochs and progress < self.warmup_epochs:
            return self.base_lr * (progress + 1 / max(steps_per_epoch, 1)) / self.warmup_epochs
        if self.kind == "step":
            return self.base_lr * self.gamma ** (epoch // self.step_size)
        if self.kind == "multistep":
            return self.base_lr * self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.kind == "exponential":
            return self.base_lr * self.gamma ** epoch
        if self.kind == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-9)
            t = min(max(progress - self.warmup_epochs, 0.0) / span, 1.0)
            return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        if self.kind == "plateau":
            return self.base_lr * self.scale
        return self.base_lr

    def end_epoch(self, val_loss: float) -> None:
        """Feed the epoch's validation loss to the plateau schedule."""
        if self.kind != "plateau" or not math.isfinite(val_loss):
            return
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.scale *= self.factor
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad_epochs = state["scale"], state["best"], state["bad_epochs"]
