"""GFLOP/s of the CPU convolution kernels per layer and pass, against the sgemm peak and
PyTorch measured in the same run; and milliseconds of depthwise layers against their
memory-bandwidth bound.

    .venv/bin/python bench/conv_layers.py

Layers: LeNet's two convolutions (batch 256) and the ResNet-18-CIFAR 3x3 layers (batch 64).
Depthwise 3x3 layers (batch 64, MobileNet's sizes) do 9 multiply-adds per value they read, too
few for GFLOP/s to say much: their bound is the bytes each pass must move (`traffic`) at the
machine's streaming bandwidth for that kind of traffic (`stream_bandwidths`, measured in the
same run): STREAM's scale for the forward pass, which reads one tensor and writes one, its
triad for the backward pass, which reads two and writes one (`bound`).
Passes: forward, grad-input, grad-weight (cnngraph computes both gradients in one kernel, so
its backward figure covers both; PyTorch's autograd pass over the layer is timed the same way,
apart from the forward that builds its graph). Figures count the direct convolution's
multiply-adds, whatever the algorithm: Winograd's layers (and oneDNN's, which skip the padding)
can pass the sgemm peak. The last columns are cnngraph's speed over PyTorch's.
"""
from __future__ import annotations

import statistics
import time
from types import SimpleNamespace

import numpy as np

from cnngraph.kernels.cpu.chunks import chunk_kernel, run_chunks, span
from cnngraph.kernels.cpu.peak import gemm_peak
from cnngraph.ops.conv.choose import choose
from cnngraph.ops.conv.cpu.depthwise_3x3 import (
    conv_depthwise_3x3_bwd_cpu,
    conv_depthwise_3x3_fwd_cpu,
)
from cnngraph.ops.conv.cpu.depthwise_3x3_s2 import (
    conv_depthwise_3x3_s2_bwd_cpu,
    conv_depthwise_3x3_s2_fwd_cpu,
)
from cnngraph.ops.conv.cpu.depthwise_rows import (
    conv_depthwise_rows_bwd_cpu,
    conv_depthwise_rows_fwd_cpu,
)
from cnngraph.ops.conv.cpu.flat import conv_flat_bwd_cpu, conv_flat_fwd_cpu
from cnngraph.ops.conv.cpu.im2col import conv_bwd_cpu, conv_fwd_cpu
from cnngraph.ops.conv.cpu.winograd import conv_winograd_bwd_cpu, conv_winograd_fwd_cpu
from cnngraph.ops.conv.geometry import (
    XI,
    flat_size,
    row_group,
    rows_workspace,
    streams_workspace,
    winograd_tiles,
)
from cnngraph.ops.conv.lower import LANES

LAYERS = [  # name, batch, in, out, size, kernel, stride, pad
    ("lenet conv1", 256, 1, 6, 28, 5, 1, 2),
    ("lenet conv2", 256, 6, 16, 14, 5, 1, 0),
    ("resnet 64->64 32x32", 64, 64, 64, 32, 3, 1, 1),
    ("resnet 64->128 s2", 64, 64, 128, 32, 3, 2, 1),
    ("resnet 128->128 16x16", 64, 128, 128, 16, 3, 1, 1),
    ("resnet 256->256 8x8", 64, 256, 256, 8, 3, 1, 1),
    ("resnet 512->512 4x4", 64, 512, 512, 4, 3, 1, 1),
]
DEPTHWISE = [  # name, batch, channels, size, stride: 3x3, padding 1, groups = channels
    ("depthwise 128 32x32", 64, 128, 32, 1),
    ("depthwise 128 32x32 s2", 64, 128, 32, 2),
    ("depthwise 128 16x16 s2", 64, 128, 16, 2),
    ("depthwise 256 16x16", 64, 256, 16, 1),
    ("depthwise 512 8x8", 64, 512, 8, 1),
    ("depthwise 512 4x4", 64, 512, 4, 1),
]
STREAM_MIB = 256              # per array: three of them, past the L3 (lscpu: 480 MiB, shared)


@chunk_kernel
def _scale(t, chunks, a, b):
    lo, hi = span(t, chunks, a.size)
    for i in range(lo, hi):
        a[i] = np.float32(0.5) * b[i]


