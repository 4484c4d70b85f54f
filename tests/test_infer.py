"""Shape inference and receptive-field arithmetic."""
import pytest
import torch

import cnngraph
from cnngraph.errors import SpecError

from helpers import SPECS

DAG = """
version: 1
input: [1, 64, 64]
layers:
  - conv: {out: 2, kernel: 3, padding: 1}
  - conv: {out: 2, kernel: 3, stride: 2, padding: 1}
  - conv: {out: 2, kernel: 3, dilation: 2, padding: 2}
  - avgpool: {kernel: 2}
  - parallel:
      - [conv: {out: 2, kernel: 5, padding: 2}]
      - [conv: {out: 2, kernel: 1}]
    merge: concat
"""


def test_receptive_field_of_a_dag_by_hand_and_by_gradient(write_spec):
    net = cnngraph.load(write_spec(DAG))
    fields = [(n.name, n.receptive_field[0], n.jump[0]) for n in net.nodes]
    assert fields == [("conv1", 3, 1), ("conv2", 5, 2), ("conv3", 13, 2), ("avgpool1", 15, 4),
                      ("branch1.conv1", 31, 4), ("branch2.conv1", 15, 4), ("concat1", 31, 4)]

    # The same network in PyTorch with positive weights: the input pixels that influence one
    # interior output pixel span exactly the receptive field.
    nn = torch.nn
    trunk = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, 2, 1),
                          nn.Conv2d(2, 2, 3, padding=2, dilation=2), nn.AvgPool2d(2))
    a, b = nn.Conv2d(2, 2, 5, padding=2), nn.Conv2d(2, 2, 1)
    for m in (*trunk, a, b):
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.1)
    x = torch.ones(1, 1, 64, 64, requires_grad=True)
    y = trunk(x)
    out = torch.cat([a(y), b(y)], 1)
    out[0, :, 8, 8].sum().backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert int(rows[-1] - rows[0] + 1) == int(cols[-1] - cols[0] + 1) == 31


@pytest.mark.parametrize("spec, layer, rf", [
    ("vgg16", "vgg_block5.maxpool1", 212),    # Araujo, Norris & Sim, Distill 2019, Table 1
    ("alexnet", "features1.maxpool3", 195),
    ("vgg16", "vgg_block5.conv3", 196),
])
def test_published_receptive_fields(spec, layer, rf):
    assert cnngraph.load(SPECS / f"{spec}.yaml").node(layer).receptive_field == (rf, rf)


def test_vector_networks_have_no_receptive_field(write_spec):
    net = cnngraph.load(write_spec("version: 1\ninput: [8]\nlayers: [dense: {out: 3}]\n"))
    assert net.node("dense1").receptive_field is None and net.output_shape == (3,)


def test_input_override_reinfers_every_shape():
    net = cnngraph.load(SPECS / "resnet18.yaml", input_shape=(3, 160, 160))
    assert net.node("layer4.basic2.relu1").shape == (512, 5, 5)
    with pytest.raises(SpecError, match="window does not fit"):
        cnngraph.load(SPECS / "alexnet.yaml", input_shape=(3, 32, 32))


def test_parameter_names_are_stable_and_pytorch_shaped():
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    params = net.param_shapes()
    assert params["conv1.weight"] == (6, 1, 5, 5)
    assert params["dense3.weight"] == (10, 84)
    assert net.buffer_shapes()["batchnorm4.running_var"] == (84,)


def test_same_padding_is_resolved_in_the_ir(write_spec):
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 7, 7]\n"
        "layers: [conv: {out: 1, kernel: 4, stride: 2, padding: same}]\n"))
    node = net.node("conv1")
    assert node.attrs.padding == (1, 2, 1, 2) and node.shape == (1, 4, 4)


def test_a_global_gate_keeps_the_trunks_receptive_field_in_the_network():
    """Squeeze-excite's `mul` scales the trunk without moving it: the IR's field and jump are
    the trunk's, marked as global context until the next global op."""
    net = cnngraph.load(SPECS / "fmnist-vgg.yaml")
    gate, trunk = net.node("se1.mul1"), net.node("stage3.maxpool1")
    assert (gate.receptive_field, gate.jump) == (trunk.receptive_field, trunk.jump) == \
        ((36, 36), (8, 8))
    assert gate.global_context and not trunk.global_context
    pooled = net.node("global_avgpool1")
    assert pooled.receptive_field == (52, 52) and pooled.jump == (24, 24)
    assert not pooled.global_context
