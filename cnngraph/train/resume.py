"""What a resumed run starts from: its settings, its data and its last checkpoint, checked
against the run being started (`cnngraph train --resume`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DataError
from . import checkpoint
from .config import TrainConfig, data_path
from .progress import Progress
from .rundir import RunFolder

# Settings that fix the data a run sees, the order it sees them in, and how its sums are cut
# (train.shards, train.reduction): a resumed run keeps them.
RUN_IDENTITY = ("seed", "batch_size", "val_split", "dtype", "normalize", "augment", "optimizer",
                "shards", "reduction")


def stored_settings(out: Path) -> dict | None:
    """The training settings of the run in `out` (its last checkpoint's), or None without one:
    `--resume` starts from these, so a run continues as it was started."""
    last = Path(out) / "last.npz"
    if not last.exists():
        return None
    config = checkpoint.load(last)[3]["config"]
    return {k: v for k, v in config.items() if v is not None}


def data_source(meta: dict, data_dir: str | None, config: TrainConfig,
                 folder: RunFolder) -> str:
    """The data a run trains on: `--data`, else a resumed run's, else the config's dataset. A
    resumed run keeps its data: another `--data` is refused."""
    if data_dir and meta.get("data") and os.path.abspath(data_path(data_dir)) != meta["data"]:
        raise DataError(f"{folder.last}: the run trains on {meta['data']}, not "
                        f"{data_path(data_dir)}; --resume keeps its data (leave out --data)")
    return data_dir or meta.get("data") or config.dataset


def resume_point(folder: RunFolder, spec_text: str, spec_params: dict, config: TrainConfig,
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
