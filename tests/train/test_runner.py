"""The training runner end to end on a tiny dataset written as real .npz files."""
import json
import os
import signal

import numpy as np
import pytest

from cnngraph.errors import DataError, SpecError
from cnngraph.runtime.model import Model
from cnngraph.train import checkpoint
from cnngraph.train.config import resolve
from cnngraph.train.runner import Interrupted, TrainingError, train

from helpers import make_quadrants, run


def test_trains_logs_and_checkpoints(setup):
    out = setup[3] / "run"
    result = run(setup, out)
    assert result.epochs == 4
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["val_acc"] >= 0.7 and rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,lr,train_loss")
    params, buffers, optim, meta = checkpoint.load(out / "last.npz")
    assert meta["epoch"] == 3 and meta["classes"] == ["a", "b", "c", "d"]
    assert set(optim) == {"velocity", "steps"} and "conv1.weight" in params
    assert "batchnorm1.running_var" in buffers and meta["spec"] == setup[1]
    assert (out / "best.npz").exists()


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(setup, monkeypatch):
    straight, interrupted = setup[3] / "straight", setup[3] / "interrupted"
    run(setup, straight)
    calls = {"n": 0}
    original = Model.loss_and_grad

    def stop_in_epoch_three(self, *args, **kwargs):   # 72 training images: 5 steps an epoch
        calls["n"] += 1
        if calls["n"] == 12:
            os.kill(os.getpid(), signal.SIGINT)       # Ctrl-C, in the middle of a step
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Model, "loss_and_grad", stop_in_epoch_three)
    with pytest.raises(Interrupted):
        run(setup, interrupted)
    meta = checkpoint.load(interrupted / "last.npz")[3]
    assert meta["epoch"] == 1 and meta["position"] == {"epoch": 2, "step": 2}
    monkeypatch.setattr(Model, "loss_and_grad", original)
    run(setup, interrupted, resume=True)
    a, b = checkpoint.load(straight / "last.npz"), checkpoint.load(interrupted / "last.npz")
    for group in range(3):
        assert a[group].keys() == b[group].keys()
        for key in a[group]:
            assert np.array_equal(a[group][key], b[group][key]), key
    assert [h["train_loss"] for h in a[3]["history"]] == \
        [h["train_loss"] for h in b[3]["history"]]
    assert a[3]["model_steps"] == b[3]["model_steps"] and a[3]["schedule"] == b[3]["schedule"]


def test_resume_starts_afresh_without_a_checkpoint_and_refuses_another_spec(setup):
    out = setup[3] / "run"
    out.mkdir()
    (out / ".lock").write_text("999999\n")        # what a run killed while compiling leaves
    assert run(setup, out, resume=True, epochs=1).epochs == 1
    net, text, data, _ = setup
    with pytest.raises(DataError, match="made with a different spec"):
        train(net, text + "\n# edited\n", resolve(net.train), out, data, resume=True,
              quiet=True)


def test_a_diverging_loss_stops_with_the_last_good_checkpoint(setup, monkeypatch):
    out = setup[3] / "run"
    calls = {"n": 0}
    original = Model.loss_and_grad

    def diverge(self, *args, **kwargs):
        calls["n"] += 1
        loss = original(self, *args, **kwargs)
        return float("nan") if calls["n"] == 8 else loss   # in the second epoch

    monkeypatch.setattr(Model, "loss_and_grad", diverge)
    with pytest.raises(TrainingError, match="became nan at epoch 2, step 3") as info:
        run(setup, out)
    assert "last.npz (after epoch 1)" in str(info.value)
    assert checkpoint.load(out / "last.npz")[3]["epoch"] == 0


def test_early_stopping(setup, monkeypatch):
    """Validation losses 1.0, 0.9, 0.95: the second epoch improves (the count starts again), the
    third does not, and with patience 1 the run stops there, one epoch short of its four."""
    from cnngraph.train import runner
    losses = iter([1.0, 0.9, 0.95, 0.8])
    monkeypatch.setattr(runner, "evaluate",
                        lambda *args, **kwargs: {"loss": next(losses), "acc": 0.5})
    result = run(setup, setup[3] / "run", ["train.early_stopping={metric: val_loss, patience: 1}"])
    assert result.stopped_early and result.epochs == 3
    assert result.best["epoch"] == 2 and result.best["val_loss"] == 0.9


def test_ctrl_c_saves_and_stops(setup, monkeypatch):
    from cnngraph.train import optim
    out = setup[3] / "run"
    calls = {"n": 0}
    # Python's own handler, or SIG_IGN where a shell started pytest in the background
    handler = signal.getsignal(signal.SIGINT)
    original = optim.SGD._update

    def interrupt(self):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)    # arrives while the weights are updated
        original(self)

    monkeypatch.setattr(optim.SGD, "_update", interrupt)
    with pytest.raises(Interrupted) as info:
        run(setup, out)
    named = str(info.value).split("saved ")[1].split(" (")[0]
    assert os.path.isabs(named) and os.path.samefile(named, out / "last.npz")
    assert "epoch 1, step 3 of 5" in str(info.value)
    assert checkpoint.load(out / "last.npz")[3]["position"] == {"epoch": 0, "step": 3}
    assert signal.getsignal(signal.SIGINT) is handler     # put back as it was
    monkeypatch.setattr(optim.SGD, "_update", original)
    assert run(setup, out, resume=True).epochs == 4


