"""conv on the CPU: im2col + GEMM per sample, in parallel over fixed chunks of the batch.

The batch is cut into one chunk per thread (kernels/cpu/chunks.py). Each chunk owns an im2col
workspace and a partial weight gradient; the partials are summed in chunk order, so results are
bitwise reproducible whichever thread runs which chunk.
Forward:      y[n, g] = W[g] (O/g x K) @ col[g] (K x OH*OW) + b
Grad weight:  dW[g] += dy[n, g] @ col[g]^T          Grad input: col[g] = W[g]^T @ dy[n, g]; col2im
A 1x1, stride-1, unpadded conv skips im2col: the input sample is already its column matrix.
"""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.blas import gemm
from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span
from ...kernels.cpu.im2col import col2im, im2col
from ...lowering import IO, Lowering, Scratch
from .lower import bias, bias_grad, geometry


@njit(cache=True, inline="always")
def _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr):
    return kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pb == 0 and pl == 0 \
        and pr == 0


@njit(cache=True, inline="always")
def _sizes(x, w, y, groups):
    """Batch, out channels, kernel, output size, GEMM K, out channels per group, output
    pixels."""
    out_c, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    return x.shape[0], out_c, kh, kw, oh, ow, w.shape[1] * kh * kw, out_c // groups, oh * ow


@chunk_kernel
def _conv_fwd(t, chunks, x, w, b, y, cols, sh, sw, pt, pb, pl, pr, dh, dw, groups,
                 has_bias):
    """Chunk t of the batch, with workspace cols[t]."""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, y, groups)
    direct = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    col = cols[t]
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi):
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct:
            im2col(x[n], col, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        for g in range(groups):
            gemm(False, False, og, hw, k, 1.0, w[g * og:], k, src[g * k:], hw, 0.0,
                 y[n, g * og:], hw)
        if has_bias:
            for o in range(out_c):
                for r in range(oh):
                    for q in range(ow):
                        y[n, o, r, q] += b[o]


@chunk_kernel
def _conv_bwd(t, chunks, x, w, dy, dx, cols, parts, sh, sw, pt, pb, pl, pr, dh, dw, groups,
                 has_bias, need_dx):
    """Chunk t of the batch: its grad input, and its share of the weight gradient in parts[t].
    (The bias gradient is _conv_params_grad's.)"""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, dy, groups)
    direct = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    col = cols[t]
    part = parts[t]
    part[:] = 0
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi):
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct:
            im2col(x[n], col, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        for g in range(groups):
            gemm(False, True, og, k, hw, 1.0, dy[n, g * og:], hw, src[g * k:], hw, 1.0,
                 part[g * og:], k)
        if need_dx:
            target = dx[n].reshape(x.shape[1], hw) if direct else col
            for g in range(groups):
                gemm(True, False, k, hw, og, 1.0, w[g * og:], k, dy[n, g * og:], hw, 0.0,
                     target[g * k:], hw)
            if not direct:
                col2im(col, dx[n], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)


@chunk_kernel
def _conv_params_grad(t, chunks, parts, dy, dw_, db, has_bias):
    """Chunk t of the weight gradient (the batch chunks' parts summed in chunk order) and of
    the bias gradient."""
    total = dw_.reshape(-1)
    partials = parts.reshape(parts.shape[0], total.size)   # a view per element costs ~50x
    lo, hi = span(t, chunks, total.size)
    for i in range(lo, hi):
        value = partials[0, i]
        for s in range(1, parts.shape[0]):
            value += partials[s, i]
        total[i] = value
    if has_bias:
        out_c = dy.shape[1]
        first, last = span(t, chunks, out_c)
        for o in range(first, last):
            value = 0.0
            for n in range(dy.shape[0]):
                for r in range(dy.shape[2]):
                    for q in range(dy.shape[3]):
                        value += dy[n, o, r, q]
            db[o] = value


def conv_fwd_cpu(x, w, b, y, cols, *geometry) -> None:
    run_chunks(_conv_fwd, cols.shape[0], x, w, b, y, cols, *geometry)


def conv_bwd_cpu(x, w, dy, dx, dw, db, cols, parts, need_dx, *geometry) -> None:
    run_chunks(_conv_bwd, cols.shape[0], x, w, dy, dx, cols, parts, *geometry, need_dx)
    run_chunks(_conv_params_grad, cols.shape[0], parts, dy, dw, db, geometry[-1])


def lower(node, threads: int) -> Lowering:
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    rows = c * a.kernel[0] * a.kernel[1]
    shape = geometry(a)     # the kernels' geometry arguments

    def forward(io: IO) -> list[str]:
        return [f"conv_fwd_cpu({io.x[0]}, {io.param('weight')}, {bias(io, a)}, {io.y}, "
                f"{io.scratch('cols')}, {shape})"]

    def backward(io: IO) -> list[str]:
        dx = io.dx[0] or io.x[0]
        return [f"conv_bwd_cpu({io.x[0]}, {io.param('weight')}, {io.dy}, {dx}, "
                f"{io.grad('weight')}, {bias_grad(io, a)}, {io.scratch('cols@b')}, "
                f"{io.scratch('parts')}, {io.dx[0] is not None}, {shape})"]

    return Lowering(
        module=__name__, kernels=("conv_fwd_cpu", "conv_bwd_cpu"),
        forward=forward, backward=backward, reads=("input",),
        scratch={"cols": Scratch((threads, rows, oh * ow)),
                 "parts": Scratch((threads, *node.params["weight"]), backward_only=True)})


LOWER = {"conv": lower}
