"""conv by Winograd F(4x4, 3x3) (transforms.py has the tile transforms), on the CPU: 36
GEMMs per stack of samples, with 4x fewer multiplications than the direct convolution. Its
gradients are the exact adjoints of its forward pass, which differs from the direct convolution
by rounding (bench/results/conv.md). A batch smaller than the chunks (batch-1 inference) is cut
by output channels: each sample's input transformed once, each chunk its rows of the GEMMs and
its channels of the output transform."""
from __future__ import annotations

import numpy as np
from numba import njit

from ....kernels.cpu.blas import gemm
from ....kernels.cpu.chunks import chunk_kernel, cut, run_chunks, span, split
from ....kernels.cpu.direct import direct_tile
from ...pointwise.cpu import activate_all
from ..geometry import XI, winograd_tiles
from .gradients import add_sums, before_activation, sum_bias_parts
from .transforms import (
    filter_tiles,
    filter_tiles_adjoint,
    input_tiles,
    input_tiles_adjoint,
    output_tiles,
    output_tiles_adjoint,
)

# One sample's GEMMs on maps of at most this many tiles (16x16 and 32x32 maps) by the direct
# micro-kernels: 128 x 16 x 128 (ResNet-18-CIFAR's 16x16 layers) 13-16 us against OpenBLAS's
# 21, 64 x 64 x 64 8-14 against 10-16 (one thread)
TILED_UP_TO = 64


@njit(cache=True, inline="always")
def _tiles(x):
    """Winograd's tile rows and columns for x's maps."""
    return (x.shape[2] + 3) // 4, (x.shape[3] + 3) // 4


@chunk_kernel
def _winograd_fwd(t, chunks, x, U, b, y, rows, streams, V, M, stack, has_bias, act, act_arg):
    """Chunk t of the batch by Winograd F(4x4, 3x3), `stack` samples' tiles per GEMM: V[t]
    and M[t] hold the transformed input and output, rows[t] and streams[t] the transforms'
    workspaces; U is the transformed filters."""
    n_batch, c = x.shape[0], x.shape[1]
    out_c = U.shape[1]
    th, tw = _tiles(x)
    work, spare, inputs, outputs = rows[t], streams[t], V[t], M[t]
    width = inputs.shape[2]
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        input_tiles(x, n, m, work, spare, inputs, th, tw)
        for xi in range(XI):
            gemm(False, False, out_c, m * th * tw, c, 1.0, U[xi], c, inputs[xi], width, 0.0,
                 outputs[xi], width)
        output_tiles(outputs, m, y[n:n + m], b, has_bias, th, tw, work, spare, 0, out_c)
        if act != 0:
            activate_all(y[n:n + m].reshape(-1), act, act_arg)


@chunk_kernel
def _input_tiles(t, chunks, x, n, rows, streams, inputs):
    """Sample n's transformed input, as one chunk."""
    th, tw = _tiles(x)
    input_tiles(x, n, 1, rows[0], streams[0], inputs, th, tw)


@chunk_kernel
def _winograd_fwd_channels(t, chunks, x, U, b, y, rows, streams, inputs, outputs, n, has_bias,
                           act, act_arg):
    """Chunk t of sample n's output channels: their rows of the 36 GEMMs over its transformed
    input (into `outputs`), their output transform (workspaces rows[t] and streams[t]), bias and
    activation.
    Maps of at most TILED_UP_TO tiles take the direct micro-kernels for the GEMMs."""
    c, out_c = x.shape[1], U.shape[1]
    th, tw = _tiles(x)
    lo, hi = span(t, chunks, out_c)
    if hi == lo:
        return
    if th * tw <= TILED_UP_TO:
        offsets = np.arange(c).astype(np.int32) * np.int32(th * tw)    # the rows of inputs[xi]
        for xi in range(XI):
            direct_tile(outputs[xi], U[xi], lo, hi - lo, inputs[xi].reshape(-1), offsets, 0,
                        th * tw)
    else:
        for xi in range(XI):
            gemm(False, False, hi - lo, th * tw, c, 1.0, U[xi, lo:], c, inputs[xi], th * tw,
                 0.0, outputs[xi, lo:], th * tw)
    output_tiles(outputs, 1, y[n:n + 1], b, has_bias, th, tw, rows[t], streams[t], lo, hi)
    if act != 0:
        activate_all(y[n, lo:hi].reshape(-1), act, act_arg)


