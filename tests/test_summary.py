import json

import cnngraph
from cnngraph.summary import FORMAT, analyse, optimizer_slots, render

from conftest import SPECS

SMALL = """
version: 1
input: [1, 2, 2]
layers:
  - conv: {out: 2, kernel: 1}
  - relu
  - flatten
  - dense: {out: 3}
"""


def test_paper_and_full_policies_by_hand(write_spec):
    net = cnngraph.load(write_spec(SMALL))
    paper = analyse(net)["totals"]
    full = analyse(net, policy="full")["totals"]
    macs = 4 * 2 * 1 + 8 * 3
    assert paper["macs"] == full["macs"] == macs
    assert paper["flops"] == 2 * macs
    assert full["flops"] == 2 * macs + 8 + 8 + 3   # conv bias, relu, dense bias
    assert paper["params"] == 2 * 1 + 2 + 3 * 8 + 3


def test_training_step_macs_skip_the_first_layers_grad_input():
    net = cnngraph.load(SPECS / "lenet.yaml")
    totals = analyse(net)["totals"]
    first = net.node("conv1").cost.macs
    assert totals["train_macs"] == 3 * totals["macs"] - first


def test_memory_comes_from_the_plan(write_spec):
    net = cnngraph.load(write_spec(SMALL))
    data = analyse(net, batch=10, optimizer="adam")
    t = data["totals"]
    model = cnngraph.compile(net)
    arena = model.program(True).plan.bytes(10, 4)
    assert t["planned_training_arena_bytes"] == arena
    assert t["training_bytes"] == t["params"] * 4 * (2 + 2) + arena
    assert t["inference_bytes"] == model.memory_bytes(10, training=False)
    assert t["activation_bytes"] == (8 + 8 + 8 + 3) * 10 * 4
    assert analyse(net, dtype="float64")["totals"]["param_bytes"] == t["params"] * 8


def test_json_format():
    data = analyse(cnngraph.load(SPECS / "resnet18.yaml"))
    assert data["format"] == FORMAT
    assert {"params", "buffers", "macs", "flops", "train_macs", "activation_bytes",
            "training_bytes"} <= set(data["totals"])
    row = data["layers"][0]
    assert row == {"name": "conv1", "op": "conv", "inputs": ["input"],
                   "output_shape": [64, 112, 112], "params": 9408, "buffers": 0,
                   "macs": 118013952, "flops": 236027904, "train_macs": 236027904,
                   "activation_bytes": 64 * 112 * 112 * 4, "receptive_field": [7, 7],
                   "jump": [2, 2]}
    json.dumps(data)
    assert sum(r["params"] for r in data["layers"]) == data["totals"]["params"]


def test_render_depth_collapses_blocks_with_subtotals():
    data = analyse(cnngraph.load(SPECS / "resnet18.yaml"))
    full = render(data)
    collapsed = render(data, depth=1)
    assert "layer1.basic1" not in full  # names are shown by their last part, indented
    assert "    branch1" in full and "branch1" not in collapsed
    line = next(r for r in collapsed.splitlines() if r.startswith("layer2 "))
    assert "basic_stage" in line and "525,568" in line   # params of both blocks of the stage
    assert "Params:      11,689,512 trainable, 9,600 non-trainable" in full
    assert "counting policy paper" in full
    assert "receptive field larger than the 224x224 input" in full


def test_render_handles_vector_networks(write_spec):
    net = cnngraph.load(write_spec("version: 1\ninput: [4]\nlayers: [dense: {out: 2}]\n"))
    text = render(analyse(net))
    assert "dense1" in text and "Note:" not in text


def test_optimizer_state_follows_the_spec_or_the_option(write_spec):
    base = SMALL + "train: {optimizer: %s}\n"
    for train, expected in (("sgd", ("sgd", 0)), ("sgd, momentum: 0.9", ("momentum", 1)),
                            ("adamw", ("adamw", 2))):
        net = cnngraph.load(write_spec(base % train))
        assert (analyse(net)["optimizer"], optimizer_slots(net, None)[1]) == expected
    net = cnngraph.load(write_spec(SMALL))
    assert optimizer_slots(net, None) == ("momentum", 1)
    assert optimizer_slots(net, "adam") == ("adam", 2)
