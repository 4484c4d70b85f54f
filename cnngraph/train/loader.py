"""Batches for training and evaluation: seeded shuffling, augmentation, normalisation, and a
background thread that prepares the next batch while the current one trains.

Augmentations work on images scaled to [0, 1], before normalisation, as in the classic recipes:
random crop with zero padding (the CIFAR / ResNet recipe), horizontal flip, random resized crop
(the Inception / ResNet ImageNet recipe: 8-100 % of the area, aspect ratio 3/4-4/3, bilinear
resize back) and colour jitter (brightness, contrast, saturation). Evaluation uses none.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np

from .parallel import shard_bounds, worker_shards


@dataclass(frozen=True)
class Augment:
    crop_padding: int = 0
    hflip: bool = False
    random_resized_crop: bool = False
    color_jitter: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.hflip or self.random_resized_crop
                    or self.color_jitter)


def pixel_scale(x: np.ndarray) -> float:
    """What a pixel value of full intensity is in `x`: 255 for uint8 images and for float ones
    beyond 1 (0-255 stored as floats), 1 for floats in [0, 1]."""
    if x.dtype == np.uint8:
        return 255.0
    return 255.0 if x.size and float(x.max()) > 1.0 else 1.0


@dataclass(frozen=True)
class Normalizer:
    """x -> (x / scale - mean) / std per channel; scale is 255 for uint8 images."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 255.0

    @classmethod
    def fit(cls, x: np.ndarray, scale: float | None = None) -> Normalizer:
        scale = pixel_scale(x) if scale is None else scale
        sums = np.zeros(x.shape[1])
        squares = np.zeros(x.shape[1])
        for start in range(0, len(x), 4096):          # in chunks: no float copy of the set
            chunk = x[start:start + 4096].astype(np.float64) / scale
            sums += chunk.sum(axis=(0, 2, 3))
            squares += (chunk ** 2).sum(axis=(0, 2, 3))
        count = len(x) * x.shape[2] * x.shape[3]
        mean = sums / count
        std = np.sqrt(np.maximum(squares / count - mean ** 2, 1e-12))
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std), scale)

    @classmethod
    def from_record(cls, record: dict) -> Normalizer:
        """From a checkpoint's `normalizer` record: {mean, std, scale}."""
        return cls(tuple(record["mean"]), tuple(record["std"]), record["scale"])

    def scaled(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32) / np.float32(self.scale)

    def standardize(self, x01: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        return (x01 - mean) / std

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.standardize(self.scaled(x))


def _bilinear(image: np.ndarray, top: float, left: float, height: float, width: float,
              out_h: int, out_w: int) -> np.ndarray:
    """Resample the box (top, left, height, width) of a (C, H, W) image to (out_h, out_w)."""
    c, h, w = image.shape
    ys = top + (np.arange(out_h) + 0.5) * height / out_h - 0.5
    xs = left + (np.arange(out_w) + 0.5) * width / out_w - 0.5
    ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top_row = image[:, y0][:, :, x0] * (1 - wx) + image[:, y0][:, :, x1] * wx
    bottom_row = image[:, y1][:, :, x0] * (1 - wx) + image[:, y1][:, :, x1] * wx
    return (top_row * (1 - wy) + bottom_row * wy).astype(np.float32)


def augment_batch(x01: np.ndarray, augment: Augment, rng: np.random.Generator) -> np.ndarray:
    """Apply the augmentations to a (N, C, H, W) batch in [0, 1]; returns a new array."""
    n, c, h, w = x01.shape
    out = x01
    if augment.random_resized_crop:
        out = np.empty_like(x01)
        for i in range(n):
            for _ in range(10):
                area = h * w * rng.uniform(0.08, 1.0)
                ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
                cw, ch = np.sqrt(area * ratio), np.sqrt(area / ratio)
                if cw <= w and ch <= h:
                    top, left = rng.uniform(0, h - ch), rng.uniform(0, w - cw)
                    break
            else:
                ch, cw, top, left = h, w, 0.0, 0.0
            out[i] = _bilinear(x01[i], top, left, ch, cw, h, w)
    if augment.crop_padding:
        p = augment.crop_padding
        padded = np.zeros((n, c, h + 2 * p, w + 2 * p), np.float32)
        padded[:, :, p:p + h, p:p + w] = out
        offsets = rng.integers(0, 2 * p + 1, (n, 2))
        out = np.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(offsets)])
    if augment.hflip:
        flip = rng.random(n) < 0.5
        out = out.copy() if out is x01 else out
        out[flip] = out[flip, :, :, ::-1]
    if augment.color_jitter:
        j = augment.color_jitter
        out = out.copy() if out is x01 else out
        brightness = rng.uniform(1 - j, 1 + j, (n, 1, 1, 1)).astype(np.float32)
        contrast = rng.uniform(1 - j, 1 + j, (n, 1, 1, 1)).astype(np.float32)
        out *= brightness
        gray = out.mean(axis=(1, 2, 3), keepdims=True)
        out = (out - gray) * contrast + gray
        if c == 3:
            saturation = rng.uniform(1 - j, 1 + j, (n, 1, 1, 1)).astype(np.float32)
            luma = (0.299 * out[:, :1] + 0.587 * out[:, 1:2] + 0.114 * out[:, 2:3])
            out = (out - luma) * saturation + luma
        out = np.clip(out, 0.0, 1.0)
    return np.ascontiguousarray(out, np.float32)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, normalizer: Normalizer,
            rng: np.random.Generator | None = None, augment: Augment | None = None,
            drop_last: bool = False, start: int = 0, shards: int | None = None,
            worker: tuple[int, int] = (0, 1)):
    """Yield (images float32 normalised, labels) batches; shuffled when `rng` is given.

    The order is one permutation drawn from `rng`; batch b's augmentation draws from the b-th
    generator spawned from `rng` after it. So the batches from `start` on are the same as when
    the first `start` batches are drawn too: a run resumed mid-epoch sees what it would have seen.

    With `shards`, a batch is cut into that many shards (parallel.shard_bounds), each augmented
    by a generator spawned from the batch's, and only the shards of data-parallel worker
    `worker` (rank, size) are assembled: each worker prepares its own samples, and they are
    the same at any number of workers.
    """
    order = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
    stop = len(y) - (len(y) % batch_size if drop_last else 0)
    firsts = range(0, stop, batch_size)
    draws = rng.spawn(len(firsts)) if rng is not None else [None] * len(firsts)
    for first, draw in list(zip(firsts, draws, strict=True))[start:]:
        index = np.sort(order[first:first + batch_size]) if rng is None else \
            order[first:first + batch_size]
        if not shards:
            yield _assemble(x, index, normalizer, augment, draw), y[index]
            continue
        own = worker_shards(shards, *worker)
        spawned = draw.spawn(shards) if draw is not None else [None] * shards
        pieces = [index[slice(*shard_bounds(len(index), shards, s, shards))] for s in own]
        images = [_assemble(x, piece, normalizer, augment, spawned[s])
                  for s, piece in zip(own, pieces, strict=True) if len(piece)]
        rows = np.concatenate(pieces)
        yield (np.concatenate(images) if images else
               np.empty((0, *x.shape[1:]), np.float32)), y[rows]


def _assemble(x: np.ndarray, index: np.ndarray, normalizer: Normalizer,
              augment: Augment | None, draw: np.random.Generator | None) -> np.ndarray:
    """Samples `index` of x, augmented from `draw` and normalised."""
    images = x[index]
    if augment is not None and augment.active:
        batch = normalizer.standardize(augment_batch(normalizer.scaled(images), augment, draw))
    else:
        batch = normalizer(images)
    return np.ascontiguousarray(batch, np.float32)


class Prefetch:
    """Run an iterator in a background thread, one item ahead (exceptions are re-raised)."""

    _DONE = object()

    def __init__(self, iterator, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterator,), daemon=True)
        self._thread.start()

    def _run(self, iterator) -> None:
        try:
            for item in iterator:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(self._DONE)
        except BaseException as exc:   # handed to the consumer, which re-raises it
            self._queue.put(exc)

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
