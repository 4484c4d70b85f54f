"""The recipes in examples/ do what they claim, at sizes a test can afford."""
import sys

import numpy as np

import cnngraph

from helpers import ROOT

sys.path.insert(0, str(ROOT / "examples"))   # the recipes under test, imported as modules


def test_deep_image_prior_denoises_without_seeing_the_clean_image():
    import dip_denoise
    clean = dip_denoise.test_image(32)
    assert clean.shape == (3, 32, 32) and 0 <= clean.min() and clean.max() <= 1
    noisy, result, curve = dip_denoise.denoise(clean, 400, every=100, width=16)
    before, after = dip_denoise.psnr(noisy, clean), dip_denoise.psnr(result, clean)
    assert 20 < before < 21                 # sigma 25/255: ~20.2 dB, a little more clipped
    assert after - before >= 3, curve       # 400 iterations: +5.1 dB when written
    assert [step for step, _ in curve] == [100, 200, 300, 400]
    assert not np.allclose(result, noisy)


def test_the_transfer_experiment_splits_the_classes_into_two_tasks(tmp_path):
    import transfer_fashion
    y = np.repeat(np.arange(10), 30)
    x = np.arange(len(y))[:, None, None, None] * np.ones((1, 1, 2, 2), np.uint8)
    (xa, ya), (xb, yb) = transfer_fashion.split_tasks(x, y, 50)
    assert sorted(set(ya)) == [0, 1, 2, 3, 4] and len(ya) == 150
    assert np.bincount(yb).tolist() == [10] * 5              # an equal number per class
    assert (y[xb[:, 0, 0, 0]] == yb + 5).all()               # B's images with their labels
    assert (y[xa[:, 0, 0, 0]] < 5).all()
    again = transfer_fashion.split_tasks(x, y, 50)[1][1]
    assert np.array_equal(again, yb)                         # seeded
    heads = {task: cnngraph.load(transfer_fashion.spec_for(task, tmp_path)).nodes[-1]
             for task in "ab"}
    assert heads["a"].name == "dense3" and heads["b"].name == "head_b"   # B's head is new
    assert heads["a"].shape == heads["b"].shape == (5,)
    lwf = cnngraph.load(transfer_fashion.spec_for("lwf", tmp_path))
    assert [(o.name, o.node) for o in lwf.outputs] == [("main", "head_b"), ("old", "dense3")]


def test_the_landscape_experiment_gives_fashion_mnist_cifars_shape():
    import landscape_resnet
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 1, 28, 28)
    shaped = landscape_resnet.cifar_shaped(x)
    assert shaped.shape == (2, 3, 32, 32) and shaped.dtype == np.uint8
    assert (shaped[:, :, 2:30, 2:30] == x).all()                 # every channel the image
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (shaped[:, :, border] == 0).all()


def test_the_landscape_experiment_measures_the_rise_on_rings():
    import landscape_resnet
    alphas = np.linspace(-1, 1, 41)
    a, b = np.meshgrid(alphas, alphas, indexing="ij")
    bowl = 3 * (a ** 2 + b ** 2)                                   # 3 r^2
    rings = landscape_resnet.ring_means(bowl, alphas, (0.25, 0.5, 1.0))
    assert np.allclose(rings, [3 * 0.25 ** 2, 3 * 0.5 ** 2, 3.0], rtol=0.1)
