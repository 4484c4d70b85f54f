"""Inputs for `cnngraph predict`: image files and .npz arrays in the units of the training data,
with notes on every conversion, and a DataError naming the file for anything unusable."""
import io

import numpy as np
import pytest

from cnngraph.errors import DataError
from cnngraph.train.inputs import load_prediction_inputs

RNG = np.random.default_rng(0)


def png(path, array: np.ndarray) -> str:
    """Write (H, W) or (H, W, C) uint8 as a PNG with Pillow; returns the path as a string."""
    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return str(path)


@pytest.fixture
def pixels():
    return RNG.integers(0, 256, (2, 1, 4, 5), dtype=np.uint8)


def test_uint8_png_keeps_its_pixels_for_uint8_training(tmp_path, pixels):
    pytest.importorskip("PIL")
    path = png(tmp_path / "a.png", pixels[0, 0])
    names, batch, notes = load_prediction_inputs([path], (1, 4, 5), 255.0)
    assert names == [path] and notes == []
    assert batch.dtype == np.float32 and batch.shape == (1, 1, 4, 5)
    assert np.array_equal(batch, pixels[:1].astype(np.float32))


def test_png_scaled_to_float_training_units(tmp_path, pixels):
    pytest.importorskip("PIL")
    paths = [png(tmp_path / f"{i}.png", pixels[i, 0]) for i in range(2)]
    names, batch, notes = load_prediction_inputs(paths, (1, 4, 5), 1.0)
    np.testing.assert_allclose(batch, pixels / 255.0, rtol=1e-6)
    assert notes == [f"{paths[0]}, {paths[1]}: pixels 0-255 scaled to [0, 1] as in training"]


def test_float_npz_in_0_1_scaled_to_0_255(tmp_path, pixels):
    x = pixels.astype(np.float32) / 255
    np.savez(tmp_path / "x.npz", x=x)
    path = str(tmp_path / "x.npz")
    names, batch, notes = load_prediction_inputs([path], (1, 4, 5), 255.0)
    assert names == [f"{path}[0]", f"{path}[1]"]
    np.testing.assert_allclose(batch, pixels.astype(np.float32), rtol=1e-5)
    assert notes == [f"{path}: float values in [0, 1], scaled to 0-255 as in training"]


def test_float_npz_in_0_255_is_not_scaled_again(tmp_path, pixels):
    np.savez(tmp_path / "x.npz", x=pixels.astype(np.float64))
    path = str(tmp_path / "x.npz")
    _, batch, notes = load_prediction_inputs([path], (1, 4, 5), 255.0)
    assert np.array_equal(batch, pixels.astype(np.float32))
    assert notes == [f"{path}: float values up to {pixels.max()}, taken as pixels 0-255"]
    _, batch, notes = load_prediction_inputs([path], (1, 4, 5), 1.0)
    np.testing.assert_allclose(batch, pixels / 255.0, rtol=1e-6)
    assert notes[0].endswith("taken as pixels 0-255, scaled to [0, 1] as in training")


def test_uint8_npz_for_float_training(tmp_path, pixels):
    np.savez(tmp_path / "x.npz", x=pixels)
    path = str(tmp_path / "x.npz")
    _, batch, notes = load_prediction_inputs([path], (1, 4, 5), 1.0)
    np.testing.assert_allclose(batch, pixels / 255.0, rtol=1e-6)
    assert notes == [f"{path}: uint8 pixels 0-255, scaled to [0, 1] as in training"]


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "nhw", "chw", "hwc", "hw"])
def test_npz_shapes(tmp_path, layout):
    channels = 1 if layout in ("nhw", "hw") else 3
    x = RNG.integers(0, 256, (2, channels, 4, 5), dtype=np.uint8)
    stored = {"nchw": x, "nhwc": x.transpose(0, 2, 3, 1), "nhw": x[:, 0], "chw": x[0],
              "hwc": x[0].transpose(1, 2, 0), "hw": x[0, 0]}[layout]
    np.savez(tmp_path / "x.npz", x=stored)
    names, batch, notes = load_prediction_inputs([str(tmp_path / "x.npz")], (channels, 4, 5),
                                                 255.0)
    count = 2 if layout.startswith("n") else 1
    assert len(names) == count and np.array_equal(batch, x[:count].astype(np.float32))
    assert bool(notes) == (layout in ("nhwc", "hwc"))
    if notes:
        assert "channels-last" in notes[0] and "transposed" in notes[0]


