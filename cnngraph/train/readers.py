"""Readers for the data formats people train CNNs on; every failure is a DataError naming the
file and what is wrong with it.

- IDX (MNIST, Fashion-MNIST), gzip-compressed or raw;
- CIFAR-10 / CIFAR-100 "python" batches (read with an unpickler that admits only the NumPy
  array reconstruction the files need, so a malicious file cannot run code);
- `.npz` arrays `x` (N, C, H, W) or (N, H, W) and `y` (N,), loaded without pickle;
- a folder of images with one subfolder per class (PNG, PGM/PPM built in; other formats
  through Pillow when it is installed).
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Dataset:
    x: np.ndarray                 # (N, C, H, W), uint8 or float32
    y: np.ndarray                 # (N,), int64
    source: str
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}, "
                        "expected 0000 followed by a type code and the number of dimensions)")
    rank = data[3]
    header = 4 + 4 * rank
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{rank}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path}: truncated or padded: the header announces shape {shape} "
                        f"({expected:,} bytes of data), the file holds {len(data) - header:,}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _pair(images: np.ndarray, labels: np.ndarray, source: str, classes=()) -> Dataset:
    if len(images) != len(labels):
        raise DataError(f"{source}: {len(images):,} images but {len(labels):,} labels")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"{source}: expected images of shape (N, C, H, W) or (N, H, W), received "
                        f"{images.shape}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{source}: expected integer labels of shape (N,), received "
                        f"{labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise DataError(f"{source}: negative label {labels.min()}")
    return Dataset(np.ascontiguousarray(images), labels.astype(np.int64), source, list(classes))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_idx_folder(folder: Path, split: str) -> Dataset:
    prefix = "train" if split == "train" else "t10k"
    images = _find(folder, f"{prefix}-images-idx3-ubyte")
    labels = _find(folder, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise DataError(f"{folder}: no {prefix}-images-idx3-ubyte[.gz] and "
                        f"{prefix}-labels-idx1-ubyte[.gz]")
    classes = FASHION_MNIST_CLASSES if "fashion" in str(folder).lower() else \
        [str(i) for i in range(10)]
    return _pair(read_idx(images), read_idx(labels), str(images), classes)


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what CIFAR batches contain: dicts, lists, bytes, strings, NumPy arrays."""

    ALLOWED = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
               for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"),
                                                          ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        return _ArrayUnpickler(io.BytesIO(_read_bytes(path)), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a CIFAR python batch ({exc})") from None


def load_cifar(folder: Path, split: str) -> Dataset:
    def key(batch: dict, name: str):
        value = batch.get(name.encode(), batch.get(name))
        if value is None:
            raise DataError(f"{folder}: batch has no `{name}` entry")
        return value

    if (folder / "data_batch_1").exists():          # CIFAR-10
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        label_key, meta, meta_key = "labels", folder / "batches.meta", "label_names"
    else:                                           # CIFAR-100
        names = ["train"] if split == "train" else ["test"]
        label_key, meta, meta_key = "fine_labels", folder / "meta", "fine_label_names"
    xs, ys = [], []
    for name in names:
        if not (folder / name).exists():
            raise DataError(f"{folder / name}: missing CIFAR batch")
        batch = _unpickle(folder / name)
        data = np.asarray(key(batch, "data"), np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{folder / name}: expected data of shape (N, 3072), received "
                            f"{data.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(key(batch, label_key)))
    classes = []
    if meta.exists():
        classes = [c.decode() if isinstance(c, bytes) else str(c)
                   for c in key(_unpickle(meta), meta_key)]
    return _pair(np.concatenate(xs), np.concatenate(ys), str(folder), classes)


def load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data or "y" not in data:
                raise DataError(f"{path}: expected arrays `x` and `y`, found "
                                f"{', '.join(data.files) or 'none'}")
            classes = [str(c) for c in data["classes"]] if "classes" in data else []
            return _pair(data["x"], data["y"], str(path), classes)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None


def _png(data: bytes, path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG (grey, grey+alpha, RGB, RGBA) to (C, H, W)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError(f"{path}: not a PNG file")
    pos, idat, header = 8, b"", None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise DataError(f"{path}: PNG without a header")
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise DataError(f"{path}: only 8-bit, non-interlaced grey/RGB(A) PNGs are read without "
                        "Pillow; install Pillow for other images")
    try:
        raw = np.frombuffer(zlib.decompress(idat), np.uint8)
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt PNG data ({exc})") from None
    stride = width * channels
    if raw.size != height * (stride + 1):
        raise DataError(f"{path}: truncated PNG data")
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    for r in range(height):
        kind, line = rows[r, 0], rows[r, 1:].astype(np.int32)
        prev = out[r - 1] if r else np.zeros(stride, np.int32)
        if kind == 0:
            out[r] = line
        elif kind == 2:
            out[r] = (line + prev) & 255
        elif kind in (1, 3, 4):
            cur = out[r]
            for i in range(stride):
                left = cur[i - channels] if i >= channels else 0
                up = prev[i]
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    up_left = prev[i - channels] if i >= channels else 0
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                cur[i] = (line[i] + pred) & 255
        else:
            raise DataError(f"{path}: unknown PNG filter {kind}")
    image = out.astype(np.uint8).reshape(height, width, channels)
    if channels in (2, 4):
        image = image[..., :-1]          # drop alpha
    return image.transpose(2, 0, 1)


def _pnm(data: bytes, path: Path) -> np.ndarray:
    parts, pos = [], 0
    while len(parts) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    magic, width, height, maxval = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
    channels = {b"P5": 1, b"P6": 3}.get(magic)
    if channels is None or maxval > 255:
        raise DataError(f"{path}: only binary 8-bit PGM (P5) and PPM (P6) are supported")
    pixels = np.frombuffer(data, np.uint8, offset=pos + 1)
    if pixels.size < width * height * channels:
        raise DataError(f"{path}: truncated image data")
    return pixels[:width * height * channels].reshape(height, width, channels).transpose(2, 0, 1)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as a (C, H, W) uint8 array."""
    path = Path(path)
    data = _read_bytes(path)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data, path)
    if data[:2] in (b"P5", b"P6"):
        return _pnm(data, path)
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: reading this image format needs Pillow "
                        "(pip install pillow); PNG and PGM/PPM are read without it") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("RGB" if image.mode not in ("L",) else "L"))
    except OSError as exc:
        raise DataError(f"{path}: cannot decode the image ({exc})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_image_folder(folder: Path) -> Dataset:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder}: expected one subfolder of images per class")
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((folder / name).iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_image(file))
                labels.append(label)
    if not images:
        raise DataError(f"{folder}: no images in the class folders")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{folder}: images of different sizes {sorted(shapes)[:3]}; resize them "
                        "to one size first")
    return _pair(np.stack(images), np.array(labels), str(folder), classes)


def load_dataset(source: str | Path, split: str) -> Dataset:
    """Read the `split` ("train" or "test") of the data at `source` (a folder or a file)."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        raise DataError(f"{path}: unknown data file; expected a .npz archive or a folder")
    if _find(path, "train-images-idx3-ubyte") or _find(path, "t10k-images-idx3-ubyte"):
        return load_idx_folder(path, split)
    if (path / "data_batch_1").exists() or (path / "train").is_file():
        return load_cifar(path, split)
    if (path / f"{split}.npz").exists():
        return load_npz(path / f"{split}.npz")
    if (path / split).is_dir():
        return load_image_folder(path / split)
    raise DataError(f"{path}: no {split} data found (IDX files, CIFAR batches, {split}.npz, or "
                    f"a {split}/ folder with one subfolder per class)")
