"""A run's metric logs, written from its history: `metrics.jsonl` (one JSON row per epoch),
`metrics.csv` and `curves.png` (when matplotlib, the `plot` extra, is installed). Each file is
replaced whole, so a log always matches the checkpoint whose history it was written from, and a
resumed run never repeats an epoch in it. Failed writes raise OSError. With `--tensorboard`,
`Board` also writes each epoch's row as TensorBoard scalars.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..errors import CnngraphError
from .rundir import write_text_atomic

CSV_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "train_psnr", "val_loss", "val_acc",
              "val_mse", "val_mae", "val_psnr", "seconds", "images_per_second")


def write_logs(out: Path, history: list[dict]) -> None:
    """metrics.jsonl, metrics.csv and curves.png in the run folder `out` from `history`."""
    table = io.StringIO()
    fields = [f for f in CSV_FIELDS if any(f in row for row in history)] or list(CSV_FIELDS)
    writer = csv.DictWriter(table, fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
    write_text_atomic(out / "metrics.csv", table.getvalue())
    if history:
        plot_curves(out, history)


def plot_curves(out: Path, history: list[dict]) -> None:
    """Loss and accuracy (or PSNR) curves as PNG, when matplotlib (the optional `plot` extra)
    is there; with markers, so one epoch shows as points rather than an empty frame."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    score = ("train_psnr", "val_psnr", "PSNR (dB)") if "train_psnr" in history[0] else \
        ("train_acc", "val_acc", "accuracy")
    for axis, keys, label in ((left, ("train_loss", "val_loss"), "loss"),
                              (right, score[:2], score[2])):
        for key in keys:
            if all(key in h for h in history):
                axis.plot(epochs, [h[key] for h in history], marker="o", label=key)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    tmp = out / f".curves.png.{os.getpid()}.tmp"
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out / "curves.png")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


class Board:
    """Each epoch's metrics as TensorBoard scalars in `tensorboard/` of the run folder, through
    the `tensorboard` package's own writer (no TensorFlow): `train_loss` as `train/loss`,
    `val_acc` as `val/acc`, the rest under their names, at the epoch's number."""

    def __init__(self, folder: Path):
        try:
            from tensorboard.summary import Writer
        except ImportError:
            raise CnngraphError("--tensorboard needs the tensorboard package: pip install "
                                "tensorboard (or cnngraph[tensorboard])") from None
        self.writer = Writer(str(Path(folder) / "tensorboard"))

    def add(self, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                tag = key.replace("_", "/", 1) if key.startswith(("train_", "val_")) else key
                self.writer.add_scalar(tag, float(value), step=int(row["epoch"]))
        self.writer.flush()
