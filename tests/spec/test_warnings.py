"""Valid but suspicious specs (Keras habits) load, with located warnings on the Network."""
import pytest

import cnngraph
from cnngraph.errors import SpecError


def warnings_of(write_spec, text):
    net = cnngraph.load(write_spec(text))
    return [(w.severity, w.loc.line, w.message, w.hint) for w in net.warnings]


def test_clean_spec_has_no_warnings(write_spec):
    assert warnings_of(write_spec, "version: 1\ninput: [1, 8, 8]\nlayers: [flatten, "
                                   "dense: {out: 3}]\n") == []


@pytest.mark.parametrize("shape, fixed", [([28, 28, 1], [1, 28, 28]),
                                          ([224, 224, 3], [3, 224, 224])])
def test_channels_last_input_warns_with_the_fix(write_spec, shape, fixed):
    found = warnings_of(write_spec, f"version: 1\ninput: {shape}\nlayers:\n  - flatten\n")
    assert len(found) == 1
    severity, line, message, hint = found[0]
    assert (severity, line) == ("warning", 2) and "[C, H, W]" in hint and str(fixed) in hint


def test_channels_first_inputs_do_not_warn(write_spec):
    for shape in ([3, 32, 32], [1, 28, 28], [64, 4, 4], [3, 4, 1]):
        assert warnings_of(write_spec, f"version: 1\ninput: {shape}\nlayers: [flatten]\n") == []


def test_keras_batchnorm_momentum_warns(write_spec):
    found = warnings_of(write_spec, "version: 1\ninput: [2, 4, 4]\nlayers:\n"
                                    "  - batchnorm: {momentum: 0.99}\n  - flatten\n")
    assert len(found) == 1 and found[0][1] == 4
    assert "PyTorch" in found[0][2] and "`momentum: 0.01`" in found[0][3]
    assert warnings_of(write_spec, "version: 1\ninput: [2, 4, 4]\nlayers:\n"
                                   "  - batchnorm: {momentum: 0.1}\n  - flatten\n") == []


def test_final_softmax_warns_but_an_inner_one_does_not(write_spec):
    found = warnings_of(write_spec, "version: 1\ninput: [4]\nlayers:\n  - dense: {out: 3}\n"
                                    "  - softmax\n")
    assert len(found) == 1 and found[0][1] == 5 and "remove the final `softmax`" in found[0][3]
    assert warnings_of(write_spec, "version: 1\ninput: [4]\nlayers: [softmax, "
                                   "dense: {out: 3}]\n") == []


def test_activation_argument_is_an_error_pointing_at_a_layer(write_spec):
    with pytest.raises(SpecError) as info:
        cnngraph.load(write_spec("version: 1\ninput: [1, 8, 8]\nlayers:\n"
                                 "  - conv: {out: 8, kernel: 3, activation: tanh}\n"))
    assert "add `- tanh` on the next line" in info.value.problems[0].hint


def test_every_unknown_key_of_a_layer_is_reported_in_one_run(write_spec):
    with pytest.raises(SpecError) as info:
        cnngraph.load(write_spec("version: 1\ninput: [1, 8, 8]\nlayers:\n"
                                 "  - conv: {out: 4, kernel_size: 3, strides: 1, activation: relu}"
                                 "\n  - flatten\n  - dense: {out: 2}\n"))
    unknown = [p for p in info.value.problems if p.message.startswith("unknown key")]
    assert [(p.message.split("`")[1], p.loc.column) for p in unknown] == \
        [("kernel_size", 20), ("strides", 36), ("activation", 48)]
    assert "did you mean `stride`?" in unknown[1].hint and "add `- relu`" in unknown[2].hint
