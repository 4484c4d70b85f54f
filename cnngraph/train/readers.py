"""Readers for the data formats people train CNNs on; every failure is a DataError naming the
file and what is wrong with it.

- IDX (MNIST, Fashion-MNIST), gzip-compressed or raw;
- CIFAR-10 / CIFAR-100 "python" batches (read with an unpickler that admits only the NumPy
  array reconstruction the files need, so a malicious file cannot run code);
- `.npz` arrays `x` (N, C, H, W), (N, H, W) or, with `layout="nhwc"`, (N, H, W, C), and `y`:
  class labels (N,), or array targets (N, ...) of any other shape (regression: denoising,
  image outputs), loaded without pickle;
- a folder of images with one subfolder per class, decoded with Pillow (the `images` extra);
  binary PGM/PPM are also read without it.

`load_dataset` reads a split; inputs.py checks data against a network and reads inputs to
predict on.
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm", ".jpg", ".jpeg", ".bmp", ".gif", ".webp",
                  ".tif", ".tiff")
GREY_MODES = ("1", "L", "LA", "La")
LAYOUTS = ("nchw", "nhwc")


@dataclass
class Dataset:
    x: np.ndarray                 # (N, C, H, W), uint8 (pixels 0-255) or float32
    y: np.ndarray                 # (N,) int64 class labels, or (N, ...) float32 targets
    source: str
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # conversions done while reading

    def __len__(self) -> int:
        return len(self.y)

    @property
    def regression(self) -> bool:
        """Whether its targets are arrays (a regression task), not class labels."""
        return self.y.ndim > 1


def dims_text(shape) -> str:
    return "x".join(map(str, shape))


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


def class_labels(y, source: str) -> np.ndarray:
    """Labels as int64 class indices; whole-number floats are accepted, anything else is not."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: expected labels of shape (N,), received shape {y.shape}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{source}: the label at index {i} is {y[i]}, not a class index "
                            f"({int(bad.sum()):,} labels are NaN, infinite or fractional); "
                            "labels are integers 0, 1, ... (regression targets are arrays of "
                            "a sample's shape: save y as (N, 1) for one value per sample)")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{source}: expected integer labels, received {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        i = int(np.argmin(y))
        raise DataError(f"{source}: negative label {y[i]} (at index {i}); labels are class "
                        "indices 0, 1, ...")
    return y


def _pixels(x: np.ndarray, source: str, notes: list[str]) -> np.ndarray:
    """Images as uint8 (pixels 0-255) or float32: the two dtypes the normaliser tells apart."""
    if x.dtype == np.uint8 or x.dtype == np.float32:
        return x
    if x.dtype.kind == "f":
        return x.astype(np.float32)
    if x.dtype.kind in "iu":
        low, high = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if low < 0 or high > 255:
            raise DataError(f"{source}: {x.dtype} pixels from {low} to {high}; expected uint8 "
                            "pixels 0-255 or float images (e.g. float32 scaled to [0, 1])")
        notes.append(f"{source}: {x.dtype} pixels 0-255 read as uint8")
        return x.astype(np.uint8)
    raise DataError(f"{source}: expected uint8 or float images, received {x.dtype}")


def array_targets(y, source: str) -> np.ndarray:
    """Regression targets (N, ...) as float32, all finite."""
    if y.dtype.kind not in "fiub":
        raise DataError(f"{source}: expected numeric targets, received {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.isfinite(y).all():
        raise DataError(f"{source}: the targets hold NaN or infinite values (or values beyond "
                        "float32)")
    return y


def _pair(images, labels, source: str, classes=(), notes: list[str] | None = None) -> Dataset:
    images, notes = np.asarray(images), [] if notes is None else notes
    labels = np.asarray(labels)
    labels = array_targets(labels, source) if labels.ndim > 1 else class_labels(labels, source)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"{source}: expected images of shape (N, C, H, W) or (N, H, W), received "
                        f"{images.shape}")
    if len(images) != len(labels):
        raise DataError(f"{source}: {len(images):,} images but {len(labels):,} labels")
    images = _pixels(images, source, notes)
    return Dataset(np.ascontiguousarray(images), labels, source, list(classes), notes)


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


def read_npz(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive, read without pickle; a broken archive is a DataError."""
    try:
        with open(path, "rb") as file:
            head = file.read(6)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if head.startswith(b"\x93NUMPY"):
        raise DataError(f"{path}: not a .npz archive (it is a single .npy array); save the "
                        "arrays with np.savez(path, x=images, y=labels)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise DataError(f"{path}: not a .npz archive (a .npz is a zip file; this one starts with "
                        f"{head!r})")
    try:
        with np.load(path, allow_pickle=False) as data:
            if any(name not in data.files for name in required):
                wanted = " and ".join(f"`{name}`" for name in required)
                raise DataError(f"{path}: expected arrays {wanted}, found "
                                f"{', '.join(data.files) or 'none'}")
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None


def load_npz(path: Path, layout: str = "nchw") -> Dataset:
    arrays = read_npz(path, ("x", "y"))
    x, notes = arrays["x"], []
    if layout == "nhwc" and x.ndim == 4:
        if x.shape[1] in (1, 3, 4) and x.shape[3] not in (1, 3, 4):
            raise DataError(f"{path}: x of shape {x.shape} looks channels-first (N, C, H, W) "
                            "already; leave out --layout nhwc")
        notes.append(f"{path}: x transposed from (N, H, W, C) {x.shape} to (N, C, H, W)")
        x = x.transpose(0, 3, 1, 2)
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else []
    return _pair(x, arrays["y"], str(path), classes, notes)


def _pillow(path, action: str):
    """Pillow's Image module, or a DataError saying that `action` needs it."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: cannot {action} without Pillow; install it with "
                        "`pip install pillow` (the `images` extra)") from None
    return Image


def _pnm(data: bytes, path: Path) -> np.ndarray:
    parts, pos = [], 0
    while len(parts) < 4 and pos < len(data):
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            end = data.find(b"\n", pos)
            pos = len(data) if end < 0 else end
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    try:
        magic, width, height, maxval = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
    except (IndexError, ValueError):
        raise DataError(f"{path}: not a PGM/PPM image (broken header)") from None
    channels = {b"P5": 1, b"P6": 3}.get(magic)
    if channels is None or maxval > 255:
        raise DataError(f"{path}: only binary 8-bit PGM (P5) and PPM (P6) are read without "
                        "Pillow; install it with `pip install pillow`")
    pixels = np.frombuffer(data, np.uint8, offset=min(pos + 1, len(data)))
    if pixels.size < width * height * channels:
        raise DataError(f"{path}: not a complete PGM/PPM image (truncated pixel data)")
    return pixels[:width * height * channels].reshape(height, width, channels).transpose(2, 0, 1)


def _decode(data: bytes, path: Path) -> np.ndarray:
    """Decode with Pillow to (C, H, W) uint8: grey modes to one channel, the others to RGB (alpha
    dropped, EXIF orientation applied); 16-bit grey is scaled to 0-255."""
    Image = _pillow(path, "decode this image")
    from PIL import ImageOps
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            mode = image.mode
            if mode.startswith("I;16"):
                wide = np.asarray(image).astype(np.uint32)
                array = ((wide * 255 + 32767) // 65535).astype(np.uint8)
            elif mode not in ("I", "F"):
                array = np.asarray(image.convert("L" if mode in GREY_MODES else "RGB"))
    except Image.UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (Pillow cannot identify an image in it; "
                        f"it starts with {data[:8]!r})") from None
    except Exception as exc:     # Pillow raises OSError, SyntaxError, ValueError, ... on bad data
        raise DataError(f"{path}: not a readable image ({str(exc) or type(exc).__name__})") \
            from None
    if mode in ("I", "F"):
        raise DataError(f"{path}: cannot read 32-bit images (Pillow mode {mode}); save it with 8 "
                        "or 16 bits per channel")
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as a (C, H, W) uint8 array with 1 (grey) or 3 (RGB) channels."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        import PIL  # noqa: F401
    except ImportError:
        if data[:2] in (b"P5", b"P6"):
            return _pnm(data, path)
    return _decode(data, path)


def resize_images(images: np.ndarray, size: tuple[int, int], source) -> np.ndarray:
    """(N, C, H, W) uint8 or float images resampled to `size` (H, W) with Pillow's bilinear
    filter (antialiased when shrinking); uint8 stays uint8, the rest becomes float32."""
    Image = _pillow(source, "resize images")
    height, width = size
    dtype = np.uint8 if images.dtype == np.uint8 else np.float32
    out = np.empty(images.shape[:2] + (height, width), dtype)
    for i, image in enumerate(images):
        for c, plane in enumerate(image):
            resized = Image.fromarray(np.ascontiguousarray(plane, dtype)).resize(
                (width, height), Image.Resampling.BILINEAR)
            out[i, c] = np.asarray(resized)
    return out


def load_image_folder(folder: Path, resize: tuple[int, int] | None = None) -> Dataset:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != ".")
    if not classes:
        raise DataError(f"{folder}: expected one subfolder of images per class")
    images, labels, files, notes, resized = [], [], [], [], 0
    for label, name in enumerate(classes):
        for file in sorted((folder / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = read_image(file)
            if resize is not None and image.shape[1:] != tuple(resize):
                image, resized = resize_images(image[None], resize, file)[0], resized + 1
            if images and image.shape[1:] != images[0].shape[1:]:
                raise DataError(
                    f"{folder}: images of different sizes ({files[0].relative_to(folder)} is "
                    f"{dims_text(images[0].shape[1:])}, {file.relative_to(folder)} is "
                    f"{dims_text(image.shape[1:])}, HxW); pass --resize H,W to resize them all, or "
                    "resize the files")
            images.append(image)
            labels.append(label)
            files.append(file)
    if not images:
        raise DataError(f"{folder}: no images in the class folders")
    if resized:
        notes.append(f"{folder}: {resized:,} images resized to {dims_text(resize)}")
    grey = [i for i, image in enumerate(images) if len(image) == 1]
    if grey and len(grey) < len(images):      # grey to RGB loses nothing; RGB to grey would
        for i in grey:
            images[i] = np.repeat(images[i], 3, axis=0)
        notes.append(f"{folder}: {len(grey):,} grey images among colour ones (e.g. "
                     f"{files[grey[0]].relative_to(folder)}) converted to RGB")
    return _pair(np.stack(images), np.array(labels), str(folder), classes, notes)


def load_dataset(source: str | Path, split: str, layout: str = "nchw",
                 resize: tuple[int, int] | None = None) -> Dataset:
    """Read the `split` ("train" or "test") of the data at `source` (a folder or a file).

    `layout="nhwc"` reads an .npz `x` stored channels-last (N, H, W, C) and transposes it;
    `resize=(H, W)` resizes every image (needs Pillow), which lets an image folder hold images
    of several sizes. The conversions done are listed in the result's `notes`."""
    path = Path(source)
    if layout not in LAYOUTS:
        raise DataError(f"{path}: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if resize is not None and (len(resize) != 2 or min(resize) < 1):
        raise DataError(f"{path}: cannot resize to {resize}; expected two positive sizes H,W")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    idx = _find(path, "train-images-idx3-ubyte") or _find(path, "t10k-images-idx3-ubyte")
    cifar = (path / "data_batch_1").exists() or (path / "train").is_file()
    if path.is_file() and path.suffix != ".npz":
        raise DataError(f"{path}: unknown data file; expected a .npz archive or a folder")
    npz = path if path.is_file() else None if idx or cifar else path / f"{split}.npz"
    if layout != "nchw" and not (npz and npz.is_file()):
        raise DataError(f"{path}: --layout {layout} applies to .npz arrays; this data is read "
                        "in its own layout (leave the option out)")
    if npz and npz.is_file():
        data = load_npz(npz, layout)
    elif idx:
        data = load_idx_folder(path, split)
    elif cifar:
        data = load_cifar(path, split)
    elif (path / split).is_dir():
        return load_image_folder(path / split, resize)
    else:
        raise DataError(f"{path}: no {split} data found (IDX files, CIFAR batches, {split}.npz, "
                        f"or a {split}/ folder with one subfolder per class)")
    if resize is not None and data.x.shape[2:] != tuple(resize):
        data.notes.append(f"{data.source}: {len(data.x):,} images resized from "
                          f"{dims_text(data.x.shape[2:])} to {dims_text(resize)}")
        data.x = resize_images(data.x, resize, data.source)
    return data
