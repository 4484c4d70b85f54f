"""The pointwise ops' test cases: each op on feature maps, and on vectors between dense layers;
the ops with kinks or saturation at +-3 and 6 also on the input scaled by 4 (a sum of four
copies), so that standard-normal inputs land beyond their kinks; relu6, which fuses, after a
conv."""
from ..base import Case


def on_maps_and_vectors(layer: str) -> list[Case]:
    """A layer on (C, H, W) maps, and on (features,) vectors between two dense layers."""
    return [Case(f"- {layer}", (3, 4, 5)),
            Case(f"- dense: {{out: 6}}\n- {layer}\n- dense: {{out: 3}}", (7,), head=False)]


def scaled(layer: str) -> Case:
    """A layer on four times the input: values spread over about [-10, 10]."""
    return Case("- parallel: [[], [], [], []]\n  merge: add\n" f"- {layer}", (3, 4, 5))


WIDE = ("relu6", "elu: {alpha: 0.5}", "hardswish", "hardsigmoid")
CASES = [case for layer in ("relu", "leaky_relu: {slope: 0.2}", "sigmoid", "tanh", "identity",
                            "relu6", "elu", "elu: {alpha: 0.5}", "gelu",
                            "gelu: {approximate: tanh}", "silu", "swish", "hardswish",
                            "hardsigmoid")
         for case in on_maps_and_vectors(layer)] + [scaled(layer) for layer in WIDE] + [
    Case("- conv: {out: 4, kernel: 3, padding: 1}\n- relu6", (3, 5, 5))]   # fused into the conv
