"""A compiled network: parameters, gradients, buffers, and generated step code per mode.

Parameters, gradients and buffers each live in one flat array (so an optimiser updates all of
them in one kernel); `params`, `grads` and `buffers` are name -> view dictionaries in PyTorch
layout. Activations, gradients and workspaces live in arenas laid out by the memory plan, bound
for the largest batch seen; a smaller batch reuses them, so a step allocates nothing once warm.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import DataError
from ..ir import INPUT, MAIN, Network, Output
from ..jit import load_module
from ..ops.base import numel
from ..ops.lowering import ident
from ..passes.init import initial_values
from ..passes.plan import Memory, Plan, compiled_net, make_plan, optimizer_slots
from .backend import Backend
from .codegen import step_source


def _flat(backend, shapes: dict, dtype) -> tuple[np.ndarray, dict]:
    total = sum(numel(s) for s in shapes.values())
    flat = backend.empty(total, dtype)
    views, offset = {}, 0
    for name, shape in shapes.items():
        views[name] = flat[offset:offset + numel(shape)].reshape(shape)
        offset += numel(shape)
    return flat, views


def _no_one(node: str) -> None:
    """The backward pass's `ready` where nobody waits for gradients."""


def _namespace(views: dict) -> SimpleNamespace:
    names = {ident(k): v for k, v in views.items()}
    assert len(names) == len(views), "two buffer names map to one identifier"
    return SimpleNamespace(**names)


@dataclass
class Program:
    net: Network                                  # the network compiled (fused, folded)
    plan: Plan
    module: Any                                   # the generated step code (runtime/codegen.py)
    capacity: int = 0
    arenas: dict = field(default_factory=dict)
    bound: dict = field(default_factory=dict)     # batch size -> namespace of views
    folds: tuple = ()                             # the batch norms folded into its convs
    params: Any = None                            # with folds, the parameters it reads

    @property
    def source(self) -> str:
        """The generated code."""
        import inspect
        return inspect.getsource(self.module)


