"""Each reader on small files written in the real format, and on broken ones; the checks of a
dataset against a network."""
import gzip
import io
import pickle
import struct
import sys

import numpy as np
import pytest

from cnngraph.errors import DataError
from cnngraph.train.inputs import validate_dataset
from cnngraph.train.readers import Dataset, load_dataset, read_idx, read_image

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


def test_idx_gz_cut_in_half(tmp_path):
    write_idx_folder(tmp_path, n=20)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:len(gz.read_bytes()) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_dataset(tmp_path, "train")


def test_npz(tmp_path):
    x = RNG.standard_normal((6, 2, 5, 5)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(6))
    data = load_dataset(tmp_path / "d.npz", "train")
    assert np.array_equal(data.x, x) and list(data.y) == list(range(6)) and data.notes == []
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(DataError, match="expected arrays `x` and `y`, found images"):
        load_dataset(tmp_path / "bad.npz", "train")
    np.savez(tmp_path / "obj.npz", x=np.array([object()]), y=np.zeros(1))
    with pytest.raises(DataError, match="obj.npz: not a readable .npz"):
        load_dataset(tmp_path / "obj.npz", "train")


def test_npz_that_is_not_a_zip(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"junk.npz: not a .npz archive \(a .npz is a zip file"):
        load_dataset(tmp_path / "junk.npz", "train")
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    with pytest.raises(DataError, match=r"array.npz: not a .npz archive \(it is a single .npy"):
        load_dataset(tmp_path / "array.npz", "train")


def test_npz_cut_in_half(tmp_path):
    np.savez(tmp_path / "d.npz", x=RNG.integers(0, 256, (50, 1, 8, 8), dtype=np.uint8),
             y=np.arange(50))
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataError, match=r"d.npz: not a readable .npz archive \("):
        load_dataset(tmp_path / "d.npz", "train")


def test_npz_pixel_and_label_types(tmp_path):
    x = RNG.integers(0, 256, (4, 1, 3, 3))
    np.savez(tmp_path / "ints.npz", x=x, y=np.array([0.0, 1.0, 2.0, 1.0]))
    data = load_dataset(tmp_path / "ints.npz", "train")
    assert data.x.dtype == np.uint8 and np.array_equal(data.x, x)
    assert data.y.dtype == np.int64 and list(data.y) == [0, 1, 2, 1]
    assert data.notes == [f"{tmp_path / 'ints.npz'}: int64 pixels 0-255 read as uint8"]
    np.savez(tmp_path / "wide.npz", x=x * 16, y=np.zeros(4, int))
    with pytest.raises(DataError, match=r"wide.npz: int64 pixels from \d+ to \d+; expected uint8"):
        load_dataset(tmp_path / "wide.npz", "train")
    np.savez(tmp_path / "frac.npz", x=x, y=np.array([0, 1.5, 2, 1]))
    with pytest.raises(DataError, match=r"frac.npz: the label at index 1 is 1.5, not a class"):
        load_dataset(tmp_path / "frac.npz", "train")


def nhwc_npz(path, shape):
    x = RNG.integers(0, 256, shape, dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(len(x)) % 2)
    return x


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (3, 32, 32, 3)])
def test_nhwc_npz_is_caught_and_converted(tmp_path, shape):
    x = nhwc_npz(tmp_path / "d.npz", shape)
    expected = (shape[3], shape[1], shape[2])
    data = load_dataset(tmp_path / "d.npz", "train")
    with pytest.raises(DataError, match=rf"d.npz: images are {shape[1]}x{shape[2]}x{shape[3]}, "
                       rf"the spec expects {'x'.join(map(str, expected))} \(the data looks "
                       r"channels-last, \(N, H, W, C\)\); pass --layout nhwc"):
        validate_dataset(data, expected, (10,))
    data = load_dataset(tmp_path / "d.npz", "train", layout="nhwc")
    assert data.x.shape == (3,) + expected and data.x.flags.c_contiguous
    assert np.array_equal(data.x, x.transpose(0, 3, 1, 2))
    assert "transposed from (N, H, W, C)" in data.notes[0]
    validate_dataset(data, expected, (10,))


