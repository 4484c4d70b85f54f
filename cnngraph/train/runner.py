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

Data-parallel (a `world` of several workers, parallel.py): every worker runs this loop on its
shards of each batch, the gradients are summed between backward and optimiser step, and rank
0 alone writes the run folder.
"""
from __future__ import annotations

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
from .config import TrainConfig, data_path
from .evaluation import evaluate, load_for_inference, load_weights
from .inputs import validate_dataset
from .loader import Augment, Normalizer, Prefetch, batches, pixel_scale
from .metrics import target_peak, totals
from .optim import clip_grad_norm, optimizer_for
from .parallel import (
    EXACT_CHUNKS,
    Replicas,
    World,
    check_shards,
    compile_once,
    merge_states,
)
from .progress import Progress
from .readers import Dataset, load_dataset
from .resume import data_source, resume_point, stored_settings
from .rundir import RunFolder, open_run
from .runlog import Board, write_logs
from .schedule import Schedule

CHECKPOINT_SECONDS = 600.0     # the default: a mid-epoch checkpoint every 10 minutes


class TrainingError(CnngraphError):
    """Training cannot go on; the message says what is left on disk."""


class Diverged(TrainingError):
    """The loss became NaN or infinite; every worker of a data-parallel run sees the same
    global loss and stops at the same step (`agreed`)."""
    agreed = True


class Interrupted(CnngraphError):
    exit_code = 130
    agreed = True          # Ctrl-C is agreed by every worker before any stops (parallel.py)


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


def train(net: Network, spec_text: str, config: TrainConfig, out: Path, data_dir: str | None,
          resume: bool = False, quiet: bool | None = None, device: str = "cpu",
          overwrite: bool = False, checkpoint_every: int | None = None, layout: str | None = None,
          resize: tuple[int, int] | None = None, world: World | None = None) -> RunResult:
    """Train `net` per `config`, writing checkpoints and metrics to the run folder `out`.

    `resume` continues the run in `out` from its last checkpoint (or starts afresh when it has
    none yet); `overwrite` replaces a run there; without either, a folder that holds a run is
    refused untouched. `checkpoint_every` (steps) overrides `config.checkpoint_every`. `layout`
    ("nhwc" transposes channels-last arrays) and `resize` (H, W) apply to the data as it is
    read; the checkpoint records them with the data's path, for `eval` and `--resume`.
    `world`: the workers of a data-parallel run (parallel.py), each calling `train`; rank 0
    alone opens and writes the run folder."""
    world = world or World()
    with _open_run(world, Path(out), resume, overwrite) as folder:
        progress = Progress(quiet=quiet) if world.is_root else \
            Progress(quiet=True, stream=open(os.devnull, "w"))   # (rank 0 speaks for all)
        if folder.took_over:
            progress.note(f"{folder.path}: took over the lock of process {folder.took_over}, "
                          "which is no longer running")
        saved = world.bcast(resume_point(folder, spec_text, net.params, config, progress)
                            if resume and world.is_root else None, "the checkpoint to resume")
        meta = saved[3] if saved else {}
        source = data_source(meta, data_dir, config, folder)
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
                   every, world)
        if saved:
            run.restore(saved)
        elif config.init_from:
            from ..interchange.weights import initialise_from
            for line in initialise_from(run.model, Path(config.init_from),
                                        config.init_map).lines(config.init_from):
                progress.note(line)
        result = run.fit()
        if config.report and world.is_root:
            _write_report(folder.path, net, progress)
        return result


def _open_run(world: World, path: Path, resume: bool, overwrite: bool) -> RunFolder:
    """The run folder: checked and locked by rank 0 (rundir.open_run) while the other workers
    wait; theirs is the same path, unlocked, and they never write to it."""
    if world.is_root:
        folder = open_run(path, resume, overwrite)
    world.bcast(None, "rank 0 to open the run folder")
    return folder if world.is_root else RunFolder(path, -1, None)


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
                 checkpoint_every: int | None, world: World):
        self.net, self.spec_text, self.config, self.folder = net, spec_text, config, folder
        self.world = world
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
        self.board = Board(folder.path) if config.tensorboard and world.is_root else None
        self.teachers = distill.teachers(net, config, self.normalizer, device)   # checked first
        exact = config.reduction == "exact"
        self.shards = check_shards(world, config.shards, device, exact)
        local = self.shards // world.size if self.shards else 0
        self.model = compile_net(net, backend=device, dtype=config.dtype, seed=config.seed,
                                 chunks=EXACT_CHUNKS if exact else local or None,
                                 shards=local if exact else 0)
        compile_once(world, self.model)
        self.replicas = Replicas(world, self.model, self.shards or 1)
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
        """Write a checkpoint (rank 0; every worker calls this, as the epoch's metrics are
        gathered for it)."""
        meta = self.meta()
        if self.step and self.world.size > 1:   # the epoch so far, every worker's part of it
            meta["totals"] = merge_states(self.world.allgather(
                self.totals.state_dict(), "the metrics for a checkpoint"))
        if self.world.is_root:
            checkpoint.save(self.folder.path / name, self.model, self.optimizer, meta)
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
            if self.world.is_root:     # (the others' parts are in it: merged once)
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
                                  self.normalizer, rng, self.augment, start=self.step,
                                  shards=self.shards, worker=(self.world.rank,
                                                              self.world.size)))
        try:
            for (images, labels), coming in one_ahead(loader):
                if coming is not None:
                    model.stage(*coming)   # a GPU copies it while this step runs
                # Ctrl-C, and a checkpoint due by rank 0's clock: agreed by every worker
                batch = min(config.batch_size, len(self.train_set) - self.step *
                            config.batch_size)
                stop, due = self._train_step(images, labels, batch, (
                    ctrl_c.requested, not self.checkpoint_every and
                    time.perf_counter() - last_save >= CHECKPOINT_SECONDS))
                now = time.perf_counter()
                self.seconds = now - began
                self.progress.update(self.step, loss=self.totals.loss / self.totals.count,
                                     score=(self.totals.SCORE, self.totals.score),
                                     rate=self.totals.count / max(self.seconds, 1e-9))
                if stop or (self.world.size == 1 and ctrl_c.requested):   # (alone: at once)
                    self._interrupted()
                if self.step < self.steps_per_epoch and (due or self._steps_due()):
                    self.save()
                    last_save = time.perf_counter()
        finally:
            loader.close()

    def _train_step(self, images: np.ndarray, labels: np.ndarray, batch: int,
                    flags: tuple[bool, bool]) -> tuple[bool, bool]:
        """One optimiser step on a batch of `batch` samples at the schedule's rate, counted in
        `totals`: `images` and `labels` are this worker's shards of it, the gradients summed
        over the workers. Returns `flags` as true where any worker's is (rank 0's alone for
        the second: its clock decides)."""
        config, model, world = self.config, self.model, self.world
        self.optimizer.lr = self.schedule.lr(self.epoch, self.step, self.steps_per_epoch)
        lo, hi = self.replicas.bounds(batch)
        local = 0.0
        if hi > lo:
            teacher = {name: t(images) for name, t in self.teachers.items()} or None
            local = model.loss_and_grad(
                images, labels, config.label_smoothing, teacher=teacher, batch=batch, first=lo,
                ready=self.replicas.begin(), reduce=False,
                shards=self.replicas.local_shards(batch) if model.shards else None)
        loss, flags = self.replicas.reduce(local, batch, (flags[0], flags[1] and world.is_root))
        if not math.isfinite(loss):
            raise Diverged(
                f"the loss became {loss} at epoch {self.epoch + 1}, step {self.step + 1}; "
                f"stopping. Last good checkpoint: {self._last_description()}. Lower the "
                "learning rate or set train.clip_grad_norm.")
        if config.clip_grad_norm:
            clip_grad_norm(model, config.clip_grad_norm)
        self.optimizer.step()
        self.step += 1
        if hi > lo:     # (this worker's samples' mean loss)
            self.totals.add(model.last_logits, labels, local * batch / (hi - lo))
        return flags[0], flags[1]

    def _steps_due(self) -> bool:
        """Whether `checkpoint_every` steps have passed since the last checkpoint."""
        return bool(self.checkpoint_every) and \
            (self.epoch * self.steps_per_epoch + self.step) % self.checkpoint_every == 0

    def _end_epoch(self) -> None:
        if self.world.size > 1:     # every worker's samples
            self.totals.load_state_dict(merge_states(self.world.allgather(
                self.totals.state_dict(), "the epoch's training metrics")))
        result = self.totals.result()
        score = self.totals.SCORE
        row = {"epoch": self.epoch + 1, "lr": self.optimizer.lr, "train_loss": result["loss"],
               f"train_{score}": result[score], "seconds": self.seconds,
               "images_per_second": result["count"] / max(self.seconds, 1e-9)}
        if self.val_set is not None:
            val = evaluate(self.model, self.val_set, self.normalizer, self.config.batch_size,
                           peak=self.peak, world=self.world)
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
        if not self.world.is_root:
            return
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


__all__ = ["train", "evaluate", "load_for_inference", "load_weights", "TrainingError", "data_path",
           "stored_settings", "Interrupted"]
