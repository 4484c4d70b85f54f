"""im2col / col2im for one sample, the data movement around convolution GEMMs.

col[(c * KH + i) * KW + j, at + oh * OW + ow] = x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
(0 outside): a sample's columns start at column `at`, so that several samples' columns can sit
side by side in one matrix.
The valid range of `ow` for each (row, oh) is computed once, so the inner copies are plain
strided slices with no bounds test per element (signed index arithmetic inside the loop blocks
vectorisation, see NUMBA_NOTES).
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def _valid(out: int, stride: int, offset: int, size: int):
    """First and one-past-last output index whose input index o*stride + offset is in [0, size)."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
    return min(lo, out), max(min(hi, out), min(lo, out))


@njit(cache=True)
def im2col(x, col, at, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    c_in, h, w = x.shape
    for c in range(c_in):
        for i in range(kh):
            r0, r1 = _valid(oh, sh, i * dh - pt, h)
            for j in range(kw):
                row = col[(c * kh + i) * kw + j, at:at + oh * ow]
                q0, q1 = _valid(ow, sw, j * dw - pl, w)
                for k in range(r0 * ow):
                    row[k] = 0
                for k in range(r1 * ow, oh * ow):
                    row[k] = 0
                for r in range(r0, r1):
                    out = row[r * ow:(r + 1) * ow]
                    src = x[c, r * sh + i * dh - pt]
                    start = q0 * sw + j * dw - pl
                    for q in range(q0):
                        out[q] = 0
                    if sw == 1:          # unit stride: a contiguous copy that vectorises
                        dst = out[q0:q1]
                        seg = src[start:start + q1 - q0]
                        for k in range(q1 - q0):
                            dst[k] = seg[k]
                    else:
                        for k in range(q1 - q0):
                            out[q0 + k] = src[start + k * sw]
                    for q in range(q1, ow):
                        out[q] = 0


@njit(cache=True)
def col2im(col, at, x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """x = the sum of the columns back at their pixels (the adjoint of im2col); x is zeroed."""
    c_in, h, w = x.shape
    flat = x.reshape(-1)
    for k in range(flat.size):
        flat[k] = 0
    for c in range(c_in):
        for i in range(kh):
            r0, r1 = _valid(oh, sh, i * dh - pt, h)
            for j in range(kw):
                row = col[(c * kh + i) * kw + j, at:at + oh * ow]
                q0, q1 = _valid(ow, sw, j * dw - pl, w)
                for r in range(r0, r1):
                    seg = row[r * ow + q0:r * ow + q1]
                    dst = x[c, r * sh + i * dh - pt]
                    start = q0 * sw + j * dw - pl
                    if sw == 1:
                        out = dst[start:start + q1 - q0]
                        for k in range(q1 - q0):
                            out[k] += seg[k]
                    else:
                        for k in range(q1 - q0):
                            dst[start + k * sw] += seg[k]


# Flat columns, for stride-1 convs. A sample's input is copied into zero-padded planes stored
# flat with row stride wp (the padded width), and output pixel (r, q) is given flat index
# r*wp + q (columns q >= ow are computed and dropped). Input pixel (r + ky*dh, q + kx*dw) is
# then at flat index r*wp + q + off with off = ky*dh*wp + kx*dw for every pixel, so column row
# (c, ky, kx) is one contiguous slice, plane c [off, off + length), length = (oh-1)*wp + ow.


@njit(cache=True, inline="always")
def spread(planes, flat, start, wp):
    """Each plane of planes (channels x rows x cols) into a row of `flat`, its rows wp apart
    from `start`; the rest of `flat` is left as it is."""
    for c in range(planes.shape[0]):
        for r in range(planes.shape[1]):
            src = planes[c, r]
            dst = flat[c, start + r * wp:start + r * wp + src.size]
            for i in range(src.size):
                dst[i] = src[i]


@njit(cache=True, inline="always")
def gather(flat, planes, start, wp):
    """The inverse of spread."""
    for c in range(planes.shape[0]):
        for r in range(planes.shape[1]):
            dst = planes[c, r]
            src = flat[c, start + r * wp:start + r * wp + dst.size]
            for i in range(dst.size):
                dst[i] = src[i]


@njit(cache=True, inline="always")
def _offset(row, kh, kw, dh, dw, wp):
    """Channel and flat offset of column row (c, ky, kx)."""
    c, tap = divmod(row, kh * kw)
    ky, kx = divmod(tap, kw)
    return c, ky * dh * wp + kx * dw


@njit(cache=True)
def flat_im2col(padded, col, kh, kw, dh, dw, wp):
    """col[(c*kh + ky)*kw + kx] = padded[c, off:off + length], length = col.shape[1]."""
    length = col.shape[1]
    for row in range(col.shape[0]):
        c, off = _offset(row, kh, kw, dh, dw, wp)
        src = padded[c, off:off + length]
        dst = col[row]
        for i in range(length):
            dst[i] = src[i]


@njit(cache=True)
def flat_col2im(col, padded, kh, kw, dh, dw, wp):
    """padded = the sum of the column rows back at their offsets (the adjoint of flat_im2col);
    padded is zeroed first."""
    length = col.shape[1]
    padded[:] = 0
    for row in range(col.shape[0]):
        c, off = _offset(row, kh, kw, dh, dw, wp)
        dst = padded[c, off:off + length]
        src = col[row]
        for i in range(length):
            dst[i] += src[i]