def test_grey_and_colour_files_converted_to_what_the_network_takes(tmp_path):
    pytest.importorskip("PIL")
    grey = png(tmp_path / "grey.png", np.full((4, 5), 90, np.uint8))
    colour = png(tmp_path / "colour.png", np.full((4, 5, 3), (200, 100, 0), np.uint8))
    _, batch, notes = load_prediction_inputs([grey], (3, 4, 5), 255.0)
    assert batch.shape == (1, 3, 4, 5) and (batch == 90).all()
    assert notes == [f"{grey}: converted to RGB, as the network takes 3-channel images"]
    _, batch, notes = load_prediction_inputs([colour], (1, 4, 5), 255.0)
    assert batch.shape == (1, 1, 4, 5) and (batch == 119).all()      # 0.299 R + 0.587 G, rounded
    assert notes == [f"{colour}: converted to grey, as the network takes 1-channel images"]


def test_files_and_arrays_together_keep_their_order(tmp_path, pixels):
    pytest.importorskip("PIL")
    np.savez(tmp_path / "x.npz", x=pixels)
    a = png(tmp_path / "a.png", pixels[1, 0])
    names, batch, _ = load_prediction_inputs([a, str(tmp_path / "x.npz")], (1, 4, 5), 255.0)
    assert names == [a, f"{tmp_path / 'x.npz'}[0]", f"{tmp_path / 'x.npz'}[1]"]
    assert np.array_equal(batch[0], batch[2]) and np.array_equal(batch[1], pixels[0])


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 1, 5, 4), np.uint8), r"x has shape \(2, 1, 5, 4\), the spec expects 1x4x5"),
    (np.zeros((0, 1, 4, 5), np.uint8), "x holds no images"),
    (np.full((1, 1, 4, 5), np.nan, np.float32), "the images hold NaN or infinite values"),
    (np.full((1, 1, 4, 5), -0.5, np.float32), r"values from -0.5 to -0.5 are neither pixels"),
    (np.full((1, 1, 4, 5), 300, np.int32), "int32 pixels from 300 to 300"),
    (np.full((1, 1, 4, 5), "a"), "expected uint8 or float images, received <U1"),
], ids=["shape", "empty", "nan", "standardised", "wide-ints", "strings"])
def test_unusable_arrays(tmp_path, x, message):
    np.savez(tmp_path / "x.npz", x=x)
    with pytest.raises(DataError, match="x.npz: " + message):
        load_prediction_inputs([str(tmp_path / "x.npz")], (1, 4, 5), 255.0)


def test_unusable_files(tmp_path):
    pytest.importorskip("PIL")
    big = png(tmp_path / "big.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"big.png: image is 8x8 pixels \(HxW\), the spec expects "
                       "4x5"):
        load_prediction_inputs([big], (1, 4, 5), 255.0)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(DataError, match="junk.png: not a readable image"):
        load_prediction_inputs([str(tmp_path / "junk.png")], (1, 4, 5), 255.0)
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="junk.npz: not a .npz archive"):
        load_prediction_inputs([str(tmp_path / "junk.npz")], (1, 4, 5), 255.0)
    np.savez(tmp_path / "y.npz", y=np.zeros(3))
    with pytest.raises(DataError, match="y.npz: expected arrays `x`, found y"):
        load_prediction_inputs([str(tmp_path / "y.npz")], (1, 4, 5), 255.0)