def test_layout_refused_where_it_does_not_apply(tmp_path):
    nhwc_npz(tmp_path / "first.npz", (2, 3, 8, 8))
    with pytest.raises(DataError, match=r"first.npz: x of shape \(2, 3, 8, 8\) looks channels-"
                       "first"):
        load_dataset(tmp_path / "first.npz", "train", layout="nhwc")
    with pytest.raises(DataError, match="unknown layout 'hwc'"):
        load_dataset(tmp_path / "first.npz", "train", layout="hwc")
    write_idx_folder(tmp_path / "mnist")
    with pytest.raises(DataError, match="mnist: --layout nhwc applies to .npz arrays"):
        load_dataset(tmp_path / "mnist", "train", layout="nhwc")


def dataset(n=4, shape=(1, 3, 3), y=None, x=None):
    x = np.zeros((n,) + shape, np.uint8) if x is None else x
    return Dataset(x, np.arange(n) % 2 if y is None else np.asarray(y), "d.npz")


@pytest.mark.parametrize("data, message", [
    (dataset(n=0), r"d.npz: no images \(0 images, 0 labels\)"),
    (dataset(y=[0, 1, 0]), "d.npz: 4 images but 3 labels"),
    (dataset(shape=(1, 5, 5)), r"images are 1x5x5, the spec expects 1x3x3; pass --resize H,W"),
    (dataset(shape=(3, 3, 3)), r"images are 3x3x3, the spec expects 1x3x3; convert the data"),
    (dataset(shape=(3, 1, 3)), r"images are 3x1x3, the spec expects 1x3x3 \(the same sizes in "
     r"another order\); save x with its axes as \(N, C, H, W\)"),
    (dataset(y=[0, 1, 2, 1]), r"d.npz: label 2 does not fit the network's 2 outputs \(1 labels "
     r"are outside \[0, 2\), the first at index 2\); check"),
    (dataset(y=[0, 1, -1, 1]), r"d.npz: negative label -1 \(at index 2\)"),
    (dataset(y=[0, 1, 0.5, 1]), r"d.npz: the label at index 2 is 0.5, not a class index"),
    (dataset(y=[0, 1, np.nan, 1]), r"d.npz: the label at index 2 is nan, not a class index "
     r"\(1 labels are NaN"),
    (dataset(y=["a", "b", "a", "b"]), r"d.npz: expected integer labels, received <U1"),
    (dataset(x=np.full((4, 1, 3, 3), np.nan, np.float32)), "NaN or infinite values"),
], ids=["empty", "lengths", "size", "channels", "permuted", "too-large", "negative", "fraction",
        "nan", "strings", "nan-pixels"])
def test_validate_dataset(data, message):
    with pytest.raises(DataError, match=message):
        validate_dataset(data, (1, 3, 3), (2,))


def test_validate_dataset_accepts_fitting_data():
    validate_dataset(dataset(y=[0, 1, 1, 0]), (1, 3, 3), (2,))
    validate_dataset(dataset(x=np.ones((4, 1, 3, 3), np.float32), y=[0.0, 1, 1, 0]), (1, 3, 3),
                     (2,))


def test_array_targets_are_read_and_checked_as_regression(tmp_path):
    path = tmp_path / "pairs.npz"
    np.savez(path, x=np.zeros((4, 1, 3, 3), np.uint8), y=np.ones((4, 1, 3, 3), np.float64))
    data = load_dataset(path, "train")
    assert data.regression and data.y.dtype == np.float32 and data.y.shape == (4, 1, 3, 3)
    validate_dataset(data, (1, 3, 3), (1, 3, 3), "mse")
    validate_dataset(data, (1, 3, 3), (9,), "l1")            # as many values, flat
    with pytest.raises(DataError, match=r"targets are 1x3x3 per sample, the network's output "
                                        r"is 2x3x3"):
        validate_dataset(data, (1, 3, 3), (2, 3, 3), "mse")
    with pytest.raises(DataError, match="array targets .* `train.loss: mse` or `l1`"):
        validate_dataset(data, (1, 3, 3), (1, 3, 3), "cross_entropy")
    np.savez(path, x=np.zeros((4, 1, 3, 3), np.uint8), y=np.full((4, 2), np.inf))
    with pytest.raises(DataError, match="pairs.npz: the targets hold NaN or infinite"):
        load_dataset(path, "train")


