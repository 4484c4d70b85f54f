"""Check a compiled network's generated backward pass against float64 finite differences.

For every layer with parameters, and for the network input, a few random coordinates are
perturbed by +-eps and the central difference of the loss is compared with the analytic
gradient of the compiled training step. Batch-norm running statistics are restored and the
dropout masks held fixed between evaluations, so every evaluation computes the same function.
Layers without parameters are checked through the gradients that flow through them to the
layers and input before them.

Kinks. Some ops are not differentiable where their input sits on a kink (0 for ReLU; a tie
between the two largest values of a max window: each op's `kink` says where), and rounding
decides which side the analytic gradient takes there: a conv whose window sees only zeros
outputs its bias, 0 at initialisation, exactly in a direct convolution but +-1e-16 in a
Winograd one, so the ReLU after it passes some of those gradients and blocks the others, and
the central difference, which crosses the kink, matches neither. As Caffe's checker does, such
coordinates are excluded: the losses are evaluated by the same step compiled without fused
activations, which keeps every kinked op's input, and a probe is excluded when it moves any of
those inputs (by more than rounding, `MOVE`) across its kink between the -eps, 0 and +eps
evaluations, or to within `TOL` of it. Excluded probes are counted, and replaced by fresh
coordinates (up to `RETRIES` times the samples asked for), so rounding at a kink no longer
fails a correct network, and a wrong gradient away from kinks still fails. Exact ties are
avoided in the first place: parameters initialised to a constant (biases, batch norm's scale
and shift) get small random offsets before the check, or a zero bias over zero padding would
put every probe of that bias on a ReLU's kink. A tensor none of whose probes could be compared
is reported as unchecked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import INPUT, Network, Node
from ..ops import REGISTRY
from ..ops.lowering import ident
from ..train.metrics import per_sample_loss

TOL = 1e-9       # an input this close to a kink (relative to the tensor's scale) is on it
MOVE = 1e-12     # ... when the probe moves it by more than this: rounding moves it less
RETRIES = 4


@dataclass(frozen=True)
class LayerCheck:
    layer: str
    op: str
    probes: int           # coordinates compared
    worst: float          # worst relative_error over them (0.0 when none was compared)
    excluded: int = 0     # coordinates left out: their probe crossed, or sat on, a kink
    unchecked: tuple[str, ...] = ()   # tensors none of whose probes could be compared


def relative_error(analytic: float, numeric: float, floor: float = 1e-4) -> float:
    """|a - n| / max(|a|, |n|, floor). The floor keeps gradients that are truly zero (a bias
    before batch norm) from turning central-difference round-off (~1e-10) into large ratios;
    below it the error is judged in absolute terms at that scale."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)


def kink_distance(node: Node, x: np.ndarray, winners: np.ndarray | None = None):
    """Signed distance of each element of a kinked op's input `x` from its kink, and the
    winners of its max windows (the base evaluation's, when given): the op's `kink`."""
    kink = REGISTRY[node.op].kink
    assert kink is not None, f"`{node.op}` has no kink"
    return kink(node, x, winners)


def at_kink(minus: np.ndarray, base: np.ndarray, plus: np.ndarray, scale: float) -> np.ndarray:
    """Which elements a probe moves (beyond rounding) across their kink, or to within `TOL` of
    it, given their distances from it at -eps, 0 and +eps."""
    scale = max(1.0, scale)
    with np.errstate(invalid="ignore"):
        moved = np.abs(plus - minus) > MOVE * scale
        crossed = (np.sign(minus) != np.sign(base)) | (np.sign(plus) != np.sign(base))
        near = np.minimum(np.minimum(np.abs(minus), np.abs(base)), np.abs(plus)) <= TOL * scale
    return moved & (crossed | near)


