"""The training loop behind `cnngraph train`, and evaluation behind `cnngraph eval`.

Every epoch: shuffled, augmented batches prepared one ahead in a background thread; the rate
from the schedule; forward, loss, backward, clipping and the optimiser step; then validation,
`best.npz` when the validation metric improves, `last.npz`, and the metrics log
(`metrics.jsonl`, `metrics.csv`, `curves.png`: runlog.py) rewritten from the history the
checkpoint holds.

A run cannot be lost. The run folder is locked and never clobbered (see rundir.py). `last.npz`
is also written every `checkpoint_every` steps (default: every 10 minutes) with the position in
the epoch; the epoch's shuffle comes from a generator seeded by (seed, epoch) and each batch's
augmentation from one spawned from it, so a run killed at any moment and resumed from its last
checkpoint reaches bitwise the same weights as an uninterrupted one. Ctrl-C finishes the step
in flight and writes `last.npz` (a second Ctrl-C stops at once). A NaN or infinite loss stops
training with a clear message and leaves the last good checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import compile as compile_net
from ..errors import CnngraphError, DataError
from ..ir import Network
from ..ops import REGISTRY
from . import checkpoint, distill, finetune
from .config import DATASETS, TrainConfig
from .evaluation import evaluate, load_for_inference, load_weights
from .inputs import validate_dataset
from .loader import Augment, Normalizer, Prefetch, batches, pixel_scale
from .metrics import target_peak, totals
from .optim import clip_grad_norm, optimizer_for
from .progress import Progress
from .readers import Dataset, load_dataset
from .rundir import RunFolder, open_run
from .runlog import Board, write_logs
from .schedule import Schedule

CHECKPOINT_SECONDS = 600.0     # the default: a mid-epoch checkpoint every 10 minutes
# Settings that fix the data a run sees and the order it sees them in: a resumed run keeps them.
RUN_IDENTITY = ("seed", "batch_size", "val_split", "dtype", "normalize", "augment", "optimizer")


class TrainingError(CnngraphError):
    """Training cannot go on (a diverged loss); the message says what is left on disk."""


class Interrupted(CnngraphError):
    exit_code = 130


def data_path(name_or_path: str) -> str:
    return DATASETS.get(name_or_path, name_or_path)


def check_dataset(data: Dataset, net: Network) -> None:
    validate_dataset(data, net.input_shape, net.output_shape, net.outputs[0].loss)


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


def stored_settings(out: Path) -> dict | None:
    """The training settings of the run in `out` (its last checkpoint's), or None without one:
    `--resume` starts from these, so a run continues as it was started."""
    last = Path(out) / "last.npz"
    if not last.exists():
        return None
    config = checkpoint.load(last)[3]["config"]
    return {k: v for k, v in config.items() if v is not None}


def train(net: Network, spec_text: str, config: TrainConfig, out: Path, data_dir: str | None,
          resume: bool = False, quiet: bool | None = None, device: str = "cpu",
          overwrite: bool = False, checkpoint_every: int | None = None, layout: str | None = None,
          resize: tuple[int, int] | None = None) -> RunResult:
    """Train `net` per `config`, writing checkpoints and metrics to the run folder `out`.

    `resume` continues the run in `out` from its last checkpoint (or starts afresh when it has
    none yet); `overwrite` replaces a run there; without either, a folder that holds a run is
    refused untouched. `checkpoint_every` (steps) overrides `config.checkpoint_every`. `layout`
    ("nhwc" transposes channels-last arrays) and `resize` (H, W) apply to the data as it is
    read; the checkpoint records them with the data's path, for `eval` and `--resume`."""
    with open_run(Path(out), resume, overwrite) as folder:
        progress = Progress(quiet=quiet)
        if folder.took_over:
            progress.note(f"{folder.path}: took over the lock of process {folder.took_over}, "
                          "which is no longer running")
        saved = _resume_point(folder, spec_text, net.params, config, progress) if resume \
            else None
        meta = saved[3] if saved else {}
        source = _data_source(meta, data_dir, config, folder)
        options = meta.get("data_options", {})
        options = {"layout": layout or options.get("layout", "nchw"),
                   "resize": resize or options.get("resize")}
        every = checkpoint_every or config.checkpoint_every
        progress.note(f"training {net.name} on {data_path(source)} for {config.epochs} epochs "
                      f"({config.optimizer}, lr {config.lr:g}, batch {config.batch_size}) -> "
                      f"{folder.path}")
        net, lines = finetune.prepare(net, config)
        net = distill.prepare(net, config)
        for line in lines:
            progress.note(line)
        run = _Run(net, spec_text, config, folder, data_path(source), options, device, progress,
                   every)
        if saved:
            run.restore(saved)
        elif config.init_from:
            from ..interchange.weights import initialise_from
            for line in initialise_from(run.model, Path(config.init_from),
                                        config.init_map).lines(config.init_from):
                progress.note(line)
        result = run.fit()
        if config.report:
            _write_report(folder.path, net, progress)
        return result


def _data_source(meta: dict, data_dir: str | None, config: TrainConfig,
                 folder: RunFolder) -> str:
    """The data a run trains on: `--data`, else a resumed run's, else the config's dataset. A
    resumed run keeps its data: another `--data` is refused."""
    if data_dir and meta.get("data") and os.path.abspath(data_path(data_dir)) != meta["data"]:
        raise DataError(f"{folder.last}: the run trains on {meta['data']}, not "
                        f"{data_path(data_dir)}; --resume keeps its data (leave out --data)")
    return data_dir or meta.get("data") or config.dataset


def _resume_point(folder: RunFolder, spec_text: str, spec_params: dict, config: TrainConfig,
                  progress: Progress):
    """The checkpoint to resume from, checked against this run; None (start afresh) when the
    folder has none yet, e.g. when the first run was stopped while compiling."""
    last = folder.last
    if not last.exists():
        progress.note(f"{folder.path}: no checkpoint yet; starting afresh")
        return None
    saved = checkpoint.load(last)
    meta = saved[3]
    if meta["spec"] != spec_text:
        raise DataError(f"{last}: the checkpoint was made with a different spec; train the "
                        "edited spec into another --out (or --overwrite this run)")
    if meta.get("spec_params", {}) != json.loads(json.dumps(spec_params)):
        raise DataError(f"{last}: the run was started with the spec parameters "
                        f"{meta.get('spec_params', {})}, received {spec_params}; --resume keeps "
                        "them (pass the same --param values, or train into another --out)")
    for key in RUN_IDENTITY:
        was, now = meta["config"].get(key), config.as_dict()[key]
        if json.loads(json.dumps(now)) != was:
            raise DataError(f"{last}: the run was started with {key} {was!r}, received "
                            f"{now!r}; --resume keeps the settings that decide what data the run "
                            "sees (drop the override, or train into another --out)")
    return saved


class _CtrlC:
    """Ctrl-C as a request: the step in flight finishes, then the run writes its checkpoint and
    stops (a step cut in half would leave the weights half-updated). A second Ctrl-C stops at
    once."""

    def __init__(self, progress: Progress):
        self.progress, self.requested, self._previous = progress, False, None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)
        self.progress.note("\nCtrl-C: saving after the step in flight (Ctrl-C again to stop "
                           "at once, losing the steps since the last checkpoint)")

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Run:
    """One training run's state: what a checkpoint holds, and the loop that advances it."""

    def __init__(self, net: Network, spec_text: str, config: TrainConfig, folder: RunFolder,
                 source: str, data_options: dict, device: str, progress: Progress,
                 checkpoint_every: int | None):
        self.net, self.spec_text, self.config, self.folder = net, spec_text, config, folder
        self.progress, self.checkpoint_every = progress, checkpoint_every
        self.source, self.data_options = os.path.abspath(source), data_options
        resize = data_options["resize"]
        data = load_dataset(source, "train", data_options["layout"],
                            tuple(resize) if resize else None)
        for note in data.notes:
            progress.note(note)
        check_dataset(data, net)
        self.classes = data.classes
        self.train_set, self.val_set = split(data, config.val_split, config.seed)
        self.normalizer = _normalizer(config, data, self.train_set, progress)
        self.augment = Augment(**config.augment)
        self.peak = target_peak(self.train_set.y) if data.regression else None
        if self.peak is not None and self.augment.active:
            raise DataError(f"{data.source}: augmentation moves the images but not their array "
                            "targets; leave `train.augment` out for regression")
        self.board = Board(folder.path) if config.tensorboard else None
        self.teachers = distill.teachers(net, config, self.normalizer, device)   # checked first
        self.model = compile_net(net, backend=device, dtype=config.dtype, seed=config.seed,
                                 chunks=config.shards)
        self.optimizer = optimizer_for(self.model, config)
        self.schedule = make_schedule(config)
        self.stop_metric = (config.early_stopping or {}).get(
            "metric", "val_loss" if data.regression else "val_acc")
        self.history, self.best, self.bad_epochs, self.stopped_early = [], {}, 0, False
        self.epoch, self.step = 0, 0            # the epoch in progress and its steps done
        self.totals = totals(net.outputs[0].loss, net.output_shape[0], self.peak)
        self.seconds = 0.0                      # spent in this epoch's steps before a resume
        self.last_saved: str | None = None      # where the run was when last.npz was written
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        if device == "cpu":
            _compile_notice(net, progress)

    # -- checkpoints ---------------------------------------------------------------------------
    def meta(self) -> dict:
        return {"epoch": self.epoch - 1, "position": {"epoch": self.epoch, "step": self.step},
                "totals": self.totals.state_dict(), "seconds": self.seconds,
                "model_steps": self.model.steps, "schedule": self.schedule.state_dict(),
                "best": self.best, "history": self.history, "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early,
                "normalizer": {"mean": self.normalizer.mean, "std": self.normalizer.std,
                               "scale": self.normalizer.scale},
                "data": self.source, "data_options": self.data_options, "classes": self.classes,
                "target_peak": self.peak,
                "config": self.config.as_dict(),
                "spec": self.spec_text, "spec_file": os.path.abspath(self.net.file),
                "spec_params": self.net.params}

    def save(self, name: str = "last.npz") -> None:
        checkpoint.save(self.folder.path / name, self.model, self.optimizer, self.meta())
        if name == "last.npz":
            self.last_saved = self._position_text()

    def restore(self, saved) -> None:
        params, buffers, optim_state, meta = saved
        last = self.folder.last
        checkpoint.restore(self.model, params, buffers, last)
        missing = set(self.optimizer.slots) - set(optim_state)
        if missing:
            raise DataError(f"{last}: no optimiser state {sorted(missing)[0]} (the checkpoint "
                            f"is not of a {self.config.optimizer} run)")
        self.optimizer.load_state_dict(optim_state)
        self.schedule.load_state_dict(meta["schedule"])
        self.model.steps = meta["model_steps"]
        self.history, self.best = meta["history"], meta["best"]
        self.bad_epochs, self.stopped_early = meta["bad_epochs"], meta.get("stopped_early", False)
        position = meta.get("position", {"epoch": meta["epoch"] + 1, "step": 0})
        self.epoch, self.step = position["epoch"], position["step"]
        if self.step:
            self.totals.load_state_dict(meta["totals"])
            self.seconds = meta["seconds"]
        self.last_saved = self._position_text()
        self._write_logs()            # the logs as of this checkpoint: no row twice
        where = f"epoch {self.epoch + 1}, step {self.step}" if self.step else \
            f"the end of epoch {self.epoch}"
        self.progress.note(f"resuming from {last} ({where})")

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> RunResult:
        config = self.config
        if self.stopped_early or self.epoch >= config.epochs:
            self.progress.note(f"{self.folder.path}: the run has already "
                               + ("stopped early" if self.stopped_early else
                                  f"done its {self.epoch} epochs; give a larger --epochs to go on"))
        with _CtrlC(self.progress) as ctrl_c:
            while self.epoch < config.epochs and not self.stopped_early:
                self._train_epoch(ctrl_c)
                self._end_epoch()
                if ctrl_c.requested:
                    self._interrupted()
        return RunResult(len(self.history), self.best, self.history, self.folder.path,
                         self.stopped_early)

    def _train_epoch(self, ctrl_c: _CtrlC) -> None:
        config, model, epoch = self.config, self.model, self.epoch
        rng = np.random.default_rng([config.seed, epoch])
        began = time.perf_counter() - self.seconds
        last_save = time.perf_counter()
        self.progress.start(f"epoch {epoch + 1}/{config.epochs}", self.steps_per_epoch)
        loader = Prefetch(batches(self.train_set.x, self.train_set.y, config.batch_size,
                                  self.normalizer, rng, self.augment, start=self.step))
        try:
            for (images, labels), coming in one_ahead(loader):
                if coming is not None:
                    model.stage(*coming)   # a GPU copies it while this step runs
                self._train_step(images, labels)
                now = time.perf_counter()
                self.seconds = now - began
                self.progress.update(self.step, loss=self.totals.loss / self.totals.count,
                                     score=(self.totals.SCORE, self.totals.score),
                                     rate=self.totals.count / max(self.seconds, 1e-9))
                if ctrl_c.requested:
                    self._interrupted()
                if self.step < self.steps_per_epoch and self._checkpoint_due(now - last_save):
                    self.save()
                    last_save = time.perf_counter()
        finally:
            loader.close()

    def _train_step(self, images: np.ndarray, labels: np.ndarray) -> None:
        """One optimiser step on a batch at the schedule's rate, counted in `totals`."""
        config, model = self.config, self.model
        self.optimizer.lr = self.schedule.lr(self.epoch, self.step, self.steps_per_epoch)
        teacher = {name: t(images) for name, t in self.teachers.items()} or None
        loss = model.loss_and_grad(images, labels, config.label_smoothing, teacher=teacher)
        if not math.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss} at epoch {self.epoch + 1}, step {self.step + 1}; "
                f"stopping. Last good checkpoint: {self._last_description()}. Lower the "
                "learning rate or set train.clip_grad_norm.")
        if config.clip_grad_norm:
            clip_grad_norm(model, config.clip_grad_norm)
        self.optimizer.step()
        self.step += 1
        self.totals.add(model.last_logits, labels, loss)

    def _checkpoint_due(self, since_last: float) -> bool:
        if self.checkpoint_every:
            return (self.epoch * self.steps_per_epoch + self.step) % self.checkpoint_every == 0
        return since_last >= CHECKPOINT_SECONDS

    def _end_epoch(self) -> None:
        result = self.totals.result()
        score = self.totals.SCORE
        row = {"epoch": self.epoch + 1, "lr": self.optimizer.lr, "train_loss": result["loss"],
               f"train_{score}": result[score], "seconds": self.seconds,
               "images_per_second": result["count"] / max(self.seconds, 1e-9)}
        if self.val_set is not None:
            val = evaluate(self.model, self.val_set, self.normalizer, self.config.batch_size,
                           peak=self.peak)
            row.update({f"val_{key}": val[key] for key in ("loss", "acc", "mse", "mae", "psnr")
                        if key in val})
            self.schedule.end_epoch(val["loss"])
        self.history.append(row)
        if self.board:
            self.board.add(row)
        self.progress.finish(row)
        improved = _improved(row, self.best, self.stop_metric)
        if improved:
            self.best, self.bad_epochs = dict(row), 0
        else:
            self.bad_epochs += 1
        patience = (self.config.early_stopping or {}).get("patience")
        self.stopped_early = bool(patience and self.bad_epochs >= patience)
        self.epoch, self.step, self.seconds = self.epoch + 1, 0, 0.0
        self.totals = totals(self.net.outputs[0].loss, self.net.output_shape[0], self.peak)
        # best.npz before last.npz: killed between the two, the resumed run redoes this epoch
        # and writes best.npz again, with the same weights.
        if improved:
            self.save("best.npz")
        self.save()
        self._write_logs()
        if self.stopped_early:
            self.progress.note(f"early stopping: {self.stop_metric} has not improved for "
                               f"{patience} epochs")

    def _interrupted(self) -> None:
        if self.step:                 # at an epoch's end, last.npz was just written
            self.save()
        last = self.folder.last.resolve()
        raise Interrupted(f"interrupted; saved {last} ({self._position_text()}); continue with "
                          f"`cnngraph train ... --out {self.folder.path} --resume`")

    def _position_text(self) -> str:
        if self.step:
            return f"epoch {self.epoch + 1}, step {self.step} of {self.steps_per_epoch}"
        return f"after epoch {self.epoch}"

    def _last_description(self) -> str:
        if self.last_saved is None:
            return "none was written yet"
        return f"{self.folder.last} ({self.last_saved})"

    def _write_logs(self) -> None:
        try:
            write_logs(self.folder.path, self.history)
        except OSError as exc:
            raise TrainingError(f"{self.folder.path}: could not write the metrics "
                                f"({exc.strerror or exc}); the checkpoints are intact: "
                                f"{self._last_description()}. Free some space and continue "
                                "with --resume") from None