def test_resize_arrays(tmp_path):
    pytest.importorskip("PIL")
    x = np.stack([np.full((1, 4, 6), v, np.uint8) for v in (0, 100, 255)])
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(3))
    data = load_dataset(tmp_path / "d.npz", "train", resize=(8, 3))
    assert data.x.shape == (3, 1, 8, 3) and data.x.dtype == np.uint8
    assert [int(v) for v in data.x[:, 0, 0, 0]] == [0, 100, 255] and (data.x[1] == 100).all()
    assert data.notes == [f"{tmp_path / 'd.npz'}: 3 images resized from 4x6 to 8x3"]
    np.savez(tmp_path / "f.npz", x=x.astype(np.float32) / 255, y=np.arange(3))
    data = load_dataset(tmp_path / "f.npz", "train", resize=(2, 2))
    assert data.x.dtype == np.float32 and np.allclose(data.x[1], 100 / 255)
    with pytest.raises(DataError, match=r"cannot resize to \(0, 3\)"):
        load_dataset(tmp_path / "d.npz", "train", resize=(0, 3))


def image_bytes(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    """Encode (H, W) or (H, W, C) with Pillow."""
    from PIL import Image
    image = Image.fromarray(array)
    if mode == "P":       # an adaptive palette: exact for images of few colours
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    elif mode:
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("channels, mode", [(1, None), (3, None), (4, None), (1, "LA"),
                                            (3, "P")])
def test_read_image_with_pillow(tmp_path, channels, mode):
    pytest.importorskip("PIL")
    image = RNG.integers(0, 256, (7, 6, channels), dtype=np.uint8)
    if mode == "P":         # few colours, so the palette is exact
        image = np.where(image > 127, 200, 30).astype(np.uint8)
    (tmp_path / "a.png").write_bytes(image_bytes(image[..., 0] if channels == 1 else image,
                                                 mode=mode))
    decoded = read_image(tmp_path / "a.png")
    expected = image[..., :1] if channels == 1 else image[..., :3]
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, expected.transpose(2, 0, 1))


def test_read_16_bit_and_jpeg(tmp_path):
    pytest.importorskip("PIL")
    wide = np.array([[0, 257, 65535], [32896, 1000, 65280]], np.uint16)
    (tmp_path / "a.png").write_bytes(image_bytes(wide))
    assert read_image(tmp_path / "a.png").tolist() == [[[0, 1, 255], [128, 4, 254]]]
    flat = np.full((8, 8, 3), (200, 50, 10), np.uint8)
    (tmp_path / "b.jpg").write_bytes(image_bytes(flat, "JPEG"))
    decoded = read_image(tmp_path / "b.jpg")
    assert decoded.shape == (3, 8, 8) and np.abs(decoded.astype(int) - [[[200]], [[50]], [[10]]]
                                                 ).max() <= 3


def test_read_image_without_pillow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)       # `import PIL` raises ImportError
    gray = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    (tmp_path / "a.pgm").write_bytes(b"P5\n# comment\n5 4\n255\n" + gray.tobytes())
    assert np.array_equal(read_image(tmp_path / "a.pgm"), gray[None])
    (tmp_path / "b.pgm").write_bytes(b"P5\n5 4\n255\n" + gray.tobytes()[:7])
    with pytest.raises(DataError, match=r"b.pgm: not a complete PGM/PPM image \(truncated"):
        read_image(tmp_path / "b.pgm")
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\nrest")
    with pytest.raises(DataError, match=r"c.png: cannot decode this image without Pillow; "
                       "install it with `pip install pillow`"):
        read_image(tmp_path / "c.png")
    np.savez(tmp_path / "d.npz", x=np.zeros((1, 1, 2, 2), np.uint8), y=[0])
    with pytest.raises(DataError, match="d.npz: cannot resize images without Pillow"):
        load_dataset(tmp_path / "d.npz", "train", resize=(3, 3))