def test_data_that_does_not_fit_the_spec(setup, tmp_path):
    net, text, _, _ = setup
    np.savez(tmp_path / "wrong.npz", x=np.zeros((4, 3, 8, 8), np.uint8), y=np.zeros(4, int))
    with pytest.raises(DataError, match="images are 3x8x8, the spec expects 1x8x8"):
        train(net, text, resolve(net.train), tmp_path / "o", str(tmp_path / "wrong.npz"),
              quiet=True)
    np.savez(tmp_path / "labels.npz", x=np.zeros((4, 1, 8, 8), np.uint8), y=np.array([0, 9, 1, 2]))
    with pytest.raises(DataError, match="label 9 does not fit the network's 4 outputs"):
        train(net, text, resolve(net.train), tmp_path / "o", str(tmp_path / "labels.npz"),
              quiet=True)


def test_overrides_are_validated(setup):
    net = setup[0]
    assert resolve(net.train, ["train.lr=0.05", "train.augment.hflip=false"]).lr == 0.05
    assert resolve(net.train, [], epochs=7).epochs == 7
    with pytest.raises(SpecError, match="unknown key `learning_rate`"):
        resolve(net.train, ["train.learning_rate=1"])
    with pytest.raises(SpecError, match="invalid override"):
        resolve(net.train, ["lr"])
    with pytest.raises(SpecError, match="at most 19 digits, received one of 5,000 digits"):
        resolve(net.train, ["train.epochs=" + "9" * 5000])
    with pytest.raises(SpecError, match="expected an integer"):
        resolve(net.train, ["train.epochs=3.0"])


def test_shards_set_the_chunks_of_the_run_and_its_numbers(setup, monkeypatch):
    """train.shards is the chunk count of the compiled step: the run's bits depend on it (and
    on nothing about the machine's threads: tests/runtime/test_determinism.py)."""
    from cnngraph.train import runner
    chunks = []
    compile_net = runner.compile_net

    def recording(net, **options):
        model = compile_net(net, **options)
        chunks.append(model.backend.chunks)
        return model

    monkeypatch.setattr(runner, "compile_net", recording)
    runs = {shards: run(setup, setup[3] / f"shards{shards}", [f"train.shards={shards}"],
                        epochs=1) for shards in (3, 8)}
    assert chunks == [3, 8]
    weights = {shards: checkpoint.load(result.out / "last.npz")[0]
               for shards, result in runs.items()}
    assert not all(np.array_equal(weights[3][k], weights[8][k]) for k in weights[3])
    with pytest.raises(SpecError, match="shards"):
        resolve(setup[0].train, ["train.shards=0"])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop"])
def test_other_optimizers_train(setup, optimizer):
    result = run(setup, setup[3] / optimizer, [f"train.optimizer={optimizer}", "train.lr=0.01",
                                               "train.decay_bn_bias=false",
                                               "train.weight_decay=0.01",
                                               "train.clip_grad_norm=1.0"], epochs=3)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_cli_train_eval_predict(setup, cli, tmp_path):
    net, text, data, _ = setup
    spec = tmp_path / "spec.yaml"
    out = tmp_path / "cli-run"
    result = cli("train", spec, "--data", data, "--out", out, "--epochs", "3",
                 "--set", "train.lr=0.1")
    assert result.exit_code == 0, result.output
    assert "best val_acc" in result.output
    evaluation = cli("eval", spec, "--weights", out / "best.npz", "--data", data)
    assert evaluation.exit_code == 0, evaluation.output
    assert "top-1" in evaluation.output and "confusion matrix" in evaluation.output
    report = json.loads(cli("eval", spec, "--weights", out / "best.npz", "--data", data,
                            "--json").output)
    assert report["count"] == 48 and len(report["confusion"]) == 4
    prediction = cli("predict", spec, "--weights", out / "best.npz", "--top", "2",
                     f"{data}/test.npz")
    assert prediction.exit_code == 0, prediction.output
    assert prediction.output.count("test.npz[") == 48
    bad = cli("train", spec, "--data", data, "--out", out, "--set", "train.lr=-1")
    assert bad.exit_code == 1 and "expected a number > 0" in bad.output
    missing = cli("eval", spec, "--weights", spec, "--data", data)
    assert missing.exit_code == 1 and "not a cnngraph checkpoint" in missing.output


