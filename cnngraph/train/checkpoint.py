"""Checkpoints: one `.npz` archive (no pickle), written atomically.

Arrays: `params/<name>`, `buffers/<name>`, `optim/<slot>`. `meta` is a JSON document: format,
epoch, the model's dropout step counter, the optimiser's step count, the schedule's state, the
best metric so far, the metric history, the normaliser, class names, the training settings and
the spec's text, so a checkpoint can be evaluated, resumed and audited on its own.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

FORMAT = "cnngraph-checkpoint/1"


def save(path: Path, model, optimizer, meta: dict) -> None:
    arrays = {f"params/{k}": np.asarray(v) for k, v in model.host_params().items()}
    arrays.update({f"buffers/{k}": np.asarray(v) for k, v in model.host_buffers().items()})
    if optimizer is not None:
        arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta}))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> tuple[dict, dict, dict, dict]:
    """(params, buffers, optimiser state, meta)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            groups = {"params": {}, "buffers": {}, "optim": {}}
            for key in data.files:
                group, _, name = key.partition("/")
                if group in groups:
                    groups[group][name] = data[key]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{path}: not a cnngraph checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return groups["params"], groups["buffers"], groups["optim"], meta


def restore(model, params: dict, buffers: dict, path: Path) -> None:
    """Copy checkpoint arrays into a compiled model, checking names and shapes."""
    for target, source, kind in ((model.params, params, "parameter"),
                                 (model.buffers, buffers, "buffer")):
        missing = sorted(set(target) - set(source))
        if missing:
            raise DataError(f"{path}: no {kind} {missing[0]} (the checkpoint is of another "
                            "network)")
        for name, value in target.items():
            if source[name].shape != value.shape:
                raise DataError(f"{path}: {kind} {name} has shape {source[name].shape}, the "
                                f"network expects {value.shape}")
            model.backend.from_host(source[name], value)
