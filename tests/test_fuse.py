"""The activation fusion pass: which producer -> activation pairs fuse, and the rewired graph."""
import pytest

import cnngraph
from cnngraph.passes.fuse import fuse_activations


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
    assert by_name["add1"].inputs == ("shared", "last") and "relu2" in by_name
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