@chunk_kernel
def _triad(t, chunks, a, b, c):
    lo, hi = span(t, chunks, a.size)
    for i in range(lo, hi):
        a[i] = b[i] + np.float32(0.5) * c[i]


def stream_bandwidths(threads: int, repeat: int = 5) -> dict[str, float]:
    """Bytes/s of STREAM's scale (a = s*b: 8 bytes per element) and triad (a = b + s*c: 12)
    over arrays far larger than the caches, in `threads` chunks, medians of `repeat`, counted
    as STREAM counts: the write's allocating read is not counted, nor is it in `traffic`. A
    pass that reads one tensor per one it writes moves a larger share of such reads than one
    that reads two, so it gets the scale's figure (a plain copy, measured: ~0.85x the triad's
    bytes/s). (Not a copy loop: compilers turn that into memcpy, which may skip the read.)"""
    a, b, c = (np.ones(STREAM_MIB << 18, np.float32) for _ in range(3))
    scale = best_of(lambda: run_chunks(_scale, threads, a, b), repeat)
    triad = best_of(lambda: run_chunks(_triad, threads, a, b, c), repeat)
    return {"scale": 8 * a.size / scale, "triad": 12 * a.size / triad}


def bound(layer, bandwidths: dict[str, float]) -> float:
    """Seconds a depthwise layer's forward and backward take at least: their traffic at the
    scale's and the triad's bandwidth."""
    forward, backward = traffic(*layer[1:])
    return forward / bandwidths["scale"] + backward / bandwidths["triad"]


def traffic(n, c, size, s) -> tuple[int, int]:
    """Bytes a depthwise 3x3 layer (padding 1) must move, forward (read x and the weights,
    write y) and backward (read x, dy and the weights, write dx and the weight gradient)."""
    out = (size - 1) // s + 1
    x, y, w = 4 * n * c * size * size, 4 * n * c * out * out, 4 * c * 10
    return x + y + w, 2 * x + y + 2 * w


def measure_depthwise(name, n, c, size, s, threads: int, rng, repeat: int = 5,
                      torch: bool = False) -> dict:
    """Median seconds of a depthwise layer's forward and backward (both gradients), in
    cnngraph's kernels or (`torch`) PyTorch's, timed as `measure` and `measure_torch` do."""
    layer = (name, n, c, c, size, 3, s, 1, threads, rng)
    if torch:
        case = theirs(*layer, groups=c)
        return {"layer": name, "path": "torch", "fwd": best_of(case.forward, repeat),
                "bwd": best_of(case.backward, repeat, setup=case.forward_graph)}
    mine = ours(*layer, groups=c)
    return {"layer": name, "path": mine.path, "fwd": best_of(mine.forward, repeat),
            "bwd": best_of(mine.backward, repeat)}


def best_of(fn, repeat: int = 5, setup=None) -> float:
    """The median seconds of `fn` over `repeat` calls after one untimed call. With `setup`, each
    call is `fn(setup())` and only `fn` is timed (a backward pass after its forward)."""
    def timed() -> float:
        arg = (setup(),) if setup else ()
        start = time.perf_counter()
        fn(*arg)
        return time.perf_counter() - start
    timed()
    return statistics.median(timed() for _ in range(repeat))