def _normalizer(config: TrainConfig, data: Dataset, train_set: Dataset,
                progress: Progress) -> Normalizer:
    """The run's input statistics: the settings', those of the checkpoint `init_from` starts
    from (its weights expect them, as ImageNet's mean and std go with torchvision's weights),
    or the training split's."""
    scale = pixel_scale(data.x)
    if isinstance(config.normalize, dict):
        return Normalizer(tuple(config.normalize["mean"]), tuple(config.normalize["std"]), scale)
    saved = checkpoint.saved_normalizer(Path(config.init_from)) if config.init_from else None
    if config.normalize and saved and len(saved["mean"]) == data.x.shape[1]:
        progress.note(f"inputs normalised with {config.init_from}'s statistics, which its "
                      "weights expect (set train.normalize to choose others)")
        return Normalizer(tuple(saved["mean"]), tuple(saved["std"]), scale)
    if config.normalize:
        return Normalizer.fit(train_set.x, scale)
    return Normalizer((0.0,) * data.x.shape[1], (1.0,) * data.x.shape[1], scale)


def _write_report(folder: Path, net: Network, progress: Progress) -> None:
    """report.html beside the checkpoints (train/report.py); a report that cannot be made is
    said, not fatal: the run itself is complete."""
    from .report import write_report
    try:
        progress.note(f"report: {write_report(folder, net=net)}")
    except (CnngraphError, OSError) as error:
        progress.note(f"no report.html: {error}")


def _compile_notice(net: Network, progress: Progress) -> None:
    """Say so before the first step compiles its kernels (seconds to a minute on a cold cache).
    The seconds per layer are cold compiles measured here (bench/results/runtime.md), shared
    between two cores by the compile helper."""
    from ..runtime.warm import cache_is_cold
    if not cache_is_cold():
        return
    work = sum(2.5 if REGISTRY[node.op].backward_compiles_slowly else 0.6 for node in net.nodes)
    estimate = work / (2 if (os.cpu_count() or 1) > 1 else 1) + 3
    progress.compiling(estimate)


def _improved(row: dict, best: dict, metric: str) -> bool:
    key = metric if metric in row else "train_loss"
    if not best:
        return True
    return row[key] > best[key] if key.endswith(("acc", "psnr")) else row[key] < best[key]


__all__ = ["train", "evaluate", "load_for_inference", "load_weights", "TrainingError",
           "Interrupted"]
