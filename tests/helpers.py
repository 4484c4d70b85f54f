"""The one check every op's tests run: a tiny network around the op, compiled for a backend and
dtype, against PyTorch autograd (`cnngraph.tools.torch_reference`, through the op's own
`reference.py`) and, in float64, against finite differences (`cnngraph.tools.gradcheck`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import cnngraph
from cnngraph.ops.base import Case
from cnngraph.tools.gradcheck import gradient_check
from cnngraph.tools.torch_reference import reference

TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-4, atol=2e-5)}


def build(folder: Path, case: Case):
    """The case's network, from a spec written to `folder`."""
    text = f"version: 1\ninput: {list(case.input)}\nlayers:\n"
    text += "".join(f"  {line}\n" for line in case.layers.strip().splitlines())
    if case.head:
        text += "  - flatten\n  - dense: {out: 4}\n"
    path = folder / "spec.yaml"
    path.write_text(text)
    return cnngraph.load(path)


def check_op(folder: Path, case: Case, backend: str = "cpu", dtype: str = "float64",
             seed: int = 0, smoothing: float = 0.0, fd: bool = True):
    """Forward (evaluation mode), loss, every parameter gradient, the input gradient and the
    updated buffers of the case's network against PyTorch; in float64 on the CPU, the gradients
    against finite differences as well. Returns the compiled model."""
    net = build(folder, case)
    model = cnngraph.compile(net, backend=backend, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, *net.input_shape))
    labels = rng.integers(0, net.output_shape[0], case.batch)
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
        for layer in gradient_check(net, samples=2, batch=case.batch, seed=seed):
            assert layer.worst < 1e-5, layer
    return model
