"""Weights in and out: PyTorch state dicts, safetensors and .npz files onto a spec's tensors.

A source is read into name -> array (`read_tensors`): a `.pt`/`.pth` state dict through
`torch.load(weights_only=True)` (PyTorch, if installed: it executes no pickled code), a
`.safetensors` file (the `safetensors` package) or an `.npz` (a cnngraph checkpoint's
parameters and buffers, or plain arrays by name). PyTorch's `num_batches_tracked` counters are
dropped: cnngraph's batch norm has no such buffer.

`match` pairs the spec's tensors with the source's. Where the source has every spec tensor
under the spec's own name (a file cnngraph wrote, or one renamed by `--map`), by name. Else by
order and shape: a spec's layers and a state dict's modules come in the same order in the
classic networks, but not always (torchvision registers a ResNet block's `downsample` after
its convolutions; cnngraph's spec may list the shortcut first). So the unit is a layer with
its parameters and buffers, a conv or dense layer together with the batch norm that directly
follows it, and each spec unit takes the first unused source unit of identical tensor shapes.
A batch norm thus always travels with its conv, and same-shaped units keep their relative
order. The result is printed as a table, to be read: `--map old.prefix=new.prefix` renames
source tensors first where the order misleads.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..ir import Network

SAFETENSORS = "reading and writing .safetensors needs the `weights` extra: " \
              "pip install 'cnngraph[weights]'"
TORCH = "reading a PyTorch .pt/.pth file needs PyTorch: pip install torch (or save the " \
        "state dict as .safetensors, which needs only the `safetensors` package)"
COUNTER = "num_batches_tracked"


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """Name -> array of a .pt/.pth state dict, a .safetensors file or an .npz file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        tensors = _torch_state_dict(path)
    elif suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise DataError(SAFETENSORS) from None
        try:
            tensors = dict(load_file(str(path)))
        except Exception as error:    # safetensors raises its own error types
            raise DataError(f"{path}: not a safetensors file ({error})") from None
    elif suffix == ".npz":
        tensors = _npz(path)
    else:
        raise DataError(f"{path}: weights are read from .pt, .pth, .safetensors or .npz files")
    return {k: v for k, v in tensors.items() if not k.endswith(COUNTER)}


def read_any(path: Path) -> dict[str, np.ndarray]:
    """Name -> array of what `read_tensors` reads, or of an ONNX model's initializers."""
    if Path(path).suffix.lower() != ".onnx":
        return read_tensors(path)
    from onnx import numpy_helper

    from .onnx_graph import read_model
    return {i.name: numpy_helper.to_array(i) for i in read_model(Path(path)).graph.initializer}


@dataclass(frozen=True)
class InitReport:
    """What `initialise_from` did: the tensors copied, those of another shape in the file
    (name, its shape, the model's), the model's not in the file, the file's not in the model."""

    copied: list[str]
    other_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    missing: list[str]
    unused: list[str]

    def lines(self, source: str) -> list[str]:
        total = len(self.copied) + len(self.other_shape) + len(self.missing)
        lines = [f"init from {source}: copied {len(self.copied)} of {total} tensors"]
        lines += [f"  skipped for shape: {name} {theirs} in the file, {ours} here"
                  for name, theirs, ours in self.other_shape]
        if self.missing:
            lines.append(f"  missing from the file (initialised as usual): "
                         f"{', '.join(self.missing)}")
        if self.unused:
            lines.append(f"  in the file, not in the network: {', '.join(self.unused)}")
        return lines


