"""channel_shuffle on the CPU: one contiguous plane copy per (sample, channel), in parallel
over those planes."""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _channel_shuffle(t, chunks, src, dst, groups):
    n, channels, _ = src.shape
    per_group = channels // groups
    lo, hi = span(t, chunks, n * channels)
    for plane in range(lo, hi):
        b, out = plane // channels, plane % channels
        dst[b, out] = src[b, out % groups * per_group + out // groups]


def channel_shuffle_cpu(src, dst, groups, inverse) -> None:
    """dst[:, i * groups + j] = src[:, j * (C / groups) + i], on (N, C, H*W) views; with
    `inverse`, the inverse permutation (the shuffle with C / groups groups)."""
    shuffled = src.shape[1] // groups if inverse else groups
    run_chunks(_channel_shuffle, split(src.size), src, dst, shuffled)
