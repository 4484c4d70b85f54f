"""softmax: normalised exponentials over features, or over channels at each pixel of a map.

    - softmax

For classification, leave it out of the spec: the training loss fuses a stable softmax with
cross-entropy. Cost (full policy): 5 ops per element (max, subtract, exp, sum, divide).
"""
from __future__ import annotations

from ..base import Cost, OpDef, numel, object_schema, same_shape
from .lower import lower

OP = OpDef(
    package=__name__, lower=lower,
    name="softmax", doc=__doc__, schema=object_schema({}), attrs=lambda args: None,
    shape=same_shape, cost=lambda a, ins, out: Cost(ops=5 * numel(out)),
    ending=("the network ends with `softmax`, but training's loss is softmax cross-entropy on "
            "logits, so the softmax would be applied twice",
            "remove the final `softmax`: the network should output logits (`predict` turns "
            "them into probabilities itself)"),
)
