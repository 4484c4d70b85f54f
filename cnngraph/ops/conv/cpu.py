"""conv on the CPU: im2col + GEMM per sample, in parallel over fixed chunks of the batch.

The batch is cut into one chunk per thread (kernels/cpu/chunks.py). Each chunk owns a partial
weight gradient; the partials are summed in chunk order, so results are bitwise reproducible
whichever thread runs which chunk.
Forward:      y[n, g] = W[g] (O/g x K) @ col[g] (K x OH*OW) + b
Grad weight:  dW[g] += dy[n, g] @ col[g]^T          Grad input: col[g] = W[g]^T @ dy[n, g]; col2im
A 1x1, stride-1, unpadded conv skips im2col: the input sample is already its column matrix.

Column matrices: a GEMM does O/g multiply-adds per value im2col copies, so with few output
channels the copy costs as much as the GEMMs (LeNet's conv2, 16 channels, per 128 samples:
im2col 1.3 ms, forward GEMM 0.7 ms, measured). When training, such convs (O/g <=
SAVE_COLUMNS_UP_TO) keep each sample's columns from the forward pass for the backward pass,
which reads them and then overwrites them with the input gradient's columns. Other convs, and
inference, rebuild them in a workspace per chunk (`cols[t]`), which costs no memory per sample.
"""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.blas import gemm
from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span
from ...kernels.cpu.im2col import col2im, im2col
from ...lowering import IO, Context, Lowering, Scratch
from .lower import bias, bias_grad, geometry

SAVE_COLUMNS_UP_TO = 32


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


@njit(cache=True, fastmath=True)
def _total(values):
    """The sum of a flat array, vectorised (fastmath lets the additions reassociate)."""
    total = values.dtype.type(0)
    for i in range(values.size):
        total += values[i]
    return total


@chunk_kernel
def _conv_fwd(t, chunks, x, w, b, y, cols, saved, sh, sw, pt, pb, pl, pr, dh, dw, groups,
              has_bias):
    """Chunk t of the batch; columns in cols[n] when `saved`, else in workspace cols[t]."""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, y, groups)
    direct = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi):
        col = cols[n] if saved else cols[t]
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct:
            im2col(x[n], col, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        for g in range(groups):
            gemm(False, False, og, hw, k, 1.0, w[g * og:], k, src[g * k:], hw, 0.0,
                 y[n, g * og:], hw)
        if has_bias:
            for o in range(out_c):
                plane = y[n, o].reshape(-1)
                for i in range(hw):
                    plane[i] += b[o]


@chunk_kernel
def _conv_bwd(t, chunks, x, w, dy, dx, cols, saved, parts, sh, sw, pt, pb, pl, pr, dh, dw,
              groups, has_bias, need_dx):
    """Chunk t of the batch: its grad input, and its share of the weight gradient in parts[t].
    (The bias gradient is _conv_params_grad's.)"""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, dy, groups)
    direct = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    part = parts[t]
    part[:] = 0
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi):
        col = cols[n] if saved else cols[t]
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct and not saved:
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
        first, last = span(t, chunks, dy.shape[1])
        for o in range(first, last):
            value = 0.0
            for n in range(dy.shape[0]):
                value += _total(dy[n, o].reshape(-1))
            db[o] = value


def conv_fwd_cpu(x, w, b, y, cols, saved, chunks, *geometry) -> None:
    run_chunks(_conv_fwd, chunks, x, w, b, y, cols, saved, *geometry)


def conv_bwd_cpu(x, w, dy, dx, dw, db, cols, saved, parts, need_dx, *geometry) -> None:
    chunks = parts.shape[0]
    run_chunks(_conv_bwd, chunks, x, w, dy, dx, cols, saved, parts, *geometry, need_dx)
    run_chunks(_conv_params_grad, chunks, parts, dy, dw, db, geometry[-1])


def lower(node, ctx: Context) -> Lowering:
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    rows = c * a.kernel[0] * a.kernel[1]
    shape = geometry(a)     # the kernels' geometry arguments
    pointwise = a.kernel == (1, 1) and a.stride == (1, 1) and not any(a.padding)
    saved = ctx.training and out_c // a.groups <= SAVE_COLUMNS_UP_TO and not pointwise
    threads = ctx.threads
    cols = Scratch((rows, oh * ow), per_sample=True, saved=True) if saved \
        else Scratch((threads, rows, oh * ow))

    def forward(io: IO) -> list[str]:
        return [f"conv_fwd_cpu({io.x[0]}, {io.param('weight')}, {bias(io, a)}, {io.y}, "
                f"{io.scratch('cols')}, {saved}, {threads}, {shape})"]

    def backward(io: IO) -> list[str]:
        dx = io.dx[0] or io.x[0]
        return [f"conv_bwd_cpu({io.x[0]}, {io.param('weight')}, {io.dy}, {dx}, "
                f"{io.grad('weight')}, {bias_grad(io, a)}, "
                f"{io.scratch('cols' if saved else 'cols@b')}, {saved}, "
                f"{io.scratch('parts')}, {io.dx[0] is not None}, {shape})"]

    return Lowering(
        module=__name__, kernels=("conv_fwd_cpu", "conv_bwd_cpu"),
        forward=forward, backward=backward, reads=("input",),
        scratch={"cols": cols,
                 "parts": Scratch((threads, *node.params["weight"]), backward_only=True)})


LOWER = {"conv": lower}
