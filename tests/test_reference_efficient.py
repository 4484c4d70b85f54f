"""The efficient nets of specs/ against their published figures: MobileNet v1 (and its width
multiplier), MobileNet v2, ShuffleNet v1 and v2, SqueezeNet 1.1; and their blocks against the
PyTorch modules of reference_efficient.py, weight for weight. test_reference.py checks every
layer of each net against its PyTorch definition."""
import json

import numpy as np
import pytest
import torch
from torch import nn

import cnngraph
from cnngraph.tools.summary import analyse

from helpers import SPECS
from reference_efficient import (
    Fire,
    InvertedResidual,
    ShuffleUnitV1,
    ShuffleUnitV2,
    conv_bn,
    mobilenet_v1,
)
from reference_models import build, profile


@pytest.mark.parametrize("name, params, macs", [
    ("mobilenet_v1", 4_231_976, 568_740_352),   # the paper's 4.2 M and 569 M (Table 8)
    ("mobilenet_v2", 3_504_872, 300_774_272),   # torchvision's mobilenet_v2
    ("shufflenet_v2", 2_278_604, 144_907_992),  # torchvision's shufflenet_v2_x1_0
    ("squeezenet1_1", 1_235_496, 349_151_936),  # torchvision's squeezenet1_1
])
def test_published_figures(name, params, macs):
    totals = analyse(cnngraph.load(SPECS / f"{name}.yaml"))["totals"]
    assert (totals["params"], totals["macs"]) == (params, macs)


def test_shufflenet_v1_g3_is_the_papers_140_mflops_network():
    totals = analyse(cnngraph.load(SPECS / "shufflenet_v1_g3.yaml"))["totals"]
    assert (totals["params"], totals["macs"]) == (1_864_728, 137_460_672)
    assert round(totals["macs"], -7) == 140_000_000    # Table 2 gives tens of MFLOPs


@pytest.mark.parametrize("width, params, mmacs", [(0.75, 2.6, 325), (0.5, 1.3, 149)])
def test_mobilenet_v1_width_multiplier(width, params, mmacs):
    """Table 6 of the paper, rounded as published, and exactly the PyTorch definition at the
    same width."""
    net = cnngraph.load(SPECS / "mobilenet_v1.yaml", params={"width": width})
    totals = analyse(net)["totals"]
    assert round(totals["params"] / 1e6, 1) == params
    assert round(totals["macs"] / 1e6) == mmacs
    with torch.device("meta"):
        ref = profile(mobilenet_v1(width), (3, 224, 224))
    assert (totals["params"], totals["buffers"], totals["macs"]) == \
        (ref["params"], ref["buffers"], ref["macs"])
    assert [n.shape for n in net.nodes if n.op in ("conv", "dense")] == \
        [c[1] for c in ref["contractions"]]


def test_mobilenet_v1_cifar_takes_the_width_too():
    net = cnngraph.load(SPECS / "mobilenet_v1_cifar.yaml", params={"width": 0.5})
    with torch.device("meta"):
        ref = profile(mobilenet_v1(0.5, classes=10, first_stride=1), (3, 32, 32))
    totals = analyse(net)["totals"]
    assert (totals["params"], totals["macs"]) == (ref["params"], ref["macs"])


def test_width_from_the_command_line(cli):
    result = cli("summary", SPECS / "mobilenet_v1.yaml", "--param", "width=0.75", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["params"] == 2_585_560


@pytest.mark.parametrize("name, kind, merge", [
    ("mobilenet_v2", InvertedResidual, "add"),
    ("shufflenet_v1_g3", ShuffleUnitV1, "add"),
    ("shufflenet_v1_g3", ShuffleUnitV1, "concat"),
])
def test_shortcuts_where_the_reference_has_them(name, kind, merge):
    """Parameter counts cannot see a parameter-free shortcut: count the merges."""
    units = [m for m in build(name).modules() if isinstance(m, kind)]
    if kind is InvertedResidual:
        expected = sum(u.residual for u in units)
    else:
        expected = sum((u.shortcut is None) == (merge == "add") for u in units)
    net = cnngraph.load(SPECS / f"{name}.yaml")
    assert sum(n.op == merge for n in net.nodes) == expected > 0


BLOCKS = {   # a block as written in a spec, its input, and the reference's module for it
    "depthwise_separable": ("{channels: 4, out: 6, stride: 2}", (4, 7, 7),
                            lambda: nn.Sequential(*conv_bn(4, 4, 3, 2, groups=4),
                                                  *conv_bn(4, 6, 1))),
    "inverted_residual": ("{channels: 4, out: 4, expansion: 2}", (4, 5, 5),
                          lambda: InvertedResidual(4, 4, 1, 2)),
    "inverted_residual_stride_2": ("{channels: 4, out: 6, stride: 2, expansion: 1}", (4, 5, 5),
                                   lambda: InvertedResidual(4, 6, 2, 1)),
    "shuffle_unit_v1": ("{channels: 12, out: 12}", (12, 5, 5),
                        lambda: ShuffleUnitV1(12, 12, 1, 3, 3)),
    "shuffle_unit_v1_stride_2": ("{channels: 6, out: 24, stride: 2, first_groups: 1}", (6, 5, 5),
                                 lambda: ShuffleUnitV1(6, 24, 2, 3, 1)),
    "shuffle_unit_v2": ("{channels: 8, out: 8}", (8, 5, 5), lambda: ShuffleUnitV2(8, 8, 1)),
    "shuffle_unit_v2_stride_2": ("{channels: 6, out: 8, stride: 2}", (6, 5, 5),
                                 lambda: ShuffleUnitV2(6, 8, 2)),
    "fire": ("{squeeze: 3, expand1: 4, expand3: 5}", (6, 5, 5), lambda: Fire(6, 3, 4, 5)),
}


@pytest.mark.parametrize("case", sorted(BLOCKS))
def test_block_computes_what_the_reference_does(write_spec, case):
    """What counts cannot see: which half a channel split passes on, where the shuffle, the
    shortcut and each activation sit. The reference's random weights and running statistics
    are copied into the compiled block, in order, and the outputs compared in evaluation mode."""
    args, shape, module = BLOCKS[case]
    block = case.removesuffix("_stride_2")
    net = cnngraph.load(write_spec(
        f"version: 1\ninput: {list(shape)}\ninclude: [{SPECS / 'blocks' / 'efficient.yaml'}]\n"
        f"layers:\n  - {block}: {args}\n  - flatten\n"))
    model = cnngraph.compile(net, dtype="float64")
    torch.manual_seed(0)
    ref = module().double().eval()
    for bn in (m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)):
        for value in (bn.weight, bn.bias, bn.running_mean):
            nn.init.normal_(value)
        nn.init.uniform_(bn.running_var, 0.5, 2.0)
    ref_buffers = [b for name, b in ref.named_buffers() if not name.endswith("batches_tracked")]
    for ours, theirs in [*zip(model.params.values(), ref.parameters(), strict=True),
                         *zip(model.buffers.values(), ref_buffers, strict=True)]:
        assert ours.shape == theirs.shape
        ours[...] = theirs.detach().numpy()
    x = np.random.default_rng(0).standard_normal((2, *shape))
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).flatten(1).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-9, atol=1e-12)
