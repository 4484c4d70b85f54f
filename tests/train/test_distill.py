"""Soft targets (train/distill.py): the distillation loss against PyTorch, learning without
forgetting's old head, and the trainer's teacher."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnngraph
from cnngraph.errors import DataError, SpecError
from cnngraph.ir import MAIN, Distill
from cnngraph.kernels.cpu.support import distill_cpu
from cnngraph.runtime.model import Model
from cnngraph.tools.torch_reference import run_outputs
from cnngraph.train.runner import load_for_inference

from helpers import run

TWO_HEADS = """version: 1
input: [2, 5, 5]
layers:
  - conv: {out: 3, kernel: 3}
  - batchnorm
  - relu
  - flatten
  - dense: {out: 4}
    output: old
  - dense: {out: 6}
train:
  losses: {old: {loss: cross_entropy}}
"""


def soft_loss(student, teacher, temperature):
    """Hinton et al.'s term as PyTorch's distillation tutorials write it."""
    return F.kl_div(F.log_softmax(student / temperature, 1), F.softmax(teacher / temperature, 1),
                    reduction="batchmean") * temperature ** 2


@pytest.mark.parametrize("lwf", [False, True], ids=["teacher", "old-head"])
def test_distillation_matches_pytorch_in_float64(write_spec, lwf):
    net = cnngraph.load(write_spec(TWO_HEADS))
    name, distill, weight = ("old", Distill(2.0, 1.5), 0.0) if lwf else \
        (MAIN, Distill(4.0, 0.8), 0.2)
    model = cnngraph.compile(net.with_distillation(name, distill, weight), dtype="float64")
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 2, 5, 5)), rng.integers(0, 6, 5)   # 6: not an old class
    classes = 4 if lwf else 6
    teacher = rng.standard_normal((5, classes)) * 3
    # the old head learns soft targets alone: the labels, of new classes, are not its own
    targets = labels if lwf else {MAIN: labels, "old": labels % 4}
    loss = model.loss_and_grad(x, targets, 0.1, input_grad=True, teacher={name: teacher})

    params = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    xt = torch.tensor(x, requires_grad=True)
    outputs = run_outputs(net, params, buffers, xt, training=True)
    hard = F.cross_entropy(outputs[MAIN], torch.tensor(labels), label_smoothing=0.1)
    soft = distill.weight * soft_loss(outputs[name], torch.tensor(teacher), distill.temperature)
    if lwf:       # the old head's own loss is left out; the new head's keeps its weight
        expected = hard + soft
    else:         # the old head keeps its loss against the labels it can take
        expected = weight * hard + soft + F.cross_entropy(
            outputs["old"], torch.tensor(labels % 4), label_smoothing=0.1)
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    for key, value in params.items():
        np.testing.assert_allclose(model.grads[key], value.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=key)
    np.testing.assert_allclose(model.input_grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_the_kernel_adds_to_or_writes_the_gradient():
    rng = np.random.default_rng(1)
    student, teacher = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    written, added = np.zeros((3, 5)), np.ones((3, 5))
    loss = distill_cpu(student, teacher, written, 3.0, 0.5, False, len(student))
    distill_cpu(student, teacher, added, 3.0, 0.5, True, len(student))
    np.testing.assert_allclose(added, written + 1, rtol=1e-14)
    s = torch.tensor(student, requires_grad=True)
    expected = 0.5 * soft_loss(s, torch.tensor(teacher), 3.0)
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(written, s.grad.numpy(), rtol=1e-12)


def test_the_cuda_kernel_agrees_with_the_cpu_one():
    from numba import cuda

    from cnngraph.kernels.cuda.support import distill_cuda
    rng = np.random.default_rng(2)
    student = rng.standard_normal((3, 4)).astype(np.float32)
    teacher = (rng.standard_normal((3, 4)) * 5).astype(np.float32)
    ours, expected = np.full((3, 4), 2.0, np.float32), np.full((3, 4), 2.0, np.float32)
    grads = cuda.to_device(ours)
    loss = distill_cuda(cuda.to_device(student), cuda.to_device(teacher), grads, 2.0, 0.7, True,
                        len(student))
    reference = distill_cpu(student, teacher, expected, 2.0, 0.7, True, len(student))
    assert float(loss.copy_to_host()[0]) == pytest.approx(reference, rel=1e-5)
    np.testing.assert_allclose(grads.copy_to_host(), expected, rtol=1e-5, atol=1e-6)


def test_teacher_logits_of_the_wrong_shape_are_refused(write_spec):
    net = cnngraph.load(write_spec(TWO_HEADS))
    model = cnngraph.compile(net.with_distillation(MAIN, Distill(2.0, 0.5), 0.5))
    x, labels = np.zeros((2, 2, 5, 5)), np.array([0, 1])
    with pytest.raises(DataError, match=r"`main` has 6 values per sample.*\(2, 4\)"):
        model.loss_and_grad(x, {MAIN: labels, "old": labels}, teacher=np.zeros((2, 4)))
    with pytest.raises(DataError, match="pass a teacher's logits"):
        model.loss_and_grad(x, {MAIN: labels, "old": labels})


@pytest.fixture
def seen(monkeypatch):
    """Each training step's (batch, teacher logits), as the run hands them to the model."""
    steps = []
    original = Model.loss_and_grad

    def record(self, x, labels, *args, teacher=None, **kwargs):
        steps.append((np.array(x), teacher))
        return original(self, x, labels, *args, teacher=teacher, **kwargs)

    monkeypatch.setattr(Model, "loss_and_grad", record)
    return steps


