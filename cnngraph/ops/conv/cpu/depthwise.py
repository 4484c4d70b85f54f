"""Depthwise conv (groups == in == out channels) by direct loops, on the CPU.

Each output channel reads one input channel, so a GEMM per group would have one row: im2col's
copies and the GEMM calls cost more than the k*k multiply-adds per output pixel they feed
(bench/results/conv.md). Here each (sample, channel) plane is copied into its zero-padded stride
phases, stored flat with `plane_width` (wp) values a row as flat planes' (kernels/cpu/im2col.py
describes the layout), where each tap reads one contiguous slice. The output plane is then
vectorised passes over (oh-1)*wp + ow values in L1, three taps of a kernel row per pass (each
pass loads and stores the output once), the wp - ow extra values per row dropped when the plane
is copied out. The memory traffic is the tensors' own: a plane is read once, written once.

Forward chunks cut the batch's (sample, channel) planes in order. Backward chunks cut the
channels: each chunk owns its channels' weight and bias gradients over the whole batch, so they
need no per-thread parts, and each is summed in sample order whatever the number of chunks
(bitwise reproducible). The input gradient is the adjoint: each tap adds w * dy to its slice of
the gradient's phases.
"""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, run_chunks, span
from ....kernels.cpu.im2col import copy_phases
from ...pointwise.cpu import activate_all
from .gradients import _total, before_activation


@njit(cache=True, inline="always")
def _copy_phases(plane, phases, top, left, sh, sw, wp, into):
    """One plane (rows x cols), shifted by (top, left), into (`into`) or from its sh x sw
    phases (rows a*sw + b of `phases`, flat with rows wp apart). Stride 1 copies whole rows
    (im2col's general loop, which strides take, ran 4x slower there)."""
    cols = plane.shape[1]
    if sh == 1 and sw == 1:       # one phase, whole rows (the general loop: 4x slower)
        for r in range(plane.shape[0]):
            pixels, phase = plane[r], phases[0, (r + top) * wp + left:]
            if into:
                for i in range(cols):
                    phase[i] = pixels[i]
            else:
                for i in range(cols):
                    pixels[i] = phase[i]
        return
    copy_phases(plane.reshape((1, plane.shape[0], cols)), phases, top, left, sh, sw, wp, into)


