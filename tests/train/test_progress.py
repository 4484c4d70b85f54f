"""The training display: a live bar that fits the terminal's width, plain lines elsewhere."""
import io
import json
import math
import re

import numpy as np
import pytest

from cnngraph.train import progress as progress_module
from cnngraph.train.progress import CLEAR, Progress, format_duration, format_number
from cnngraph.train.readers import load_dataset
from cnngraph.train.runner import evaluate, load_for_inference

from helpers import run

ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ROW = {"train_loss": 0.51234, "train_acc": 0.81234, "lr": 0.0123456, "seconds": 123.456,
       "images_per_second": 12345.6, "val_loss": 0.61234, "val_acc": 0.71234}


class FakeTerminal:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def screen_lines(self) -> list[str]:
        """What each write leaves on a line of the terminal: the text between carriage returns
        and newlines, escape codes removed (they take no columns)."""
        return [ESCAPE.sub("", part) for part in re.split(r"[\r\n]", self.text)]


@pytest.fixture(autouse=True)
def not_ci(monkeypatch):
    """The display decides from the stream and the environment; tests set what they need."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)


def train_epochs(stream, epochs=2, steps=500, label="epoch {}/{}", rate=1234.5, **kwargs):
    """What the runner does: a bar per epoch, redrawn every step, then the epoch's line. The
    clock is not relied on: every update is drawn (REDRAW_EVERY is 0 in these tests)."""
    display = Progress(stream=stream, **kwargs)
    for epoch in range(epochs):
        display.start(label.format(epoch + 1, epochs), steps)
        for step in range(1, steps + 1, 37):
            display.update(step, loss=2.3456 / step, score=("acc", step / steps), rate=rate)
        display.update(steps, loss=0.1, score=("acc", 0.99), rate=rate)
        display.finish(ROW)
    return display


@pytest.mark.parametrize("columns", [80, 40, 20])
@pytest.mark.parametrize("label", ["epoch {}/{}", "epoch {}/{} of a run named " + "x" * 90])
def test_no_line_on_a_terminal_is_wider_than_it(monkeypatch, columns, label):
    monkeypatch.setattr(progress_module, "REDRAW_EVERY", 0.0)
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = FakeTerminal(tty=True)
    display = train_epochs(stream, label=label, rate=1.5e12)
    display.compiling(12.3)
    display.start("epoch 3/3", 500)
    display.update(1, loss=1.0, score=("acc", 0.5), rate=10.0)
    display.note("\nCtrl-C: saving after the step in flight (Ctrl-C again to stop at once)")
    display.note("early stopping: val_acc has not improved for 5 epochs, and more words " * 3)
    lines = stream.screen_lines()
    assert max(len(line) for line in lines) < columns      # never into the last column
    assert "\r" in stream.text
    bars = [line for line in lines if "[" in line]
    if columns >= 80:   # the bar, counts and loss all fit in 80 columns with a short label
        assert any(re.search(r"\[#+\.*\] \d+/500 loss", line) for line in bars) == \
            (len(label) < 20)


def test_a_wide_terminal_shows_every_field(monkeypatch):
    monkeypatch.setattr(progress_module, "REDRAW_EVERY", 0.0)
    monkeypatch.setenv("COLUMNS", "200")
    stream = FakeTerminal(tty=True)
    display = Progress(stream=stream)
    display.start("epoch 1/3", 400)
    display.update(100, loss=0.5, score=("acc", 0.75), rate=2000.0)
    drawn = stream.screen_lines()[-1]
    assert re.fullmatch(r"epoch 1/3 \[#{7}\.{23}\] 100/400 loss 0\.5000 acc 0\.7500 "
                        r"2\.00k img/s ETA \S+", drawn), drawn


@pytest.mark.parametrize("tty, ci", [(False, None), (True, "true"), (True, "1"),
                                     (False, "true")])
def test_off_a_terminal_or_in_ci_there_is_one_plain_line_per_epoch(monkeypatch, tty, ci):
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("COLUMNS", "40")          # not a terminal's width: lines are whole
    stream = FakeTerminal(tty)
    display = train_epochs(stream, epochs=3)
    display.note("early stopping")
    assert "\r" not in stream.text and "\x1b" not in stream.text
    lines = stream.text.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert lines[3] == "early stopping" and len(lines) == 4 and stream.text.endswith("\n")
    assert lines[0] == ("epoch 1/3: loss 0.5123 acc 0.8123  val_loss 0.6123 val_acc 0.7123  "
                        "lr 0.0123  123.5s (12.3k img/s)")


def test_ci_false_keeps_the_bar_on_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "false")
    assert Progress(stream=FakeTerminal(True)).live
    monkeypatch.setenv("TERM", "dumb")              # a terminal without escape codes
    assert not Progress(stream=FakeTerminal(True)).live


def test_quiet_overrides_the_stream(monkeypatch):
    assert not Progress(quiet=True, stream=FakeTerminal(True)).live
    assert Progress(quiet=False, stream=FakeTerminal(False)).live


@pytest.mark.parametrize("live", [True, False])
def test_compiling_notice(live):
    stream = FakeTerminal(live)
    display = Progress(stream=stream)
    display.compiling(12.4)
    display.compiling(None)
    display.compiling(95)
    assert stream.text.splitlines() == ["compiling kernels (first run, ~12s) ...",
                                        "compiling kernels (first run) ...",
                                        "compiling kernels (first run, ~1m35s) ..."]


def test_a_notice_during_an_epoch_replaces_the_bar(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    stream = FakeTerminal(True)
    display = Progress(stream=stream)
    display.start("epoch 1/1", 10)
    display.update(1, loss=1.0, score=("acc", 0.1), rate=10.0)
    display.compiling(3)
    # the bar is erased first, so the notice does not land after the bar's text
    assert stream.text.endswith("\r\x1b[Kcompiling kernels (first run, ~3s) ...\n")


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.0004, "0s"), (7.4, "7s"), (59.6, "1m00s"), (245, "4m05s"), (3600, "1h00m"),
    (7620, "2h07m"), (3 * 86400 + 4 * 3600, "3d04h"), (1e9, ">99d"), (math.inf, "?"),
    (math.nan, "?"), (-1, "?")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("value, text", [
    (0, "0"), (0.004123, "0.0041"), (1e-12, "1e-12"), (7.46, "7.5"), (512.4, "512"),
    (999.7, "1.00k"), (9870, "9.87k"), (12345.6, "12.3k"), (999_999, "1.00M"),
    (1.234e6, "1.23M"), (5e12, "5.00T"), (3.2e18, "3.20e18"), (math.inf, "?"),
    (math.nan, "?"), (-2500, "-2.50k")])
def test_numbers(value, text):
    assert format_number(value) == text


def test_rates_and_etas_of_extreme_runs_still_fit(monkeypatch):
    """A first step that took an hour (rate near zero, ETA of years) and a huge step count."""
    monkeypatch.setenv("COLUMNS", "80")
    stream = FakeTerminal(True)
    display = Progress(stream=stream)
    display.start("epoch 1/1", 10**9)
    display.update(1, loss=float("nan"), score=("acc", 0.0), rate=1e-6)
    line = stream.screen_lines()[-1]
    assert len(line) < 80 and "loss nan" in line and "1/1000000000" in line


def test_summary_and_notes_fold_on_a_narrow_terminal_and_lose_nothing(monkeypatch):
    """Only the live bar drops fields; the epoch's summary line and notes are folded between
    fields or words onto indented lines that fit, and keep every word."""
    monkeypatch.setenv("COLUMNS", "40")
    stream = FakeTerminal(True)
    progress = Progress(stream=stream)
    progress.start("epoch 12/100", 10)
    progress.update(3, loss=0.5, score=("acc", 0.8), rate=1000.0)
    progress.finish({"train_loss": 0.5, "train_acc": 0.8, "lr": 0.1, "seconds": 1.0,
                     "images_per_second": 1000.0, "val_loss": 0.6, "val_acc": 0.7})
    note = "resuming from /a/rather/long/path/to/the/run/folder/last.npz (epoch 4, step 88)"
    progress.note(note)
    lines = [line for line in stream.screen_lines() if line][1:]      # after the bar
    assert all(len(line) <= 39 for line in lines), lines
    summary, folded_note = lines[:-3], lines[-3:]
    assert " ".join(line.strip() for line in summary).split() == (
        "epoch 12/100: loss 0.5000 acc 0.8000 val_loss 0.6000 val_acc 0.7000 lr 0.1 1.0s "
        "(1.00k img/s)").split()
    assert all(line.startswith("  ") for line in summary[1:] + folded_note[1:])
    assert folded_note == ["resuming from", "  /a/rather/long/path/to/the/run/folder",
                           "  /last.npz (epoch 4, step 88)"]


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_live_on_a_terminal_and_quiet_otherwise(tty, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")        # wide enough for the summary on one line
    stream = FakeTerminal(tty)
    progress = Progress(stream=stream)
    progress.start("epoch 1/2", 10)
    for step in range(1, 11):
        progress.update(step, loss=0.5, score=("acc", 0.8), rate=1000.0)
    progress.finish({"train_loss": 0.5, "train_acc": 0.8, "lr": 0.1, "seconds": 1.0,
                     "images_per_second": 1000.0, "val_loss": 0.6, "val_acc": 0.7})
    final = stream.text.split("\r")[-1].removeprefix("\x1b[K")
    assert final.startswith("epoch 1/2: loss 0.5000 acc 0.8000  val_loss 0.6000")
    assert ("ETA" in stream.text and "\r" in stream.text) == tty
    assert stream.text.count("\n") == 1                 # one line per epoch in the log


def test_eval_and_predict_show_a_bar_and_take_it_away(setup, tmp_path, cli):
    run(setup, tmp_path / "run", epochs=1)
    model, normalizer, _ = load_for_inference(setup[0], tmp_path / "run" / "best.npz")
    stream = io.StringIO()
    data = load_dataset(setup[2], "test")
    quiet = evaluate(model, data, normalizer, 4)
    shown = evaluate(model, data, normalizer, 4, progress=Progress(quiet=False, stream=stream))
    assert shown == quiet
    text = stream.getvalue()
    assert "eval [" in text and f"/{-(-len(data) // 4)}" in text and "acc " in text
    assert text.endswith(CLEAR)                          # nothing left behind
    images = np.random.default_rng(0).integers(0, 256, (600, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "x.npz", x=images)
    result = cli("predict", setup[3] / "spec.yaml", "--weights", tmp_path / "run" / "best.npz",
                 tmp_path / "x.npz", "--json")
    assert result.exit_code == 0
    first = [entry[0]["index"] for entry in json.loads(result.output)]
    logits = model.forward(normalizer(images.astype(np.float32)))   # one batch of 600
    assert first == logits.argmax(axis=1).tolist()       # batches of 256 give the same
