"""Every shipped spec against an independent PyTorch definition: params, buffers, MACs and the
shape of every conv and dense output, exactly; and the figures published in the papers."""
import pytest
import torch

import cnngraph
from cnngraph.tools.summary import analyse

from helpers import SPECS
from reference_models import REFERENCES, Bottleneck, build, profile, resnet


def contractions(net):
    return [(n.op, n.shape, n.cost.macs) for n in net.nodes if n.op in ("conv", "dense")]


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


def test_every_shipped_spec_has_a_reference():
    shipped = {p.stem for p in SPECS.glob("*.yaml")}
    assert shipped == set(REFERENCES)


@pytest.mark.parametrize("name, params, gmacs", [
    ("vgg16", 138_357_544, None),
    ("resnet18", 11_689_512, 1.814),
    ("resnet50", 25_557_032, 4.09),
    ("alexnet", 60_965_224, None),
    ("densenet121", 7_978_856, None),
])
def test_published_figures(name, params, gmacs):
    totals = analyse(cnngraph.load(SPECS / f"{name}.yaml"))["totals"]
    assert totals["params"] == params
    if gmacs is not None:
        assert round(totals["macs"] / 1e9, len(str(gmacs).split(".")[1])) == gmacs
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


def test_alexnet_single_gpu_variant(write_spec):
    spec = (SPECS / "alexnet.yaml").read_text().replace("- features: {groups: 2}",
                                                        "- features: {groups: 1}")
    totals = analyse(cnngraph.load(write_spec(spec)))["totals"]
    with torch.device("meta"):
        from reference_models import alexnet
        ref = profile(alexnet(groups=1), (3, 227, 227))
    assert totals["params"] == ref["params"] == 62_378_344
    assert totals["macs"] == ref["macs"]
