"""The run's logs beside its checkpoints: TensorBoard scalars with --tensorboard."""
import builtins
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnngraph.errors import CnngraphError

from helpers import run


def test_tensorboard_scalars_are_the_metrics_of_each_epoch(setup):
    out = setup[3] / "run"
    run(setup, out, ["train.tensorboard=true"], epochs=2)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    # (the writer's scalars are version-2 summaries: scalar tensors)
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr"} <= set(
        events.Tags()["tensors"])
    for tag, key in (("train/loss", "train_loss"), ("val/acc", "val_acc"), ("lr", "lr")):
        found = events.Tensors(tag)
        values = [e.tensor_proto.float_val[0] for e in found]
        assert [e.step for e in found] == [1, 2]
        assert values == pytest.approx([r[key] for r in rows], rel=1e-6)


def test_tensorboard_without_the_package_is_refused_before_training(setup, monkeypatch):
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name.startswith("tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(CnngraphError, match="pip install tensorboard"):
        run(setup, setup[3] / "run", ["train.tensorboard=true"])
    assert not (setup[3] / "run" / "last.npz").exists()
