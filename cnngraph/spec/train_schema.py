"""The schema of a spec's `train:` section (cnngraph/train/config.py documents the keys and
resolves them into a `TrainConfig`). It lives with the spec front end, which validates the whole
document, so that validating a spec does not import the trainer."""
from __future__ import annotations

from ..ops.base import object_schema

LOSSES = ("cross_entropy", "mse", "l1", "bce_with_logits")
SCHEDULES = ("constant", "step", "multistep", "exponential", "cosine", "plateau")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")

_NUMBER = {"type": "number"}
_POSITIVE_INT = {"type": "integer", "minimum": 1}
_FRACTION = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
SCHEDULE = {
    "description": f"one of {', '.join(SCHEDULES)}, or a mapping with `kind` and its settings",
    "anyOf": [
        {"enum": list(SCHEDULES)},
        {"type": "object", "properties": {
            "kind": {"enum": list(SCHEDULES)}, "step_size": _POSITIVE_INT,
            "milestones": {"type": "array", "items": _POSITIVE_INT},
            "gamma": {"type": "number", "exclusiveMinimum": 0}, "min_lr": _NUMBER,
            "factor": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "patience": {"type": "integer", "minimum": 0}, "threshold": _NUMBER},
         "required": ["kind"], "additionalProperties": False},
    ],
}
LOSS = {"enum": list(LOSSES)}
_NAME = {"type": "string", "minLength": 1}
# Globs over layer, group and parameter names (train/finetune.py)
_PATTERNS = {"type": "array", "items": {"type": "string", "minLength": 1}}
OUTPUT_LOSS = object_schema({"loss": LOSS, "weight": {"type": "number", "exclusiveMinimum": 0}},
                            required=("loss",))
TRAIN = object_schema({
    "dataset": {"type": "string", "minLength": 1},
    # The losses belong to the network (its outputs): the spec front end resolves them into
    # `Network.outputs`; the trainer's settings leave them out.
    "loss": LOSS,
    "losses": {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
               "additionalProperties": OUTPUT_LOSS},
    "epochs": _POSITIVE_INT,
    "batch_size": _POSITIVE_INT,
    "optimizer": {"enum": list(OPTIMIZERS)},
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "momentum": {"type": "number", "minimum": 0, "maximum": 1},
    "nesterov": {"type": "boolean"},
    "weight_decay": {"type": "number", "minimum": 0},
    "decay_bn_bias": {"type": "boolean"},
    "betas": {"type": "array", "items": _FRACTION, "minItems": 2, "maxItems": 2},
    "eps": {"type": "number", "exclusiveMinimum": 0},
    "alpha": _FRACTION,
    "schedule": SCHEDULE,
    "warmup_epochs": {"type": "number", "minimum": 0},
    "label_smoothing": _FRACTION,
    "clip_grad_norm": {"type": "number", "minimum": 0},
    "val_split": _FRACTION,
    "augment": object_schema({
        "crop_padding": {"type": "integer", "minimum": 0}, "hflip": {"type": "boolean"},
        "random_resized_crop": {"type": "boolean"}, "color_jitter": _FRACTION}),
    "normalize": {"description": "true, false, or {mean: [...], std: [...]}",
                  "anyOf": [{"type": "boolean"}, object_schema(
                      {"mean": {"type": "array", "items": _NUMBER},
                       "std": {"type": "array", "items": {"type": "number",
                                                          "exclusiveMinimum": 0}}},
                      required=("mean", "std"))]},
    "early_stopping": object_schema({
        "metric": {"enum": ["val_loss", "val_acc", "val_mse", "val_mae", "val_psnr"]},
        "patience": _POSITIVE_INT},
        required=("patience",)),
    "seed": {"type": "integer", "minimum": 0},
    "checkpoint_every": _POSITIVE_INT,
    "shards": _POSITIVE_INT,
    "reduction": {"enum": ["fast", "exact"]},
    "dtype": {"enum": ["float32", "float64"]},
    "init_from": {"type": "string", "minLength": 1},
    "init_map": {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=.*$"}},
    "freeze": _PATTERNS,
    "bn": {"description": "train, frozen, or {frozen: [patterns]}",
           "anyOf": [{"enum": ["train", "frozen"]},
                     object_schema({"frozen": _PATTERNS}, required=("frozen",))]},
    "teacher": object_schema({
        "spec": {"type": "string", "minLength": 1}, "weights": {"type": "string", "minLength": 1},
        "temperature": {"type": "number", "exclusiveMinimum": 0},
        "alpha": {"type": "number", "minimum": 0, "maximum": 1}, "output": _NAME},
        required=("spec", "weights")),
    "lwf": object_schema({
        "output": _NAME, "temperature": {"type": "number", "exclusiveMinimum": 0},
        "weight": {"type": "number", "exclusiveMinimum": 0}}, required=("output",)),
    "tensorboard": {"type": "boolean"},
    "report": {"type": "boolean"},
    "param_groups": {"type": "array", "items": object_schema({
        "match": {"type": "string", "minLength": 1},
        "lr_mult": {"type": "number", "minimum": 0},
        "weight_decay": {"type": "number", "minimum": 0}}, required=("match",))},
})
