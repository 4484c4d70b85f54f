"""Fine-tuning settings (train/finetune.py): freezing, frozen batch-norm statistics and
parameter groups, from the patterns to the training run."""
import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.errors import SpecError
from cnngraph.passes.autodiff import Backward, backward_schedule
from cnngraph.tools.torch_reference import run_outputs
from cnngraph.train import checkpoint, finetune
from cnngraph.train.config import resolve
from cnngraph.train.optim import SGD, AdamW

from helpers import run

SPEC = """version: 1
input: [2, 6, 6]
blocks:
  stem:
    layers: [conv: {out: 3, kernel: 3, padding: 1}, relu]
  unit:
    params: {width: 4}
    layers:
      - conv: {out: $width, kernel: 3, padding: 1}
      - batchnorm
      - relu
layers:
  - stem:
    id: stem
  - unit: {width: 4}
  - unit: {width: 5}
  - global_avgpool
  - flatten
  - dense: {out: 3}
    id: fc
"""


@pytest.fixture
def net(write_spec):
    return cnngraph.load(write_spec(SPEC))


def frozen(net, *patterns, bn="train"):
    return sorted(finetune.frozen_tensors(net, patterns, bn)[0])


def test_patterns_match_groups_layers_and_parameters(net):
    layers = [node.name for node in net.nodes if node.params]
    assert layers[0].startswith("stem.") and layers[-1] == "fc"
    stem = [f"{layers[0]}.weight", f"{layers[0]}.bias"]
    assert frozen(net, "stem") == sorted(stem)
    assert frozen(net, "stem.*") == sorted(stem)
    assert frozen(net, "fc.bias") == ["fc.bias"]
    assert frozen(net, "*.bias") == sorted(f"{n}.bias" for n in layers)
    assert frozen(net, "stem", "fc.weight") == sorted([*stem, "fc.weight"])
    assert frozen(net, "stem", bn="frozen") == sorted(
        [*stem, *(f"{n}.{k}" for n in layers if "batchnorm" in n
                  for k in ("running_mean", "running_var"))])


def test_a_pattern_that_matches_nothing_is_a_warning_naming_it(net):
    found, warnings = finetune.frozen_tensors(net, ["stem", "fc.wieght"])
    assert found and len(warnings) == 1
    text = warnings[0].render()
    assert "warning" in text and "`fc.wieght`" in text and "fc.weight" in text
    assert "train.freeze[1]" in text
    _, warnings = finetune.settings(net, param_groups=[{"match": "head.*", "lr_mult": 10}])
    assert "`head.*`" in warnings[0].render() and "param_groups[0].match" in warnings[0].render()
    _, warnings = finetune.frozen_tensors(net, [], {"frozen": ["nothing.*"]})
    assert "`nothing.*`" in warnings[0].render()


def test_groups_apply_key_by_key_later_over_earlier(net):
    chosen, warnings = finetune.settings(
        net.with_frozen(["fc.weight"]), 0.01, True,
        [{"match": "fc.*", "lr_mult": 10}, {"match": "*.bias", "weight_decay": 0}])
    assert not warnings and "fc.weight" not in chosen.lr_mult      # frozen: no settings
    assert (chosen.lr_mult["fc.bias"], chosen.weight_decay["fc.bias"]) == (10.0, 0.0)
    conv = next(n for n in chosen.lr_mult if n.endswith(".weight"))
    assert (chosen.lr_mult[conv], chosen.weight_decay[conv]) == (1.0, 0.01)
    lines = finetune.report(net.with_frozen(["fc.weight"]), chosen, 0.1)
    assert lines[0].startswith("frozen: 1 of ") and "fc.weight" in lines[0]
    assert "parameter groups:" in lines and any("lr x10 (1)" in line for line in lines)


def test_backward_stops_at_the_lowest_layer_that_trains(net):
    names = frozen(net, "stem", "unit1")
    steps = [s.node for s in backward_schedule(net.with_frozen(names)) if isinstance(s, Backward)]
    index = [n.name for n in net.nodes].index("unit2.conv1")
    assert steps[-1] == "unit2.conv1"
    assert not {n.name for n in net.nodes[:index]} & set(steps)


def torch_steps(net, params, buffers, groups, x, y, steps, kind):
    """PyTorch's training of `net` with the frozen tensors' requires_grad off and one
    param group per tensor (its lr and weight decay)."""
    tensors = {k: torch.tensor(np.array(v), requires_grad=k not in net.frozen())
               for k, v in params.items()}
    state = {k: torch.tensor(np.array(v)) for k, v in buffers.items()}
    optimizer = kind([{"params": [tensors[k]], **g} for k, g in groups.items()])
    for step in range(steps):
        optimizer.zero_grad()
        out = run_outputs(net, tensors, state, torch.tensor(x[step]), training=True)["main"]
        torch.nn.functional.cross_entropy(out, torch.tensor(y[step])).backward()
        optimizer.step()
    return tensors, state


