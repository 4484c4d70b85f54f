import json

import cnngraph
from cnngraph.tools.summary import COLUMNS, FORMAT, analyse, optimizer_slots, render

from helpers import SPECS

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
    assert data["outputs"] == [{"name": "main", "layer": "dense1", "output_shape": [1000],
                                "loss": "cross_entropy", "weight": 1.0, "params": 11_689_512,
                                "macs": 1_814_073_344}]
    row = data["layers"][0]
    assert row == {"name": "conv1", "op": "conv", "output": "main", "inputs": ["input"],
                   "geometry": "7x7 /2 pad 3", "output_shape": [64, 112, 112], "params": 9408,
                   "buffers": 0,
                   "macs": 118013952, "flops": 236027904, "train_macs": 236027904,
                   "activation_bytes": 64 * 112 * 112 * 4, "receptive_field": [7, 7],
                   "jump": [2, 2], "global_context": False}
    json.dumps(data)
    assert sum(r["params"] for r in data["layers"]) == data["totals"]["params"]


def test_render_depth_collapses_blocks_with_subtotals():
    data = analyse(cnngraph.load(SPECS / "resnet18.yaml"))
    full = render(data, columns=tuple(c for c in COLUMNS if c != "connected"))
    collapsed = render(data, depth=1)
    assert "layer1.basic1" not in full  # names are shown by their last part, indented
    connected = render(data).splitlines()
    add = next(r for r in connected if r.strip().startswith("add1"))
    assert add.endswith("branch1.batchnorm2, maxpool1")   # named from the block it sits in
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
    for train, expected in (("sgd", ("sgd", 1)), ("sgd, momentum: 0.9", ("momentum", 1)),
                            ("adamw", ("adamw", 2))):
        net = cnngraph.load(write_spec(base % train))
        assert (analyse(net)["optimizer"], optimizer_slots(net, None)[1]) == expected
    net = cnngraph.load(write_spec(SMALL))
    assert optimizer_slots(net, None) == ("momentum", 1)
    assert optimizer_slots(net, "adam") == ("adam", 2)


def test_optimizer_slots_are_the_arrays_the_optimizers_keep(write_spec):
    from cnngraph.tools.summary import OPTIMIZER_SLOTS
    from cnngraph.train.optim import SGD, Adam, AdamW, RMSProp
    model = cnngraph.compile(cnngraph.load(write_spec(SMALL)))
    for name, cls in (("sgd", SGD), ("momentum", SGD), ("nesterov", SGD), ("rmsprop", RMSProp),
                      ("adam", Adam), ("adamw", AdamW)):
        assert OPTIMIZER_SLOTS[name] == len(cls(model, lr=0.1).state), name


def test_summary_and_compiled_model_count_the_same_memory():
    """`summary` plans without compiling, `compile` plans what it compiled: the same bytes,
    part by part, for training (with each optimizer's state) and inference (batch norm folded,
    activations fused)."""
    for spec in ("lenet.yaml", "lenet-bn.yaml"):
        net = cnngraph.load(SPECS / spec)
        model = cnngraph.compile(net)
        for optimizer in (None, "adam"):
            data = analyse(net, batch=32, optimizer=optimizer)
            assert data["memory"]["training"] == model.memory(32, True, optimizer).as_dict()
            assert data["totals"]["training_bytes"] == model.memory_bytes(32, True, optimizer)
        assert data["memory"]["inference"] == model.memory(32, False).as_dict()
        assert data["totals"]["inference_bytes"] == model.memory_bytes(32, training=False)
        training = data["memory"]["training"]
        assert training["arena"] == model.program(True).plan.bytes(32, 4)
        assert training["params"] == training["grads"] == net_params(net) * 4
        assert training["optimizer_state"] == 2 * training["params"]     # adam: m and v
    assert data["memory"]["inference"]["folded"] > 0                      # lenet-bn folds


PARTLY_FOLDED = """version: 1
input: [3, 8, 8]
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - conv: {out: 32, kernel: 3, padding: 1}
  - batchnorm
  - global_avgpool
  - flatten
  - dense: {out: 3}
"""


def test_a_batch_below_the_chunks_reports_its_own_programs_memory(write_spec, monkeypatch):
    """Inference of fewer samples than the CPU's chunks runs a program of its own, which folds
    a batch norm only into a conv with fewer weights than one sample's outputs (the first
    here: 216 weights, 512 outputs; not the second: 2,304 and 2,048): `summary --batch 1` and
    `Model.memory(1)` report that program's memory, and a batch of 2 the batch program's."""
    monkeypatch.setattr("cnngraph.tools.summary.cpu_chunks", lambda: 2)
    net = cnngraph.load(write_spec(PARTLY_FOLDED))
    model = cnngraph.compile(net, chunks=2)
    one, two = (analyse(net, batch=n)["memory"]["inference"] for n in (1, 2))
    assert one == model.memory(1, False).as_dict()
    assert two == model.memory(2, False).as_dict()
    assert one["folded"] == (8 * 3 * 9 + 8) * 4
    assert two["folded"] == one["folded"] + (32 * 8 * 9 + 32) * 4
    assert one["arena"] == model.program(False, small_batch=True).plan.bytes(1, 4)
    assert two["arena"] == model.program(False).plan.bytes(2, 4)


def net_params(net) -> int:
    return analyse(net)["totals"]["params"]


SE = """
version: 1
input: [3, 12, 12]
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - maxpool: {kernel: 2}
  - parallel:
      - []
      - [global_avgpool, conv: {out: 2, kernel: 1}, relu, conv: {out: 8, kernel: 1}, sigmoid]
    merge: mul
  - conv: {out: 8, kernel: 3, padding: 1}
  - global_avgpool
  - flatten
  - dense: {out: 3}
"""


