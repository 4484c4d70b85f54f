"""The finite-difference gradient checker (`cnngraph check --grad`): kinks left out, wrong
gradients still caught."""
import numpy as np

import cnngraph
from cnngraph.tools.gradcheck import at_kink, gradient_check, kink_distance

from helpers import KINKED_SPEC

# conv1's 1x1 window over padding gives a border of exact zeros (its bias, 0 at init); the 3x3
# conv2 over it outputs 0 in a direct convolution and +-1e-16 in a Winograd one, so the ReLU
# after it passes some of those gradients and blocks others: the central difference of conv2's
# bias crosses the kink and matches neither.


def test_a_correct_network_with_kinks_passes_and_counts_what_it_left_out(write_spec):
    """With the zero biases of initialisation (the tie kept on purpose)."""
    rows = {r.layer: r for r in gradient_check(cnngraph.load(write_spec(KINKED_SPEC)),
                                               offset_constants=False)}
    assert all(r.worst <= 1e-4 for r in rows.values()), rows
    assert rows["conv1"].excluded > 0 and rows["conv2"].excluded > 0
    assert rows["conv2"].probes >= 3          # its weights are still compared
    assert rows["input"].probes == 3 and rows["dense1"].probes == 6
    assert {name for r in rows.values() for name in r.unchecked} == {"conv1.bias", "conv2.bias"}


def test_constant_initial_values_are_offset_so_every_tensor_is_judged(write_spec, monkeypatch):
    """By default the biases get small random offsets: no tie, every tensor compared, and a
    wrong bias gradient (invisible while every probe of it sat on the kink) fails."""
    from cnngraph.runtime.model import Model
    net = cnngraph.load(write_spec(KINKED_SPEC))
    rows = gradient_check(net)
    assert all(r.worst <= 1e-4 and not r.unchecked for r in rows), rows
    assert [r.probes for r in rows] == [3, 6, 6, 6]
    original = Model.loss_and_grad

    def wrong_bias_gradient(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        self.grads["conv2.bias"][...] += 1.0
        return loss

    monkeypatch.setattr(Model, "loss_and_grad", wrong_bias_gradient)
    rows = {r.layer: r for r in gradient_check(net)}
    assert rows["conv2"].worst > 1e-2 and rows["conv1"].worst <= 1e-4


def scale_cpu(array, factor: float) -> None:
    """The kernel the broken lowering below adds to the backward pass."""
    array *= factor


def _scale_weight_gradient(monkeypatch, op: str, factor: float) -> None:
    """`op`'s backward pass, made to scale its weight gradient by `factor`."""
    from dataclasses import replace

    from cnngraph.ops import REGISTRY
    from cnngraph.ops.lowering import Call, Kernel, grad
    original = REGISTRY[op]

    def broken(node, ctx):
        lowering = original.lower(node, ctx)
        scale = Call(Kernel(__name__, "scale_{target}"), {"array": grad("weight"),
                                                         "factor": factor})
        return replace(lowering, backward=(*lowering.backward, scale))

    monkeypatch.setitem(REGISTRY, op, replace(original, lower=broken))


def test_a_gradient_wrong_by_one_percent_still_fails(monkeypatch, write_spec):
    _scale_weight_gradient(monkeypatch, "conv", 1.01)
    rows = {r.layer: r for r in gradient_check(cnngraph.load(write_spec(KINKED_SPEC)))}
    assert rows["conv2"].worst > 5e-3 and rows["conv1"].worst > 5e-3
    assert rows["dense1"].worst <= 1e-4


def test_relu_inputs_moved_across_or_onto_the_kink_are_excluded():
    minus = np.array([-1e-7, 0.0, 0.5, 1e-16, 0.2])
    base = np.array([0.0, 1e-7, 0.5, -1e-16, 0.2])
    plus = np.array([1e-7, 2e-7, 0.5 + 1e-7, 2e-16, 0.2 + 1e-16])
    # crossed; touched the kink; moved far from it; rounding noise only; unmoved
    assert at_kink(minus, base, plus, 1.0).tolist() == [True, True, False, False, False]


def test_max_pooling_distance_is_the_margin_of_each_windows_winner(write_spec):
    spec = "version: 1\ninput: [1, 2, 4]\nlayers: [maxpool: {kernel: 2}]\n"
    net = cnngraph.load(write_spec(spec))
    node = net.nodes[0]
    x = np.array([[[[1.0, 3.0, 5.0, 5.0], [2.0, 0.5, 4.0, 1.0]]]])
    distance, argmax = kink_distance(node, x)
    assert distance.tolist() == [[[[1.0, 0.0]]]]                  # 3 over 2; a tie at 5
    swapped = x.copy()
    swapped[0, 0, 0, :2] = [3.0, 1.0]                             # the winner moved
    assert kink_distance(node, swapped, argmax)[0][0, 0, 0, 0] < 0
