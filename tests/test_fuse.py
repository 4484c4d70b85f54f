"""The fusion passes: which producer -> activation pairs fuse, which slices and channel
shuffles fold into concats, and the rewired graph; the gradients of a split that partitions
its input going into one buffer without a sum. (That the fused networks compute the same values
and gradients as PyTorch: the cases of ops/slice, ops/concat and ops/channel_shuffle.)"""
import pytest

import cnngraph
from cnngraph.ops.concat import ConcatAttrs
from cnngraph.passes.autodiff import Backward, Sum, backward_schedule, grad_name
from cnngraph.passes.fuse import fuse_activations, fuse_copies

SHUFFLE_UNIT = """
    version: 1
    input: [6, 4, 4]
    layers:
      - conv: {out: 8, kernel: 1}
        id: stem
      - parallel:
          - [slice: {stop: 4}]
          - [slice: {start: 4}, conv: {out: 4, kernel: 1}]
        merge: concat
        id: join
      - channel_shuffle: {groups: 2}
        id: shuffle
      - relu
"""


def test_pairs_fuse_only_where_the_derivative_needs_the_output_alone(write_spec):
    net = cnngraph.load(write_spec("""
        version: 1
        input: [3, 8, 8]
        layers:
          - conv: {out: 4, kernel: 3}
          - batchnorm
          - relu
          - conv: {out: 4, kernel: 3}
            id: shared
          - leaky_relu
          - conv: {out: 4, kernel: 1}
            id: last
          - add:
            from: [shared, last]
          - relu
          - flatten
          - dense: {out: 3}
          - sigmoid
        """))
    fused = fuse_activations(net)
    by_name = {n.name: n for n in fused.nodes}
    assert by_name["batchnorm1"].activation == ("relu", 0.0)
    assert by_name["conv1"].activation is None          # feeds batch norm, not an activation
    assert by_name["shared"].activation is None         # two consumers
    assert "leaky_relu1" in by_name                     # its derivative needs the raw input
    assert "relu1" not in by_name and by_name["shared"].inputs == ("batchnorm1",)
    assert by_name["add1"].inputs == ("shared", "last") and "relu2" not in by_name
    assert by_name["add1"].activation == ("relu", 0.0)   # a residual block's merge
    assert by_name["dense1"].activation == ("sigmoid", 0.0)
    assert fused.output == "dense1" and "sigmoid1" not in by_name
    assert fused.param_shapes() == net.param_shapes()
    assert fuse_activations(fused) == fused


@pytest.mark.parametrize("backend", ["cuda", "cpu"])
def test_the_model_compiles_the_fused_network(write_spec, backend):
    """Both backends fuse the activations of conv, dense and batch norm."""
    net = cnngraph.load(write_spec("version: 1\ninput: [2, 5, 5]\nlayers:\n"
                                   "  - conv: {out: 3, kernel: 3}\n  - relu\n"
                                   "  - batchnorm\n  - tanh\n  - flatten\n"
                                   "  - dense: {out: 2}\n"))
    model = cnngraph.compile(net, backend=backend)
    names = [n.name for n in model.program(True).net.nodes]
    assert names == ["conv1", "batchnorm1", "flatten1", "dense1"]
    assert "relu" not in [n.op for n in model.program(False).net.nodes]


def test_shufflenet_unit_copies_fold_into_its_concat(write_spec):
    """The split's first half is read in place and the shuffle is the concat's write order;
    the second half stays a slice (a conv reads it); the two halves partition the stem's
    output, so its gradient is written by both, with no sum and no clearing."""
    net = cnngraph.load(write_spec(SHUFFLE_UNIT))
    fused = fuse_copies(net)
    by_name = {n.name: n for n in fused.nodes}
    assert [n.op for n in fused.nodes] == ["conv", "slice", "conv", "concat", "relu"]
    join = by_name["join"]
    assert join.inputs == ("stem", "branch2.conv1")
    assert join.in_shapes == ((8, 4, 4), (4, 4, 4)) and join.shape == (8, 4, 4)
    assert join.attrs == ConcatAttrs(reads=((0, 4), None), shuffle=2)
    assert by_name["relu1"].inputs == ("join",)
    assert fused.param_shapes() == net.param_shapes()
    assert fuse_copies(fused) == fused
    steps = backward_schedule(fused)
    assert not any(isinstance(step, Sum) for step in steps)
    writers = {step.node: step for step in steps if isinstance(step, Backward)
               and grad_name("stem") in step.dx}
    assert set(writers) == {"join", "branch2.slice1"}
    assert writers["join"].alone == (False, True)
    assert writers["branch2.slice1"].alone == (False,)
    # unfused, the stem's two slices partition it just the same
    assert not any(isinstance(step, Sum) for step in backward_schedule(net))


@pytest.mark.parametrize("layers, removed, summed", [
    # a slice that would span both groups of the shuffle stays a copy of its own
    ("[slice: {stop: 6}]\n      - [slice: {start: 6}]\n    merge: concat\n"
     "  - channel_shuffle: {groups: 2}", ["channel_shuffle1", "branch2.slice1"], False),
    # both slices read in place: the concat reads its input twice, in two disjoint ranges
    ("[slice: {stop: 4}]\n      - [slice: {start: 4}]\n    merge: concat",
     ["branch1.slice1", "branch2.slice1"], False),
    # slices that overlap: both read in place, and the stem's gradient is a sum
    ("[slice: {stop: 5}]\n      - [slice: {start: 3}]\n    merge: concat",
     ["branch1.slice1", "branch2.slice1"], True),
    # a slice beside the whole map: the slice folds, the sum stays
    ("[slice: {stop: 4}]\n      - [relu]\n    merge: concat", ["branch1.slice1"], True),
])
def test_copies_fold_only_where_they_may(write_spec, layers, removed, summed):
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [6, 4, 4]\nlayers:\n  - conv: {out: 8, kernel: 1}\n"
        f"  - parallel:\n      - {layers}\n  - flatten\n  - dense: {{out: 2}}\n"))
    fused = fuse_copies(net)
    assert sorted({n.name for n in net.nodes} - {n.name for n in fused.nodes}) == sorted(removed)
    assert any(isinstance(step, Sum) and step.tensor == "conv1"
               for step in backward_schedule(fused)) == summed