def _tensors(n, c, o, size, k, s, p, rng, groups):
    out = (size + 2 * p - k) // s + 1
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = rng.standard_normal((o, c // groups, k, k)).astype(np.float32)
    dy = rng.standard_normal((n, o, out, out)).astype(np.float32)
    return x, w, np.zeros(o, np.float32), dy, 2 * n * o * out * out * c // groups * k * k


def ours(name, n, c, o, size, k, s, p, threads: int, rng, groups: int = 1) -> SimpleNamespace:
    """One layer in cnngraph's kernels, on the columns and with the workspaces its lowering
    gives a conv when inference rebuilds them: `forward()` writes y, `backward()` dx, dw, db
    (both gradients in one kernel), from inputs x, w, b and dy; `path` is the algorithm."""
    x, w, b, dy, flops = _tensors(n, c, o, size, k, s, p, rng, groups)
    y = np.empty_like(dy)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    oh, ow = dy.shape[2], dy.shape[3]
    parts = np.empty((threads, groups, c // groups * k * k, o // groups), np.float32)
    bias_parts = np.empty((threads, o + 16), np.float32)   # as lowering.thread_rows
    a = SimpleNamespace(kernel=(k, k), stride=(s, s), dilation=(1, 1), padding=(p, p, p, p),
                        groups=groups)
    choice = choose(SimpleNamespace(attrs=a, in_shapes=[(c, size, size)], shape=(o, oh, ow)),
                    training=False)
    tensors = {"x": x, "weight": w, "bias": b, "y": y}
    grads = {"x": x, "weight": w, "dy": dy, "dx": dx, "weight_grad": dw, "bias_grad": db}
    no_activation = {"act": 0, "act_arg": 0.0}
    if choice.algorithm == "winograd":
        path = "winograd"
        th, tw = winograd_tiles(size, size)
        stack = choice.stack
        spaces = {"filters": np.empty((XI, o, c), np.float32),
                  "rows": np.empty((threads, rows_workspace(th, tw, stack)), np.float32),
                  "streams": np.empty((threads, streams_workspace(th, tw, stack)),
                                      np.float32),
                  "inputs": np.empty((threads, XI, c, stack * th * tw), np.float32),
                  "outputs": np.empty((threads, XI, o, stack * th * tw), np.float32)}
        arguments = {"stack": stack, "has_bias": True}
        raw = np.empty((threads, 1, 1, 1, 1), np.float32)
        parts = np.empty((threads, XI, o, c), np.float32)

        def forward():
            conv_winograd_fwd_cpu(**tensors, **spaces, **arguments, **no_activation)

        def backward():
            conv_winograd_bwd_cpu(**grads, y=dy, **spaces, raw=raw, parts=parts,
                                  bias_parts=bias_parts, need_dx=True, need_dw=True, **arguments,
                                  **no_activation)
    elif choice.algorithm == "depthwise_rows":
        path = "depthwise rows"
        group = row_group(c, size * size, threads)
        spaces = {"expanded": np.empty((k * k, c * size * size), np.float32),
                  "grid": np.empty((threads, group * size * size), np.float32),
                  "parts": np.empty((threads, k * k + 1, group * size * size), np.float32)}
        raw = np.empty((threads, 1), np.float32)
        geometry = {"stride_h": s, "stride_w": s, "pad_top": p, "pad_left": p, "dilation_h": 1,
                    "dilation_w": 1, "per_group": group, "groups": groups, "has_bias": True}

        def forward():
            conv_depthwise_rows_fwd_cpu(**tensors, expanded=spaces["expanded"],
                                        grid=spaces["grid"], **geometry, **no_activation)

        def backward():
            conv_depthwise_rows_bwd_cpu(**grads, y=dy, **spaces, raw=raw, need_dx=True,
                                        need_dw=True, **geometry, **no_activation)
    elif choice.algorithm == "depthwise_3x3":
        path = "depthwise 3x3"
        spaces = {"grid": np.empty((threads, size * size), np.float32),
                  "padded": np.empty((threads, (size + 2) * size + 2), np.float32),
                  "masks": np.empty((threads, 2, size * size), np.float32)}
        geometry = {"stride_h": s, "stride_w": s, "pad_top": p, "pad_left": p, "dilation_h": 1,
                    "dilation_w": 1, "groups": groups, "has_bias": True}

        def forward():
            conv_depthwise_3x3_fwd_cpu(**tensors, **spaces, **geometry, **no_activation)

        def backward():
            conv_depthwise_3x3_bwd_cpu(**grads, y=dy, **spaces, need_dx=True, need_dw=True,
                                       **geometry, **no_activation)
    elif choice.algorithm == "depthwise_3x3_s2":
        path = "depthwise 3x3 s2"
        length = (size + 2) * (size // 2) + 2
        spaces = {"columns": np.empty((threads, 3, length), np.float32),
                  "flat": np.empty((threads, length), np.float32)}
        geometry = {"stride_h": s, "stride_w": s, "pad_top": p, "pad_left": p, "dilation_h": 1,
                    "dilation_w": 1, "groups": groups, "has_bias": True}

        def forward():
            conv_depthwise_3x3_s2_fwd_cpu(**tensors, **spaces, **geometry, **no_activation)

        def backward():
            conv_depthwise_3x3_s2_bwd_cpu(**grads, y=dy, **spaces, need_dx=True, need_dw=True,
                                          **geometry, **no_activation)
    elif choice.algorithm == "flat":
        path = "flat columns"
        rows, wp, length = flat_size((size, size), (oh, ow), a)
        spaces = {"planes": np.zeros((threads, 2, c * s * s, rows * wp), np.float32),
                  "offsets": np.empty((threads, c * k * k), np.int32),
                  "flat_y": np.empty((threads, o, length), np.float32)}
        margin, direct = (k - 1) * wp + k - 1, s == 1     # the stride-1 input gradient
        back = {"sums": np.empty((threads, groups, c // groups * k * k, o // groups, LANES),
                                 np.float32),
                "cols": np.empty((threads, 1, 1) if direct else (threads, c * k * k, length),
                                 np.float32),
                "margins": np.empty((threads, o, margin + rows * wp) if direct
                                    else (threads, 1, 1), np.float32),
                "flipped": np.empty((threads, c, o // groups * k * k) if direct
                                    else (threads, 1, 1), np.float32),
                "flipped_offsets": np.empty((threads, o * k * k if direct else 1), np.int32)}
        raw = np.empty((threads, 1, 1, 1), np.float32)
        geometry = {"stride_h": s, "stride_w": s, "pad_top": p, "pad_left": p, "dilation_h": 1,
                    "dilation_w": 1, "plane_width": wp, "groups": groups, "has_bias": True}

        def forward():
            conv_flat_fwd_cpu(**tensors, **spaces, **geometry, **no_activation)

        def backward():
            conv_flat_bwd_cpu(**grads, y=dy, **spaces, **back, raw=raw, parts=parts,
                              bias_parts=bias_parts, need_dx=True, need_dw=True, **geometry,
                              **no_activation)
    else:
        path = "im2col"
        stack = choice.stack
        spaces = {
            "planes": np.empty((threads, 2, c, (size + 2 * p) ** 2), np.float32),
            "offsets": np.empty((threads, oh * ow), np.int32),
            "cols": np.empty((threads, c * k * k, stack * oh * ow), np.float32),
            "stage": np.empty((threads, o, stack * oh * ow) if stack > 1 else (threads, 1, 1),
                              np.float32)}
        arguments = {"saved": False, "stack": stack, "stride_h": s, "stride_w": s, "pad_top": p,
                     "pad_left": p, "dilation_h": 1, "dilation_w": 1, "pad_bottom": p,
                     "pad_right": p, "groups": groups, "has_bias": True}

        def forward():
            conv_fwd_cpu(**tensors, **spaces, **arguments, **no_activation)

        def backward():
            conv_bwd_cpu(**grads, **spaces, parts=parts, bias_parts=bias_parts, need_dx=True,
                         need_dw=True, **arguments)
    return SimpleNamespace(name=name, path=path, flops=flops, x=x, w=w, b=b, dy=dy, y=y, dx=dx,
                           dw=dw, db=db, forward=forward, backward=backward)


def theirs(name, n, c, o, size, k, s, p, threads: int, rng, groups: int = 1) -> SimpleNamespace:
    """The same layer (the same inputs for the same rng) in PyTorch's conv2d: `forward()`
    returns y; `backward(y)` returns (dx, dw, db) for a y that `forward_graph()` made."""
    import torch
    torch.set_num_threads(threads)
    x, w, b, dy, flops = _tensors(n, c, o, size, k, s, p, rng, groups)
    x, w, b, dy = (torch.from_numpy(a) for a in (x, w, b, dy))
    x.requires_grad_()
    w.requires_grad_()
    b.requires_grad_()

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w, b, s, p, 1, groups)

    def forward_graph():
        return torch.nn.functional.conv2d(x, w, b, s, p, 1, groups)

    def backward(y):
        return torch.autograd.grad(y, (x, w, b), dy)

    return SimpleNamespace(name=name, flops=flops, x=x, w=w, b=b, dy=dy, forward=forward,
                           forward_graph=forward_graph, backward=backward)


def measure(name, n, c, o, size, k, s, p, threads: int, rng, repeat: int = 5,
            groups: int = 1) -> dict:
    """GFLOP/s of cnngraph's forward and backward (both gradients) for one layer."""
    case = ours(name, n, c, o, size, k, s, p, threads, rng, groups)
    fwd = best_of(case.forward, repeat)
    bwd = best_of(case.backward, repeat)
    return {"layer": name, "path": case.path, "fwd": case.flops / fwd / 1e9,
            "bwd": 2 * case.flops / bwd / 1e9}


def measure_torch(name, n, c, o, size, k, s, p, threads: int, rng, repeat: int = 5,
                  groups: int = 1) -> dict:
    """The same figures for PyTorch's conv2d. Its backward is timed on its own: each timed call
    is autograd's pass over a graph that an untimed forward made just before (a difference of
    two medians could come out negative on a loaded machine)."""
    case = theirs(name, n, c, o, size, k, s, p, threads, rng, groups)
    fwd = best_of(case.forward, repeat)
    bwd = best_of(case.backward, repeat, setup=case.forward_graph)
    return {"layer": name, "fwd": case.flops / fwd / 1e9, "bwd": 2 * case.flops / bwd / 1e9}


def main() -> None:
    """cnngraph's layers first, then PyTorch's: PyTorch's OpenMP threads keep spinning after its
    ops and would slow whatever runs next (bench/targets.py runs each in its own process)."""
    import numba
    threads = numba.get_num_threads()
    bandwidths = stream_bandwidths(threads)
    mine = [measure_depthwise(*layer, threads, np.random.default_rng(0)) for layer in DEPTHWISE]
    peak = gemm_peak()
    print(f"{threads} threads; sgemm peak {peak:.0f} GFLOP/s (one sgemm per core)")
    figures = [measure(*layer, threads, np.random.default_rng(0)) for layer in LAYERS]
    torch_figures = [measure_torch(*layer, threads, np.random.default_rng(0)) for layer in LAYERS]
    print(f"{'layer':<24} {'path':<13} {'fwd GF/s':>9} {'bwd GF/s':>9} {'fwd %pk':>8} "
          f"{'bwd %pk':>8} {'torch fwd':>10} {'torch bwd':>10} {'fwd x':>6} {'bwd x':>6}")
    for r, t in zip(figures, torch_figures, strict=True):
        print(f"{r['layer']:<24} {r['path']:<13} {r['fwd']:9.1f} {r['bwd']:9.1f} "
              f"{r['fwd'] / peak:8.0%} {r['bwd'] / peak:8.0%} {t['fwd']:10.1f} {t['bwd']:10.1f} "
              f"{r['fwd'] / t['fwd']:6.2f} {r['bwd'] / t['bwd']:6.2f}")
    torch_dw = [measure_depthwise(*layer, threads, np.random.default_rng(0), torch=True)
                for layer in DEPTHWISE]
    print(f"\nstream scale {bandwidths['scale'] / 1e9:.1f}, triad "
          f"{bandwidths['triad'] / 1e9:.1f} GB/s; milliseconds forward / backward, and fwd+bwd "
          "over the bound (forward traffic at the scale's bandwidth, backward at the triad's)")
    print(f"{'layer':<24} {'path':<17} {'fwd':>6} {'bwd':>6} {'bound':>6} {'x bound':>8} "
          f"{'torch fwd':>10} {'torch bwd':>10} {'x bound':>8}")
    for layer, r, t in zip(DEPTHWISE, mine, torch_dw, strict=True):
        least = bound(layer, bandwidths)
        print(f"{r['layer']:<24} {r['path']:<17} {r['fwd'] * 1e3:6.2f} {r['bwd'] * 1e3:6.2f} "
              f"{least * 1e3:6.2f} {(r['fwd'] + r['bwd']) / least:8.2f} {t['fwd'] * 1e3:10.2f} "
              f"{t['bwd'] * 1e3:10.2f} {(t['fwd'] + t['bwd']) / least:8.2f}")


if __name__ == "__main__":
    main()
