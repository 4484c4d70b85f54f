"""The pointwise ops' test cases: each op on feature maps, and on vectors between dense layers."""
from ..base import Case


def on_maps_and_vectors(layer: str) -> list[Case]:
    """A layer on (C, H, W) maps, and on (features,) vectors between two dense layers."""
    return [Case(f"- {layer}", (3, 4, 5)),
            Case(f"- dense: {{out: 6}}\n- {layer}\n- dense: {{out: 3}}", (7,), head=False)]


CASES = [case for layer in ("relu", "leaky_relu: {slope: 0.2}", "sigmoid", "tanh", "identity")
         for case in on_maps_and_vectors(layer)]
