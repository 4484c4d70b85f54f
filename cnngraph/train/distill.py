"""Learning from soft targets: knowledge distillation (Hinton et al., 2015) and learning
without forgetting (Li & Hoiem, 2016).

    train:
      teacher: {spec: big.yaml, weights: runs/big/best.npz, temperature: 4, alpha: 0.9}
      lwf: {output: old, temperature: 2, weight: 1}

With a `teacher`, the student's output (`output`, the main one by default) learns
(1 - alpha) x its own loss + alpha x T^2 x KL(softmax(teacher / T) || softmax(student / T)),
the teacher's logits computed by cnngraph itself for every training batch, in inference mode.
With `lwf`, the network's output `output` (an old task's head, of a multi-output spec) keeps
what it answered when the run started: the network as it starts (its seed's weights, then
`init_from`'s) is the teacher of that output, which learns its soft targets (weight `weight`)
and nothing else, while the other outputs learn the new task. Li & Hoiem record the old head's
answers for the training set once; this runs the starting network on each batch instead, which
gives the same targets without augmentation and the targets of the image actually seen with
it. The losses are the generated step's own (`Output.distill`, kernels/*/support.distill_*).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import Location, Problem, SpecError
from ..ir import MAIN, Distill, Network
from ..ops.base import numel
from . import checkpoint
from .loader import Normalizer


def prepare(net: Network, config) -> Network:
    """`net` with the outputs that `config` (a TrainConfig: teacher, lwf) has learn soft
    targets; SpecError for an output it does not have."""
    if config.teacher:
        settings = config.teacher
        name = _output(net, settings.get("output", MAIN), "teacher")
        alpha = float(settings.get("alpha", 0.9))
        net = net.with_distillation(name, Distill(float(settings.get("temperature", 4.0)),
                                                  alpha), 1.0 - alpha)
    if config.lwf:
        name = _output(net, config.lwf["output"], "lwf")
        net = net.with_distillation(name, Distill(float(config.lwf.get("temperature", 2.0)),
                                                  float(config.lwf.get("weight", 1.0))), 0.0)
    return net


def _output(net: Network, name: str, setting: str) -> str:
    names = [o.name for o in net.outputs]
    if name not in names:
        raise SpecError(Problem(f"`train.{setting}.output`: the network has no output `{name}`",
                                Location(net.file, path=("train", setting, "output")),
                                f"its outputs: {', '.join(names)}"))
    return name


class Teacher:
    """A network's main-output logits for the student's batches (normalised the student's way),
    in inference mode; `convert` renormalises a batch for it where it was trained on other
    statistics."""

    def __init__(self, model, student: Normalizer, own: Normalizer | None = None):
        self.model = model
        self.convert = None
        if own is not None and (own.mean, own.std) != (student.mean, student.std):
            scale = np.asarray(student.std, np.float32) / np.asarray(own.std, np.float32)
            shift = (np.asarray(student.mean, np.float32) - np.asarray(own.mean, np.float32)) \
                / np.asarray(own.std, np.float32)
            self.convert = (scale[:, None, None], shift[:, None, None])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.convert is not None:
            scale, shift = self.convert
            images = images * scale + shift
        return self.model.forward(images)


def teachers(net: Network, config, normalizer: Normalizer, device: str) -> dict:
    """The teacher of each output that learns soft targets (name -> Teacher), built and checked
    against the student `net` (as `prepare` made it)."""
    from ..api import compile as compile_net
    from ..api import load
    found = {}
    if config.teacher:
        settings, name = config.teacher, config.teacher.get("output", MAIN)
        teacher_net = load(settings["spec"])
        _check_size(net, name, teacher_net, settings["spec"])
        model = compile_net(teacher_net, backend=device, dtype=config.dtype)
        weights = Path(settings["weights"])
        model.load_weights(weights)
        saved = checkpoint.saved_normalizer(weights)
        found[name] = Teacher(model, normalizer, Normalizer.from_record(saved) if saved else None)
    if config.lwf:
        from ..interchange.weights import initialise_from
        from ..passes.init import initial_values
        name = config.lwf["output"]
        # the old head's part of the network, as its main output, starting where the student
        # starts: the whole network's seeded values (its default scheme may differ), then
        # init_from's
        model = compile_net(replace(net.for_output(name), heads=()), backend=device,
                            dtype=config.dtype)
        for values, arrays in zip(initial_values(net, config.seed),
                                  (model.params, model.buffers), strict=True):
            for key, array in arrays.items():
                model.backend.from_host(values[key].astype(array.dtype), array)
        if config.init_from:
            initialise_from(model, Path(config.init_from), config.init_map)
        found[name] = Teacher(model, normalizer)
    return found


def _check_size(net: Network, name: str, teacher: Network, spec: str) -> None:
    if teacher.input_shape != net.input_shape:
        raise SpecError(Problem(
            f"the teacher ({spec}) takes {teacher.input_shape} inputs, the student "
            f"{net.input_shape}", Location(net.file, path=("train", "teacher")),
            "the teacher sees the student's batches: give it the same input"))
    ours = numel(net.shape_of(net.output_named(name).node))
    theirs = numel(teacher.output_shape)
    if ours != theirs:
        raise SpecError(Problem(
            f"the teacher ({spec}) has {theirs} outputs, the student's `{name}` has {ours}",
            Location(net.file, path=("train", "teacher")),
            "distillation matches the two networks' logits class by class: give the student "
            "the teacher's classes"))
