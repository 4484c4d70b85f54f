"""Every shipped spec against an independent PyTorch definition: params, buffers, MACs and the
shape of every conv and dense output, exactly; and the figures published in the papers."""
import pytest
import torch

import cnngraph
from cnngraph.tools.summary import analyse

from helpers import SPECS
from reference_models import (
    REFERENCES,
    Bottleneck,
    PlainBlock,
    SEBottleneck,
    SqueezeExcite,
    SqueezeExciteDense,
    build,
    inception_aux,
    profile,
    resnet,
)


def contractions(net):
    """The conv and dense layers inference runs (a head, like GoogLeNet's auxiliary
    classifiers, is not: the references are the networks in eval mode)."""
    return [(n.op, n.shape, n.cost.macs) for n in net.for_output("main").nodes
            if n.op in ("conv", "dense", "locally_connected")]


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_spec_matches_pytorch(name):
    net = cnngraph.load(SPECS / f"{name}.yaml")
    ref = profile(build(name), REFERENCES[name][1])
    totals = analyse(net)["totals"]
    assert net.input_shape == REFERENCES[name][1]
    assert totals["params"] == ref["params"]
    assert totals["buffers"] == ref["buffers"]
    assert totals["macs"] == ref["macs"]
    assert net.output_shape == ref["output_shape"]
    assert contractions(net) == ref["contractions"]


def test_resnet18_cifar_without_skip_connections_is_the_plain_network():
    net = cnngraph.load(SPECS / "resnet18-cifar.yaml", params={"skip": False})
    with torch.device("meta"):
        plain = resnet(PlainBlock, (2, 2, 2, 2), classes=10, cifar=True)
    ref = profile(plain, (3, 32, 32))
    totals = analyse(net)["totals"]
    assert (totals["params"], totals["buffers"], totals["macs"]) == \
        (ref["params"], ref["buffers"], ref["macs"]) == (11_000_138, 7_808, 549_131_264)
    assert contractions(net) == ref["contractions"]
    assert all(len(n.inputs) == 1 for n in net.nodes), "a layer still merges two paths"


def test_every_shipped_spec_has_a_reference():
    shipped = {p.stem for p in SPECS.glob("*.yaml")}
    assert shipped == set(REFERENCES)


@pytest.mark.parametrize("name, params, macs", [
    ("vgg13", 133_047_848, None),
    ("vgg16", 138_357_544, None),
    ("resnet18", 11_689_512, 1.814),
    ("resnet50", 25_557_032, 4.09),
    ("resnet101", 44_549_160, 7.8),
    ("alexnet", 60_965_224, None),
    ("densenet121", 7_978_856, None),
    ("resnext50_32x4d", 25_028_904, 4_230_479_872),
    ("se_resnet50", 28_088_024, 4_091_699_200),   # the paper's 28.09 M; 3.87 G is for v1
    ("inception_v3", 23_834_568, 5_713_216_096),  # torchvision's 27,161,264 less its aux head
])
def test_published_figures(name, params, macs):
    """`macs` is exact when an int, in billions to the digits shown when a float."""
    totals = analyse(cnngraph.load(SPECS / f"{name}.yaml"))["totals"]
    assert totals["params"] == params
    if isinstance(macs, int):
        assert totals["macs"] == macs
    elif macs is not None:
        assert round(totals["macs"] / 1e9, len(str(macs).split(".")[1])) == macs
    assert totals["flops"] == 2 * totals["macs"]


def test_googlenet_inception_3a_matches_table_1():
    net = cnngraph.load(SPECS / "googlenet.yaml")
    block = [n for n in net.nodes if n.name.startswith("inception_3a.")]
    weights = sum(n.params["weight"][0] * n.params["weight"][1] * n.params["weight"][2]
                  * n.params["weight"][3] for n in block if n.op == "conv")
    assert weights == 163_328  # the paper's "159K" counts in units of 1024
    assert round(sum(n.cost.macs for n in block) / 1e6) == 128
    assert net.node("inception_3a.concat1").shape == (256, 28, 28)


