"""What `cnngraph train` shows while it trains.

On a terminal: a live bar per epoch, redrawn in place and cut to the terminal's width (fields
are dropped, least useful first, rather than letting the line wrap: a wrapped line breaks the
carriage-return redraw into a new line per update). Then one summary line per epoch; it and
any notes are folded between fields (or words) onto indented lines where the terminal is too
narrow, so they lose nothing and the terminal never wraps them itself. Anywhere
else (a pipe, a log file, `CI=true`, `TERM=dumb`): only the summary lines, with no carriage
returns or escape codes, so a log holds one line per epoch.

    epoch 3/15 [##########..........] 211/422 loss 0.4123 acc 0.8512 9.87k img/s ETA 12s
    epoch 3/15: loss 0.4101 acc 0.8520  val_loss 0.3900 val_acc 0.8610  lr 0.0962  25.3s (...)
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import time

CLEAR = "\r\x1b[K"          # back to the line's start, erase it (terminals only)
REDRAW_EVERY = 0.1          # seconds between redraws of the bar


def plain_output(stream) -> bool:
    """True where only whole lines may be written: not a terminal, CI, or a dumb terminal."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    isatty = getattr(stream, "isatty", None)
    return ci or os.environ.get("TERM") == "dumb" or not (isatty and isatty())


def terminal_width(stream) -> int:
    """Columns of the terminal `stream` writes to: $COLUMNS when set (as shutil reads it), else
    the stream's own terminal (stderr may be one while stdout is redirected), else
    shutil.get_terminal_size's answer (80 when nothing is known)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size().columns or 80


def format_duration(seconds: float) -> str:
    """'7s', '4m05s', '2h07m', '3d04h'; '?' for an unknown (infinite, NaN, negative) time and
    '>99d' beyond."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s < 100 * 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return ">99d"


def format_number(value: float) -> str:
    """At most 3 significant digits and a suffix: '0.0041', '7.5', '512', '9.87k', '1.23M';
    '?' for NaN or infinity."""
    if not math.isfinite(value):
        return "?"
    if value < 0:
        return "-" + format_number(-value)
    if value == 0:
        return "0"
    if value < 1:
        return f"{value:.2g}"
    scaled = value
    for suffix in ("", "k", "M", "G", "T"):
        # decided on the rounded value, so 999.7 is '1.00k' rather than '1000'
        steps = ((1, 10), (0, 1000)) if not suffix else ((2, 10), (1, 100), (0, 1000))
        for decimals, below in steps:
            if round(scaled, decimals) < below:
                return f"{scaled:.{decimals}f}{suffix}"
        scaled /= 1000
    return f"{value:.2e}".replace("e+", "e")       # (past 1e15: an exponent)


def kept(fields: list[tuple[int, str]], width: int) -> list[tuple[int, str]]:
    """The fields (priority, text), in their order, that fit in `width` columns joined by
    spaces: taken by priority, highest first, each one that still fits (the highest always)."""
    chosen: set[int] = set()
    for i in sorted(range(len(fields)), key=lambda i: -fields[i][0]):
        line = " ".join(t for j, (_, t) in enumerate(fields) if j in chosen or j == i)
        if not chosen or len(line) <= width:
            chosen.add(i)
    return [field for j, field in enumerate(fields) if j in chosen]


def fit(fields: list[tuple[int, str]], width: int) -> str:
    """The line of the fields that fit (`kept`); a field too wide on its own is cut."""
    return " ".join(t for _, t in kept(fields, width))[:max(width, 0)]


def _score_text(name: str, value: float) -> str:
    """`acc 0.8512`, or `psnr 27.31 dB`."""
    return f"{name} {value:.2f} dB" if name.endswith("psnr") else f"{name} {value:.4f}"