def initialise_from(model: Any, path: Path, rules: list[str]) -> InitReport:
    """Copy into the model every tensor of the file (renamed by `rules`, old.prefix=new.prefix)
    whose name and shape match one of its parameters or buffers; DataError if none does."""
    tensors = renamed(read_any(Path(path)), parse_rules(rules))
    copied, other_shape, missing = [], [], []
    for target in (model.params, model.buffers):
        for name, value in target.items():
            if name not in tensors:
                missing.append(name)
            elif tuple(tensors[name].shape) != tuple(value.shape):
                other_shape.append((name, tuple(tensors[name].shape), tuple(value.shape)))
            else:
                model.backend.from_host(tensors[name].astype(value.dtype), value)
                copied.append(name)
    known = set(model.params) | set(model.buffers)
    report = InitReport(copied, other_shape, missing, [n for n in tensors if n not in known])
    if not copied:
        raise DataError("\n".join(report.lines(str(path))) + f"\n{path}: no tensor matches the "
                        "network in name and shape (--init-map old.prefix=new.prefix renames "
                        "the file's)")
    return report


def _torch_state_dict(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise DataError(TORCH) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:        # torch's unpickler raises many types
        raise DataError(f"{path}: not a PyTorch state dict "
                        f"({str(error).splitlines()[0]})") from None
    for wrapper in ("state_dict", "model"):     # checkpoints that wrap the state dict
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise DataError(f"{path}: not a state dict (a mapping of names to tensors); save "
                        "`model.state_dict()`, not the model")
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "meta"}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not an .npz archive ({error})") from None
    if any(k.startswith(("params/", "buffers/")) for k in arrays):    # a cnngraph checkpoint
        arrays = {k.partition("/")[2]: v for k, v in arrays.items()
                  if k.startswith(("params/", "buffers/"))}
    return arrays


