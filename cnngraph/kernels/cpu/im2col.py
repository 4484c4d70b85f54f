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


# Flat columns. A sample's zero-padded input is split into its sh x sw phases (phase (a, b) of
# channel c holds the padded pixels (r*sh + a, q*sw + b)), each stored flat with row stride wp
# (a phase's width), and output pixel (r, q) is given flat index r*wp + q (columns q >= ow are
# computed and dropped). Tap (ky, kx) of output pixel (r, q) reads padded pixel
# (r*sh + ky*dh, q*sw + kx*dw): phase ((ky*dh) % sh, (kx*dw) % sw) at flat index r*wp + q + off,
# off = ((ky*dh) // sh)*wp + (kx*dw) // sw, the same for every pixel. So column row (c, ky, kx)
# is one contiguous slice of one phase, [off, off + length) with length = (oh-1)*wp + ow. With
# stride 1 there is one phase, the padded plane.


@njit(cache=True, inline="always")
def _copy_phases(planes, flat, top, left, sh, sw, wp, into_flat):
    """Planes (channels x rows x cols), shifted by (top, left), to (into_flat) or from their
    sh x sw phases: rows c*sh*sw + a*sw + b of `flat`, rows wp apart."""
    cols = planes.shape[2]
    for c in range(planes.shape[0]):
        for r in range(planes.shape[1]):
            pixels = planes[c, r]
            a, row = (r + top) % sh, (r + top) // sh
            for b in range(sw):
                first = (b - left) % sw                  # the first column in phase b
                count = (cols - first + sw - 1) // sw
                at = row * wp + (first + left) // sw
                phase = flat[(c * sh + a) * sw + b, at:at + count]
                if into_flat and sw == 1:
                    for i in range(count):
                        phase[i] = pixels[i]
                elif into_flat:
                    for i in range(count):
                        phase[i] = pixels[first + i * sw]
                elif sw == 1:
                    for i in range(count):
                        pixels[i] = phase[i]
                else:
                    for i in range(count):
                        pixels[first + i * sw] = phase[i]


@njit(cache=True, inline="always")
def spread(planes, flat, top, left, sh, sw, wp):
    """Planes into their phases in `flat`; the rest of `flat` is left as it is."""
    _copy_phases(planes, flat, top, left, sh, sw, wp, True)


@njit(cache=True, inline="always")
def gather(flat, planes, top, left, sh, sw, wp):
    """The inverse of spread."""
    _copy_phases(planes, flat, top, left, sh, sw, wp, False)


@njit(cache=True, inline="always")
def _offset(row, kh, kw, sh, sw, dh, dw, wp):
    """The phase (a row of the flat planes) and flat offset of column row (c, ky, kx)."""
    c, tap = divmod(row, kh * kw)
    ky, kx = divmod(tap, kw)
    return (c * sh + ky * dh % sh) * sw + kx * dw % sw, ky * dh // sh * wp + kx * dw // sw


@njit(cache=True)
def flat_im2col(padded, col, kh, kw, sh, sw, dh, dw, wp):
    """col[(c*kh + ky)*kw + kx] = that tap's slice of the phases, as long as col's rows."""
    length = col.shape[1]
    for row in range(col.shape[0]):
        phase, off = _offset(row, kh, kw, sh, sw, dh, dw, wp)
        src = padded[phase, off:off + length]
        dst = col[row]
        for i in range(length):
            dst[i] = src[i]


@njit(cache=True)
def flat_col2im(col, padded, kh, kw, sh, sw, dh, dw, wp):
    """padded = the sum of the column rows back at their offsets (the adjoint of flat_im2col);
    padded is zeroed first."""
    length = col.shape[1]
    padded[:] = 0
    for row in range(col.shape[0]):
        phase, off = _offset(row, kh, kw, sh, sw, dh, dw, wp)
        dst = padded[phase, off:off + length]
        src = col[row]
        for i in range(length):
            dst[i] += src[i]
