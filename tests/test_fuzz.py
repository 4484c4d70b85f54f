"""Property-based tests: random and mutated specs never make `check` raise anything but a
SpecError, and never print a traceback."""
import os
import random

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnngraph
from cnngraph.errors import SpecError
from cnngraph.tools.summary import analyse

from helpers import SPECS

OPS = ["conv", "maxpool", "avgpool", "dense", "flatten", "relu", "batchnorm", "add", "concat",
       "mul", "lrn", "dropout", "global_avgpool", "identity", "softmax", "parallel", "repeat",
       "when", "basic", "vgg_block"]
KEYS = ["out", "kernel", "stride", "padding", "dilation", "groups", "bias", "rate", "ceil_mode",
        "size", "id", "from", "layers", "merge", "convs", "project"]
scalars = st.one_of(st.integers(-3, 70), st.booleans(), st.none(), st.sampled_from(
    ["same", "valid", "$out", "$out * 2", "input", "conv1", "add", "x", ""]),
    st.floats(-2, 2), st.just(float("nan")), st.just(float("inf")),
    # issue 17: whole-number floats where integers belong, and sizes past every limit
    st.sampled_from([1.0, 3.0, 7.0, 10.0]), st.sampled_from([2**31, 10**12, 2**70, 10**400]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12)
layer = st.one_of(st.sampled_from(OPS), st.dictionaries(st.sampled_from(OPS + KEYS), values,
                                                         min_size=1, max_size=3))
documents = st.fixed_dictionaries({
    "version": st.sampled_from([1, 1, 1, 2, "1"]),
    "input": st.one_of(st.just([1, 28, 28]), st.just([3, 32, 32]), st.lists(
        st.integers(-1, 40), max_size=4)),
    "layers": st.lists(layer, max_size=8),
}, optional={"include": st.just("blocks/classic.yaml"),
             "blocks": st.dictionaries(st.sampled_from(["b", "c", "relu"]), values, max_size=2),
             "name": scalars})

FUZZ = settings(  # FUZZ_EXAMPLES=3000 for a longer hunt
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_file(path):
    try:
        net = cnngraph.load(path)
    except SpecError as error:
        assert error.problems and all(p.message for p in error.problems)
        error.render()
    else:
        assert net.nodes
        # an accepted spec has whole-number shapes and finite counts (summary's arithmetic)
        for node in net.nodes:
            assert all(type(d) is int and d > 0 for d in node.shape), (node.name, node.shape)
        analyse(net)
        for warning in net.warnings:
            assert warning.severity == "warning" and warning.loc and warning.hint


@FUZZ
@given(doc=documents)
def test_random_specs(doc, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    (path.parent / "blocks").mkdir()
    (path.parent / "blocks" / "classic.yaml").write_text(
        (SPECS / "blocks" / "classic.yaml").read_text())
    check_file(path)


SHIPPED = sorted(p for p in SPECS.glob("*.yaml") if "resnet152" not in p.name)


@FUZZ
@given(spec=st.sampled_from(SHIPPED), seed=st.integers(0, 2**32 - 1),
       edits=st.integers(1, 4))
def test_mutated_shipped_specs(spec, seed, edits, tmp_path_factory):
    rng = random.Random(seed)
    text = spec.read_text()
    for _ in range(edits):
        kind = rng.randrange(5)
        pos = rng.randrange(len(text))
        if kind == 0:    # delete a span
            text = text[:pos] + text[pos + rng.randrange(1, 20):]
        elif kind == 1:  # insert a character that YAML or the schema cares about
            text = text[:pos] + rng.choice(":-[]{}$*&!#'\"\n 0xq\x01\x7f\t") + text[pos:]
        elif kind == 2:  # swap a number
            text = text[:pos] + rng.choice(["0", "-1", "999", "2.5", "~", "3.0", "7.", "1e1",
                                            "3e0", "9" * 5000]) + text[pos + 1:]
        elif kind == 3:  # duplicate a line
            lines = text.splitlines(keepends=True)
            i = rng.randrange(len(lines))
            text = "".join(lines[:i] + [lines[i]] + lines[i:])
        else:            # swap two lines
            lines = text.splitlines(keepends=True)
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    folder = tmp_path_factory.mktemp("mut")
    (folder / "blocks").mkdir()
    (folder / "blocks" / "classic.yaml").write_text(
        (SPECS / "blocks" / "classic.yaml").read_text())
    path = folder / spec.name
    path.write_text(text)
    check_file(path)