def test_resnet50_paper_variant_via_block_argument(write_spec):
    spec = (SPECS / "resnet50.yaml").read_text()
    spec = spec.replace("include: [blocks/classic.yaml]",
                        f"include: [{SPECS / 'blocks' / 'classic.yaml'}]")
    spec = spec.replace("blocks: 4, stride: 2}", "blocks: 4, stride: 2, paper_stride: true}")
    spec = spec.replace("blocks: 6, stride: 2}", "blocks: 6, stride: 2, paper_stride: true}")
    spec = spec.replace("blocks: 3, stride: 2}", "blocks: 3, stride: 2, paper_stride: true}")
    net = cnngraph.load(write_spec(spec))
    totals = analyse(net)["totals"]
    assert totals["params"] == 25_557_032
    assert round(totals["macs"] / 1e9, 2) == 3.86
    ref = profile(build_v1(), (3, 224, 224))
    assert totals["macs"] == ref["macs"]
    assert contractions(net) == ref["contractions"]


def build_v1():
    with torch.device("meta"):
        return resnet(Bottleneck, (3, 4, 6, 3), paper_stride=True)


def paper_stride(spec: str, write_spec):
    """A shipped ResNet-style spec with the stride moved to the first 1x1 convolution (v1)."""
    text = (SPECS / spec).read_text().replace("include: [blocks/",
                                               f"include: [{SPECS / 'blocks'}/")
    return write_spec(text.replace(", stride: 2}", ", stride: 2, paper_stride: true}"))


def test_resnet101_paper_variant(write_spec):
    totals = analyse(cnngraph.load(paper_stride("resnet101.yaml", write_spec)))["totals"]
    with torch.device("meta"):
        ref = profile(resnet(Bottleneck, (3, 4, 23, 3), paper_stride=True), (3, 224, 224))
    assert totals["macs"] == ref["macs"] == 7_570_194_432    # the paper's 7.6 billion FLOPs


def test_se_resnet50_paper_variant(write_spec):
    totals = analyse(cnngraph.load(paper_stride("se_resnet50.yaml", write_spec)))["totals"]
    with torch.device("meta"):
        ref = profile(resnet(SEBottleneck, (3, 4, 6, 3), paper_stride=True), (3, 224, 224))
    assert totals["params"] == ref["params"] == 28_088_024
    assert totals["macs"] == ref["macs"] == 3_860_488_192


def test_se_gate_as_dense_layers_counts_the_same():
    """The paper's gate is two fully connected layers; the spec's 1x1 convolutions with bias on
    the pooled map have the same parameters and MACs."""
    with torch.device("meta"):
        as_conv, as_dense = SqueezeExcite(256, 16), SqueezeExciteDense(256, 16)
    conv, dense = profile(as_conv, (256, 56, 56)), profile(as_dense, (256, 56, 56))
    assert conv["params"] == dense["params"] == 2 * 256 * 16 + 16 + 256
    assert conv["macs"] == dense["macs"] == 2 * 256 * 16


def test_inception_v3_aux_head_block(write_spec):
    spec = write_spec(f"""\
        version: 1
        input: [768, 17, 17]
        include: [{SPECS / 'blocks' / 'zoo.yaml'}]
        layers:
          - inception_v3_aux
        """)
    net = cnngraph.load(spec)
    totals = analyse(net)["totals"]
    with torch.device("meta"):
        ref = profile(inception_aux(), (768, 17, 17))
    assert totals["params"] == ref["params"] == 3_326_696
    assert totals["buffers"] == ref["buffers"]
    assert totals["macs"] == ref["macs"]
    assert net.output_shape == ref["output_shape"] == (1000,)
    assert contractions(net) == ref["contractions"]


def test_alexnet_single_gpu_variant(write_spec):
    spec = (SPECS / "alexnet.yaml").read_text().replace("- features: {groups: 2}",
                                                        "- features: {groups: 1}")
    totals = analyse(cnngraph.load(write_spec(spec)))["totals"]
    with torch.device("meta"):
        from reference_models import alexnet
        ref = profile(alexnet(groups=1), (3, 227, 227))
    assert totals["params"] == ref["params"] == 62_378_344
    assert totals["macs"] == ref["macs"]
