"""The `train:` section of a spec: its schema, defaults, and command-line overrides.

    train:
      dataset: fashion-mnist        # a name from DATASETS, or a folder / .npz path
      epochs: 15
      batch_size: 128
      optimizer: sgd                # sgd | adam | adamw | rmsprop
      lr: 0.1
      momentum: 0.9
      weight_decay: 0.0005
      decay_bn_bias: false          # no weight decay on batch norm and biases
      schedule: cosine              # or {kind: multistep, milestones: [10, 15], gamma: 0.1}
      warmup_epochs: 1
      label_smoothing: 0.1
      clip_grad_norm: 5.0
      val_split: 0.1
      augment: {crop_padding: 2, hflip: true}
      early_stopping: {metric: val_acc, patience: 5}
      checkpoint_every: 500         # steps between mid-epoch checkpoints (default: 10 minutes)
      shards: 8                     # the shards of a batch (each augmented apart) and chunks a
                                    # CPU step cuts its work into: the same bits on any number
                                    # of threads (default: one chunk per CPU; 8 shards on MPI)
      reduction: exact              # each shard computed apart and summed exactly: the same
                                    # bits at any number of workers (default: fast)
      init_from: runs/base/best.npz # start from these weights (.npz, .safetensors, .pt, .onnx):
      init_map: [features=stem]     # every tensor whose name and shape match, names renamed
      freeze: [stem, layer1.*]      # parameters that do not train (train/finetune.py)
      bn: frozen                    # batch norm on running statistics, or {frozen: [...]}
      param_groups: [{match: fc.*, lr_mult: 10}, {match: '*.bias', weight_decay: 0}]
      teacher: {spec: big.yaml, weights: big.npz, temperature: 4, alpha: 0.9}  # distill.py
      lwf: {output: old, temperature: 2, weight: 1}   # learning without forgetting
      tensorboard: true             # also write the metrics for TensorBoard (or --tensorboard)
      report: false                 # no report.html at the end (cnngraph report writes one)
      loss: cross_entropy           # the main output's: cross_entropy | mse | l1 | bce_with_logits
      losses: {aux1: {loss: cross_entropy, weight: 0.3}}    # every further output's

`loss` and `losses` are read by the spec front end (cnngraph/spec/outputs.py): they belong to
the network, and `resolve` leaves them out of the settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import yaml

from ..errors import Location, Problem, SpecError
from ..spec import schema
from ..spec.train_schema import TRAIN
from ..spec.yamlload import load_scalar

DATASETS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist",
            "mnist": "/usr/share/datasets/mnist"}


@dataclass
class TrainConfig:
    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    decay_bn_bias: bool = True
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99
    schedule: dict = field(default_factory=lambda: {"kind": "constant"})
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    clip_grad_norm: float = 0.0
    val_split: float = 0.1
    augment: dict = field(default_factory=dict)
    normalize: object = True
    early_stopping: dict | None = None
    seed: int = 0
    dtype: str = "float32"
    checkpoint_every: int | None = None     # steps; None: every 10 minutes and every epoch
    shards: int | None = None               # None: runtime/backend.cpu_chunks' choice
    reduction: str = "fast"                 # "exact": the same bits at any number of workers
    init_from: str | None = None            # weights to start from (a fresh run only)
    init_map: list = field(default_factory=list)   # "old.prefix=new.prefix" renames for it
    freeze: list = field(default_factory=list)     # patterns of parameters that do not train
    bn: object = "train"                  # "train", "frozen" or {"frozen": [patterns]}
    param_groups: list = field(default_factory=list)   # [{match, lr_mult, weight_decay}]
    teacher: dict | None = None           # {spec, weights, temperature, alpha, output}
    lwf: dict | None = None               # {output, temperature, weight}
    tensorboard: bool = False             # each epoch's metrics as TensorBoard scalars
    report: bool = True                   # report.html at the end (train/report.py)

    @classmethod
    def from_mapping(cls, values: dict) -> TrainConfig:
        config = cls(**{k: v for k, v in values.items()})
        if isinstance(config.schedule, str):
            config.schedule = {"kind": config.schedule}
        config.betas = tuple(config.betas)
        return config

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def apply_overrides(train: dict, overrides: list[str]) -> dict:
    """`--set train.key=value` (or `key=value`); values are YAML scalars or flow collections."""
    out = {k: v for k, v in train.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        path = key.strip().removeprefix("train.").split(".")
        if not sep or not all(path):
            raise SpecError(Problem(f"invalid override {item!r}", Location("--set"),
                                    "write --set train.key=value, e.g. --set train.lr=0.05"))
        try:
            value = load_scalar(text)
        except yaml.YAMLError:
            raise SpecError(Problem(f"invalid value in {item!r}", Location("--set"))) from None
        target = out
        for part in path[:-1]:
            target[part] = dict(target.get(part) or {})
            target = target[part]
        target[path[-1]] = value
    return out


# Keys of the `train:` section that belong to the network (its outputs' losses: the spec front
# end resolves them into `Network.outputs`), not to the trainer's settings.
NETWORK_KEYS = ("loss", "losses")


def resolve(train: dict, overrides: list[str] = (), **options) -> TrainConfig:
    """The training configuration: spec section, then --set overrides, then explicit options
    (from --epochs, --lr, ...). Raises SpecError for unknown keys or bad values."""
    for item in overrides:
        key = item.partition("=")[0].strip().removeprefix("train.").split(".")[0]
        if key in NETWORK_KEYS:
            raise SpecError(Problem(f"`train.{key}` cannot be overridden", Location("--set"),
                                    "the losses belong to the network's outputs: edit them in "
                                    "the spec"))
    train = {k: v for k, v in train.items() if k not in NETWORK_KEYS}
    merged = apply_overrides(train, list(overrides))
    merged.update({k: v for k, v in options.items() if v is not None})
    problems = schema.check(merged, TRAIN, Location("train settings"), "`train`")
    if problems:
        raise SpecError(problems)
    return TrainConfig.from_mapping(merged)


def data_path(name_or_path: str) -> str:
    """A dataset's path: a name from DATASETS, or the path given."""
    return DATASETS.get(name_or_path, name_or_path)
