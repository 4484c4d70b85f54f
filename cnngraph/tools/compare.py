"""`cnngraph bench SPEC --compare torch,onnxruntime`: a network's inference and training step
timed in cnngraph and in other frameworks, on the same weights, data and thread count.

Each framework runs in processes of its own, cnngraph's and the others' taking turns for
`rounds` rounds: PyTorch's OpenMP threads spin after its ops, and in a shared process they
slowed cnngraph's steps measured after them by up to 25 % (bench/targets.py, which measures
through this module too). A time is the median of `repeat` calls, or of a second's worth of
them where that is more. A ratio is the median over the rounds of the two times measured one
after the other, shown with its range: the load of a shared machine drifts between rounds, and
pairing cancels most of that. PyTorch runs the network through `torch_reference` (eval mode for
inference; SGD with momentum on the cross-entropy for training); onnxruntime runs the ONNX
export of the same weights (`Model.export_onnx`) with as many intra-op threads, and only
infers. Each framework is imported in its own child only; a missing one is reported with the
extra that installs it.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAMEWORKS = {"torch": "pip install torch",              # framework -> how to install it
              "onnxruntime": "pip install 'cnngraph[onnx]'"}


def median_seconds(step, repeat: int, at_least: float = 1.0) -> float:
    """The median time of `step` over `repeat` calls, or over as many as take `at_least`
    seconds: a LeNet step takes ~10 ms, and a median of 7 of them moved by 20-30 % with other
    load on the machine (measured)."""
    step()
    start = time.perf_counter()
    step()
    repeat = max(repeat, math.ceil(at_least / max(time.perf_counter() - start, 1e-9)))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batch_of(net, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The same random batch of inputs and class labels in every process."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    return x, rng.integers(0, net.output_shape[0], batch)


def cnngraph_steps(net, batch: int):
    """The compiled model, and closures for one training step (SGD with momentum; returns the
    loss) and one inference call (returns the logits)."""
    import cnngraph
    from cnngraph.train.optim import SGD
    model = cnngraph.compile(net)
    opt = SGD(model, lr=0.01, momentum=0.9)
    x, y = batch_of(net, batch)

    def train():
        loss = model.loss_and_grad(x, y)
        opt.step()
        return loss

    return model, train, lambda: model.forward(x)


def torch_steps(net, params: dict, buffers: dict, batch: int):
    """The same two closures in PyTorch, from cnngraph's initial values."""
    import torch

    from .torch_reference import run
    params = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True)
              for k, v in params.items()}
    buffers = {k: torch.tensor(v, dtype=torch.float32) for k, v in buffers.items()}
    opt = torch.optim.SGD(params.values(), lr=0.01, momentum=0.9)
    x, y = batch_of(net, batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def train():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(run(net, params, buffers, xt, True), yt)
        loss.backward()
        opt.step()
        return loss

    def infer():
        with torch.inference_mode():
            return run(net, params, buffers, xt, False)

    return train, infer


def torch_values(net) -> tuple[dict, dict]:
    """cnngraph's initial parameters and buffers of `net` (seed 0), with PyTorch set to
    Numba's thread count."""
    import numba
    import torch

    from ..passes.init import initial_values
    torch.set_num_threads(numba.get_num_threads())
    return initial_values(net, 0)


def onnxruntime_infer(model, x: np.ndarray, threads: int):
    """An inference closure of onnxruntime's CPU provider on the model's ONNX export, with
    `threads` intra-op threads and one inter-op thread."""
    import onnxruntime
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        model.export_onnx(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    return lambda: session.run(None, feed)[0]


def trains(net) -> bool:
    """Whether a training step can be compared: one output, classified by cross-entropy."""
    return len(net.outputs) == 1 and net.outputs[0].loss == "cross_entropy"


def measure(framework: str, net, batch: int, repeat: int, train: bool = True) -> dict:
    """Median seconds of an inference call (and of a training step, where asked, `trains` and
    the framework trains), and the first logits from the initial weights (before any step),
    on Numba's thread count."""
    import numba
    if framework == "torch":
        step, infer = torch_steps(net, *torch_values(net), batch)
    else:
        model, step, infer = cnngraph_steps(net, batch)
        if framework == "onnxruntime":
            infer = onnxruntime_infer(model, batch_of(net, batch)[0], numba.get_num_threads())
    logits = np.asarray(infer(), np.float64)[:2].tolist()
    timed = {"infer": median_seconds(infer, repeat), "logits": logits}
    if train and framework != "onnxruntime" and trains(net):
        timed["train"] = median_seconds(step, repeat)
    return timed


@dataclass(frozen=True)
class Row:
    """One workload's times in cnngraph and each other framework (medians over the rounds,
    seconds) and the ratios (the other's time / cnngraph's, round by round)."""
    workload: str
    ours: float
    theirs: dict[str, float]
    ratios: dict[str, list[float]]


def missing_extra(frameworks: list[str]) -> str | None:
    """The install command for the first framework that cannot be imported here, if any."""
    import importlib.util
    for framework in frameworks:
        if importlib.util.find_spec(framework) is None:
            return f"{framework} is not installed: {FRAMEWORKS[framework]}"
    return None


def compare(spec: str, frameworks: list[str], batch: int, repeat: int, rounds: int,
            params: dict | None = None, input_shape: tuple[int, ...] | None = None,
            progress=print) -> tuple[list[Row], float]:
    """Rows for inference and (where it trains) the training step, and the largest gap
    between any framework's first logits and cnngraph's."""
    args = [spec, str(batch), str(repeat), json.dumps(params or {}),
            json.dumps(list(input_shape) if input_shape else None)]
    runs: dict[str, list[dict]] = {name: [] for name in ("cnngraph", *frameworks)}
    for done in range(rounds):
        for framework in runs:
            runs[framework].append(_in_child(framework, *args))
        progress(f"round {done + 1} of {rounds} done")
    gap = max(float(np.abs(np.subtract(run["logits"], ours["logits"])).max())
              for framework in frameworks
              for run, ours in zip(runs[framework], runs["cnngraph"], strict=True))
    rows = []
    for mode in ("infer", "train"):
        if mode not in runs["cnngraph"][0]:
            continue
        others = [f for f in frameworks if mode in runs[f][0]]
        rows.append(Row(
            f"{'inference' if mode == 'infer' else 'training step'}, batch {batch}",
            statistics.median(r[mode] for r in runs["cnngraph"]),
            {f: statistics.median(r[mode] for r in runs[f]) for f in others},
            {f: sorted(t[mode] / o[mode] for o, t in zip(runs["cnngraph"], runs[f],
                                                         strict=True)) for f in others}))
    return rows, gap


def render(rows: list[Row], frameworks: list[str], batch: int) -> str:
    """A Markdown table: images/s and, per framework, the ratio's median and range (above 1:
    cnngraph is faster)."""
    head = "| workload | cnngraph |" + "".join(f" {f} | x {f} |" for f in frameworks)
    lines = [head, "|---|---|" + "---|---|" * len(frameworks)]
    for row in rows:
        cells = [f"{batch / row.ours:,.1f} img/s"]
        for framework in frameworks:
            if framework not in row.theirs:
                cells += ["", ""]
                continue
            ratios = row.ratios[framework]
            cells += [f"{batch / row.theirs[framework]:,.1f} img/s",
                      f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"]
        lines.append(f"| {row.workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _in_child(framework: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", __name__, framework, *args], check=False,
                         capture_output=True, text=True, env=dict(os.environ))
    if out.returncode != 0:
        raise RuntimeError(f"the {framework} measurement failed:\n{out.stderr[-3000:]}")
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _child(framework: str, spec: str, batch: str, repeat: str, params: str,
           input_shape: str) -> None:
    import cnngraph
    shape = json.loads(input_shape)
    net = cnngraph.load(spec, input_shape=tuple(shape) if shape else None,
                        params=json.loads(params))
    print(json.dumps(measure(framework, net, int(batch), int(repeat))))


if __name__ == "__main__":
    _child(*sys.argv[1:])
