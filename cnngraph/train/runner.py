"""The training loop behind `cnngraph train`, and evaluation behind `cnngraph eval`.

Every epoch: shuffled, augmented batches prepared one ahead in a background thread; the rate
from the schedule; forward, loss, backward, clipping and the optimiser step; then validation,
the metrics log (`metrics.jsonl`, `metrics.csv`), `last.npz` and, when the validation metric
improves, `best.npz`. The shuffle and augmentation of epoch e draw from a generator seeded by
(seed, e), and every other piece of state is in the checkpoint, so `--resume` reaches bitwise
the same weights as an uninterrupted run. A NaN or infinite loss stops training with a clear
message and leaves the last good checkpoint; Ctrl-C saves `interrupted.npz` and stops.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import compile as compile_net
from ..errors import CnngraphError, DataError
from ..ir import Network
from . import checkpoint
from .config import DATASETS, TrainConfig
from .loader import Augment, Normalizer, Prefetch, batches
from .metrics import Accumulator
from .optim import SGD, Adam, AdamW, RMSProp, clip_grad_norm
from .progress import Progress
from .readers import Dataset, load_dataset
from .schedule import Schedule

CSV_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds",
              "images_per_second")


class TrainingError(CnngraphError):
    """Training cannot go on (a diverged loss); the message says what is left on disk."""


class Interrupted(CnngraphError):
    exit_code = 130


def data_path(name_or_path: str) -> str:
    return DATASETS.get(name_or_path, name_or_path)


def check_dataset(data: Dataset, net: Network) -> None:
    if tuple(data.x.shape[1:]) != tuple(net.input_shape):
        raise DataError(f"{data.source}: images are {'x'.join(map(str, data.x.shape[1:]))}, the "
                        f"spec expects {'x'.join(map(str, net.input_shape))}; resize the data "
                        "or change the spec's `input`")
    classes = net.output_shape[0]
    if len(data) and data.y.max() >= classes:
        raise DataError(f"{data.source}: label {data.y.max()} does not fit the network's "
                        f"{classes} outputs")


def make_optimizer(model, config: TrainConfig):
    decay = dict(weight_decay=config.weight_decay, decay_bn_bias=config.decay_bn_bias)
    if config.optimizer == "sgd":
        return SGD(model, config.lr, config.momentum, nesterov=config.nesterov, **decay)
    if config.optimizer in ("adam", "adamw"):
        kind = Adam if config.optimizer == "adam" else AdamW
        return kind(model, config.lr, config.betas, config.eps, **decay)
    return RMSProp(model, config.lr, config.alpha, config.eps, config.momentum, **decay)


def make_schedule(config: TrainConfig) -> Schedule:
    settings = {k: v for k, v in config.schedule.items() if k != "kind"}
    if "milestones" in settings:
        settings["milestones"] = tuple(settings["milestones"])
    return Schedule(config.lr, config.schedule["kind"], epochs=config.epochs,
                    warmup_epochs=config.warmup_epochs, **settings)


def split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if not fraction:
        return data, None
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(data))
    held = int(round(len(data) * fraction))
    val, train = np.sort(order[:held]), np.sort(order[held:])
    return (Dataset(data.x[train], data.y[train], data.source, data.classes),
            Dataset(data.x[val], data.y[val], data.source, data.classes))


def evaluate(model, data: Dataset, normalizer: Normalizer, batch_size: int) -> dict:
    totals = Accumulator(model.net.output_shape[0])
    for images, labels in Prefetch(batches(data.x, data.y, batch_size, normalizer)):
        totals.add(model.forward(images), labels)
    return totals.result()


@dataclass
class RunResult:
    epochs: int
    best: dict
    history: list
    out: Path
    stopped_early: bool = False


def one_ahead(items):
    """(item, the next item or None) for each item."""
    iterator = iter(items)
    current = next(iterator, None)
    while current is not None:
        coming = next(iterator, None)
        yield current, coming
        current = coming


def train(net: Network, spec_text: str, config: TrainConfig, out: Path, data_dir: str | None,
          resume: bool = False, quiet: bool | None = None, device: str = "cpu") -> RunResult:
    out = Path(out)
    data = load_dataset(data_path(data_dir or config.dataset), "train")
    check_dataset(data, net)
    train_set, val_set = split(data, config.val_split, config.seed)
    if isinstance(config.normalize, dict):
        normalizer = Normalizer(tuple(config.normalize["mean"]), tuple(config.normalize["std"]),
                                255.0 if data.x.dtype == np.uint8 else 1.0)
    elif config.normalize:
        normalizer = Normalizer.fit(train_set.x)
    else:
        normalizer = Normalizer((0.0,) * data.x.shape[1], (1.0,) * data.x.shape[1],
                                255.0 if data.x.dtype == np.uint8 else 1.0)
    model = compile_net(net, backend=device, dtype=config.dtype, seed=config.seed)
    optimizer = make_optimizer(model, config)
    schedule = make_schedule(config)
    augment = Augment(**config.augment)
    stop_metric = (config.early_stopping or {}).get("metric", "val_acc")
    history, best, start, bad_epochs = [], {}, 0, 0
    if resume:
        last = out / "last.npz"
        if not last.exists():
            raise DataError(f"{last}: no checkpoint to resume from")
        params, buffers, optim_state, meta = checkpoint.load(last)
        if meta["spec"] != spec_text:
            raise DataError(f"{last}: the checkpoint was made with a different spec")
        checkpoint.restore(model, params, buffers, last)
        optimizer.load_state_dict(optim_state)
        schedule.load_state_dict(meta["schedule"])
        model.steps = meta["model_steps"]
        history, best, bad_epochs = meta["history"], meta["best"], meta["bad_epochs"]
        start = meta["epoch"] + 1
    out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)

    def meta(epoch: int) -> dict:
        return {"epoch": epoch, "model_steps": model.steps, "schedule": schedule.state_dict(),
                "best": best, "history": history, "bad_epochs": bad_epochs,
                "normalizer": {"mean": normalizer.mean, "std": normalizer.std,
                               "scale": normalizer.scale},
                "classes": data.classes, "config": config.as_dict(), "spec": spec_text}

    progress = Progress(quiet=quiet)
    stopped_early = False
    epoch = start - 1
    try:
        for epoch in range(start, config.epochs):
            rng = np.random.default_rng([config.seed, epoch])
            totals = Accumulator(net.output_shape[0])
            began = time.perf_counter()
            progress.start(f"epoch {epoch + 1}/{config.epochs}", steps_per_epoch)
            loader = Prefetch(batches(train_set.x, train_set.y, config.batch_size, normalizer,
                                      rng, augment))
            try:
                for step, ((images, labels), coming) in enumerate(one_ahead(loader)):
                    if coming is not None:
                        model.stage(*coming)   # a GPU copies it while this step runs
                    optimizer.lr = schedule.lr(epoch, step, steps_per_epoch)
                    loss = model.loss_and_grad(images, labels, config.label_smoothing)
                    if not math.isfinite(loss):
                        last = out / "last.npz"
                        kept = f"{last} (after epoch {epoch})" if last.exists() \
                            else "none was written yet"
                        raise TrainingError(
                            f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                            f"stopping. Last good checkpoint: {kept}. Lower the learning rate "
                            "or set train.clip_grad_norm.")
                    if config.clip_grad_norm:
                        clip_grad_norm(model, config.clip_grad_norm)
                    optimizer.step()
                    totals.add(model.last_logits, labels, loss)
                    progress.update(step + 1, loss=totals.loss / totals.count,
                                    acc=totals.top1 / totals.count,
                                    rate=totals.count / (time.perf_counter() - began))
            finally:
                loader.close()
            seconds = time.perf_counter() - began
            train_result = totals.result()
            row = {"epoch": epoch + 1, "lr": optimizer.lr, "train_loss": train_result["loss"],
                   "train_acc": train_result["acc"], "seconds": seconds,
                   "images_per_second": train_result["count"] / seconds}
            if val_set is not None:
                val = evaluate(model, val_set, normalizer, config.batch_size)
                row.update(val_loss=val["loss"], val_acc=val["acc"])
                schedule.end_epoch(val["loss"])
            history.append(row)
            progress.finish(row)
            improved = _improved(row, best, stop_metric)
            if improved:
                best = dict(row)
                bad_epochs = 0
            else:
                bad_epochs += 1
            _log(out, row)
            checkpoint.save(out / "last.npz", model, optimizer, meta(epoch))
            if improved:
                checkpoint.save(out / "best.npz", model, optimizer, meta(epoch))
            patience = (config.early_stopping or {}).get("patience")
            if patience and bad_epochs >= patience:
                stopped_early = True
                progress.note(f"early stopping: {stop_metric} has not improved for {patience} "
                              "epochs")
                break
    except KeyboardInterrupt:
        checkpoint.save(out / "interrupted.npz", model, optimizer, meta(epoch))
        raise Interrupted(f"interrupted; weights saved to {out / 'interrupted.npz'}; "
                          f"`--resume` continues from {out / 'last.npz'}") from None
    _plot(out, history)
    return RunResult(len(history), best, history, out, stopped_early)


def _improved(row: dict, best: dict, metric: str) -> bool:
    key = metric if metric in row else "train_loss"
    if not best:
        return True
    return row[key] > best[key] if key.endswith("acc") else row[key] < best[key]


def _log(out: Path, row: dict) -> None:
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    path = out / "metrics.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _plot(out: Path, history: list) -> None:
    """Loss and accuracy curves as PNG, when matplotlib (the optional `plot` extra) is there."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "val_loss"):
        if all(key in h for h in history):
            left.plot(epochs, [h[key] for h in history], label=key)
    for key in ("train_acc", "val_acc"):
        if all(key in h for h in history):
            right.plot(epochs, [h[key] for h in history], label=key)
    left.set_xlabel("epoch")
    right.set_xlabel("epoch")
    left.legend()
    right.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png")
    plt.close(fig)


def load_for_inference(net: Network, weights: Path, dtype: str = "float32"):
    """A compiled model with a checkpoint's weights, and the checkpoint's metadata."""
    params, buffers, _, meta = checkpoint.load(Path(weights))
    model = compile_net(net, dtype=dtype)
    checkpoint.restore(model, params, buffers, Path(weights))
    norm = meta["normalizer"]
    return model, Normalizer(tuple(norm["mean"]), tuple(norm["std"]), norm["scale"]), meta


__all__ = ["train", "evaluate", "load_for_inference", "TrainingError", "Interrupted"]
