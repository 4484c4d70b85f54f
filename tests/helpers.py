"""The one helper module of the tests.

`check_op` is the check every op's tests run: a tiny network around the op (an
`ops/<op>/cases.py` case), compiled for a backend and dtype, against PyTorch autograd
(`cnngraph.tools.torch_reference`, through the op's own `reference.py`) and, in float64 on the
CPU, against finite differences (`cnngraph.tools.gradcheck`). The CUDA backend runs in Numba's
simulator unless NUMBA_ENABLE_CUDASIM=0 (tests/conftest.py sets it before Numba is imported).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnngraph
from cnngraph.ops import REGISTRY
from cnngraph.ops.base import Case
from cnngraph.tools.gradcheck import gradient_check
from cnngraph.tools.torch_reference import reference
from cnngraph.train.config import resolve
from cnngraph.train.optim import SGD
from cnngraph.train.runner import train

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
# VGGs at CIFAR size for tests of their structure: the same layers, with a quarter of the weights
# (the full ones, 133-144M values, took 6-8 s a net to write and check as ONNX)
CIFAR_SIZED_VGGS = {f"vgg{depth}.yaml": (3, 32, 32) for depth in (11, 13, 16, 19)}

TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-4, atol=2e-5)}
DTYPES = pytest.mark.parametrize("dtype", ["float64", "float32"])


def over(cases: list[Case]):
    """Parametrise a test over cases (argument `case`), each named by its layers."""
    return pytest.mark.parametrize("case", cases, ids=[case.id for case in cases])


def build(folder: Path, case: Case):
    """The case's network, from a spec written to `folder`."""
    text = f"version: 1\ninput: {list(case.input)}\nlayers:\n"
    text += "".join(f"  {line}\n" for line in case.layers.strip().splitlines())
    if case.head:
        text += "  - flatten\n  - dense: {out: 4}\n"
    path = folder / "spec.yaml"
    path.write_text(text)
    return cnngraph.load(path)


def assert_located_error(result, path, line: int, message: str, hint: str | None = None):
    """`cnngraph check`'s result: exit 1 without a traceback, an error at `path`:`line` that
    says `message`, and (if given) `hint` in the hint lines after it."""
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    at = next(i for i, text in enumerate(lines) if text.startswith(f"{path}:{line}:")
              and ": error: " in text)
    assert message in lines[at], result.stderr
    assert hint is None or any(hint in text for text in lines[at:at + 4] if "hint:" in text), \
        result.stderr


def check_op(folder: Path, case: Case, backend: str = "cpu", dtype: str = "float64",
             seed: int = 0, smoothing: float = 0.0, fd: bool = True):
    """`check_net` on the case's network. Returns the compiled model."""
    return check_net(build(folder, case), backend, dtype, case.batch, seed, smoothing, fd)


def check_net(net, backend: str = "cpu", dtype: str = "float64", batch: int = 3, seed: int = 0,
              smoothing: float = 0.0, fd: bool = True):
    """Forward (evaluation mode), loss, every parameter gradient, the input gradient and the
    updated buffers of a network against PyTorch; in float64 on the CPU, the gradients against
    finite differences as well. Returns the compiled model."""
    model = cnngraph.compile(net, backend=backend, dtype=dtype, seed=seed)
    x, labels = batch_for(net, batch, seed)
    ref = reference(model, x, labels, smoothing)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(model.forward(x), ref["logits"], **tol)  # before any update
    loss = model.loss_and_grad(x, labels, smoothing, input_grad=True)
    np.testing.assert_allclose(loss, ref["loss"], **tol)
    grads = model.host_grads()
    for name, grad in ref["grads"].items():
        np.testing.assert_allclose(grads[name], grad, **tol, err_msg=name)
    np.testing.assert_allclose(model.input_grad, ref["input_grad"], **tol, err_msg="input")
    buffers = model.host_buffers()
    for name, value in ref["buffers"].items():
        np.testing.assert_allclose(buffers[name], value, **tol, err_msg=name)
    if fd and dtype == "float64" and backend == "cpu":
        for layer in gradient_check(net, samples=2, batch=batch, seed=seed):
            assert layer.worst < 1e-5, layer
    return model


