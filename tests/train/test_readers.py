"""Each reader on small files written in the real format, and on broken ones."""
import gzip
import pickle
import struct
import zlib

import numpy as np
import pytest

from cnngraph.errors import DataError
from cnngraph.train.readers import load_dataset, read_idx, read_image

RNG = np.random.default_rng(0)


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, n=5, compress=True, split="train"):
    prefix = "train" if split == "train" else "t10k"
    images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = RNG.integers(0, 10, n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte",
                                                                  labels)):
        data = idx_bytes(array)
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("compress", [True, False])
def test_idx(tmp_path, compress):
    images, labels = write_idx_folder(tmp_path / "fashion-mnist", compress=compress)
    data = load_dataset(tmp_path / "fashion-mnist", "train")
    assert data.x.shape == (5, 1, 28, 28) and np.array_equal(data.x[:, 0], images)
    assert np.array_equal(data.y, labels) and data.y.dtype == np.int64
    assert data.classes[0] == "T-shirt/top"


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x08\x03\x00\x00rest")
    with pytest.raises(DataError, match="bad: not an IDX file"):
        read_idx(bad)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(idx_bytes(np.zeros((4, 3, 3)))[:-5])
    with pytest.raises(DataError, match="truncated: truncated or padded"):
        read_idx(truncated)
    broken_gz = tmp_path / "x.gz"
    broken_gz.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 3, 3))))[:-10])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(broken_gz)
    folder = tmp_path / "mismatch"
    write_idx_folder(folder, n=5)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4))))
    with pytest.raises(DataError, match="5 images but 4 labels"):
        load_dataset(folder, "train")
    with pytest.raises(DataError, match="no t10k-images"):
        load_dataset(folder, "test")


def write_cifar10(folder, per_batch=3):
    folder.mkdir()
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = list(RNG.integers(0, 10, per_batch))
        (folder / name).write_bytes(pickle.dumps({b"data": x, b"labels": y}))
        xs.append(x)
        ys.append(y)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"cat", b"dog"]}))
    return xs, ys


def test_cifar10_and_100(tmp_path):
    xs, ys = write_cifar10(tmp_path / "c10")
    train = load_dataset(tmp_path / "c10", "train")
    assert train.x.shape == (15, 3, 32, 32)
    assert np.array_equal(train.x[0].reshape(-1), xs[0][0])
    assert list(train.y[:3]) == ys[0] and train.classes == ["cat", "dog"]
    assert len(load_dataset(tmp_path / "c10", "test")) == 3
    c100 = tmp_path / "c100"
    c100.mkdir()
    for name in ("train", "test"):
        batch = {"data": RNG.integers(0, 256, (4, 3072), dtype=np.uint8),
                 "fine_labels": [1, 2, 3, 99]}
        (c100 / name).write_bytes(pickle.dumps(batch))
    assert load_dataset(c100, "train").y.max() == 99


def test_cifar_refuses_code_in_pickles(tmp_path):
    folder = tmp_path / "evil"
    write_cifar10(folder)

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_dataset(folder, "train")


def test_npz(tmp_path):
    x = RNG.standard_normal((6, 2, 5, 5)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(6))
    data = load_dataset(tmp_path / "d.npz", "train")
    assert np.array_equal(data.x, x) and list(data.y) == list(range(6))
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(DataError, match="expected arrays `x` and `y`, found images"):
        load_dataset(tmp_path / "bad.npz", "train")
    np.savez(tmp_path / "obj.npz", x=np.array([object()]), y=np.zeros(1))
    with pytest.raises(DataError, match="obj.npz: not a readable .npz"):
        load_dataset(tmp_path / "obj.npz", "train")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable"):
        load_dataset(tmp_path / "junk.npz", "train")


def png_bytes(image: np.ndarray, filters=(0, 1, 2, 3, 4)) -> bytes:
    """Encode (H, W, C) uint8 as PNG, cycling through the five filter types."""
    h, w, c = image.shape
    color = {1: 0, 3: 2, 4: 6}[c]
    stride = w * c
    raw = image.reshape(h, stride).astype(np.int32)
    out = b""
    for r in range(h):
        kind = filters[r % len(filters)]
        prev = raw[r - 1] if r else np.zeros(stride, np.int32)
        line = np.zeros(stride, np.int32)
        for i in range(stride):
            left = raw[r, i - c] if i >= c else 0
            up = prev[i]
            up_left = prev[i - c] if i >= c else 0
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            paeth = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
            pred = [0, left, up, (left + up) // 2, paeth][kind]
            line[i] = (raw[r, i] - pred) & 255
        out += bytes([kind]) + line.astype(np.uint8).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(out)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_decoder_handles_every_filter(tmp_path, channels):
    image = RNG.integers(0, 256, (7, 6, channels), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(png_bytes(image))
    decoded = read_image(tmp_path / "a.png")
    expected = image[..., :3] if channels == 4 else image
    assert np.array_equal(decoded, expected.transpose(2, 0, 1))


def test_image_folder(tmp_path):
    for label, name in enumerate(["ankle", "bag"]):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for i in range(3):
            image = np.full((4, 5, 1), 10 * label + i, np.uint8)
            (folder / f"{i}.png").write_bytes(png_bytes(image))
    gray = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    pgm = b"P5\n# comment\n5 4\n255\n" + gray.tobytes()
    (tmp_path / "train" / "bag" / "x.pgm").write_bytes(pgm)
    data = load_dataset(tmp_path, "train")
    assert data.classes == ["ankle", "bag"] and data.x.shape == (7, 1, 4, 5)
    assert list(data.y) == [0, 0, 0, 1, 1, 1, 1]
    assert np.array_equal(data.x[-1, 0], gray)
    (tmp_path / "train" / "bag" / "big.png").write_bytes(png_bytes(np.zeros((9, 9, 1), np.uint8)))
    with pytest.raises(DataError, match="images of different sizes"):
        load_dataset(tmp_path, "train")


def test_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope", "train")
    with pytest.raises(DataError, match="no train data found"):
        load_dataset(tmp_path, "train")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="unknown data file"):
        load_dataset(tmp_path / "x.csv", "train")
