"""dense on the CPU: one GEMM per pass over the whole batch (BLAS threads in parallel).

y = x W^T + b;  dW = dy^T x;  db = sum over the batch of dy;  dx = dy W.
"""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.blas import gemm
from ...lowering import IO, Lowering


@njit(cache=True)
def dense_fwd_cpu(x, w, b, y, has_bias):
    n, features = x.shape
    out = w.shape[0]
    gemm(False, True, n, out, features, 1.0, x, features, w, features, 0.0, y, out)
    if has_bias:
        for i in range(n):
            for o in range(out):
                y[i, o] += b[o]


@njit(cache=True)
def dense_bwd_cpu(x, w, dy, dx, dw, db, has_bias, need_dx):
    n, features = x.shape
    out = w.shape[0]
    gemm(True, False, out, features, n, 1.0, dy, out, x, features, 0.0, dw, features)
    if has_bias:
        for o in range(out):
            value = 0.0
            for i in range(n):
                value += dy[i, o]
            db[o] = value
    if need_dx:
        gemm(False, False, n, features, out, 1.0, dy, out, w, features, 0.0, dx, features)


def lower(node, threads: int) -> Lowering:
    bias = node.attrs.bias

    def forward(io: IO) -> list[str]:
        # without a bias the kernel ignores this argument; it only needs the right type
        b = io.param("bias") if bias else f"{io.param('weight')}.reshape(-1)"
        return [f"dense_fwd_cpu({io.x[0]}, {io.param('weight')}, {b}, {io.y}, {bias})"]

    def backward(io: IO) -> list[str]:
        db = io.grad("bias") if bias else f"{io.grad('weight')}.reshape(-1)"
        return [f"dense_bwd_cpu({io.x[0]}, {io.param('weight')}, {io.dy}, "
                f"{io.dx[0] or io.x[0]}, {io.grad('weight')}, {db}, {bias}, "
                f"{io.dx[0] is not None})"]

    return Lowering(module=__name__, kernels=("dense_fwd_cpu", "dense_bwd_cpu"),
                    forward=forward, backward=backward, reads=("input",))


LOWER = {"dense": lower}
