"""The loss kernels (softmax cross-entropy, mean squared error, mean absolute error, binary
cross-entropy with logits) against PyTorch: the loss and, by autograd, its gradient, times a
per-output weight, on the CPU and on the CUDA backend (in Numba's simulator in CI), float64
and float32. Edge cases: bce at logits of +-50 (finite and exact), l1 at exact ties (gradient
0), label smoothing with a weight, and several outputs' losses summed through `total`."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numba import cuda

from cnngraph.kernels.cpu import support as cpu
from cnngraph.kernels.cuda import support as gpu

from helpers import DTYPES, TOLERANCE

N, K = 3, 5
WEIGHT = 0.3
BACKENDS = pytest.mark.parametrize("backend", ["cpu", "cuda"])

TORCH_LOSSES = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "bce_with_logits": F.binary_cross_entropy_with_logits,
}


def _torch(loss_fn, outputs, *args):
    """PyTorch's loss (times WEIGHT) and its gradient with respect to the outputs."""
    z = torch.tensor(outputs, requires_grad=True)
    loss = WEIGHT * loss_fn(z, *args)
    loss.backward()
    assert z.grad is not None
    return loss.item(), z.grad.numpy()


def _ours(backend: str, name: str, outputs, targets, *extra):
    """Our kernel's loss (a float) and gradient, for a backend."""
    grad = np.full_like(outputs, np.nan)
    if backend == "cpu":
        loss = getattr(cpu, f"{name}_cpu")(outputs, targets, grad, *extra, WEIGHT, N)
        return float(loss), grad
    d_grad = cuda.to_device(grad)
    loss = getattr(gpu, f"{name}_cuda")(cuda.to_device(outputs), cuda.to_device(targets),
                                        d_grad, *extra, WEIGHT, N)
    cuda.synchronize()
    assert loss.shape == (1,) and loss.dtype == outputs.dtype
    return float(loss.copy_to_host()[0]), d_grad.copy_to_host()


def _check(backend, dtype, name, outputs, targets, expected):
    """Our loss and gradient equal PyTorch's `expected`; returns ours."""
    loss, grad = _ours(backend, name, outputs, targets)
    assert grad.dtype == np.dtype(dtype)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(loss, expected[0], **tol)
    np.testing.assert_allclose(grad, expected[1], **tol)
    return loss, grad


