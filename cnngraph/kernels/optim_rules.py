"""The optimiser update rules (PyTorch's), written once as the statements for element `i` of
the flat parameter, gradient and state arrays; each backend wraps them in its own loop
(`kernels/cpu/optim.py`, `kernels/cuda/optim.py`).

`decay` holds each element's weight-decay coefficient (0 where decay is excluded). Scalars are
cast to the arrays' dtype before the loop (`one` is 1 in that dtype), so a float32 update stays
float32; Adam's bias corrections arrive computed by the optimiser.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    arrays: tuple[str, ...]       # the first is the parameters
    scalars: tuple[str, ...]      # floating-point hyperparameters
    flags: tuple[str, ...]        # booleans
    body: str

    @property
    def signature(self) -> str:
        return ", ".join([*self.arrays, *(f"{s}_arg" for s in self.scalars), *self.flags])

    def preamble(self, indent: str) -> str:
        """Statements that cast the scalars to the parameters' dtype, and define `one`."""
        return "".join(f"{indent}{s} = params.dtype.type({s}_arg)\n" for s in self.scalars) \
            + f"{indent}one = params.dtype.type(1)\n"


RULES = (
    Rule("sgd", ("params", "grads", "decay", "velocity"), ("lr", "momentum"), ("nesterov",), """
g = grads[i] + decay[i] * params[i]
if momentum != 0:
    v = momentum * velocity[i] + g
    velocity[i] = v
    g = g + momentum * v if nesterov else v
params[i] -= lr * g
"""),
    # Adam adds L2 decay to the gradient; AdamW (decoupled) shrinks the parameter instead.
    Rule("adam", ("params", "grads", "decay", "m", "v"),
         ("lr", "beta1", "beta2", "eps", "correction1", "correction2"), ("decoupled",), """
p = params[i]
g = grads[i]
if decoupled:
    p = p * (one - lr * decay[i])
else:
    g = g + decay[i] * p
m[i] = beta1 * m[i] + (one - beta1) * g
v[i] = beta2 * v[i] + (one - beta2) * g * g
params[i] = p - lr * (m[i] / correction1) / (math.sqrt(v[i] / correction2) + eps)
"""),
    Rule("rmsprop", ("params", "grads", "decay", "square_avg", "buffer"),
         ("lr", "alpha", "eps", "momentum"), (), """
g = grads[i] + decay[i] * params[i]
square_avg[i] = alpha * square_avg[i] + (one - alpha) * g * g
step = g / (math.sqrt(square_avg[i]) + eps)
if momentum != 0:
    buffer[i] = momentum * buffer[i] + step
    step = buffer[i]
params[i] -= lr * step
"""),
)


def body(rule: Rule, indent: str) -> str:
    return "".join(f"{indent}{line}\n" for line in rule.body.strip().split("\n"))
