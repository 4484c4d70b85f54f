"""Where a training step's time goes, per layer (`cnngraph bench`), like `caffe time`.

Each layer's forward and backward kernels are timed inside the generated step code, over
several steps after warm-up, and joined with the static costs of `summary`: achieved GFLOP/s,
share of the step, and the fraction of the backend's peak (on the CPU, the GEMM peak measured in
the same run: kernels/cpu/peak.py).
"""
from __future__ import annotations

import time

import numba
import numpy as np

from .summary import analyse


def profile_step(model, batch: int, repeat: int = 5) -> dict:
    """Per-layer times of a training step, layers as compiled (a fused activation shows as
    `conv+relu`, and its cost joins its producer's)."""
    net = model.program(True).net
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *net.input_shape)).astype(model.dtype)
    labels = model.targets(rng.integers(0, net.output_shape[0], batch), batch)
    plain = model.program(True)
    for _ in range(2):
        model.train_step(plain, x, labels)
    totals = []
    for _ in range(repeat):
        model.backend.synchronize()
        start = time.perf_counter()
        model.train_step(plain, x, labels)
        model.backend.synchronize()
        totals.append(time.perf_counter() - start)
    profiled = model.program(True, profile=True)
    model.train_step(profiled, x, labels)
    times = profiled.module._times
    times[:] = [0.0] * len(times)
    for _ in range(repeat):
        model.train_step(profiled, x, labels)
    times = [t / repeat for t in times]
    count = len(net.nodes)
    costs = {row["name"]: row for row in analyse(model.net, batch=batch)["layers"]}
    step = float(np.median(totals))
    peak, peak_source = model.backend.peak_gflops(model.dtype)
    layers = []
    for i, node in enumerate(net.nodes):
        row = costs[node.name]
        forward_flops = 2 * row["macs"] * batch
        backward_flops = 2 * (row["train_macs"] - row["macs"]) * batch
        layers.append({
            "name": node.name, "op": node.op + (f"+{node.activation[0]}" if node.activation
                                                 else ""), "forward_s": times[i],
            "backward_s": times[count + i], "forward_gflops":
                forward_flops / times[i] / 1e9 if forward_flops and times[i] else None,
            "backward_gflops": backward_flops / times[count + i] / 1e9
                if backward_flops and times[count + i] else None})
    return {"batch": batch, "step_s": step, "images_per_s": batch / step, "layers": layers,
            "sums_s": times[2 * count], "loss_s": times[2 * count + 1],
            "profiled_s": sum(times), "peak_gflops": peak, "peak_source": peak_source,
            "backend": model.backend.name, "threads": numba.get_num_threads()}


def render(data: dict) -> str:
    peak = data["peak_gflops"]
    header = f"{'layer':<32} {'op':<14} {'fwd ms':>8} {'bwd ms':>8} {'share':>6} " \
             f"{'fwd GF/s':>9} {'bwd GF/s':>9} {'of peak':>7}"
    where = f"{data['threads']} threads" if data["backend"] == "cpu" else data["backend"]
    lines = [f"batch {data['batch']}, {where}; peak {peak:.0f} GFLOP/s ({data['peak_source']})",
             header, "-" * len(header)]
    total = data["profiled_s"]
    for row in data["layers"]:
        share = (row["forward_s"] + row["backward_s"]) / total
        gf = [row["forward_gflops"], row["backward_gflops"]]
        best = max((g for g in gf if g), default=None)
        lines.append(
            f"{row['name'][:32]:<32} {row['op']:<14} {row['forward_s'] * 1e3:8.2f} "
            f"{row['backward_s'] * 1e3:8.2f} {share:6.1%} "
            + " ".join(f"{g:9.1f}" if g else f"{'-':>9}" for g in gf)
            + (f" {best / peak:7.0%}" if best else f" {'-':>7}"))
    lines.append("-" * len(header))
    lines.append(f"{'fan-out gradient sums':<47} {data['sums_s'] * 1e3:17.2f} "
                 f"{data['sums_s'] / total:6.1%}")
    lines.append(f"{'loss (softmax cross-entropy)':<47} {data['loss_s'] * 1e3:17.2f} "
                 f"{data['loss_s'] / total:6.1%}")
    lines.append(f"step: {data['step_s'] * 1e3:.1f} ms ({data['images_per_s']:,.0f} images/s); "
                 f"kernels {total * 1e3:.1f} ms, the rest is Python and copying "
                 f"({max(data['step_s'] - total, 0) * 1e3:.1f} ms)")
    return "\n".join(lines)
