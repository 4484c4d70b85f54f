import math

import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.kernels.cpu.chunks import MIN_PARALLEL
from cnngraph.kernels.cpu.optim import sgd_update_cpu
from cnngraph.train.finetune import update_runs
from cnngraph.train.optim import SGD, Adam, AdamW, RMSProp, clip_grad_norm
from cnngraph.train.schedule import Schedule

SPEC = ("version: 1\ninput: [6]\nlayers: [dense: {out: 5}, batchnorm, relu, "
        "dense: {out: 3}]\n")

CASES = {
    "sgd": (lambda m: SGD(m, 0.1), lambda p: torch.optim.SGD(p, 0.1)),
    "sgd_momentum": (lambda m: SGD(m, 0.1, momentum=0.9),
                     lambda p: torch.optim.SGD(p, 0.1, momentum=0.9)),
    "sgd_nesterov_decay": (lambda m: SGD(m, 0.1, 0.9, weight_decay=1e-2, nesterov=True),
                           lambda p: torch.optim.SGD(p, 0.1, 0.9, weight_decay=1e-2,
                                                     nesterov=True)),
    "adam": (lambda m: Adam(m, 0.01, weight_decay=1e-3),
             lambda p: torch.optim.Adam(p, 0.01, weight_decay=1e-3)),
    "adamw": (lambda m: AdamW(m, 0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, 0.01, weight_decay=0.1)),
    "rmsprop": (lambda m: RMSProp(m, 0.01, momentum=0.5, weight_decay=1e-3),
                lambda p: torch.optim.RMSprop(p, 0.01, momentum=0.5, weight_decay=1e-3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizers_match_pytorch_over_steps(write_spec, case):
    ours_factory, torch_factory = CASES[case]
    net = cnngraph.load(write_spec(SPEC))
    model = cnngraph.compile(net, dtype="float64")
    params = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in model.params.items()}
    ours, theirs = ours_factory(model), torch_factory(list(params.values()))
    rng = np.random.default_rng(0)
    for _ in range(4):
        x, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
        model.loss_and_grad(x, y)
        ours.step()
        theirs.zero_grad()
        for name, value in params.items():   # the same gradients, from our backward pass
            value.grad = torch.tensor(np.array(model.grads[name]))
        theirs.step()
        for name, value in params.items():
            np.testing.assert_allclose(model.params[name], value.detach().numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=name)


def per_element(ends: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.repeat(values, np.diff(ends, prepend=0))


def test_decay_runs_exclude_batchnorm_and_biases(write_spec):
    model = cnngraph.compile(cnngraph.load(write_spec(SPEC)))
    ends, values, rates = update_runs(model, 0.5, decay_bn_bias=False)
    assert (rates == 1).all() and ends[-1] == model.flat_params.size and (np.diff(ends) > 0).all()
    assert (values[1:] != values[:-1]).all()       # neighbours with one coefficient merge
    mask = per_element(ends, values)
    offset, excluded = 0, []
    for name, value in model.params.items():
        part = mask[offset:offset + value.size]
        offset += value.size
        if part.max() == 0:
            excluded.append(name)
        else:
            assert (part == 0.5).all()
    assert excluded == ["dense1.bias", "batchnorm1.weight", "batchnorm1.bias", "dense2.bias"]
    ends, values, rates = update_runs(model, 0.5)
    assert ends.tolist() == [model.flat_params.size] and values.tolist() == [0.5]
    assert rates.tolist() == [1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_kernel_walks_runs_across_chunks(dtype):
    # big enough for two chunks, with runs of one element, runs inside a chunk and a run
    # across the chunks' boundary; runs of rate 0 (frozen) are left bitwise alone
    n = 2 * MIN_PARALLEL + 7
    ends = np.array([1, 2, 100, MIN_PARALLEL - 3, MIN_PARALLEL + 50, n - 1, n], np.int64)
    values = np.array([0.5, 0.0, 0.25, 0.0, 0.125, 1.0, 0.0], dtype)
    rates = np.array([1.0, 2.0, 0.0, 1.0, 10.0, 0.0, 0.5], dtype)
    rng = np.random.default_rng(0)
    params, grads, velocity = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    grads[per_element(ends, rates) == 0] = np.nan      # never read where frozen
    decay, rate = per_element(ends, values), per_element(ends, rates)
    lr, momentum = 0.1, 0.9
    frozen = rate == 0
    v = np.where(frozen, velocity, momentum * velocity + grads + decay * params)
    expected = np.where(frozen, params, params - lr * rate * v)
    sgd_update_cpu(params, grads, velocity, ends, values, rates, lr, momentum, False)
    tolerance = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 \
        else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(velocity, v, **tolerance)
    np.testing.assert_allclose(params, expected, **tolerance)
    assert (params[frozen] == expected[frozen]).all()


def test_sgd_without_bn_bias_decay_matches_pytorch_param_groups(write_spec):
    model = cnngraph.compile(cnngraph.load(write_spec(SPEC)), dtype="float64")
    ours = SGD(model, 0.1, 0.9, weight_decay=0.05, decay_bn_bias=False)
    params = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in model.params.items()}
    undecayed = {"dense1.bias", "batchnorm1.weight", "batchnorm1.bias", "dense2.bias"}
    theirs = torch.optim.SGD(
        [{"params": [v for k, v in params.items() if k not in undecayed]},
         {"params": [v for k, v in params.items() if k in undecayed], "weight_decay": 0.0}],
        lr=0.1, momentum=0.9, weight_decay=0.05)
    rng = np.random.default_rng(1)
    for _ in range(3):
        model.loss_and_grad(rng.standard_normal((4, 6)), rng.integers(0, 3, 4))
        ours.step()
        for name, value in params.items():
            value.grad = torch.tensor(np.array(model.grads[name]))
        theirs.step()
    for name, value in params.items():
        np.testing.assert_allclose(model.params[name], value.detach().numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_clip_grad_norm(write_spec):
    model = cnngraph.compile(cnngraph.load(write_spec(SPEC)))
    model.flat_grads[...] = 1.0
    norm = clip_grad_norm(model, 1.0)
    assert math.isclose(norm, math.sqrt(model.flat_grads.size), rel_tol=1e-6)
    assert math.isclose(float(np.linalg.norm(model.flat_grads)), 1.0, rel_tol=1e-5)
    clip_grad_norm(model, 10.0)
    assert math.isclose(float(np.linalg.norm(model.flat_grads)), 1.0, rel_tol=1e-5)


def torch_rates(make, epochs, metric=None):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.1)
    sched = make(opt)
    rates = []
    for epoch in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(metric[epoch]) if metric else sched.step()
    return rates


@pytest.mark.parametrize("ours, make", [
    (dict(kind="step", step_size=3, gamma=0.5),
     lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    (dict(kind="multistep", milestones=(2, 5), gamma=0.1),
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1)),
    (dict(kind="exponential", gamma=0.9),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    (dict(kind="cosine", epochs=8, min_lr=0.001),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 8, 0.001)),
])
def test_epoch_schedules_match_pytorch(ours, make):
    schedule = Schedule(0.1, **ours)
    np.testing.assert_allclose([schedule.lr(e) for e in range(8)], torch_rates(make, 8))


def test_plateau_matches_pytorch():
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.85, 0.85, 0.85, 0.85, 0.85]
    schedule = Schedule(0.1, kind="plateau", patience=2, factor=0.1)
    rates = []
    for loss in losses:
        rates.append(schedule.lr(0))
        schedule.end_epoch(loss)
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, factor=0.1, patience=2), len(losses), losses)
    np.testing.assert_allclose(rates, expected)


def test_linear_warmup_then_cosine():
    schedule = Schedule(1.0, kind="cosine", epochs=10, warmup_epochs=2)
    assert math.isclose(schedule.lr(0, 0, 4), 0.125)           # ramps up per step
    assert math.isclose(schedule.lr(1, 3, 4), 1.0)
    assert math.isclose(schedule.lr(2, 0, 4), 1.0)             # the cosine starts after warm-up
    assert math.isclose(schedule.lr(6, 0, 4), 0.5)
    assert schedule.lr(9, 3, 4) < 0.02