class Progress:
    """The display of one training run (cnngraph/train/runner.py drives it).

    `quiet=True` shows summary lines only, `quiet=False` a live bar even off a terminal; by
    default the bar shows where the stream is a terminal and CI is not set."""

    def __init__(self, quiet: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.live = (not quiet) if quiet is not None else not plain_output(self.stream)
        self.label, self.total, self.began, self.last = "", 0, 0.0, 0.0
        self.drawn = False       # a bar is on the line, to be cleared before other text

    def start(self, label: str, total: int) -> None:
        # (the first update always draws)
        self.label, self.total, self.began = label, total, time.perf_counter()
        self.last = -math.inf

    def update(self, done: int, loss: float, score: tuple[str, float], rate: float) -> None:
        """Redraw the bar (at most every REDRAW_EVERY seconds): steps done, the running loss,
        `score` (its name and value: accuracy, PSNR) and images/s."""
        self.advance(done, [(8, f"loss {loss:.4f}"), (4, _score_text(*score)),
                            (3, f"{format_number(rate)} img/s")])

    def advance(self, done: int, fields: list[tuple[int, str]]) -> None:
        """Redraw the bar with `fields` ((priority, text): the higher kept first where the
        line is short) after the step count."""
        now = time.perf_counter()
        if not self.live or (now - self.last < REDRAW_EVERY and done < self.total):
            return
        self.last = now
        eta = (self.total - done) * (now - self.began) / done if done else math.inf
        self._draw(self.bar_line(done, fields, eta, self._width()))

    def bar_line(self, done: int, fields: list[tuple[int, str]], eta: float,
                 width: int) -> str:
        """The bar's line, at most `width` characters. Kept by priority: the label (9), the
        step count (7), the ETA (6), the bar (5), then `fields` by theirs (a training bar's:
        the loss 8, the score 4, the rate 3); the bar takes the columns left over, up to 30,
        and goes when fewer than 6 are."""
        bar = (5, "[]")
        fields = [(9, self.label), bar, (7, f"{done}/{self.total}"), *fields,
                  (6, f"ETA {format_duration(eta)}")]
        shown = kept(fields, width)
        cells = min(30, width - len(" ".join(t for _, t in shown)))
        if bar not in shown or cells < 6:            # no room for a bar worth drawing
            return fit([f for f in fields if f is not bar], width)
        filled = int(cells * min(max(done, 0), self.total) / max(self.total, 1))
        drawn = f"[{'#' * filled}{'.' * (cells - filled)}]"
        return " ".join(drawn if f is bar else f[1] for f in shown)

    def finish(self, row: dict) -> None:
        score = "psnr" if "train_psnr" in row else "acc"
        parts = [f"{self.label}:", f"loss {row['train_loss']:.4f}",
                 _score_text(score, row[f"train_{score}"])]
        if "val_loss" in row:
            parts += [f" val_loss {row['val_loss']:.4f}",
                      _score_text(f"val_{score}", row[f"val_{score}"])]
        parts += [f" lr {row['lr']:.3g}", f" {row['seconds']:.1f}s",
                  f"({format_number(row['images_per_second'])} img/s)"]
        self._line(parts)

    def clear(self) -> None:
        """Take the bar off its line (where one was drawn), leaving nothing behind: what
        `eval` and `predict` show while they work."""
        if self.drawn:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.drawn = False

    def note(self, text: str) -> None:
        """A message on lines of its own (on a terminal, folded between words to the width)."""
        for line in text.split("\n"):
            self._line(line.split(" "))

    def compiling(self, estimate_seconds: float | None) -> None:
        """Say that the next step waits for kernels to compile (a cold kernel cache), and for
        about how long."""
        about = "" if estimate_seconds is None else f", ~{format_duration(estimate_seconds)}"
        self._line(f"compiling kernels (first run{about}) ...".split(" "))

    # -- output -------------------------------------------------------------------------------
    def _width(self) -> int:
        # one column short of the edge: some terminals wrap as soon as the last one is written
        return max(terminal_width(self.stream) - 1, 1)

    def _draw(self, text: str) -> None:
        self.stream.write(CLEAR + text)
        self.stream.flush()
        self.drawn = True

    def _line(self, pieces: list[str]) -> None:
        """Pieces joined by spaces as whole lines: on a terminal, after clearing the bar, folded
        onto lines indented by two that fit its width; elsewhere as one line."""
        text = " ".join(pieces)
        if self.live:
            text = "\n".join(fold(pieces, self._width()))
            if self.drawn:
                text = CLEAR + text
        self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()


def fold(pieces: list[str], width: int, indent: str = "  ") -> list[str]:
    """Pieces joined by spaces into lines of at most `width` characters, the later lines
    indented; a piece is never split unless it is longer than a line. (A piece's leading
    spaces widen the gap before it, and are dropped where it starts a line.)"""
    lines, line = [], ""
    for piece in filter(None, pieces):
        while True:
            joined = f"{line} {piece}" if line else piece.lstrip()
            room = width - (len(indent) if lines else 0)
            if len(joined) <= room:
                line = joined
                break
            if line:                              # the piece starts the next line
                lines.append(line)
                line = ""
                continue
            piece = piece.lstrip()
            lines.append(piece[:room])            # one piece wider than a line
            piece = piece[room:]
    if line or not lines:
        lines.append(line)
    return [lines[0]] + [indent + rest for rest in lines[1:]]
