"""Data against a network: `validate_dataset` checks a split before training or evaluation
starts, and `load_prediction_inputs` turns image files and `.npz` arrays into a batch in the
units of the training data (its normaliser's scale), saying what it converted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .readers import Dataset, class_labels, dims_text, read_image, read_npz


def _shape_problem(shape: tuple, expected: tuple) -> str:
    """`images are AxBxC, the spec expects ...` with the likely fix."""
    text = f"images are {dims_text(shape)}, the spec expects {dims_text(expected)}"
    if len(shape) == 3 and tuple(shape) == tuple(expected[1:]) + tuple(expected[:1]):
        return (text + " (the data looks channels-last, (N, H, W, C)); pass --layout nhwc to "
                "transpose it")
    if sorted(shape) == sorted(expected):
        return (text + " (the same sizes in another order); save x with its axes as (N, C, H, W)"
                " or, for (N, H, W, C), pass --layout nhwc")
    if len(shape) == 3 and shape[0] == expected[0]:
        return text + "; pass --resize H,W to resize the images, or change the spec's `input`"
    return text + "; convert the data or change the spec's `input`"


def validate_dataset(data: Dataset, input_shape: tuple, output_shape: tuple,
                     loss: str = "cross_entropy") -> None:
    """Check, before training or evaluation starts, that `data` fits a network that takes
    `input_shape` (C, H, W) images and whose output of `output_shape` trains with `loss`: some
    images, as many labels as images, the image shape (with a hint when the data is
    channels-last), finite pixels, and labels that are whole class indices in [0, classes) or,
    for array targets, targets of the output's shape and a regression loss. Raises DataError
    naming the source."""
    x, y, source = np.asarray(data.x), np.asarray(data.y), data.source
    if len(x) == 0 or len(y) == 0:
        raise DataError(f"{source}: no images ({len(x):,} images, {len(y):,} labels)")
    if len(x) != len(y):
        raise DataError(f"{source}: {len(x):,} images but {len(y):,} labels")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"{source}: {_shape_problem(tuple(x.shape[1:]), tuple(input_shape))}")
    if x.dtype.kind == "f" and not (np.isfinite(x.min()) and np.isfinite(x.max())):
        raise DataError(f"{source}: the images hold NaN or infinite values")
    if data.regression:
        _check_targets(y, source, tuple(output_shape), loss)
        return
    classes = int(np.prod(output_shape))
    labels = class_labels(y, source)
    outside = labels >= classes
    if outside.any():
        i = int(np.argmax(outside))
        raise DataError(f"{source}: label {labels[i]} does not fit the network's {classes} "
                        f"outputs ({int(outside.sum()):,} labels are outside [0, {classes}), the "
                        f"first at index {i}); check the data or the last layer's `out`")


def _check_targets(y: np.ndarray, source: str, shape: tuple, loss: str) -> None:
    if tuple(y.shape[1:]) != shape and int(np.prod(y.shape[1:])) != int(np.prod(shape)):
        raise DataError(f"{source}: the targets are {dims_text(y.shape[1:])} per sample, the "
                        f"network's output is {dims_text(shape)}; they must match (or hold as "
                        "many values)")
    if loss not in ("mse", "l1"):
        raise DataError(f"{source}: array targets (regression) train with `train.loss: mse` or "
                        f"`l1`; the output trains with {loss}")


def _units(scale: float) -> str:
    return {255.0: "0-255", 1.0: "[0, 1]"}.get(float(scale), f"0-{scale:g}")


def _source_scale(x: np.ndarray, name: str) -> tuple[float, str]:
    """The scale of an array's pixels (255 or 1) read from its dtype and, for floats, its range;
    and words saying how it was told."""
    if x.dtype == np.uint8:
        return 255.0, "uint8 pixels 0-255"
    if x.dtype.kind in "iu":
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise DataError(f"{name}: {x.dtype} pixels from {low} to {high}; expected pixels "
                            "0-255 or floats in [0, 1]")
        return 255.0, f"{x.dtype} pixels 0-255"
    if x.dtype.kind != "f":
        raise DataError(f"{name}: expected uint8 or float images, received {x.dtype}")
    low, high = float(x.min()), float(x.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(f"{name}: the images hold NaN or infinite values")
    if low < 0 or high > 255:
        raise DataError(f"{name}: values from {low:g} to {high:g} are neither pixels 0-255 nor "
                        "in [0, 1] (standardised already?); save the images unnormalised")
    if high <= 1:
        return 1.0, "float values in [0, 1]"
    return 255.0, f"float values up to {high:g}, taken as pixels 0-255"


def _as_batch(x: np.ndarray, input_shape: tuple, name: str) -> tuple[np.ndarray, str]:
    """An .npz `x` as (N, C, H, W), and words on a transposition when one was needed."""
    c, h, w = input_shape
    shape = tuple(x.shape)
    if len(shape) == 4 and shape[1:] == (c, h, w):
        return x, ""
    if len(shape) == 4 and shape[1:] == (h, w, c):
        return x.transpose(0, 3, 1, 2), f"channels-last {shape} transposed to (N, C, H, W)"
    if len(shape) == 3 and c == 1 and shape[1:] == (h, w):
        return x[:, None], ""
    if shape == (c, h, w):
        return x[None], ""
    if shape == (h, w, c):
        return x.transpose(2, 0, 1)[None], f"channels-last {shape} transposed to (C, H, W)"
    if len(shape) == 2 and c == 1 and shape == (h, w):
        return x[None, None], ""
    raise DataError(f"{name}: x has shape {shape}, the spec expects {dims_text(input_shape)} "
                    "images (x as N x C x H x W, N x H x W x C, N x H x W, or one image)")


def _named(names: list[str]) -> str:
    return ", ".join(names[:2]) + (f" and {len(names) - 2:,} more" if len(names) > 2 else "")


def load_prediction_inputs(paths: list[str], input_shape: tuple, scale: float
                           ) -> tuple[list[str], np.ndarray, list[str]]:
    """Image files and .npz files (array `x`: one image or many, channels first or last) as a
    batch for a network taking `input_shape` (C, H, W) images trained on data of `scale` (the
    normaliser's: 255 for uint8 pixels 0-255, 1 for floats in [0, 1]).

    Returns the name of each image (`file` or `file.npz[i]`), a float32 (N, C, H, W) batch in
    the training data's units, and notes on the conversions done. An array's units come from
    its dtype and range: uint8 is 0-255, floats with a maximum of at most 1 are [0, 1], larger
    floats are 0-255. Grey image files are repeated to RGB and colour ones made grey when the
    network wants it. Unreadable files and shapes that do not fit raise DataError naming them."""
    c, h, w = input_shape
    names, arrays, notes = [], [], []
    rescaled, recoloured = [], []
    for path in map(str, paths):
        if Path(path).suffix.lower() == ".npz":
            x = read_npz(Path(path), ("x",))["x"]
            if x.size == 0:
                raise DataError(f"{path}: x holds no images")
            x, moved = _as_batch(x, input_shape, path)
            source, found = _source_scale(x, path)
            names += [f"{path}[{i}]" for i in range(len(x))]
            done = [moved] if moved else []
            if source != scale:
                done.append(f"scaled to {_units(scale)} as in training")
            if done or x.dtype.kind == "f":
                notes.append(f"{path}: {found}" + "".join(f", {d}" for d in done))
        else:
            x = read_image(path)
            if x.shape[1:] != (h, w):
                raise DataError(f"{path}: image is {dims_text(x.shape[1:])} pixels (HxW), the spec "
                                f"expects {dims_text((h, w))}; resize it")
            if len(x) != c:
                x = np.repeat(x, 3, axis=0) if c == 3 else _grey(x) if c == 1 else x
                if len(x) != c:
                    raise DataError(f"{path}: image has {len(x)} channels, the spec expects {c}")
                recoloured.append(path)
            x, source = x[None], 255.0
            names.append(path)
            if source != scale:
                rescaled.append(path)
        arrays.append(x.astype(np.float32) * np.float32(scale / source))
    if recoloured:
        notes.append(f"{_named(recoloured)}: converted to {'RGB' if c == 3 else 'grey'}, as the "
                     f"network takes {c}-channel images")
    if rescaled:
        notes.append(f"{_named(rescaled)}: pixels 0-255 scaled to {_units(scale)} as in training")
    batch = np.concatenate(arrays) if arrays else np.zeros((0, c, h, w), np.float32)
    return names, np.ascontiguousarray(batch, np.float32), notes


def _grey(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 to (1, H, W) with the ITU-R 601 luma weights Pillow's "L" uses."""
    weights = np.array([299, 587, 114], np.uint32)[:, None, None]
    return ((rgb.astype(np.uint32) * weights).sum(axis=0, keepdims=True) + 500) // 1000


def save_outputs(out: str | Path, names: list[str], outputs: np.ndarray,
                 peak: float = 1.0) -> list[Path]:
    """`predict -o`: outputs (N, ...) as an .npz (`y`, and `names`, one per input), or as one
    PNG per input in the folder `out` (for image outputs of 1 or 3 channels, values in [0,
    peak], clipped). Returns the files written; DataError for outputs that are not images."""
    from .png import as_pixels, write_png
    out = Path(out)
    if out.suffix == ".npz":
        np.savez(out, y=outputs, names=np.array(names))
        return [out]
    if outputs.ndim != 4 or outputs.shape[1] not in (1, 3):
        raise DataError(f"{out}: PNG pictures need image outputs (1 or 3 channels, H, W); this "
                        f"output is {dims_text(outputs.shape[1:])} per input: write an .npz")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (name, image) in enumerate(zip(names, outputs, strict=True)):
        stem = Path(name.split("[")[0]).stem + (f"_{k}" if "[" in name else "")
        written.append(out / f"{stem}.png")
        write_png(written[-1], as_pixels(image, peak))
    return written
