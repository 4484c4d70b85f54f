"""The CUDA backend against the CPU backend, under Numba's CUDA simulator in CI (the test
session turns it on unless NUMBA_ENABLE_CUDASIM is set; with NUMBA_ENABLE_CUDASIM=0 on a GPU
machine the same tests run on the hardware).

Every op's forward, eval-mode output, loss, parameter and input gradients and running
statistics agree with the CPU backend (float64 ~1e-9, float32 ~1e-4) on tiny shapes with odd
sizes that fill no block or GEMM tile; so do the optimiser updates, gradient clipping, and a
few training steps of whole small networks (LeNet, a residual block, an Inception block).
"""
from pathlib import Path

import numpy as np
import pytest
from ops.test_kernels import CONV_CASES, MERGES, POINTWISE, POOL_CASES, build

import cnngraph
from cnngraph.errors import DeviceError
from cnngraph.train.optim import SGD, Adam, AdamW, RMSProp, clip_grad_norm

SPECS = Path(__file__).resolve().parents[2] / "specs"
TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-4, atol=2e-5)}


def pair(net, dtype="float64", seed=0):
    return [cnngraph.compile(net, backend=b, dtype=dtype, seed=seed) for b in ("cpu", "cuda")]


def batch_for(net, batch, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, *net.input_shape)),
            rng.integers(0, net.output_shape[0], batch))


def assert_same(cpu, gpu, what, tol):
    for name, value in cpu.items():
        np.testing.assert_allclose(gpu[name], value, **tol, err_msg=f"{what} {name}")


def check(net, dtype="float64", batch=3, smoothing=0.0):
    cpu, gpu = pair(net, dtype)
    tol = TOLERANCE[dtype]
    x, labels = batch_for(net, batch)
    np.testing.assert_allclose(gpu.forward(x), cpu.forward(x), **tol, err_msg="eval logits")
    losses = [m.loss_and_grad(x, labels, smoothing, input_grad=True) for m in (cpu, gpu)]
    np.testing.assert_allclose(losses[1], losses[0], **tol, err_msg="loss")
    np.testing.assert_allclose(gpu.last_logits, cpu.last_logits, **tol, err_msg="logits")
    np.testing.assert_allclose(gpu.input_grad, cpu.input_grad, **tol, err_msg="input grad")
    assert_same(cpu.host_grads(), gpu.host_grads(), "gradient", tol)
    assert_same(cpu.host_buffers(), gpu.host_buffers(), "buffer", tol)


@pytest.mark.parametrize("args", CONV_CASES)
def test_conv(write_spec, args):
    check(build(write_spec, f"  - conv: {args}\n", (3, 7, 6)))


def test_conv_float32_and_batch_of_one(write_spec):
    net = build(write_spec, "  - conv: {out: 5, kernel: 3, padding: 1, groups: 1}\n", (3, 7, 6))
    check(net, "float32")
    check(net, batch=1)


@pytest.mark.parametrize("layer", POOL_CASES)
def test_pooling(write_spec, layer):
    check(build(write_spec, f"  - {layer}\n", (2, 7, 8)))


@pytest.mark.parametrize("layer", POINTWISE)
def test_pointwise_on_maps_and_vectors(write_spec, layer):
    check(build(write_spec, f"  - {layer}\n", (2, 3, 5)), "float32")
    check(build(write_spec, f"  - dense: {{out: 6}}\n  - {layer}\n  - dense: {{out: 3}}\n",
                (7,), head=False))


def test_batchnorm_on_maps_and_vectors(write_spec):
    check(build(write_spec, "  - conv: {out: 3, kernel: 3}\n  - batchnorm: {momentum: 0.3}\n",
                (2, 6, 5)), batch=4)
    check(build(write_spec, "  - dense: {out: 6}\n  - batchnorm: {eps: 0.001}\n"
                            "  - dense: {out: 3}\n", (5,), head=False), "float32", batch=4)


def test_lrn(write_spec):
    check(build(write_spec, "  - lrn: {size: 3, alpha: 0.01, beta: 0.75, k: 2}\n", (5, 3, 4)))


@pytest.mark.parametrize("case", sorted(MERGES))
def test_merges_and_fan_out(write_spec, case):
    check(build(write_spec, MERGES[case], (3, 5, 6)))


def test_concat_and_mul_of_vectors_and_label_smoothing(write_spec):
    check(build(write_spec, "  - parallel:\n      - [dense: {out: 3}]\n      - [dense: {out: 2}]\n"
                            "    merge: concat\n  - dense: {out: 3}\n", (4,), head=False),
          smoothing=0.1)
    check(build(write_spec, "  - parallel:\n      - [dense: {out: 3}]\n"
                            "      - [dense: {out: 3}, sigmoid]\n    merge: mul\n", (4,),
                head=False))


# the simulator runs the hash in NumPy scalars, which warn on the intended uint64 wraparound
@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_dropout_draws_the_cpu_masks(write_spec):
    check(build(write_spec, "  - dropout: {rate: 0.4}\n", (3, 4, 5)))


OPTIMIZERS = {
    "sgd_nesterov": lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3,
                                  decay_bn_bias=False),
    "adam": lambda m: Adam(m, lr=0.01, weight_decay=1e-3),
    "adamw": lambda m: AdamW(m, lr=0.01),
    "rmsprop": lambda m: RMSProp(m, lr=0.01, momentum=0.5, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimiser_steps_and_clipping_match(write_spec, name):
    # no bias before batch norm: its true gradient is zero, and Adam would amplify the noise
    net = build(write_spec, "  - conv: {out: 3, kernel: 3, bias: false}\n  - batchnorm\n"
                            "  - relu\n", (2, 5, 5))
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
    for step in range(3):
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
    from test_fold import SPEC, trained
    net = cnngraph.load(write_spec(SPEC))
    x = np.random.default_rng(1).standard_normal((3, 3, 6, 6))
    np.testing.assert_allclose(trained(net, "cuda").forward(x), trained(net).forward(x),
                               **TOLERANCE["float64"])


def test_batches_staged_ahead_train_like_unstaged_ones(write_spec):
    net = build(write_spec, "  - conv: {out: 3, kernel: 3}\n  - relu\n", (2, 5, 5))
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