def test_a_run_gives_the_student_its_teachers_logits(setup, seen):
    teacher_run = setup[3] / "teacher"
    run(setup, teacher_run, epochs=1)
    seen.clear()
    weights = teacher_run / "last.npz"
    run(setup, setup[3] / "student", [f"train.teacher={{spec: '{setup[3] / 'spec.yaml'}', "
                                      f"weights: '{weights}', temperature: 3, alpha: 0.5}}"],
        epochs=1)
    teacher, _, _ = load_for_inference(setup[0], weights)
    assert len(seen) == 5 and all(set(logits) == {MAIN} for _, logits in seen)
    for images, logits in seen:     # the augmented batch the student saw, in eval mode
        np.testing.assert_allclose(logits[MAIN], teacher.forward(images), rtol=1e-5,
                                   atol=1e-6)


def test_bad_teachers_are_refused(setup, write_spec):
    small = write_spec(setup[1].replace("dense: {out: 4}", "dense: {out: 3}"), "small.yaml")
    with pytest.raises(SpecError, match="the teacher .* has 3 outputs, the student's `main` "
                                        "has 4"):
        run(setup, setup[3] / "bad", [f"train.teacher={{spec: '{small}', weights: 'x.npz'}}"])
    wide = write_spec(setup[1].replace("input: [1, 8, 8]", "input: [1, 10, 10]"), "wide.yaml")
    with pytest.raises(SpecError, match=r"takes \(1, 10, 10\) inputs, the student \(1, 8, 8\)"):
        run(setup, setup[3] / "bad", [f"train.teacher={{spec: '{wide}', weights: 'x.npz'}}"])
    with pytest.raises(SpecError, match="no output `old`"):
        run(setup, setup[3] / "bad", ["train.lwf={output: old}"])


LWF_SPEC = """version: 1
name: two-tasks
input: [1, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - global_avgpool
  - flatten
  - dense: {out: 3}
    output: old
  - dense: {out: 4}
train:
  epochs: 1
  batch_size: 16
  losses: {old: {loss: cross_entropy}}
"""


def test_learning_without_forgetting_keeps_the_old_heads_start(setup, write_spec, seen):
    spec = write_spec(LWF_SPEC, "lwf.yaml")
    net = cnngraph.load(spec)
    out = setup[3] / "lwf"
    run((net, spec.read_text(), *setup[2:]), out, ["train.lwf={output: old, temperature: 2}"])
    start = cnngraph.compile(net, seed=0)        # the run's seed: its starting weights
    assert len(seen) == 6                        # 86 training images, batches of 16
    for images, logits in seen:
        assert set(logits) == {"old"}
        np.testing.assert_allclose(logits["old"], start.forward(images, output="old"),
                                   rtol=1e-5, atol=1e-6)