def test_broken_images(tmp_path):
    pytest.importorskip("PIL")
    good = image_bytes(RNG.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    (tmp_path / "half.png").write_bytes(good[:len(good) // 2])
    with pytest.raises(DataError, match=r"half.png: not a readable image \(.*truncated"):
        read_image(tmp_path / "half.png")
    (tmp_path / "garbage.png").write_bytes(good[:8] + bytes(RNG.integers(0, 256, 200,
                                                                         dtype=np.uint8)))
    with pytest.raises(DataError, match=r"garbage.png: not a readable image \(Pillow cannot "):
        read_image(tmp_path / "garbage.png")
    (tmp_path / "text.png").write_bytes(b"hello, not an image")
    with pytest.raises(DataError, match=r"text.png: not a readable image \(Pillow cannot identify"
                       r" an image in it; it starts with b'hello, n'\)"):
        read_image(tmp_path / "text.png")


def write_class_folders(root, sizes, channels=1):
    """root/train/<class>/<i>.png, one uniform image per size: value 10 * class + i."""
    pytest.importorskip("PIL")
    for label, name in enumerate(["ankle", "bag"]):
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, size in enumerate(sizes[label]):
            image = np.full(size + (channels,), 10 * label + i, np.uint8)
            (folder / f"{i}.png").write_bytes(image_bytes(image[..., 0] if channels == 1
                                                          else image))


def test_image_folder(tmp_path):
    write_class_folders(tmp_path, [[(4, 5)] * 3, [(4, 5)] * 3])
    gray = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    (tmp_path / "train" / "bag" / "x.pgm").write_bytes(b"P5\n# comment\n5 4\n255\n"
                                                       + gray.tobytes())
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "train" / "bag" / "notes.txt").write_text("not an image")
    data = load_dataset(tmp_path, "train")
    assert data.classes == ["ankle", "bag"] and data.x.shape == (7, 1, 4, 5)
    assert list(data.y) == [0, 0, 0, 1, 1, 1, 1] and data.x[4, 0, 0, 0] == 11
    assert np.array_equal(data.x[-1, 0], gray) and data.notes == []


def test_image_folder_of_mixed_sizes(tmp_path):
    write_class_folders(tmp_path, [[(4, 5), (4, 5)], [(4, 5), (9, 7)]])
    with pytest.raises(DataError, match=r"train: images of different sizes \(ankle.0.png is 4x5,"
                       r" bag.1.png is 9x7, HxW\); pass --resize H,W"):
        load_dataset(tmp_path, "train")
    data = load_dataset(tmp_path, "train", resize=(6, 6))
    assert data.x.shape == (4, 1, 6, 6) and [int(v) for v in data.x[:, 0, 3, 3]] == [0, 1, 10, 11]
    assert data.notes == [f"{tmp_path / 'train'}: 4 images resized to 6x6"]


def test_image_folder_of_grey_and_colour(tmp_path):
    write_class_folders(tmp_path, [[(4, 5)], [(4, 5)]], channels=3)
    (tmp_path / "train" / "bag" / "grey.png").write_bytes(image_bytes(np.full((4, 5), 77,
                                                                              np.uint8)))
    data = load_dataset(tmp_path, "train")
    assert data.x.shape == (3, 3, 4, 5) and (data.x[-1] == 77).all()
    assert "1 grey images among colour ones (e.g. bag/grey.png) converted to RGB" in data.notes[0]


def test_image_folder_with_a_broken_image(tmp_path):
    write_class_folders(tmp_path, [[(4, 5)], [(4, 5)]])
    (tmp_path / "train" / "bag" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataError, match=r"bag.9.png: not a"):
        load_dataset(tmp_path, "train")


def test_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope", "train")
    with pytest.raises(DataError, match="no train data found"):
        load_dataset(tmp_path, "train")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="unknown data file"):
        load_dataset(tmp_path / "x.csv", "train")
