"""Array targets end to end: a tiny denoiser trained on .npz pairs, its MSE/MAE/PSNR in
training, `eval` and `predict` (arrays and PNG files)."""
import json

import numpy as np
import pytest
from PIL import Image

import cnngraph
from cnngraph.errors import DataError
from cnngraph.train import checkpoint
from cnngraph.train.config import resolve
from cnngraph.train.metrics import Regression, target_peak
from cnngraph.train.png import write_png
from cnngraph.train.runner import train

DENOISER = """version: 1
name: denoiser
input: [1, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - relu
  - conv: {out: 1, kernel: 3, padding: 1}
train:
  loss: mse
  epochs: 3
  batch_size: 16
  optimizer: adam
  lr: 0.01
  normalize: false
  val_split: 0.25
"""


def noisy_pairs(folder, n=64, seed=0):
    """Smooth images in [0, 1] (y) and the same with Gaussian noise (x), as train/test .npz."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[0:8, 0:8] / 7.0
    for split, count in (("train", n), ("test", n // 4)):
        a, b = rng.uniform(0, 1, (2, count, 1, 1, 1))
        clean = (a * rows + b * cols) / 2
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
        np.savez(folder / f"{split}.npz", x=noisy.astype(np.float32),
                 y=clean.astype(np.float32))
    return folder


@pytest.fixture
def denoiser_run(tmp_path_factory):
    """One trained run, shared by the tests that read it."""
    root = tmp_path_factory.mktemp("denoise")
    spec = root / "spec.yaml"
    spec.write_text(DENOISER)
    data = noisy_pairs(root / "data")
    net = cnngraph.load(spec)
    train(net, DENOISER, resolve(net.train), root / "run", str(data), quiet=True)
    return spec, data, root / "run"


def test_a_run_reports_regression_metrics(denoiser_run):
    _, _, out = denoiser_run
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"train_psnr", "val_loss", "val_mse", "val_mae", "val_psnr"} <= set(rows[-1])
    assert "train_acc" not in rows[-1] and "val_acc" not in rows[-1]
    assert rows[-1]["val_mse"] == pytest.approx(rows[-1]["val_loss"])     # the loss is MSE
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "val_psnr" in header and "val_acc" not in header
    meta = checkpoint.load(out / "best.npz")[3]
    assert meta["target_peak"] == 1.0
    assert meta["best"]["val_loss"] == min(r["val_loss"] for r in rows)    # chosen by loss


def test_psnr_is_the_mean_over_samples():
    rng = np.random.default_rng(0)
    outputs, targets = rng.uniform(0, 1, (2, 5, 1, 4, 4))
    totals = Regression("l1", 1.0)
    totals.add(outputs[:3], targets[:3])
    totals.add(outputs[3:], targets[3:])
    per_sample = ((outputs - targets) ** 2).reshape(5, -1).mean(axis=1)
    result = totals.result()
    assert result["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / per_sample)))
    assert result["mse"] == pytest.approx(per_sample.mean())
    assert result["loss"] == result["mae"] == pytest.approx(np.abs(outputs - targets).mean())
    assert target_peak(np.array([0, 200.0])) == 255 and target_peak(np.array([-1, 3.0])) == 4


def test_eval_and_predict_on_a_denoiser(denoiser_run, cli, tmp_path):
    spec, data, out = denoiser_run
    result = cli("eval", spec, "--weights", out / "best.npz", "--data", data)
    assert result.exit_code == 0, result.output
    assert "array targets" in result.output and "PSNR" in result.output and "dB" in result.output
    as_json = json.loads(cli("eval", spec, "--weights", out / "best.npz", "--data", data,
                             "--json").output)
    assert as_json["count"] == 16 and as_json["psnr"] > 0
    images = np.load(data / "test.npz")["x"][:3]
    np.savez(tmp_path / "x.npz", x=images)
    result = cli("predict", spec, "--weights", out / "best.npz", tmp_path / "x.npz", "-o",
                 tmp_path / "pictures")
    assert result.exit_code == 0, result.output
    assert "output (1, 8, 8)" in result.output and "wrote 3 files" in result.output
    arrays = tmp_path / "y.npz"
    cli("predict", spec, "--weights", out / "best.npz", tmp_path / "x.npz", "-o", arrays)
    predicted = np.load(arrays)["y"]
    model = cnngraph.compile(cnngraph.load(spec))
    model.load_weights(out / "best.npz")
    np.testing.assert_allclose(predicted, model.forward(images), rtol=1e-6, atol=1e-7)
    for k in range(3):      # each picture is the output, in 8-bit
        with Image.open(tmp_path / "pictures" / f"x_{k}.png") as picture:
            pixels = np.asarray(picture)
        expected = np.clip(np.rint(predicted[k, 0] * 255), 0, 255)
        np.testing.assert_array_equal(pixels, expected)


def test_png_files_decode_to_their_pixels(tmp_path):
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        pixels = rng.integers(0, 256, (channels, 5, 7), dtype=np.uint8)
        write_png(tmp_path / "p.png", pixels)
        with Image.open(tmp_path / "p.png") as picture:
            decoded = np.asarray(picture)
        assert np.array_equal(decoded.reshape(5, 7, channels).transpose(2, 0, 1), pixels)


def test_bad_regression_setups_are_refused(tmp_path, write_spec):
    data = noisy_pairs(tmp_path / "data", n=16)
    spec = write_spec(DENOISER)
    net = cnngraph.load(spec)
    with pytest.raises(DataError, match="augmentation moves the images but not their array"):
        train(net, DENOISER, resolve(net.train, ["train.augment={hflip: true}"]),
              tmp_path / "a", str(data), quiet=True)
    wide = write_spec(DENOISER.replace("out: 1, kernel", "out: 2, kernel"), "wide.yaml")
    with pytest.raises(DataError, match="targets are 1x8x8 per sample, the network's output is "
                                        "2x8x8"):
        train(cnngraph.load(wide), DENOISER, resolve(net.train), tmp_path / "b", str(data),
              quiet=True)