@chunk_kernel
def _winograd_bwd(t, chunks, x, U, y, dy, dx, rows, streams, V, M, raw, parts, bias_parts, stack,
                  has_bias, act, act_arg, need_dx, need_dw):
    """Chunk t of the batch by the adjoint of _winograd_fwd: its grad input (when `need_dx`),
    and its shares of the transformed filters' gradient (when `need_dw`) in parts[t] and of the
    bias gradient (when `has_bias`) in bias_parts[t]. A fused activation's derivative (from the
    output y) turns the stack's dy into raw[t] first."""
    n_batch, c = x.shape[0], x.shape[1]
    out_c = U.shape[1]
    th, tw = _tiles(x)
    work, spare, inputs, grads = rows[t], streams[t], V[t], M[t]
    width = inputs.shape[2]
    part, bias_part = parts[t], bias_parts[t]
    if need_dw:
        part[:] = 0
    bias_part[:] = 0
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        if need_dw:           # the transformed input: the input gradient only writes it
            input_tiles(x, n, m, work, spare, inputs, th, tw)
        grad = dy[n:n + m]
        if act != 0:
            grad = raw[t, :m]
            before_activation(grad.reshape(-1), dy[n:n + m].reshape(-1),
                              y[n:n + m].reshape(-1), act, act_arg)
        if has_bias:
            for s in range(m):
                add_sums(bias_part, grad[s])
        if need_dw or need_dx:    # dM, which both read
            output_tiles_adjoint(grad, m, grads, th, tw, work, spare)
        if need_dw:
            for xi in range(XI):  # dU += dM V^T
                gemm(False, True, out_c, c, m * th * tw, 1.0, grads[xi], width, inputs[xi],
                     width, 1.0, part[xi], c)
        if need_dx:
            for xi in range(XI):  # dV = U^T dM, over the transformed input
                gemm(True, False, c, m * th * tw, out_c, 1.0, U[xi], c, grads[xi], width, 0.0,
                     inputs[xi], width)
            input_tiles_adjoint(inputs, dx, n, m, work, spare, th, tw)


def conv_winograd_fwd_cpu(x, weight, bias, y, filters, rows, streams, inputs, outputs, stack,
                          has_bias, act, act_arg) -> None:
    run_chunks(filter_tiles, split(weight.size), weight, filters)
    chunks = rows.shape[0]
    if x.shape[0] >= chunks:
        run_chunks(_winograd_fwd, chunks, x, filters, bias, y, rows, streams, inputs, outputs,
                   stack, has_bias, act, act_arg)
        return
    th, tw = winograd_tiles(x.shape[2], x.shape[3])
    # one sample's tiles, rows th * tw apart (not the workspaces' stack's): the micro-kernels
    # read them as one run
    sample_inputs = inputs[0].reshape(-1)[:XI * x.shape[1] * th * tw].reshape(XI, -1, th * tw)
    sample_outputs = outputs[0].reshape(-1)[:XI * y.shape[1] * th * tw].reshape(XI, -1, th * tw)
    for n in range(x.shape[0]):
        _input_tiles(0, 1, x, n, rows, streams, sample_inputs)
        run_chunks(_winograd_fwd_channels, cut(filters.size * th * tw // 8, chunks), x, filters,
                   bias, y, rows, streams, sample_inputs, sample_outputs, n, has_bias, act,
                   act_arg)


def conv_winograd_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, filters, rows, streams,
                          inputs, outputs, raw, parts, bias_parts, need_dx, need_dw, stack,
                          has_bias, act, act_arg) -> None:
    """y is read only with a fused activation (act != 0). The filters are transformed again
    rather than kept from the forward pass (4 times the weights per conv)."""
    chunks = parts.shape[0]
    run_chunks(filter_tiles, split(weight.size), weight, filters)
    run_chunks(_winograd_bwd, chunks, x, filters, y, dy, dx, rows, streams, inputs, outputs, raw,
               parts, bias_parts, stack, has_bias, act, act_arg, need_dx, need_dw)
    if need_dw:
        run_chunks(filter_tiles_adjoint, chunks, parts, weight_grad)
    if has_bias:
        run_chunks(sum_bias_parts, chunks, bias_parts, bias_grad)
