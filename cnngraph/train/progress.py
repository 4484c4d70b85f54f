"""A progress bar per epoch on a terminal; one line per epoch otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, quiet: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.live = (not quiet) if quiet is not None else self.stream.isatty()
        self.label, self.total, self.began, self.last = "", 0, 0.0, 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.began, self.last = label, total, time.perf_counter(), 0.0

    def update(self, done: int, loss: float, acc: float, rate: float) -> None:
        now = time.perf_counter()
        if not self.live or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        width = 24
        filled = int(width * done / max(self.total, 1))
        eta = (self.total - done) * (now - self.began) / max(done, 1)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{done}/{self.total} loss {loss:.4f} acc {acc:.4f} "
                          f"{rate:,.0f} img/s ETA {eta:4.0f}s ")
        self.stream.flush()

    def finish(self, row: dict) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        text = (f"{self.label}: loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
                + (f"  val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f}"
                   if "val_loss" in row else "")
                + f"  lr {row['lr']:.3g}  {row['seconds']:.1f}s "
                  f"({row['images_per_second']:,.0f} img/s)")
        self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