class _Evaluator:
    """The loss of the compiled step, without fused activations, so the inputs of every kinked
    op can be read after its forward pass."""

    def __init__(self, model, x, labels, seed: int):
        from ..jit import load_module
        from ..passes.plan import make_plan
        from ..runtime.codegen import step_source
        from ..runtime.model import Program
        net, backend = model.net, model.backend
        self.model, self.x, self.labels, self.seed = model, x, labels, seed
        self.kinked = [node for node in net.nodes if REGISTRY[node.op].kink]
        keep = frozenset(node.inputs[0] for node in self.kinked)
        lowerings = {node.name: backend.lower(node) for node in net.nodes}
        plan = make_plan(net, lowerings, True, keep=keep)
        self.program = Program(net, plan, load_module(step_source(net, lowerings, plan, backend),
                                                      f"{backend.name}_gradcheck"))
        self.views = model.bind(self.program, len(x))
        self.inputs = [getattr(self.views, ident(node.inputs[0])) for node in self.kinked]
        self.buffers = np.array(model.flat_buffers)
        self.winners: list = [None] * len(self.kinked)

    def __call__(self) -> tuple[float, list[np.ndarray]]:
        """The loss at the current parameters and input, and the kinked ops' distances."""
        model, p = self.model, self.program
        model.load_input(self.views, self.x)
        model.run_forward(p, self.views, True, self.seed)
        model.flat_buffers[...] = self.buffers
        loss = sum(output.weight * float(per_sample_loss(
            output.loss, np.array(getattr(self.views, ident(output.node))), self.labels).mean())
            for output in model.net.outputs)
        distances = []
        for k, (node, x) in enumerate(zip(self.kinked, self.inputs, strict=True)):
            d, self.winners[k] = kink_distance(node, np.array(x), self.winners[k])
            distances.append(d)
        return loss, distances


def gradient_check(net: Network, samples: int = 3, batch: int = 2, seed: int = 0,
                   eps: float = 1e-6, offset_constants: bool = True) -> list[LayerCheck]:
    """Per layer with parameters (and the input): the probes compared, the worst relative
    error, the probes left out at kinks and the tensors left unchecked. `offset_constants`
    False keeps the initial values as they are (zero biases included), ties and all."""
    from ..api import compile as compile_net
    model = compile_net(net, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    for value in model.params.values():
        if offset_constants and value.size > 1 and np.all(value == value.flat[0]):
            value += rng.uniform(-0.1, 0.1, value.shape)
    x = rng.standard_normal((batch, *net.input_shape))
    labels = rng.integers(0, net.output_shape[0], batch)
    buffers = np.array(model.flat_buffers)
    model.loss_and_grad(x, labels, input_grad=True)     # the analytic gradients, as trained
    model.flat_buffers[...] = buffers
    grads = {k: np.array(v) for k, v in model.grads.items()}
    input_grad = np.array(model.input_grad)
    evaluate = _Evaluator(model, x, labels, model.step_seed(model.steps))   # the same masks
    _, base = evaluate()             # the max windows' winners are the base evaluation's
    scales = [float(np.max(np.abs(d[np.isfinite(d)]), initial=0.0)) for d in base]

    def at(array, index, step):
        old = array[index]
        array[index] = old + step
        value = evaluate()
        array[index] = old
        return value

    targets = [(INPUT, "input", {INPUT: x}, {INPUT: input_grad})]
    for node in net.nodes:
        if node.params:
            names = [f"{node.name}.{k}" for k in node.params]
            targets.append((node.name, node.op, {n: model.params[n] for n in names},
                            {n: grads[n] for n in names}))
    results = []
    for layer, op, arrays, analytic in targets:
        worst, probes, excluded, unchecked = 0.0, 0, 0, []
        for name, array in arrays.items():
            compared = 0
            for _ in range(samples * RETRIES):
                if compared == samples:
                    break
                index = tuple(int(rng.integers(0, s)) for s in array.shape)
                up, up_d = at(array, index, eps)
                down, down_d = at(array, index, -eps)
                if any(at_kink(m, b, p, s).any()
                       for m, b, p, s in zip(down_d, base, up_d, scales, strict=True)):
                    excluded += 1
                    continue
                numeric = (up - down) / (2 * eps)
                worst = max(worst, relative_error(analytic[name][index], numeric))
                compared += 1
            probes += compared
            if not compared:
                unchecked.append(name)
        results.append(LayerCheck(layer, op, probes, worst, excluded, tuple(unchecked)))
    return results
