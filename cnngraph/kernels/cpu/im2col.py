"""im2col / col2im for one sample, the data movement around convolution GEMMs.

col[(c * KH + i) * KW + j, at + oh * OW + ow] = x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
(0 outside): a sample's columns start at column `at`, so that several samples' columns can sit
side by side in one matrix.
The sample is first copied into zero-padded planes (`pad`), so no copy
tests bounds. Then every column row reads the same pattern of pixels, shifted by its tap:
`pixel_offsets` lists it once, and a row is one loop over the output pixels through that table.
The maps that use these columns are small (larger ones take flat planes, below), and there a
table beats copying row pieces with bounds (bench/results/kernels.md).
"""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def pad(x, padded, top, left, wp):
    """Sample x (channels x rows x cols) into its zero-padded planes, shifted by (top, left);
    the padding itself is left as it is. (Not inlined: the kernels that call it compile
    faster, and it costs nothing per sample.)"""
    spread(x, padded, top, left, 1, 1, wp)


@njit(cache=True)
def crop(padded, x, top, left, wp):
    """The inverse of pad."""
    gather(padded, x, top, left, 1, 1, wp)


@njit(cache=True)
def stack_rows(sample, col, at):
    """col[:, at:at + L] = sample (rows x L): a sample's rows side by side with its stack's, a
    1x1 conv's columns (they need no padded planes and no table of pixels)."""
    for c in range(sample.shape[0]):
        for i in range(sample.shape[1]):
            col[c, at + i] = sample[c, i]


@njit(cache=True)
def unstack_rows(col, at, sample):
    """The inverse of stack_rows."""
    for c in range(sample.shape[0]):
        for i in range(sample.shape[1]):
            sample[c, i] = col[c, at + i]


@njit(cache=True, inline="always")
def keep_strided(grid, planes, sh, sw, width):
    """planes[c, r, q] = grid[c·H·W + r·sh·width + q·sw]: a strided conv's outputs from its
    values on the input's grid (H·W = grid.size // planes.shape[0], rows `width` apart)."""
    hw = grid.size // planes.shape[0]
    for c in range(planes.shape[0]):
        for r in range(planes.shape[1]):
            kept, values = planes[c, r], grid[c * hw + r * sh * width:]
            for q in range(planes.shape[2]):
                kept[q] = values[q * sw]


@njit(cache=True, inline="always")
def spread_strided(planes, grid, sh, sw, width):
    """The adjoint of keep_strided: grid = 0 but at the kept positions, which take planes."""
    grid[:] = 0
    hw = grid.size // planes.shape[0]
    for c in range(planes.shape[0]):
        for r in range(planes.shape[1]):
            spread, given = grid[c * hw + r * sh * width:], planes[c, r]
            for q in range(planes.shape[2]):
                spread[q * sw] = given[q]


@njit(cache=True, inline="always")
def pixel_offsets(offsets, oh, ow, sh, sw, wp):
    """offsets[r*ow + q] = the flat index of output pixel (r, q)'s top-left tap in a padded
    plane of row stride wp."""
    for r in range(oh):
        for q in range(ow):
            offsets[r * ow + q] = r * sh * wp + q * sw


@njit(cache=True)
def im2col(padded, offsets, col, at, kh, kw, dh, dw, wp):
    """A sample's columns from its padded planes (channels x flat pixels), for the output
    pixels listed in `offsets` (pixel_offsets)."""
    hw = offsets.size
    for c in range(padded.shape[0]):
        plane = padded[c]
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j, at:at + hw]
                pixels = plane[i * dh * wp + j * dw:]
                for p in range(hw):
                    row[p] = pixels[offsets[p]]


@njit(cache=True)
def col2im(col, at, padded, offsets, kh, kw, dh, dw, wp):
    """padded = the sum of the columns back at their pixels (the adjoint of im2col); padded is
    zeroed first."""
    hw = offsets.size
    padded[:] = 0
    for c in range(padded.shape[0]):
        plane = padded[c]
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j, at:at + hw]
                pixels = plane[i * dh * wp + j * dw:]
                for p in range(hw):
                    pixels[offsets[p]] += row[p]


# Flat columns. A sample's zero-padded input is split into its sh x sw phases (phase (a, b) of
# channel c holds the padded pixels (r*sh + a, q*sw + b)), each stored flat with row stride wp
# (a phase's width), and output pixel (r, q) is given flat index r*wp + q (columns q >= ow are
# computed and dropped). Tap (ky, kx) of output pixel (r, q) reads padded pixel
# (r*sh + ky*dh, q*sw + kx*dw): phase ((ky*dh) % sh, (kx*dw) % sw) at flat index r*wp + q + off,
# off = ((ky*dh) // sh)*wp + (kx*dw) // sw, the same for every pixel. So column row (c, ky, kx)
# is one contiguous slice of one phase, [off, off + length) with length = (oh-1)*wp + ow. With
# stride 1 there is one phase, the padded plane.


@njit(cache=True, inline="always")
def copy_phases(planes, flat, top, left, sh, sw, wp, into_flat):
    """Planes (channels x rows x cols), shifted by (top, left), to (into_flat) or from their
    sh x sw phases: rows c*sh*sw + a*sw + b of `flat`, rows wp apart."""
    # no division in the loops over rows (nor in flat_offsets' loop over column rows): at
    # batch 1, LeNet's second conv spent 4.4 us on a sample's planes with them, 1.5 without
    cols = planes.shape[2]
    for b in range(sw):
        first = (b - left) % sw                  # the first column in phase b
        count = (cols - first + sw - 1) // sw
        shift = (first + left) // sw
        for c in range(planes.shape[0]):
            a, row = top % sh, top // sh         # (r + top) = row * sh + a
            for r in range(planes.shape[1]):
                pixels = planes[c, r]
                at = row * wp + shift
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
                a += 1
                if a == sh:
                    a, row = 0, row + 1


@njit(cache=True, inline="always")
def spread(planes, flat, top, left, sh, sw, wp):
    """Planes into their phases in `flat`; the rest of `flat` is left as it is."""
    copy_phases(planes, flat, top, left, sh, sw, wp, True)


@njit(cache=True, inline="always")
def gather(flat, planes, top, left, sh, sw, wp):
    """The inverse of spread."""
    copy_phases(planes, flat, top, left, sh, sw, wp, False)


@njit(cache=True, inline="always")
def _offset(row, kh, kw, sh, sw, dh, dw, wp):
    """The phase (a row of the flat planes) and flat offset of column row (c, ky, kx)."""
    c, tap = divmod(row, kh * kw)
    ky, kx = divmod(tap, kw)
    return (c * sh + ky * dh % sh) * sw + kx * dw % sw, ky * dh // sh * wp + kx * dw // sw


@njit(cache=True)
def flat_offsets(offsets, kh, kw, sh, sw, dh, dw, wp, phase_size):
    """offsets[row] = where column row `row` starts in the phases stored one after another,
    phase_size values each: the table direct convolutions read the slices through."""
    taps = kh * kw
    channel = sh * sw * phase_size      # from one channel's phases to the next's
    for tap in range(taps):             # channel 0's rows; the others' are theirs shifted
        phase, off = _offset(tap, kh, kw, sh, sw, dh, dw, wp)
        for c in range(offsets.size // taps):
            offsets[c * taps + tap] = c * channel + phase * phase_size + off


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
