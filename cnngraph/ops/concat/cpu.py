"""concat on the CPU: copies into and out of channel (or feature) ranges of the output."""
from __future__ import annotations

from numba import njit, prange

from ...lowering import IO, Lowering


@njit(parallel=True, cache=True)
def concat_slice_cpu(src, dst, offset, to_dst):
    """Copy src (N, C_i, ...) into dst[:, offset:offset + C_i] (or back, when not to_dst)."""
    n = src.shape[0]
    size = src[0].size
    for b in prange(n):
        a = src[b].reshape(-1)
        d = dst[b].reshape(-1)[offset * (dst[b].size // dst.shape[1]):][:size]
        if to_dst:
            d[:] = a
        else:
            a[:] = d


def lowering(backend: str, module: str):
    """concat's lowering for a backend whose `concat_slice_<backend>` in `module` takes
    (src, dst, offset, to_dst), as the CPU and CUDA kernels do."""
    kernel = f"concat_slice_{backend}"

    def lower(node, threads: int) -> Lowering:
        offsets, total = [], 0
        for shape in node.in_shapes:
            offsets.append(total)
            total += shape[0]

        def forward(io: IO) -> list[str]:
            return [f"{kernel}({x}, {io.y}, {o}, True)"
                    for x, o in zip(io.x, offsets, strict=True)]

        def backward(io: IO) -> list[str]:
            return [f"{kernel}({dx}, {io.dy}, {o}, False)"
                    for dx, o in zip(io.dx, offsets, strict=True) if dx is not None]

        return Lowering(module=module, kernels=(kernel,), forward=forward, backward=backward)
    return lower


LOWER = {"concat": lowering("cpu", __name__)}