class Model:
    def __init__(self, net: Network, backend: Backend, dtype: str = "float32", seed: int = 0):
        self.net, self.backend, self.seed = net, backend, seed
        self.dtype = np.dtype(dtype)
        # The network as compiled (see plan.compiled_net), for training and for inference.
        self.train_net, self.lowerings, _ = compiled_net(net, backend, True)
        self.flat_params, self.params = _flat(backend, net.param_shapes(), self.dtype)
        self.flat_grads, self.grads = _flat(backend, net.param_shapes(), self.dtype)
        self.flat_buffers, self.buffers = _flat(backend, net.buffer_shapes(), self.dtype)
        if backend.host_memory and self.dtype == np.float32:     # drawn where they live
            initial_values(net, seed, self.params, self.buffers)
        else:
            values, buffer_values = initial_values(net, seed)
            for name, value in values.items():
                backend.from_host(value, self.params[name])
            for name, value in buffer_values.items():
                backend.from_host(value, self.buffers[name])
        backend.zeros(self.flat_grads)
        self._p, self._g = _namespace(self.params), _namespace(self.grads)
        # The exact reduction (backend.shards): a row of gradients a shard, summed exactly
        self.shards = getattr(backend, "shards", 0)
        if self.shards:
            self.shard_grads = np.zeros((self.shards, self.flat_grads.size), self.dtype)
            self.param_offsets = np.cumsum([0, *(numel(s) for s in net.param_shapes().values())])
            self._g = _namespace({
                name: self.shard_grads[:, lo:hi].reshape(self.shards, *shape)
                for (name, shape), lo, hi in zip(net.param_shapes().items(),
                                                 self.param_offsets[:-1], self.param_offsets[1:],
                                                 strict=True)})
        self._s = _namespace(self.buffers)
        self._programs: dict[tuple[bool, bool, bool, bool], Program] = {}
        self._infer_net, self._infer_lowerings, self._folds = compiled_net(net, backend, False)
        folded_shapes = {f"{f.norm}.{k}": s for f in self._folds
                         for k, s in self._infer_net.node(f.norm).params.items()}
        self._folded_flat, self._folded = _flat(backend, folded_shapes, self.dtype)
        self._staged: list[tuple] = []      # batches announced by `stage`, oldest first
        self.steps = 0
        self.input_grad: np.ndarray | None = None
        self.last_logits: np.ndarray | None = None

    # -- host copies ----------------------------------------------------------------------------
    def host_params(self) -> dict[str, np.ndarray]:
        """Parameters as host arrays (the arrays themselves on the CPU, copies from a device)."""
        return {k: self.backend.to_host(v) for k, v in self.params.items()}

    def host_buffers(self) -> dict[str, np.ndarray]:
        return {k: self.backend.to_host(v) for k, v in self.buffers.items()}

    def host_grads(self) -> dict[str, np.ndarray]:
        return {k: self.backend.to_host(v) for k, v in self.grads.items()}

    def save_weights(self, path, normalizer: dict | None = None) -> None:
        """Parameters and buffers as a checkpoint (.npz) or a .safetensors file, by suffix
        (interchange/weights.py)."""
        from ..interchange.weights import save_weights
        save_weights(self, path, normalizer)

    def load_weights(self, path) -> None:
        """Every parameter and buffer from an .npz, .safetensors or PyTorch state dict file
        that has them under their names."""
        from ..interchange.weights import load_weights
        load_weights(self, path)

    def export_onnx(self, path, opset: int = 17, output: str = MAIN, fold_bn: bool = False,
                    normalizer: Any = None, with_normalization: bool = False) -> Any:
        """Write the network with its current weights as an ONNX file (the `onnx` extra; see
        `cnngraph export` and interchange/onnx_export.py) and return the ModelProto."""
        from ..interchange import onnx_export
        model = onnx_export.export(self.net, self.host_params(), self.host_buffers(), opset,
                                   output, fold_bn, normalizer, with_normalization)
        onnx_export.save(model, path)
        return model

    def summary(self, depth: int | None = None, print_fn: Any = print) -> None:
        """Print its network's `cnngraph summary` table (`cnngraph.summary`), as Keras'
        `model.summary()` does."""
        from ..tools.summary import analyse, render
        print_fn(render(analyse(self.net), depth))

    # -- compilation --------------------------------------------------------------------------
    def program(self, training: bool, input_grad: bool = False,
                profile: bool = False, small_batch: bool = False) -> Program:
        """The compiled step for a mode; `profile` times every layer (see `cnngraph bench`);
        `small_batch`: inference for batches below `backend.small_batch` samples (see
        `plan.compiled_net`), the same program where that compiles to the same code."""
        key = (training, input_grad, profile, small_batch)
        if key not in self._programs:
            if training and not any(mode[0] for mode in self._programs):
                self.backend.before_first_training_step(self)
            net, lowerings = (self.train_net, self.lowerings) if training else \
                (self._infer_net, self._infer_lowerings)
            folds = () if training else tuple(self._folds)
            if small_batch:
                net, lowerings, small_folds = compiled_net(self.net, self.backend, False,
                                                           small_batch)
                folds = tuple(small_folds)
            plan = make_plan(net, lowerings, training, input_grad)
            source = step_source(net, lowerings, plan, self.backend, profile)
            stem = f"{self.backend.name}_{'train' if training else 'infer'}" + \
                ("_profile" if profile else "")
            module = load_module(source, stem)      # the same module for the same code
            same = self._programs.get((training, input_grad, profile, False))
            if small_batch and same is not None and same.module is module:
                self._programs[key] = same
            else:
                # a folded batch norm's parameters are the conv's it was folded into
                params = SimpleNamespace(**{**vars(self._p), **{
                    ident(f"{f.norm}.{k}"): self._folded[f"{f.norm}.{k}"]
                    for f in folds for k in ("weight", "bias")}}) if folds else None
                self._programs[key] = Program(net, plan, module, folds=folds, params=params)
        return self._programs[key]

    def source(self, training: bool = True) -> str:
        """The generated step code (what `cnngraph compile --emit` writes)."""
        net, lowerings = (self.train_net, self.lowerings) if training else \
            (self._infer_net, self._infer_lowerings)
        return step_source(net, lowerings, make_plan(net, lowerings, training), self.backend)

    def bind(self, program: Program, n: int) -> SimpleNamespace:
        """A program's planned buffers as views for a batch of `n`, by identifier (what its
        step functions take); the arenas grow to the largest batch bound so far."""
        if n > program.capacity:
            program.capacity = n
            program.bound.clear()
            plan = program.plan
            program.arenas = {
                "float": self.backend.empty(plan.arena_elements("float", n), self.dtype),
                "int32": self.backend.empty(plan.arena_elements("int32", n), np.int32)}
        if n not in program.bound:
            plan, cap = program.plan, program.capacity
            views = {}
            for buf in plan.buffers.values():
                arena = program.arenas[buf.dtype]
                if buf.per_sample:
                    start = buf.offset * cap
                    views[buf.name] = arena[start:start + n * numel(buf.shape)].reshape(
                        (n, *buf.shape))
                else:
                    start = plan.extent[(buf.dtype, True)] * cap + buf.offset
                    views[buf.name] = arena[start:start + numel(buf.shape)].reshape(buf.shape)
            program.bound[n] = _namespace(views)
        return program.bound[n]

    def _small_batch(self, batch: int, training: bool) -> bool:
        """Whether a batch runs the small-batch inference program (`program`)."""
        return not training and batch < self.backend.small_batch

    def memory(self, batch: int, training: bool = True, optimizer: str | None = None) -> Memory:
        """Bytes of a step for a batch, by part (see `plan.Memory`), from the plan of the program
        that runs it (for inference of fewer samples than `backend.small_batch`, its own);
        training counts the state of `optimizer` (default: the spec's, as `summary` does)."""
        slots = optimizer_slots(self.net, optimizer)[1] if training else 0
        small_batch = self._small_batch(batch, training)
        return Memory.of(self.net, self.program(training, small_batch=small_batch).plan, batch,
                         self.dtype.itemsize, slots, small_batch)

    def memory_bytes(self, batch: int, training: bool = True,
                     optimizer: str | None = None) -> int:
        """The total of `memory`."""
        return self.memory(batch, training, optimizer).total

    # -- running ------------------------------------------------------------------------------
    def load_input(self, v: SimpleNamespace, x, staged: bool = False) -> None:
        """Copy a batch into the input buffer of bound views (`bind`); `staged`: from the copy
        that `stage` started."""
        x = np.asarray(x)
        if tuple(x.shape[1:]) != self.net.input_shape:
            expected = ", ".join(map(str, self.net.input_shape))
            raise DataError(f"expected input of shape (N, {expected}), received {tuple(x.shape)}")
        self.backend.upload(x, getattr(v, ident(INPUT)), staged)

    def forward(self, x, training: bool = False, output: str = MAIN) -> np.ndarray:
        """An output (the main one unless named) for a batch (N, C, H, W); in training mode
        batch norm uses batch statistics and updates its running statistics, and dropout is
        active. A head runs in the training program's forward pass (in eval mode unless
        `training`), unfolded: inference compiles the main output's part of the network."""
        self.net.output_named(output)          # KeyError for an output it does not have
        program = self.program(training or output != MAIN,
                               small_batch=output == MAIN and self._small_batch(len(x), training))
        self._refold(program.folds)
        v = self.bind(program, len(x))
        self.load_input(v, x)
        out = self.run_forward(program, v, training, self._next_seed(training))
        if output != MAIN:      # (as compiled: a fused activation's output is its producer's)
            out = getattr(v, ident(program.net.output_named(output).node))
        return np.array(self.backend.to_host(out))

    def _refold(self, folds) -> None:
        """Fold the current batch-norm statistics and parameters into their convolutions."""
        if folds:
            self.backend.fold(folds, self.params, self.buffers, self._folded)

    def stage(self, x, labels) -> None:
        """Announce the batch of a coming `loss_and_grad` call (pass it the same array objects):
        a GPU backend starts copying it now, so the copy overlaps the steps before it."""
        if tuple(np.shape(x)[1:]) == self.net.input_shape and not isinstance(labels, dict) \
                and len(x) == len(labels) and np.ndim(labels) == 1 and \
                self.backend.stage(np.asarray(x, dtype=self.dtype),
                                   np.ascontiguousarray(labels, dtype=np.int64)):
            self._staged.append((x, labels))

    def _take_staged(self, x, labels) -> bool:
        """Whether this batch is the oldest staged one; any other call drops what was staged."""
        if self._staged and self._staged[0][0] is x and self._staged[0][1] is labels:
            self._staged.pop(0)
            return True
        if self._staged:
            self._staged.clear()
            self.backend.unstage()
        return False

    def targets(self, labels, n: int) -> tuple[np.ndarray, ...]:
        """Each output's targets (in `net.outputs` order) for a batch of `n`, checked: class
        labels (N,) serve every output (one-hot where the loss is not cross-entropy); a dict
        gives an output its own, by name: int labels for cross-entropy, else an array of the
        output's shape per sample (multi-hot for bce_with_logits)."""
        found = []
        for output in self.net.outputs:
            if not output.weight:     # it learns soft targets alone (`teacher_targets`)
                found.append(np.zeros(1, np.int64))
                continue
            given = labels.get(output.name) if isinstance(labels, dict) else labels
            if given is None:
                raise DataError(f"no targets for the output `{output.name}` (targets given "
                                f"for: {', '.join(labels)})")
            found.append(self._output_targets(output, np.asarray(given), n))
        return tuple(found)

    def teacher_targets(self, teacher, n: int) -> tuple[np.ndarray, ...]:
        """The teacher's logits for each output that learns soft targets (`Network.distilled`),
        checked: `teacher` maps output names to arrays (N, classes), or is one array where one
        output learns them."""
        found = []
        for output in self.net.distilled:
            given = teacher.get(output.name) if isinstance(teacher, dict) else teacher
            if given is None:
                raise DataError(f"the output `{output.name}` learns soft targets: pass a "
                                "teacher's logits for it")
            given = np.asarray(given)
            shape = (n, numel(self.net.shape_of(output.node)))
            if given.shape != shape:
                raise DataError(f"the output `{output.name}` has {shape[1]} values per sample, "
                                f"the teacher's logits for it have shape {given.shape} "
                                f"(expected {shape})")
            found.append(np.ascontiguousarray(given, dtype=self.dtype))
        return tuple(found)

    def _output_targets(self, output: Output, given: np.ndarray, n: int) -> np.ndarray:
        shape = self.net.shape_of(output.node)
        if len(given) != n:
            raise DataError(f"{n} inputs but {len(given)} targets for the output "
                            f"`{output.name}`")
        if given.ndim == 1 and np.issubdtype(given.dtype, np.integer):
            classes = numel(shape)
            if given.size and (given.min() < 0 or given.max() >= classes):
                raise DataError(f"labels must lie in [0, {classes}), received {given.min()}.."
                                f"{given.max()}")
            labels = np.ascontiguousarray(given, dtype=np.int64)
            if output.loss == "cross_entropy":
                return labels
            hot = np.zeros((n, classes), self.dtype)
            hot[np.arange(n), labels] = 1
            return hot
        if output.loss == "cross_entropy":
            raise DataError(f"the output `{output.name}` is trained with cross-entropy: its "
                            f"targets are class indices (N,), received an array of "
                            f"{given.dtype} {given.shape}")
        if tuple(given.shape[1:]) != shape and given.shape[1:] != (numel(shape),):
            raise DataError(f"the output `{output.name}` has shape {shape}: expected targets "
                            f"of shape (N, {', '.join(map(str, shape))}), received "
                            f"{given.shape}")
        return np.ascontiguousarray(given.reshape(n, -1), dtype=self.dtype)

    def loss_and_grad(self, x, labels, label_smoothing: float = 0.0,
                      input_grad: bool = False, teacher=None, batch: int | None = None,
                      first: int = 0, ready: Callable[[str], None] | None = None,
                      shards: list[tuple[int, int]] | None = None, reduce: bool = True
                      ) -> float:
        """Forward in training mode, the weighted sum of every output's loss (mean softmax
        cross-entropy unless the spec says otherwise; see `targets` for `labels`; with
        `teacher`, the soft-target losses of the outputs that learn them: `teacher_targets`),
        and the backward pass: fills `grads` (and `input_grad` when asked). Returns the
        loss. `batch`: the number of samples the losses are means over, where `x` is a
        data-parallel worker's share of them (its loss and gradients are then its part of
        the whole batch's sums), and `first` the index of x's first sample among them.
        `ready(node)` is called once a node's parameter gradients are complete. With the exact
        reduction (`shards` compiled in), `shards` are x's shards [lo, hi) (default: all of x,
        one shard), each one's gradients go to a row of `shard_grads`, and `reduce` sums them
        exactly into `grads` (a data-parallel step sums them over the workers instead)."""
        staged = self._take_staged(x, labels)
        targets = self.targets(labels, len(x)) + self.teacher_targets(teacher, len(x))
        loss, v = self.train_step(self.program(True, input_grad), x, targets, label_smoothing,
                                  staged, batch, first, ready, shards)
        self.input_grad = np.array(self.backend.to_host(getattr(v, ident("d." + INPUT)))) \
            if input_grad else None
        if self.shards and reduce:
            self.reduce_shards(self.shard_rows(shards or [(0, len(x))]))
        return loss

    def shard_rows(self, shards: list[tuple[int, int]]) -> np.ndarray:
        """The rows of `shard_grads` that a step on `shards` fills: its shards with samples."""
        return np.asarray([k for k, (lo, hi) in enumerate(shards) if hi > lo], np.int64)

    def reduce_shards(self, rows: np.ndarray) -> None:
        """`grads` = the sum of the rows of `shard_grads`, exactly (kernels/cpu/exact.py)."""
        from ..kernels.cpu.exact import sum_rows
        sum_rows(self.shard_grads, rows, self.param_offsets, len(rows), self.flat_grads)

    def train_step(self, program: Program, x, targets, label_smoothing: float = 0.0,
                   staged: bool = False, batch: int | None = None, first: int = 0,
                   ready: Callable[[str], None] | None = None,
                   shards: list[tuple[int, int]] | None = None
                   ) -> tuple[float, SimpleNamespace]:
        """One training step with a given training program and checked `targets` (one array
        per output: `targets(labels, n)`); returns the loss and the bound buffers."""
        v = self.bind(program, len(x))
        self.load_input(v, x, staged)
        shards = (shards or [(0, len(x))]) if self.shards else None
        if shards is not None and len(shards) > self.shards:
            raise ValueError(f"{len(shards)} shards, where the model was compiled for "
                             f"{self.shards}")
        logits = self.run_forward(program, v, True, self._next_seed(True), first, shards)
        # The plan may reuse the logits' memory during the backward pass: copy them now (on a
        # device, without waiting; the copy is complete once the loss has been read).
        snapshot = self.backend.snapshot(logits)
        on_device = tuple(self.backend.device_labels(t, staged and k == 0, slot=k)
                          for k, t in enumerate(targets))
        loss = self.backend.scalar(self.run_backward(program, v, on_device, label_smoothing,
                                                     batch or len(x), ready, shards))
        self.last_logits = np.array(snapshot)     # (complete once the loss has been read)
        return loss, v

    def run_forward(self, program: Program, v: SimpleNamespace, training: bool, seed: int,
                    first: int = 0, shards: list[tuple[int, int]] | None = None):
        """A program's forward pass over bound views, with dropout seeded by `seed` (the
        views' samples counted from `first` in the step's whole batch); returns
        the logits where the backend keeps them. A program reads the parameters themselves
        but for the convs it folded batch norm into (inference), whose weights it reads as
        `forward` last folded them."""
        params = self._p if program.params is None else program.params
        if self.shards and program.plan.training and shards is None:
            shards = [(0, len(getattr(v, ident(INPUT))))]
        return program.module.forward(v, params, self._s, training, seed, first, shards)

    def run_backward(self, program: Program, v: SimpleNamespace, targets: tuple,
                     label_smoothing: float, batch: int,
                     ready: Callable[[str], None] | None = None,
                     shards: list[tuple[int, int]] | None = None):
        """A training program's loss and backward pass over bound views after `run_forward`
        (each output's targets on the backend; the losses means over `batch` samples); fills
        `grads`, returns the loss where the backend keeps it."""
        return program.module.loss_and_backward(v, self._p, self._g, self._s, targets,
                                                float(label_smoothing), int(batch),
                                                ready or _no_one, shards)

    def step_seed(self, step: int) -> int:
        """The dropout seed of training step `step` (the first is 1; `steps` counts them)."""
        return (self.seed * 1_000_003 + step) & 0x7FFFFFFF

    def _next_seed(self, training: bool) -> int:
        if not training:
            return 0
        self.steps += 1
        return self.step_seed(self.steps)
