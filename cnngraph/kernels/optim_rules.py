"""The optimiser update rules (PyTorch's), written once as the statements for element `i` of
the flat parameter, gradient and state arrays; each backend wraps them in its own loop
(`kernels/cpu/optim.py`, `kernels/cuda/optim.py`).

`decay` is the weight-decay coefficient of the tensor element `i` belongs to (0 where decay is
excluded) and `lr` its learning rate: the base rate times the tensor's multiplier. Both arrive
as runs over the flat parameters, `RUNS` (train/finetune.py: update_runs): run r ends
(exclusive) at `run_ends[r]` and has the coefficient `run_decay[r]` and the multiplier
`run_rate[r]`, so a whole model with one setting is one run, and no array the size of the
parameters is read for them. A run of multiplier 0 (frozen tensors) is skipped: its parameters
and optimiser state stay bitwise as they were. Scalars are cast to the arrays' dtype before the
loop (`one` is 1 in that dtype), so a float32 update stays float32; Adam's bias corrections
arrive computed by the optimiser.
"""
from __future__ import annotations

from dataclasses import dataclass

RUNS = ("run_ends", "run_decay", "run_rate")


@dataclass(frozen=True)
class Rule:
    name: str
    arrays: tuple[str, ...]       # the first is the parameters; all are indexed by element
    scalars: tuple[str, ...]      # floating-point hyperparameters
    flags: tuple[str, ...]        # booleans
    body: str

    @property
    def signature(self) -> str:
        return ", ".join([*self.arrays, *RUNS, *(f"{s}_arg" for s in self.scalars),
                          *self.flags])

    def preamble(self, indent: str, params: str = "params") -> str:
        """Statements that cast the scalars to the dtype of `params` (the parameters' name
        where they stand), and define `one`; the learning rate is `base_lr`, each run's
        (`run_statements`) is `lr`."""
        return "".join(f"{indent}{'base_lr' if s == 'lr' else s} = "
                       f"{params}.dtype.type({s}_arg)\n" for s in self.scalars) \
            + f"{indent}one = {params}.dtype.type(1)\n"


def run_statements(indent: str) -> str:
    """Statements, in a loop, that read run `run`'s settings into `decay` and `lr`, and go on
    to the next iteration in a frozen one (multiplier 0)."""
    return (f"{indent}if run_rate[run] == 0:\n{indent}    continue\n"
            f"{indent}decay = run_decay[run]\n{indent}lr = base_lr * run_rate[run]\n")


RULES = (
    Rule("sgd", ("params", "grads", "velocity"), ("lr", "momentum"), ("nesterov",), """
g = grads[i] + decay * params[i]
if momentum != 0:
    v = momentum * velocity[i] + g
    velocity[i] = v
    g = g + momentum * v if nesterov else v
params[i] -= lr * g
"""),
    # Adam adds L2 decay to the gradient; AdamW (decoupled) shrinks the parameter instead.
    Rule("adam", ("params", "grads", "m", "v"),
         ("lr", "beta1", "beta2", "eps", "correction1", "correction2"), ("decoupled",), """
p = params[i]
g = grads[i]
if decoupled:
    p = p * (one - lr * decay)
else:
    g = g + decay * p
m[i] = beta1 * m[i] + (one - beta1) * g
v[i] = beta2 * v[i] + (one - beta2) * g * g
params[i] = p - lr * (m[i] / correction1) / (math.sqrt(v[i] / correction2) + eps)
"""),
    Rule("rmsprop", ("params", "grads", "square_avg", "buffer"),
         ("lr", "alpha", "eps", "momentum"), (), """
g = grads[i] + decay * params[i]
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