def parse_rules(rules: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """`old.prefix=new.prefix` rules as (old, new) pairs."""
    pairs = []
    for rule in rules:
        old, sep, new = rule.partition("=")
        if not sep or not old:
            raise DataError(f"--map {rule!r}: a rule is old.prefix=new.prefix")
        pairs.append((old, new))
    return pairs


def renamed(tensors: dict[str, np.ndarray], rules: list[tuple[str, str]]) -> dict[str, Any]:
    """The tensors with the first rule whose prefix a name starts with applied to it."""
    out = {}
    for name, value in tensors.items():
        for old, new in rules:
            if name == old or name.startswith(old if old.endswith(".") else old + "."):
                name = new + name[len(old):]
                break
        out[name] = value
    return out


@dataclass(frozen=True)
class Unit:
    """Tensors that move together: a layer's (name -> shape), a conv's with its batch norm's."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def signature(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple((name.rpartition(".")[2], shape)
                     for name, shape in zip(self.names, self.shapes, strict=True))


def _units(groups: list[list[tuple[str, tuple[int, ...]]]], follows) -> list[Unit]:
    """Groups (one layer's tensors each, in order) as units: a group joins the one before it
    where `follows(before, group)`."""
    units: list[list[tuple[str, tuple[int, ...]]]] = []
    for i, group in enumerate(groups):
        if units and follows(groups[i - 1], group):
            units[-1] = units[-1] + group
        else:
            units.append(group)
    return [Unit(tuple(n for n, _ in unit), tuple(s for _, s in unit)) for unit in units]


def _is_norm_of(before, group) -> bool:
    """Whether `group` is a batch norm of the output channels of the layer `before` (a conv or
    dense layer: a weight of two or more axes, and no statistics of its own)."""
    mine = {name.rpartition(".")[2]: shape for name, shape in group}
    theirs = {name.rpartition(".")[2]: shape for name, shape in before}
    weight = theirs.get("weight")
    return "running_mean" in mine and "running_mean" not in theirs and weight is not None \
        and len(weight) >= 2 and mine["running_mean"] == (weight[0],)


def spec_units(net: Network) -> list[Unit]:
    shapes = {**net.param_shapes(), **net.buffer_shapes()}
    groups = []
    for node in net.nodes:
        names = [f"{node.name}.{k}" for k in (*node.params, *node.buffers)]
        if names:
            groups.append([(name, tuple(shapes[name])) for name in names])
    return _units(groups, _is_norm_of)


def source_units(tensors: dict[str, np.ndarray]) -> list[Unit]:
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for name, value in tensors.items():
        groups.setdefault(name.rpartition(".")[0], []).append((name, tuple(value.shape)))
    return _units(list(groups.values()), _is_norm_of)


def match(net: Network, tensors: dict[str, np.ndarray]) -> tuple[dict[str, str], list[str], str]:
    """(spec name -> source name for every spec tensor, the source names left unused, "name" or
    "order"); DataError where a spec tensor finds no source tensor of its shape."""
    wanted = {**net.param_shapes(), **net.buffer_shapes()}
    if set(wanted) <= set(tensors):
        for name, shape in wanted.items():
            if tuple(tensors[name].shape) != tuple(shape):
                raise DataError(f"{name}: the source's tensor has shape "
                                f"{tuple(tensors[name].shape)}, the spec's {tuple(shape)}")
        return {n: n for n in wanted}, sorted(set(tensors) - set(wanted)), "name"
    pool = source_units(tensors)
    used = [False] * len(pool)
    mapping: dict[str, str] = {}
    for unit in spec_units(net):
        found = next((i for i, other in enumerate(pool)
                      if not used[i] and other.signature == unit.signature), None)
        if found is None:
            shapes = ", ".join(f"{n} {s}" for n, s in zip(unit.names, unit.shapes, strict=True))
            raise DataError(f"no tensors in the source match {shapes} (in order and shape): "
                            "the source is of another network, or --map old.prefix=new.prefix "
                            "must rename its tensors to the spec's names")
        used[found] = True
        mapping.update(zip(unit.names, pool[found].names, strict=True))
    unused = [name for i, unit in enumerate(pool) if not used[i] for name in unit.names]
    return mapping, unused, "order"


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]
                      ) -> None:
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise DataError(SAFETENSORS) from None
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata)


def import_weights(net: Network, tensors: dict[str, np.ndarray], dtype: Any = np.float32
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str],
                              list[str], str]:
    """The spec's parameters and buffers taken from `tensors` (see `match`), in `dtype`, with
    the mapping, the unused source names and how they were matched."""
    mapping, unused, how = match(net, tensors)
    params = {k: tensors[mapping[k]].astype(dtype) for k in net.param_shapes()}
    buffers = {k: tensors[mapping[k]].astype(dtype) for k in net.buffer_shapes()}
    return params, buffers, mapping, unused, how


def save_weights(model: Any, path: Path, normalizer: dict | None = None) -> None:
    """The model's parameters and buffers as a cnngraph checkpoint (.npz: what `eval`,
    `predict` and `--weights` take) or a .safetensors file, by suffix."""
    from ..train import checkpoint
    path = Path(path)
    params, buffers = model.host_params(), model.host_buffers()
    if path.suffix.lower() == ".safetensors":
        write_safetensors(path, {**params, **buffers}, {"format": "cnngraph-weights/1",
                                                        "network": model.net.name})
    elif path.suffix.lower() == ".npz":
        checkpoint.write(path, params, buffers, {}, checkpoint.weights_meta(model.net, normalizer))
    else:
        raise DataError(f"{path}: weights are saved as .npz or .safetensors")


def load_weights(model: Any, path: Path) -> None:
    """Every parameter and buffer of the model from a file that has them under their names
    (.npz, .safetensors, or a PyTorch state dict): strict, as PyTorch's `load_state_dict`."""
    from ..train import checkpoint
    tensors = read_tensors(Path(path))
    for target, kind in ((model.params, "parameter"), (model.buffers, "buffer")):
        try:
            checkpoint.check_fits({k: v.shape for k, v in target.items()}, tensors, kind,
                                  Path(path))
        except DataError as error:
            raise DataError(f"{error}; `cnngraph import-weights` maps tensors of other "
                            "names by order and shape") from None
        for name, value in target.items():
            model.backend.from_host(tensors[name].astype(value.dtype), value)