@njit(cache=True, inline="always")
def _tap(phases, ky, kx, sh, sw, dh, dw, wp):
    """The slice of the phases that tap (ky, kx) reads for output pixel 0 onwards."""
    return phases[ky * dh % sh * sw + kx * dw % sw, ky * dh // sh * wp + kx * dw // sw:]


@chunk_kernel(fastmath=True)
def _depthwise_fwd(t, chunks, x, w, b, y, planes, flat_y, sh, sw, pt, pl, dh, dw, wp,
                   has_bias, act, act_arg):
    """Chunk t of the (sample, channel) planes: planes[t, 0] holds the padded input's phases,
    flat_y[t] the flat output."""
    c, kh, kw = x.shape[1], w.shape[2], w.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    length = (oh - 1) * wp + ow
    phases, out = planes[t, 0], flat_y[t, :length]
    phases[:] = 0                     # the padding; planes overwrite the rest
    lo, hi = span(t, chunks, x.shape[0] * c)
    for unit in range(lo, hi):
        n, ch = divmod(unit, c)
        _copy_phases(x[n, ch], phases, pt, pl, sh, sw, wp, True)
        shift = b[ch] if has_bias else b.dtype.type(0)
        if kw < 3:                    # else the first pass starts from the bias
            for i in range(length):
                out[i] = shift
        taps = w[ch, 0]
        for ky in range(kh):
            kx = 0
            while kx + 3 <= kw:
                s0 = _tap(phases, ky, kx, sh, sw, dh, dw, wp)
                s1 = _tap(phases, ky, kx + 1, sh, sw, dh, dw, wp)
                s2 = _tap(phases, ky, kx + 2, sh, sw, dh, dw, wp)
                w0, w1, w2 = taps[ky, kx], taps[ky, kx + 1], taps[ky, kx + 2]
                if ky == 0 and kx == 0:
                    for i in range(length):
                        out[i] = shift + w0 * s0[i] + w1 * s1[i] + w2 * s2[i]
                else:
                    for i in range(length):
                        out[i] += w0 * s0[i] + w1 * s1[i] + w2 * s2[i]
                kx += 3
            for single in range(kx, kw):
                src = _tap(phases, ky, single, sh, sw, dh, dw, wp)
                tap = taps[ky, single]
                for i in range(length):
                    out[i] += tap * src[i]
        plane = y[n, ch]
        for r in range(oh):
            row, dst = out[r * wp:], plane[r]
            for i in range(ow):
                dst[i] = row[i]
        if act != 0:
            activate_all(plane.reshape(-1), act, act_arg)


@njit(cache=True, inline="always")
def _add_tap_grads(phases, grad, tap_grads, sh, sw, dh, dw, wp):
    """tap_grads[ky, kx] += the dot product of the flat output gradient `grad` and the slice of
    the input's phases that the tap reads: three taps of a kernel row per pass, as forward."""
    kh, kw = tap_grads.shape
    length = grad.size
    for ky in range(kh):
        kx = 0
        while kx + 3 <= kw:
            s0 = _tap(phases, ky, kx, sh, sw, dh, dw, wp)
            s1 = _tap(phases, ky, kx + 1, sh, sw, dh, dw, wp)
            s2 = _tap(phases, ky, kx + 2, sh, sw, dh, dw, wp)
            g0 = g1 = g2 = grad.dtype.type(0)
            for i in range(length):
                g0 += grad[i] * s0[i]
                g1 += grad[i] * s1[i]
                g2 += grad[i] * s2[i]
            tap_grads[ky, kx] += g0
            tap_grads[ky, kx + 1] += g1
            tap_grads[ky, kx + 2] += g2
            kx += 3
        for single in range(kx, kw):
            src = _tap(phases, ky, single, sh, sw, dh, dw, wp)
            g0 = grad.dtype.type(0)
            for i in range(length):
                g0 += grad[i] * src[i]
            tap_grads[ky, single] += g0


@chunk_kernel(fastmath=True)
def _depthwise_bwd(t, chunks, x, w, y, dy, dx, dw_, db, planes, flat_y, raw, sh, sw, pt, pl,
                   dh, dw, wp, has_bias, act, act_arg, need_dx, need_dw):
    """Chunk t of the channels: their input gradient (when `need_dx`), weight gradient (when
    `need_dw`) and bias gradient (when `has_bias`). A fused activation's derivative (from the
    output y) turns each plane of dy into raw[t] first. flat_y[t] holds that gradient flat, zero
    in the dropped columns; planes[t, 0] the padded input's phases, planes[t, 1] those of the
    padded input gradient."""
    c, kh, kw = x.shape[1], w.shape[2], w.shape[3]
    oh, ow = dy.shape[2], dy.shape[3]
    length = (oh - 1) * wp + ow
    phases, grad_phases, grad = planes[t, 0], planes[t, 1], flat_y[t, :length]
    phases[:] = 0
    grad[:] = 0
    lo, hi = span(t, chunks, c)
    taps_grad = dw_.reshape(c, kh, kw)
    for ch in range(lo, hi):
        if need_dw:
            taps_grad[ch] = 0
        if has_bias:
            db[ch] = 0
    for n in range(x.shape[0]):
        for ch in range(lo, hi):
            sample = dy[n, ch]
            if act != 0:
                sample = raw[t]
                before_activation(sample.reshape(-1), dy[n, ch].reshape(-1),
                                  y[n, ch].reshape(-1), act, act_arg)
            for r in range(oh):
                src, row = sample[r], grad[r * wp:]
                for i in range(ow):
                    row[i] = src[i]
            if has_bias:
                db[ch] += _total(grad)
            if need_dw:
                _copy_phases(x[n, ch], phases, pt, pl, sh, sw, wp, True)
                _add_tap_grads(phases, grad, taps_grad[ch], sh, sw, dh, dw, wp)
            if need_dx:
                taps = w[ch, 0]
                grad_phases[:] = 0
                for ky in range(kh):
                    for kx in range(kw):
                        dst, tap = _tap(grad_phases, ky, kx, sh, sw, dh, dw, wp), taps[ky, kx]
                        for i in range(length):
                            dst[i] += tap * grad[i]
                _copy_phases(dx[n, ch], grad_phases, pt, pl, sh, sw, wp, False)


def conv_depthwise_fwd_cpu(x, weight, bias, y, planes, flat_y, stride_h, stride_w, pad_top,
                           pad_left, dilation_h, dilation_w, plane_width, groups, has_bias, act,
                           act_arg) -> None:
    run_chunks(_depthwise_fwd, planes.shape[0], x, weight, bias, y, planes, flat_y, stride_h,
               stride_w, pad_top, pad_left, dilation_h, dilation_w, plane_width, has_bias, act,
               act_arg)


def conv_depthwise_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, planes, flat_y, raw,
                           need_dx, need_dw, stride_h, stride_w, pad_top, pad_left, dilation_h,
                           dilation_w, plane_width, groups, has_bias, act, act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    run_chunks(_depthwise_bwd, min(planes.shape[0], x.shape[1]), x, weight, y, dy, dx,
               weight_grad, bias_grad, planes, flat_y, raw, stride_h, stride_w, pad_top,
               pad_left, dilation_h, dilation_w, plane_width, has_bias, act, act_arg, need_dx,
               need_dw)
