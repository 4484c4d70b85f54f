"""Checkpoints: one `.npz` archive (no pickle), written atomically.

Arrays: `params/<name>`, `buffers/<name>`, `optim/<slot>`. `meta` is a JSON document: format,
the position in the run (epoch, and steps done in it), the model's dropout step counter, the
optimiser's step count, the schedule's state, the epoch's running metrics, the best metric so
far, the metric history, the normaliser, the data the run trains on, class names, the training
settings and the spec's text, so a checkpoint can be evaluated, resumed and audited on its own.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over
the old one, so a process killed at any moment leaves the previous checkpoint or the new one,
never a torn file. A failed write (disk full, file-size limit) removes the temporary file and
leaves the previous checkpoint as it was.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import CnngraphError, DataError

FORMAT = "cnngraph-checkpoint/1"
REQUIRED_META = ("epoch", "model_steps", "normalizer", "config", "spec")


class CheckpointWriteError(CnngraphError):
    """A checkpoint could not be written; the previous one is intact."""


def save(path: Path, model, optimizer, meta: dict) -> None:
    write(path, model.host_params(), model.host_buffers(),
          optimizer.state_dict() if optimizer is not None else {}, meta)


def weights_meta(net, normalizer: dict | None = None, **extra) -> dict:
    """The metadata of a checkpoint of weights alone (imported, or `Model.save_weights`), which
    `eval`, `predict` and `--weights` take: the spec's settings and text, and an identity
    normaliser unless one is given (the network takes its input as it comes)."""
    from .config import resolve
    channels = net.input_shape[0]
    return {"epoch": 0, "model_steps": 0,
            "normalizer": normalizer or {"mean": [0.0] * channels, "std": [1.0] * channels,
                                         "scale": 1.0},
            "config": resolve(net.train).as_dict(),
            "spec": Path(net.file).read_text() if Path(net.file).is_file() else "",
            "spec_params": net.params, **extra}


def write(path: Path, params: dict, buffers: dict, optim: dict, meta: dict) -> None:
    """The checkpoint of these arrays and metadata, written atomically."""
    arrays = {f"params/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"buffers/{k}": np.asarray(v) for k, v in buffers.items()})
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in optim.items()})
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta}))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        kept = f"the previous {path.name} is intact" if path.exists() else \
            "no earlier checkpoint exists"
        raise CheckpointWriteError(f"{path}: could not write the checkpoint ({exc.strerror or exc})"
                                   f"; {kept}. Free some space (or raise the file-size limit) "
                                   "and continue with --resume") from None


def load(path: Path) -> tuple[dict, dict, dict, dict]:
    """(params, buffers, optimiser state, meta); DataError for anything that is not a whole
    cnngraph checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not a cnngraph checkpoint (not a regular file)")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            if "meta" not in data.files:
                raise ValueError("no `meta` record")
            meta = json.loads(str(data["meta"]))
            groups = {"params": {}, "buffers": {}, "optim": {}}
            for key in data.files:
                group, _, name = key.partition("/")
                if group in groups:
                    groups[group][name] = data[key]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in reason:       # NumPy's advice to unpickle an unknown file: never
            reason = "not an .npz archive"
        raise DataError(f"{path}: not a cnngraph checkpoint ({reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DataError(f"{path}: not a cnngraph checkpoint (format {found!r}, expected "
                        f"{FORMAT!r})")
    missing = [key for key in REQUIRED_META if key not in meta]
    norm = meta.get("normalizer")
    if not missing and not (isinstance(norm, dict) and {"mean", "std", "scale"} <= set(norm)
                            and isinstance(meta["config"], dict)):
        missing = ["a whole normalizer and settings"]
    if missing:
        raise DataError(f"{path}: not a cnngraph checkpoint (its metadata lacks "
                        f"{', '.join(missing)})")
    return groups["params"], groups["buffers"], groups["optim"], meta


def spec_params_of(path: Path) -> dict:
    """The spec parameters (top-level `params:`) a checkpoint was trained with; {} where it
    records none or cannot be read (`load` then says what is wrong with it)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile):
        return {}
    params = meta.get("spec_params") if isinstance(meta, dict) else None
    return params if isinstance(params, dict) else {}


def check_fits(shapes: dict, arrays: dict, kind: str, path: Path) -> None:
    """DataError unless `arrays` holds every tensor of `shapes` (name -> shape), as shaped."""
    missing = sorted(set(shapes) - set(arrays))
    if missing:
        raise DataError(f"{path}: no {kind} {missing[0]} (the checkpoint is of another "
                        "network)")
    for name, shape in shapes.items():
        if arrays[name].shape != tuple(shape):
            raise DataError(f"{path}: {kind} {name} has shape {arrays[name].shape}, the "
                            f"network expects {tuple(shape)}")


def restore(model, params: dict, buffers: dict, path: Path) -> None:
    """Copy checkpoint arrays into a compiled model, checking names and shapes."""
    for target, source, kind in ((model.params, params, "parameter"),
                                 (model.buffers, buffers, "buffer")):
        check_fits({name: value.shape for name, value in target.items()}, source, kind, path)
        for name, value in target.items():
            model.backend.from_host(source[name], value)


def saved_normalizer(path: Path) -> dict | None:
    """The input statistics ({mean, std, scale}) the weights of a cnngraph checkpoint were
    trained with; None for other files (a plain .npz of tensors, safetensors, ONNX)."""
    if Path(path).suffix != ".npz":
        return None
    try:
        return load(Path(path))[3].get("normalizer")
    except DataError:
        return None