def batch_for(net, batch: int, seed: int = 0):
    """A random batch of inputs and labels for a network."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, *net.input_shape)),
            rng.integers(0, net.output_shape[0], batch))


def pair(net, dtype: str = "float64", seed: int = 0):
    """The network compiled for the CPU and for the CUDA backend, with the same weights."""
    return [cnngraph.compile(net, backend=b, dtype=dtype, seed=seed) for b in ("cpu", "cuda")]


def assert_same(cpu: dict, gpu: dict, what: str, tol: dict) -> None:
    for name, value in cpu.items():
        np.testing.assert_allclose(gpu[name], value, **tol, err_msg=f"{what} {name}")


def check_cuda_against_cpu(net, dtype: str = "float64", batch: int = 3) -> None:
    """The CUDA backend's eval logits, loss, training logits, input and parameter gradients
    and buffers against the CPU backend's: for what PyTorch cannot reproduce (dropout masks)."""
    cpu, gpu = pair(net, dtype)
    tol = TOLERANCE[dtype]
    x, labels = batch_for(net, batch)
    np.testing.assert_allclose(gpu.forward(x), cpu.forward(x), **tol, err_msg="eval logits")
    losses = [m.loss_and_grad(x, labels, input_grad=True) for m in (cpu, gpu)]
    np.testing.assert_allclose(losses[1], losses[0], **tol, err_msg="loss")
    np.testing.assert_allclose(gpu.last_logits, cpu.last_logits, **tol, err_msg="logits")
    np.testing.assert_allclose(gpu.input_grad, cpu.input_grad, **tol, err_msg="input grad")
    assert_same(cpu.host_grads(), gpu.host_grads(), "gradient", tol)
    assert_same(cpu.host_buffers(), gpu.host_buffers(), "buffer", tol)


def apply(name: str, args: dict, *in_shapes):
    """(op, resolved attrs, output shape) of an op's shape rule on per-sample input shapes."""
    op = REGISTRY[name]
    attrs = op.resolve(op.attrs(args), list(in_shapes))
    return op, attrs, op.shape(attrs, list(in_shapes))


def shape_as_torch(name: str, module, in_shape) -> bool:
    """Whether an op's shape rule gives the shape a PyTorch module gives (arguments default)."""
    import torch
    return apply(name, {}, in_shape)[2] == tuple(module(torch.zeros(1, *in_shape)).shape[1:])


def full_ops(name: str, args: dict, in_shape) -> int:
    """The op's `full`-policy op count per sample."""
    op, attrs, shape = apply(name, args, in_shape)
    return op.cost(attrs, [in_shape], shape).ops


# -- shared specs and runs -------------------------------------------------------------------

# a network whose gradient has kinks (ReLU) near the probed points
KINKED_SPEC = """
version: 1
input: [1, 6, 6]
layers:
  - conv: {out: 2, kernel: 1, padding: 2}
  - conv: {out: 3, kernel: 3, padding: 1}
  - relu
  - flatten
  - dense: {out: 3}
"""


FOLDING_SPEC = """version: 1
input: [3, 6, 6]
layers:
  - conv: {out: 4, kernel: 3, padding: 1, bias: false}
  - batchnorm: {momentum: 0.5}
  - relu
  - conv: {out: 5, kernel: 3}
  - batchnorm
  - flatten
  - dense: {out: 3}
"""


def trained_to_fold(net, backend: str = "cpu"):
    """Three SGD steps in float64, so the running statistics and affine parameters of the
    FOLDING_SPEC network's batch norms have moved from their initial values."""
    model = cnngraph.compile(net, backend=backend, dtype="float64", seed=2)
    opt = SGD(model, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        model.loss_and_grad(rng.standard_normal((4, 3, 6, 6)) * 2 + 1, rng.integers(0, 3, 4))
        opt.step()
    return model


TRAINING_SPEC = """version: 1
name: tiny
input: [1, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - maxpool: {kernel: 2}
  - flatten
  - dropout: {rate: 0.2}
  - dense: {out: 4}
train:
  epochs: 4
  batch_size: 16
  optimizer: sgd
  lr: 0.1
  momentum: 0.9
  schedule: cosine
  warmup_epochs: 1
  augment: {crop_padding: 1, hflip: true}
  val_split: 0.25
  label_smoothing: 0.05
"""


def make_quadrants(folder, n=96, seed=0):
    """Four classes: a bright square in one of the four quadrants, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("test", n // 2)):
        y = rng.integers(0, 4, count)
        x = rng.integers(0, 60, (count, 1, 8, 8)).astype(np.uint8)
        for i, label in enumerate(y):
            r, c = divmod(label, 2)
            x[i, 0, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 150
        np.savez(folder / f"{split}.npz", x=x, y=y, classes=np.array(["a", "b", "c", "d"]))
    return folder


def run(setup, out, overrides=(), resume=False, **options):
    """`cnngraph train` of the `setup` fixture's tiny run into `out`, settings overridden."""
    net, text, data, _ = setup
    config = resolve(net.train, overrides, **options)
    return train(net, text, config, out, data, resume=resume, quiet=True)
