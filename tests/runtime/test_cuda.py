"""The CUDA backend against the CPU backend, under Numba's CUDA simulator in CI (the test
session turns it on unless NUMBA_ENABLE_CUDASIM is set; with NUMBA_ENABLE_CUDASIM=0 on a GPU
machine the same tests run on the hardware): the optimiser updates, gradient clipping, a few
training steps of whole small networks (LeNet, a residual block, an Inception block), folded
inference and staged batches agree (float64 ~1e-9, float32 ~1e-4). Each op's own kernels are
tested against PyTorch in tests/ops/test_<op>.py, on the CUDA backend as on the CPU.
"""
import numpy as np
import pytest

import cnngraph
from cnngraph.errors import DeviceError
from cnngraph.ops.base import Case
from cnngraph.train.optim import SGD, Adam, AdamW, RMSProp, clip_grad_norm

from helpers import (
    FOLDING_SPEC,
    SPECS,
    TOLERANCE,
    assert_same,
    batch_for,
    build,
    pair,
    trained_to_fold,
)

OPTIMIZERS = {
    "sgd_nesterov": lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3,
                                  decay_bn_bias=False),
    "adam": lambda m: Adam(m, lr=0.01, weight_decay=1e-3),
    "adamw": lambda m: AdamW(m, lr=0.01),
    "rmsprop": lambda m: RMSProp(m, lr=0.01, momentum=0.5, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimiser_steps_and_clipping_match(tmp_path, name):
    # no bias before batch norm: its true gradient is zero, and Adam would amplify the noise
    net = build(tmp_path, Case("- conv: {out: 3, kernel: 3, bias: false}\n- batchnorm\n- relu",
                               (2, 5, 5)))
    models = pair(net, "float32")
    optimizers = [OPTIMIZERS[name](m) for m in models]
    x, labels = batch_for(net, 3)
    for _ in range(2):
        norms = []
        for model, opt in zip(models, optimizers, strict=True):
            model.loss_and_grad(x, labels)
            norms.append(clip_grad_norm(model, 0.5))
            opt.step()
        np.testing.assert_allclose(norms[1], norms[0], rtol=1e-5)
    assert_same(models[0].host_params(), models[1].host_params(), "parameter",
                dict(rtol=1e-4, atol=1e-5))
    state = [opt.state_dict() for opt in optimizers]
    assert_same(state[0], state[1], "optimiser state", dict(rtol=1e-4, atol=1e-5))


NETWORKS = {
    "lenet": (SPECS / "lenet.yaml", (1, 12, 12)),
    "residual": ("""
        version: 1
        input: [3, 6, 6]
        include: [{specs}/blocks/classic.yaml]
        layers:
          - conv: {{out: 4, kernel: 3, padding: 1, bias: false}}
          - batchnorm
          - relu
          - basic: {{out: 6, stride: 2, project: true}}
          - global_avgpool
          - flatten
          - dense: {{out: 3}}
        """, None),
    "inception": ("""
        version: 1
        input: [3, 5, 5]
        include: [{specs}/blocks/classic.yaml]
        layers:
          - inception: {{c1: 2, c3_reduce: 2, c3: 3, c5_reduce: 1, c5: 2, pool_proj: 2}}
          - global_avgpool
          - flatten
          - dense: {{out: 3}}
        """, None),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_small_networks_train_step_by_step_like_the_cpu(write_spec, name):
    source, shape = NETWORKS[name]
    net = cnngraph.load(source, input_shape=shape) if shape else \
        cnngraph.load(write_spec(source.format(specs=SPECS)))
    models = pair(net, "float64", seed=1)
    optimizers = [SGD(m, lr=0.05, momentum=0.9) for m in models]
    x, labels = batch_for(net, 2)
    for step in range(2):            # the second with momentum
        losses = []
        for model, opt in zip(models, optimizers, strict=True):
            losses.append(model.loss_and_grad(x, labels))
            opt.step()
        np.testing.assert_allclose(losses[1], losses[0], rtol=1e-9, err_msg=f"step {step}")
    assert_same(models[0].host_params(), models[1].host_params(), "parameter",
                TOLERANCE["float64"])


def test_without_a_gpu_or_the_simulator_the_error_says_what_to_do(monkeypatch):
    from cnngraph.kernels.cuda import launch
    monkeypatch.setattr(launch, "SIMULATOR", False)
    monkeypatch.setattr("numba.cuda.is_available", lambda: False)
    with pytest.raises(DeviceError, match="NUMBA_ENABLE_CUDASIM=1"):
        cnngraph.compile(cnngraph.load(SPECS / "lenet.yaml"), backend="cuda")


def test_folded_inference_after_training_matches_the_cpu(write_spec):
    net = cnngraph.load(write_spec(FOLDING_SPEC))
    x = np.random.default_rng(1).standard_normal((3, 3, 6, 6))
    np.testing.assert_allclose(trained_to_fold(net, "cuda").forward(x),
                               trained_to_fold(net).forward(x), **TOLERANCE["float64"])


def test_batches_staged_ahead_train_like_unstaged_ones(tmp_path):
    net = build(tmp_path, Case("- conv: {out: 3, kernel: 3}\n- relu", (2, 5, 5)))
    cpu, gpu = pair(net)
    opts = [SGD(m, lr=0.1, momentum=0.9) for m in (cpu, gpu)]
    batches = [batch_for(net, 3, seed) for seed in range(4)]
    gpu.stage(*batches[0])
    order = [(0, 1), (1, 2), (2, None), (3, None)]       # step, batch staged during it
    for step, coming in order:
        if coming is not None:
            gpu.stage(*batches[coming])
        if step == 2:
            gpu.stage(*batches[0])                        # announced, then not used: dropped
        losses = [m.loss_and_grad(*batches[step]) for m in (cpu, gpu)]
        np.testing.assert_allclose(losses[1], losses[0], **TOLERANCE["float64"])
        np.testing.assert_allclose(gpu.last_logits, cpu.last_logits, **TOLERANCE["float64"])
        for opt in opts:
            opt.step()
    assert gpu._staged == []
