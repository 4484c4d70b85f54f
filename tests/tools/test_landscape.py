"""`cnngraph landscape`: the loss surface around trained weights."""
import numpy as np
import pytest

from cnngraph.tools.landscape import direction, mean_loss, surface
from cnngraph.train.readers import load_dataset
from cnngraph.train.runner import load_for_inference

from helpers import run


def test_directions_are_filter_normalised():
    rng = np.random.default_rng(0)
    params = {"conv.weight": rng.standard_normal((4, 3, 3, 3)) * np.arange(1, 5)[:, None, None,
                                                                                 None],
              "conv.bias": rng.standard_normal(4), "dense.weight": rng.standard_normal((2, 6))}
    found = direction(params, np.random.default_rng(1))
    for name in ("conv.weight", "dense.weight"):
        ours = np.linalg.norm(found[name].reshape(len(found[name]), -1), axis=1)
        theirs = np.linalg.norm(params[name].reshape(len(params[name]), -1), axis=1)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert not found["conv.bias"].any()                 # vectors are not moved


def test_the_surface_at_the_origin_is_the_evaluated_loss(setup, cli, tmp_path):
    out = tmp_path / "run"
    run(setup, out, epochs=2)
    model, normalizer, _ = load_for_inference(setup[0], out / "best.npz")
    data = load_dataset(setup[2], "test")
    x, labels = normalizer(data.x[:20]), data.y[:20]
    before = {k: v.copy() for k, v in model.params.items()}
    found = surface(model, x, labels, grid=5, span=0.5)
    assert found.losses.shape == (5, 5) and found.alphas[2] == 0 == found.betas[2]
    assert found.losses[2, 2] == pytest.approx(mean_loss(model, x, labels), rel=1e-6)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)   # restored
    assert found.losses.max() > found.losses[2, 2]      # trained weights sit low
    picture = tmp_path / "landscape.png"
    spec = setup[3] / "spec.yaml"
    result = cli("landscape", spec, "--weights", out / "best.npz", "--samples", 20, "--grid", 5,
                 "--span", 0.5, "-o", picture)
    assert result.exit_code == 0, result.output
    values = np.load(picture.with_suffix(".npz"))
    np.testing.assert_allclose(values["losses"], found.losses, rtol=1e-6)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    even = cli("landscape", spec, "--weights", out / "best.npz", "--grid", 4)
    assert even.exit_code == 1 and "odd number" in even.output   # no point at the weights
