"""A generator of tiled GEMM kernels whose operands are read through index expressions.

C[m, n] = sum over k of A(m, k) B(k, n), for `G` independent groups, optionally split along K
into `splits` partial products (each written separately, then summed in a fixed order: no
atomics, bitwise reproducible). The caller gives the code that loads A(m, k) and B(k, n) into
`value` (left at zero for padding) and the code that stores `value` = C[m, n]; that is how a
convolution becomes an implicit GEMM: B(k, n) reads the input pixel that im2col would have
copied, without materialising the column matrix. Each block stages TM x TK and TK x TN tiles in
shared memory with coalesced loads (along the operand's contiguous axis, `a_fast` / `b_fast`),
and each thread accumulates an RM x RN register tile.
"""
from __future__ import annotations

import textwrap

from .launch import GEMM, MAX_BLOCKS, stream

_TEMPLATE = '''
@cuda.jit(cache=True)
def {name}({params}, M, N, K, G, splits):
    As = cuda.shared.array((TK, TM1), F)
    Bs = cuda.shared.array((TK, TN1), F)
    acc = cuda.local.array((RM, RN), F)
    ra = cuda.local.array(RM, F)
    rb = cuda.local.array(RN, F)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * BX + tx
    tiles_m = (M + TM - 1) // TM
    tiles_n = (N + TN - 1) // TN
    per_split = ((K + splits - 1) // splits + TK - 1) // TK * TK
    for tile in range(cuda.blockIdx.x, splits * G * tiles_m * tiles_n, cuda.gridDim.x):
        n0 = (tile % tiles_n) * TN
        m0 = (tile // tiles_n % tiles_m) * TM
        g = tile // (tiles_n * tiles_m) % G
        s = tile // (tiles_n * tiles_m * G)
        k_end = min(K, (s + 1) * per_split)
        for i in range(RM):
            for j in range(RN):
                acc[i, j] = F(0)
        for k0 in range(s * per_split, k_end, TK):
            for e in range(tid, TM * TK, BX * BY):
{a_index}
                m = m0 + mm
                k = k0 + kk
                value = F(0)
                if m < M and k < k_end:
{a_load}
                As[kk, mm] = value
            for e in range(tid, TK * TN, BX * BY):
{b_index}
                n = n0 + nn
                k = k0 + kk
                value = F(0)
                if n < N and k < k_end:
{b_load}
                Bs[kk, nn] = value
            cuda.syncthreads()
            for kk in range(TK):
                for i in range(RM):
                    ra[i] = As[kk, ty + i * BY]
                for j in range(RN):
                    rb[j] = Bs[kk, tx + j * BX]
                for i in range(RM):
                    for j in range(RN):
                        acc[i, j] += ra[i] * rb[j]
            cuda.syncthreads()
        for i in range(RM):
            m = m0 + ty + i * BY
            for j in range(RN):
                n = n0 + tx + j * BX
                if m < M and n < N:
                    value = acc[i, j]
{store}
'''

_INDEX = {("a", "k"): ("kk = e % TK", "mm = e // TK"), ("a", "m"): ("mm = e % TM", "kk = e // TM"),
          ("b", "n"): ("nn = e % TN", "kk = e // TN"), ("b", "k"): ("kk = e % TK", "nn = e // TK")}


Code = str | tuple[str, ...]


def gemm_kernel(name: str, params: str, a_load: Code, b_load: Code, store: Code,
                a_fast: str = "k", b_fast: str = "n") -> str:
    """Source of one GEMM kernel (element type `F`); loads and the store are code blocks (or
    tuples of blocks, run in order) that may use the kernel's parameters, `m`, `n`, `k`, the
    group `g` and the split `s`."""
    def block(code: Code, depth: int) -> str:
        parts = (code,) if isinstance(code, str) else code
        text = "\n".join(textwrap.dedent(part).strip() for part in parts)
        return textwrap.indent(text, " " * 4 * depth)

    return _TEMPLATE.format(
        name=name, params=params, a_index=block("\n".join(_INDEX["a", a_fast]), 4),
        b_index=block("\n".join(_INDEX["b", b_fast]), 4), a_load=block(a_load, 5),
        b_load=block(b_load, 5), store=block(store, 5))


def tiles(m: int, n: int) -> int:
    return -(-m // GEMM["TM"]) * -(-n // GEMM["TN"])


def launch(kernel, args: tuple, m: int, n: int, k: int, groups: int = 1,
           splits: int = 1) -> None:
    count = splits * groups * tiles(m, n)
    kernel[max(1, min(count, MAX_BLOCKS)), (GEMM["BX"], GEMM["BY"]), stream()](
        *args, m, n, k, groups, splits)


def split_count(m: int, n: int, k: int, groups: int, limit: int) -> int:
    """How many K-splits give a GPU enough blocks when M x N is small and K is long."""
    enough = 2 if MAX_BLOCKS <= 2 else 256
    have = groups * tiles(m, n)
    return max(1, min(limit, enough // have if have < enough else 1,
                      k // (4 * GEMM["TK"]) or 1))