def _data(dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    outputs = rng.standard_normal((N, K)).astype(dtype)
    return rng, outputs


@BACKENDS
@DTYPES
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_xent_with_weight_matches_torch(backend, dtype, smoothing):
    rng, logits = _data(dtype)
    labels = rng.integers(0, K, N)
    grad = np.full_like(logits, np.nan)
    if backend == "cpu":
        loss = float(cpu.softmax_xent_cpu(logits, labels, grad, smoothing, WEIGHT, N))
    else:
        d_grad = cuda.to_device(grad)
        d_loss = gpu.softmax_xent_cuda(cuda.to_device(logits), cuda.to_device(labels), d_grad,
                                       smoothing, WEIGHT, N)
        loss, grad = float(d_loss.copy_to_host()[0]), d_grad.copy_to_host()
    expected = _torch(lambda z: F.cross_entropy(z, torch.tensor(labels),
                                                label_smoothing=smoothing), logits)
    np.testing.assert_allclose(loss, expected[0], **TOLERANCE[dtype])
    np.testing.assert_allclose(grad, expected[1], **TOLERANCE[dtype])


@BACKENDS
@DTYPES
@pytest.mark.parametrize("name", ["mse", "l1"])
def test_regression_losses_match_torch(backend, dtype, name):
    rng, outputs = _data(dtype)
    targets = rng.standard_normal((N, K)).astype(dtype)
    _check(backend, dtype, name, outputs, targets,
           _torch(TORCH_LOSSES[name], outputs, torch.tensor(targets)))


@BACKENDS
@DTYPES
def test_l1_gradient_is_zero_at_exact_ties(backend, dtype):
    rng, outputs = _data(dtype)
    targets = rng.standard_normal((N, K)).astype(dtype)
    targets[0] = outputs[0]
    targets[2, 1:3] = outputs[2, 1:3]
    expected = _torch(F.l1_loss, outputs, torch.tensor(targets))
    assert (expected[1][0] == 0).all() and (expected[1][2, 1:3] == 0).all()
    grad = _check(backend, dtype, "l1", outputs, targets, expected)[1]
    assert (grad[0] == 0).all() and (grad[2, 1:3] == 0).all()


@BACKENDS
@DTYPES
@pytest.mark.parametrize("targets_kind", ["multi_hot", "probabilities"])
def test_bce_with_logits_matches_torch(backend, dtype, targets_kind):
    rng, outputs = _data(dtype)
    if targets_kind == "multi_hot":
        targets = rng.integers(0, 2, (N, K)).astype(dtype)
    else:
        targets = rng.uniform(0, 1, (N, K)).astype(dtype)
    _check(backend, dtype, "bce_with_logits", outputs, targets,
           _torch(F.binary_cross_entropy_with_logits, outputs, torch.tensor(targets)))


@BACKENDS
@DTYPES
def test_bce_with_logits_is_finite_and_exact_at_extreme_logits(backend, dtype):
    # logits of +-50 against targets 0, 1 and 0.5: the loss terms are 50, ~2e-22 and 25, the
    # gradients -1, 0, +-0.5 (times the weight over N K); a naive log(sigmoid) gives inf or NaN
    outputs = np.array([[50, -50, 50, -50, 50], [-50, 50, -50, 50, -50],
                        [50, 50, -50, -50, 0.5]], dtype)
    targets = np.array([[0, 1, 1, 0, 0.5], [1, 0, 0.5, 0.5, 0],
                        [1, 0, 0, 1, 1]], dtype)
    expected = _torch(F.binary_cross_entropy_with_logits, outputs, torch.tensor(targets))
    loss, grad = _check(backend, dtype, "bce_with_logits", outputs, targets, expected)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    scale = WEIGHT / (N * K)
    np.testing.assert_allclose(grad[0, :4], [scale, -scale, 0, 0], **TOLERANCE[dtype])
    np.testing.assert_allclose(grad[1, 2:4], [-scale / 2, scale / 2], **TOLERANCE[dtype])


@BACKENDS
def test_losses_of_several_outputs_add_up_through_total(backend):
    """A step's later outputs pass the loss so far as `total` (a float on the CPU, the device
    scalar on CUDA): the result is the weighted sum of every output's loss."""
    rng, outputs = _data("float64")
    targets = rng.standard_normal((N, K))
    labels = rng.integers(0, K, N)
    probabilities = rng.uniform(0, 1, (N, K))
    module, suffix, put = (cpu, "cpu", np.copy) if backend == "cpu" else \
        (gpu, "cuda", cuda.to_device)
    z, grad = put(outputs), put(np.empty_like(outputs))
    total = getattr(module, f"softmax_xent_{suffix}")(z, put(labels), grad, 0.1, WEIGHT, N)
    for name, t in (("mse", targets), ("l1", targets), ("bce_with_logits", probabilities)):
        total = getattr(module, f"{name}_{suffix}")(z, put(t), grad, WEIGHT, N, total=total)
    if backend == "cuda":
        total = total.copy_to_host()[0]
    labels_t = torch.tensor(labels)
    expected = sum(_torch(fn, outputs, *args)[0] for fn, *args in [
        (lambda z: F.cross_entropy(z, labels_t, label_smoothing=0.1),),
        (F.mse_loss, torch.tensor(targets)), (F.l1_loss, torch.tensor(targets)),
        (F.binary_cross_entropy_with_logits, torch.tensor(probabilities))])
    np.testing.assert_allclose(total, expected, **TOLERANCE["float64"])


@BACKENDS
@pytest.mark.parametrize("name", ["softmax_xent", "mse", "l1", "bce_with_logits", "distill"])
def test_a_workers_samples_take_their_share_of_the_whole_batchs_mean(backend, name):
    """Data-parallel workers each pass their own samples and the whole batch's size: their
    losses add up to the whole batch's, and their gradients are its rows."""
    rng, outputs = _data("float64")
    targets = rng.integers(0, K, N) if name == "softmax_xent" else \
        rng.uniform(0, 1, (N, K))
    extra = {"softmax_xent": (0.1,), "distill": (2.0,)}.get(name, ())
    after = (True,) if name == "distill" else ()

    def run(rows: slice):
        grad = np.zeros_like(outputs[rows])
        if backend == "cpu":
            loss = getattr(cpu, f"{name}_cpu")(outputs[rows], targets[rows], grad, *extra,
                                               WEIGHT, *after, N)
            return float(loss), grad
        d_grad = cuda.to_device(grad)
        loss = getattr(gpu, f"{name}_cuda")(cuda.to_device(outputs[rows]),
                                            cuda.to_device(targets[rows]), d_grad, *extra,
                                            WEIGHT, *after, N)
        return float(loss.copy_to_host()[0]), d_grad.copy_to_host()

    whole, first, rest = run(slice(None)), run(slice(0, 1)), run(slice(1, None))
    np.testing.assert_allclose(first[0] + rest[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([first[1], rest[1]]), whole[1], rtol=1e-12)
    assert np.abs(whole[1]).max() > 0