# (ours, PyTorch's given param groups, base learning rate, weight decay)
OPTIMIZERS = {
    "sgd": (lambda m, g: SGD(m, 0.05, 0.9, weight_decay=0.01, param_groups=g),
            lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9), 0.05, 0.01),
    "adamw": (lambda m, g: AdamW(m, 0.01, weight_decay=0.1, param_groups=g),
              lambda g: torch.optim.AdamW(g, lr=0.01), 0.01, 0.1)}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_frozen_and_grouped_training_matches_pytorch(net, optimizer):
    names = frozen(net, "stem", "unit2.*.bias", "fc.bias", bn={"frozen": ["unit1*"]})
    net = net.with_frozen(names)
    model = cnngraph.compile(net, dtype="float64", seed=3)
    before = {k: np.array(v) for k, v in {**model.params, **model.buffers}.items()}
    groups = [{"match": "fc.*", "lr_mult": 10}, {"match": "unit1.*", "weight_decay": 0}]
    make_ours, make_theirs, lr, decay = OPTIMIZERS[optimizer]
    ours = make_ours(model, groups)
    chosen = finetune.settings(net, decay, True, groups)[0]
    assert sorted(set(chosen.lr_mult.values())) == [1, 10]
    assert sorted(set(chosen.weight_decay.values())) == [0, decay]
    torch_groups = {k: {"lr": lr * chosen.lr_mult[k], "weight_decay": chosen.weight_decay[k]}
                    for k in chosen.lr_mult}
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 4, 2, 6, 6)), rng.integers(0, 3, (3, 4))
    tensors, state = torch_steps(net, {k: before[k] for k in model.params},
                                 {k: before[k] for k in model.buffers},
                                 torch_groups, x, y, 3, make_theirs)
    for step in range(3):
        model.loss_and_grad(x[step], y[step])
        ours.step()
    for name in names:                                   # bitwise as they were
        value = model.params.get(name, model.buffers.get(name))
        assert np.array_equal(value, before[name]), name
    for name, value in tensors.items():
        np.testing.assert_allclose(model.params[name], value.detach().numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    for name, value in state.items():
        np.testing.assert_allclose(model.buffers[name], value.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_frozen_gradients_are_never_written(net):
    # frozen layers above ones that train pass the gradient on without their own
    names = frozen(net, "unit2", "fc.bias")
    model = cnngraph.compile(net.with_frozen(names), dtype="float64")
    reference = cnngraph.compile(net, dtype="float64")
    for name in names:
        model.grads[name][...] = np.nan
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 2, 6, 6)), rng.integers(0, 3, 4)
    model.loss_and_grad(x, y, input_grad=True)
    reference.loss_and_grad(x, y, input_grad=True)
    for name in model.grads:
        if name in names:
            assert np.isnan(model.grads[name]).all(), name
        else:
            np.testing.assert_allclose(model.grads[name], reference.grads[name], rtol=1e-12,
                                       atol=1e-14, err_msg=name)
    np.testing.assert_allclose(model.input_grad, reference.input_grad, rtol=1e-12, atol=1e-14)


def test_a_run_keeps_frozen_tensors_and_reports_them(setup, capsys):
    out = setup[3] / "run"
    run(setup, out, ["train.freeze=[conv1, dense1.bias, nothing*]", "train.bn=frozen",
                     "train.weight_decay=0.01",
                     "train.param_groups=[{match: dense1.*, lr_mult: 2}]"], epochs=2)
    text = capsys.readouterr().err
    assert "`nothing*`" in text and "frozen: 3 of 6 parameter tensors, 44 of 308" in text
    assert "batch norm with frozen statistics: 1 (batchnorm1)" in text
    assert "lr x2 (0.2), weight decay 0.01: 1 tensor (dense1.weight)" in text
    params, buffers, _, meta = checkpoint.load(out / "last.npz")
    initial = cnngraph.compile(setup[0], seed=meta["config"]["seed"])
    for name in ("conv1.weight", "conv1.bias", "dense1.bias"):
        assert np.array_equal(params[name], initial.params[name]), name
    for name in ("batchnorm1.running_mean", "batchnorm1.running_var"):
        assert np.array_equal(buffers[name], initial.buffers[name]), name
    for name in ("batchnorm1.weight", "dense1.weight"):
        assert not np.array_equal(params[name], initial.params[name]), name


def test_freezing_everything_is_refused(setup):
    with pytest.raises(SpecError, match="nothing would train"):
        run(setup, setup[3] / "run", ["train.freeze=['*']"])


def test_bad_settings_are_spec_errors(setup):
    with pytest.raises(SpecError, match="bn"):
        resolve(setup[0].train, ["train.bn=sometimes"])
    with pytest.raises(SpecError, match="match"):
        resolve(setup[0].train, ["train.param_groups=[{lr_mult: 2}]"])


def test_a_run_from_a_checkpoint_keeps_its_input_statistics(setup, capsys):
    base = setup[3] / "base"
    run(setup, base, epochs=1)
    other_split = setup[3] / "other"
    run(setup, other_split, ["train.seed=1"], epochs=1)
    tuned = setup[3] / "tuned"
    run(setup, tuned, ["train.seed=1", f"train.init_from={base / 'last.npz'}"], epochs=1)
    statistics = {name: checkpoint.load(folder / "last.npz")[3]["normalizer"]
                  for name, folder in (("base", base), ("other", other_split), ("tuned", tuned))}
    assert statistics["other"] != statistics["base"]      # another split: other statistics
    assert statistics["tuned"] == statistics["base"]      # what the weights expect
    assert "normalised with" in capsys.readouterr().err