def test_predict_reads_the_units_of_its_inputs_and_speaks_json(setup, cli, tmp_path):
    """The same test images as uint8 pixels, as floats in [0, 1] and channels-last floats give
    the same probabilities (the run trained on uint8); --json has one entry per input."""
    net, text, data, _ = setup
    spec, out = tmp_path / "spec.yaml", tmp_path / "run"
    assert cli("train", spec, "--data", data, "--out", out, "--epochs", "1").exit_code == 0
    x = np.load(f"{data}/test.npz")["x"][:5]
    np.savez(tmp_path / "u8.npz", x=x)
    np.savez(tmp_path / "f01.npz", x=x.astype(np.float32) / 255)
    np.savez(tmp_path / "nhwc.npz", x=(x.astype(np.float32) / 255).transpose(0, 2, 3, 1))
    answers = {}
    twice = cli("predict", spec, "--weights", out / "last.npz", "--json",
                tmp_path / "u8.npz", tmp_path / "u8.npz")
    assert len(json.loads(twice.stdout)) == 10            # one entry per input, repeats too
    for name in ("u8", "f01", "nhwc"):
        result = cli("predict", spec, "--weights", out / "last.npz", "--top", "4", "--json",
                     tmp_path / f"{name}.npz")
        assert result.exit_code == 0, result.output
        answers[name] = json.loads(result.stdout)
        if name != "u8":
            assert "float values in [0, 1], " in result.stderr
            assert "scaled to 0-255 as in training" in result.stderr
    first = answers["u8"][0]
    assert [set(entry) for entry in first] == [{"input", "class", "index", "prob"}] * 4
    assert {entry["input"] for entry in first} == {f"{tmp_path}/u8.npz[0]"}
    assert sorted(e["index"] for e in first) == [0, 1, 2, 3]
    assert first[0]["class"] == ["a", "b", "c", "d"][first[0]["index"]]
    assert abs(sum(e["prob"] for e in first) - 1) < 1e-6
    for name in ("f01", "nhwc"):
        assert len(answers[name]) == 5
        for i in range(5):
            ours, reference = answers[name][i], answers["u8"][i]
            assert ours[0]["input"] == f"{tmp_path}/{name}.npz[{i}]"
            assert [e["index"] for e in ours] == [e["index"] for e in reference]
            np.testing.assert_allclose([e["prob"] for e in ours],
                                       [e["prob"] for e in reference], rtol=1e-5)


def test_curves_are_plotted_when_matplotlib_is_installed(setup):
    """After a single epoch each curve is one point, which a plain line does not draw: the
    image must show it (a marker). In each panel (loss, accuracy) the coloured marks are the
    legend's two samples plus at least one drawn curve; text, axes and frames are grey."""
    pytest.importorskip("matplotlib")
    import matplotlib.image

    def marks(mask: np.ndarray) -> int:
        """The number of separate (8-connected) groups of True pixels."""
        seen, count = np.zeros_like(mask), 0
        for start in zip(*np.nonzero(mask), strict=True):
            if seen[start]:
                continue
            count, stack, seen[start] = count + 1, [start], True
            while stack:
                r, c = stack.pop()
                for rr in range(max(r - 1, 0), min(r + 2, mask.shape[0])):
                    for cc in range(max(c - 1, 0), min(c + 2, mask.shape[1])):
                        if mask[rr, cc] and not seen[rr, cc]:
                            seen[rr, cc] = True
                            stack.append((rr, cc))
        return count

    out = setup[3] / "run"
    run(setup, out, epochs=1)
    image = matplotlib.image.imread(out / "curves.png")[..., :3]
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1          # not blank
    coloured = image.max(axis=2) - image.min(axis=2) > 0.3
    half = image.shape[1] // 2
    assert marks(coloured[:, :half]) >= 3 and marks(coloured[:, half:]) >= 3


# the simulator runs dropout's hash in NumPy scalars, which warn on the intended wraparound
@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_cli_train_on_cuda_matches_the_cpu(setup, cli, tmp_path):
    """`cnngraph train --device cuda` (in the simulator here) reaches the CPU run's weights."""
    net, text, _, _ = setup
    data = make_quadrants(tmp_path / "small", n=24)
    spec = tmp_path / "spec.yaml"
    runs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        result = cli("train", spec, "--data", data, "--out", out, "--epochs", "1",
                     "--batch-size", "6", "--device", device)
        assert result.exit_code == 0, result.output
        runs[device] = checkpoint.load(out / "last.npz")
    for group in (0, 1, 2):
        for name, value in runs["cpu"][group].items():
            np.testing.assert_allclose(runs["cuda"][group][name], value, rtol=1e-4, atol=1e-5,
                                       err_msg=name)


def test_curves_are_redrawn_after_every_epoch(setup, monkeypatch):
    from cnngraph.train import runlog
    drawn, original = [], runlog.plot_curves

    def record(out, history):
        drawn.append(len(history))
        original(out, history)

    monkeypatch.setattr(runlog, "plot_curves", record)
    run(setup, setup[3] / "run", epochs=3)
    assert drawn == [1, 2, 3]