def _fields(data):
    return {r["name"]: (r["receptive_field"], r["jump"], r["global_context"])
            for r in data["layers"]}


def test_a_global_gate_keeps_the_trunks_receptive_field_and_jump(write_spec):
    gated = _fields(analyse(cnngraph.load(write_spec(SE))))
    without_gate = SE.split("  - parallel:")[0] + SE.split("merge: mul\n")[1]
    plain = _fields(analyse(cnngraph.load(write_spec(without_gate, "plain.yaml"))))
    assert gated["maxpool1"] == ([4, 4], [2, 2], False)
    assert gated["mul1"] == ([4, 4], [2, 2], True)                  # the trunk's, marked
    assert gated["conv2"] == plain["conv2"][:2] + (True,) == ([8, 8], [2, 2], True)
    assert gated["global_avgpool1"] == plain["global_avgpool1"] == ([18, 18], [12, 12], False)
    assert gated["branch2.global_avgpool1"][0] == [14, 14]          # the gate itself: all of it


def test_fmnist_vgg_gate_and_its_rendering():
    data = analyse(cnngraph.load(SPECS / "fmnist-vgg.yaml"))
    rows = _fields(data)
    assert rows["stage3.maxpool1"] == ([36, 36], [8, 8], False)
    assert rows["se1.mul1"] == ([36, 36], [8, 8], True)
    assert rows["global_avgpool1"] == ([52, 52], [24, 24], False)
    assert data["receptive_field"] == [52, 52] and data["global_context"] is False
    text = render(data, columns=tuple(c for c in COLUMNS if c != "connected"))
    line = next(r for r in text.splitlines() if r.strip().startswith("mul1"))
    assert line.split()[-2:] == ["36*+", "8"]
    assert "+ also sees the whole map through a global gate" in text


def test_fractional_fields_after_an_upsample(write_spec):
    """JSON holds a fraction of a pixel as a float (whole numbers stay integers); the table
    prints four significant digits."""
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 8, 8]\nlayers:\n  - upsample: {scale: 3}\n"
        "  - conv: {out: 2, kernel: 3, padding: 1}\n"))
    rows = {r["name"]: r for r in analyse(net)["layers"]}
    assert rows["upsample1"]["jump"] == [1 / 3, 1 / 3]
    assert rows["conv1"]["receptive_field"] == [5 / 3, 5 / 3]
    assert isinstance(rows["upsample1"]["receptive_field"][0], int)
    table = render(analyse(net))
    assert "0.3333" in table and "1.667" in table


def test_the_specs_frozen_layers_are_counted_and_skip_their_weight_gradients(write_spec, cli):
    spec = write_spec("version: 1\ninput: [1, 8, 8]\nlayers:\n"
                      "  - conv: {out: 4, kernel: 3}\n  - relu\n"
                      "  - conv: {out: 4, kernel: 3}\n  - relu\n"
                      "  - flatten\n  - dense: {out: 3}\n"
                      "train:\n  freeze: [conv2.weight]\n")
    net = cnngraph.load(spec)
    plain = analyse(net)["totals"]
    frozen = analyse(net.with_frozen(["conv2.weight"]))["totals"]
    conv2 = next(n for n in net.nodes if n.name == "conv2")
    assert (plain["frozen_params"], frozen["frozen_params"]) == (0, 4 * 4 * 9)
    # conv2 still passes the gradient to conv1, but computes no weight gradient
    assert plain["train_macs"] - frozen["train_macs"] == conv2.cost.macs
    result = cli("summary", spec)
    assert result.exit_code == 0
    trainable = plain["params"] - 4 * 4 * 9
    assert f"{trainable:,} trainable, 144 frozen (train.freeze)" in result.output
    assert f"{frozen['train_macs']:,} MACs" in result.output


def test_columns_kernel_share_and_connections(write_spec, cli):
    chain = cnngraph.loads("version: 1\ninput: [1, 8, 8]\nlayers:\n"
                           "  - conv: {out: 4, kernel: 3, stride: 2, padding: 1}\n  - relu\n"
                           "  - flatten\n  - dense: {out: 2}\n", name="chain.yaml")
    text = render(analyse(chain))
    header = text.splitlines()[3]
    assert header.split()[:6] == ["Layer", "Op", "Kernel", "Output", "Params", "%"]
    assert "Connected" not in header                      # a chain: nothing to connect
    conv = next(line for line in text.splitlines() if line.startswith("conv1"))
    params = analyse(chain)["totals"]["training_params"]
    assert "3x3 /2 pad 1" in conv and f"{100 * 40 / params:.1f}" in conv
    resnet = render(analyse(cnngraph.load(SPECS / "resnet18.yaml")), depth=1)
    assert "Connected to" in resnet.splitlines()[3]        # it branches
    chosen = render(analyse(chain), columns=("layer", "params"))
    assert chosen.splitlines()[3].split() == ["Layer", "Params"]
    printed: list[str] = []
    cnngraph.summary(chain, print_fn=printed.append)      # the Python API prints the same
    cnngraph.compile(chain).summary(print_fn=printed.append)
    assert printed == [text, text]
    spec = write_spec("version: 1\ninput: [1, 8, 8]\nlayers: [flatten, dense: {out: 2}]\n")
    result = cli("summary", spec, "--columns", "layer,op,connected")
    assert result.exit_code == 0 and "Connected to" in result.output
    assert cli("summary", spec, "--columns", "layer,colour").exit_code == 2
