"""add in the CUDA backend, from the support kernels and the pointwise ones: the sum, then a
fused activation in place; backward, the activation's derivative into the first wanted input's
gradient, copied into the others."""
from __future__ import annotations

from ...kernels.cuda.support import copy_cuda, sum_cuda
from ..pointwise.cuda import pointwise_bwd_cuda, pointwise_fwd_cuda
from ..pointwise.epilogue import CODES

NAMES = {code: name for name, code in CODES.items()}


def add_fwd_cuda(out, parts, act, act_arg) -> None:
    sum_cuda(out, parts)
    if act != 0:
        pointwise_fwd_cuda(NAMES[act], out, out, act_arg)


def add_bwd_cuda(dy, y, dxs, wants, act, act_arg) -> None:
    """y is read only with a fused activation (act != 0); dxs[k] is written where wants[k]."""
    chosen = [dx for dx, wanted in zip(dxs, wants, strict=True) if wanted]
    if not chosen:
        return
    if act != 0:
        pointwise_bwd_cuda(NAMES[act], y, y, dy, chosen[0], act_arg)
    else:
        copy_cuda(dy, chosen[0])
    for dx in chosen[1:]:
        copy_cuda(chosen[0], dx)
