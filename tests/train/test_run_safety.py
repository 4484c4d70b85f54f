"""A run is never lost: the run folder, its lock, mid-epoch checkpoints, faults while writing
them, corrupt checkpoints, and real training processes killed with SIGKILL and resumed."""
import io
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cnngraph.errors import DataError
from cnngraph.runtime.model import Model
from cnngraph.train import checkpoint, runlog, runner
from cnngraph.train.checkpoint import CheckpointWriteError
from cnngraph.train.rundir import RunFolderError, open_run

from helpers import ROOT, TRAINING_SPEC, make_quadrants, run


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def same_weights(a_path, b_path):
    a, b = checkpoint.load(a_path), checkpoint.load(b_path)
    for group in range(3):
        assert a[group].keys() == b[group].keys()
        for key in a[group]:
            assert np.array_equal(a[group][key], b[group][key]), key
    return a[3], b[3]


def test_a_folder_that_holds_a_run_is_refused_untouched(setup, cli, tmp_path):
    spec, data, out = tmp_path / "spec.yaml", setup[2], tmp_path / "run"
    assert cli("train", spec, "--data", data, "--out", out, "--epochs", "1").exit_code == 0
    before = snapshot(out)
    again = cli("train", spec, "--data", data, "--out", out, "--epochs", "1")
    assert again.exit_code == 2
    assert "--resume" in again.stderr and "--overwrite" in again.stderr
    assert snapshot(out) == before
    fresh = cli("train", spec, "--data", data, "--out", out, "--epochs", "2", "--overwrite")
    assert fresh.exit_code == 0, fresh.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    both = cli("train", spec, "--data", data, "--out", out, "--resume", "--overwrite")
    assert both.exit_code == 2 and "exclude each other" in both.stderr


def test_an_unusable_out_fails_before_anything_is_compiled(setup, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "compile_net", lambda *a, **k: pytest.fail("compiled"))
    monkeypatch.setattr(runner, "load_dataset", lambda *a, **k: pytest.fail("loaded data"))
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder")
    with pytest.raises(DataError, match="not a folder"):
        run(setup, in_the_way)
    with pytest.raises(DataError, match="cannot write the run folder"):
        run(setup, in_the_way / "below")


HOLD_LOCK = """
import sys, time
from cnngraph.train.rundir import open_run
folder = open_run(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_the_lock_stops_a_second_training_and_a_dead_holder_s_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=f"another training \\(pid {holder.pid}\\)"):
            open_run(out)
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".lock").read_text().strip() == str(holder.pid)     # left by the dead holder
    with open_run(out, resume=True) as folder:
        assert folder.took_over == holder.pid
    with open_run(out, resume=True) as folder:      # a cleanly closed lock is nobody's
        assert folder.took_over is None


def test_mid_epoch_checkpoints_resume_bitwise(setup, monkeypatch):
    """72 training images in batches of 16: 5 steps an epoch. A checkpoint every 3 steps; the
    run dies (no Ctrl-C, nothing saved) in step 3 of epoch 2, after the checkpoint at step 6."""
    straight, died = setup[3] / "straight", setup[3] / "died"
    run(setup, straight, checkpoint_every=3)
    original, calls = Model.loss_and_grad, {"n": 0}

    def die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("the process died")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Model, "loss_and_grad", die)
    with pytest.raises(RuntimeError):
        run(setup, died, checkpoint_every=3)
    meta = checkpoint.load(died / "last.npz")[3]
    assert meta["position"] == {"epoch": 1, "step": 1} and len(meta["history"]) == 1
    monkeypatch.setattr(Model, "loss_and_grad", original)
    run(setup, died, resume=True, checkpoint_every=3)
    a, b = same_weights(straight / "last.npz", died / "last.npz")
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert (straight / "metrics.jsonl").read_text().count("\n") == \
        (died / "metrics.jsonl").read_text().count("\n") == 4


def test_resume_with_more_epochs_continues_the_run_with_its_settings(setup, cli, tmp_path):
    spec, data, out = tmp_path / "spec.yaml", setup[2], tmp_path / "run"
    first = cli("train", spec, "--data", data, "--out", out, "--epochs", "2",
                "--set", "train.lr=0.05")
    assert first.exit_code == 0, first.output
    rows = (out / "metrics.jsonl").read_text().splitlines()
    done = cli("train", spec, "--out", out, "--resume")
    assert done.exit_code == 0 and "done its 2 epochs" in done.stderr
    longer = cli("train", spec, "--out", out, "--resume", "--epochs", "3")
    assert longer.exit_code == 0, longer.output
    meta = checkpoint.load(out / "last.npz")[3]
    assert meta["config"]["lr"] == 0.05 and meta["config"]["epochs"] == 3
    assert (out / "metrics.jsonl").read_text().splitlines()[:2] == rows
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3]
    changed = cli("train", spec, "--out", out, "--resume", "--epochs", "4", "--batch-size", "8")
    assert changed.exit_code == 1 and "started with batch_size 16" in changed.stderr


@pytest.mark.parametrize("victim", ["checkpoint", "metrics"])
def test_a_failed_write_keeps_the_previous_checkpoint(setup, monkeypatch, victim):
    """A file-size limit (with SIGXFSZ ignored, writes fail with EFBIG) stops the run with a
    clear error; the last good checkpoint stays whole, and no half-written file is left. The
    limit is set below the checkpoint's size or the curves' (a PNG larger than a checkpoint of
    this tiny network); in the first case the curves are not drawn."""
    out = setup[3] / "run"
    run(setup, out, epochs=1)
    before = (out / "last.npz").read_bytes()
    if victim == "checkpoint":
        monkeypatch.setattr(runlog, "plot_curves", lambda *args: None)
        limit, message = len(before) // 2, "the previous last.npz is intact"
    else:
        limit, message = len(before) + 1024, "could not write the metrics"
        assert (out / "curves.png").stat().st_size > limit
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises((CheckpointWriteError, runner.TrainingError), match=message):
            run(setup, out, resume=True, epochs=2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert (out / "last.npz").read_bytes() == before
    assert not list(out.glob(".*.tmp"))
    assert run(setup, out, resume=True, epochs=2).epochs == 2


def corruptions(good: bytes, tmp_path):
    yield "truncated", good[:len(good) // 2]
    yield "garbage", bytes(random.Random(0).randrange(256) for _ in range(4096))
    yield "empty", b""
    np.save(tmp_path / "array.npy", np.zeros(3))
    yield "an .npy array", (tmp_path / "array.npy").read_bytes()
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    yield "an .npz of something else", (tmp_path / "other.npz").read_bytes()
    np.savez(tmp_path / "meta.npz", meta=np.array("{not json"))
    yield "bad metadata", (tmp_path / "meta.npz").read_bytes()
    yield "text", b"just some text\n" * 20
    meta = json.loads(str(np.load(io.BytesIO(good))["meta"]))
    np.savez(tmp_path / "norm.npz", meta=np.array(json.dumps({**meta, "normalizer": {}})))
    yield "a crafted normalizer", (tmp_path / "norm.npz").read_bytes()


def test_corrupt_checkpoints_are_named_errors(setup, cli, tmp_path):
    spec, data, out = tmp_path / "spec.yaml", setup[2], tmp_path / "run"
    assert cli("train", spec, "--data", data, "--out", out, "--epochs", "1").exit_code == 0
    good = (out / "last.npz").read_bytes()
    for name, content in corruptions(good, tmp_path):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(content)
        with pytest.raises(DataError, match="bad.npz: not a cnngraph checkpoint"):
            checkpoint.load(bad)
        for command in (("eval", spec, "--weights", bad),
                        ("predict", spec, "--weights", bad, f"{data}/test.npz")):
            result = cli(*command)
            assert result.exit_code == 1, (name, result.output)
            assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
            assert "not a cnngraph checkpoint" in result.stderr and not result.stdout
            assert "pickle" not in result.stderr
        (out / "last.npz").write_bytes(content)
        resumed = cli("train", spec, "--out", out, "--resume")
        assert resumed.exit_code == 1 and "not a cnngraph checkpoint" in resumed.stderr, name


def test_eval_without_data_uses_the_run_s_data(setup, cli, tmp_path):
    spec, data, out = tmp_path / "spec.yaml", setup[2], tmp_path / "run"
    assert cli("train", spec, "--data", data, "--out", out, "--epochs", "1").exit_code == 0
    result = cli("eval", spec, "--weights", out / "last.npz")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{os.path.abspath(data)}/test.npz: 48 images")


# -- real processes, killed -----------------------------------------------------------------

WRITER = """
import sys, numpy as np
from pathlib import Path
from cnngraph.train import checkpoint

class Model:
    def __init__(self, value):
        self.value = value
    def host_params(self):
        return {"w": np.full(1_000_000, self.value, np.float32)}
    def host_buffers(self):
        return {}

print("writing", flush=True)
for i in range(1_000_000):
    checkpoint.save(Path(sys.argv[1]), Model(i), None, {"epoch": i, "model_steps": i,
                    "normalizer": {"mean": [0], "std": [1], "scale": 1}, "config": {},
                    "spec": ""})
"""


def test_a_checkpoint_killed_while_being_written_is_the_old_or_the_new_one(tmp_path):
    path, rng = tmp_path / "last.npz", random.Random(7)
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True)
        writer.stdout.readline()
        time.sleep(rng.uniform(0.05, 0.4))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if path.exists():
            params, _, _, meta = checkpoint.load(path)
            assert np.all(params["w"] == meta["epoch"])


KILL_SPEC = TRAINING_SPEC.replace("batch_size: 16", "batch_size: 8")


def test_kill_9_at_random_moments_then_resume_reaches_the_same_weights(tmp_path):
    """A real `cnngraph train` process is killed with SIGKILL again and again: the first time
    while compiling its kernels on an empty cache, then at random moments after it made
    progress: half the time just after a mid-epoch checkpoint, the other half after a delay
    drawn log-uniformly from 0.1 ms to 0.3 s (inside a step, a checkpoint write, validation or
    the curves); each time it is resumed with --resume. The final weights equal an
    uninterrupted run's bit for bit, with the same seed and thread count, though that run used
    a warm kernel cache and the killed one started on a cold one."""
    spec, data = tmp_path / "spec.yaml", make_quadrants(tmp_path / "data", n=200)
    spec.write_text(KILL_SPEC)             # 150 training images in batches of 8: 19 steps
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "CI": "true"}
    env.pop("CNNGRAPH_COMPILE_HELPER", None)          # compile as a user's first run does
    cold = {"NUMBA_CACHE_DIR": str(tmp_path / "cache" / "numba"),
            "CNNGRAPH_CACHE": str(tmp_path / "cache" / "cnngraph")}

    def train(out, *extra, cache=None):
        return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", str(spec),
                                 "--data", str(data), "--out", str(out),
                                 "--checkpoint-every", "2", *extra], cwd=tmp_path,
                                env={**env, **(cache or {})}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    straight = train(tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    killed, rng = tmp_path / "killed", random.Random(17)
    last = killed / "last.npz"
    first = train(killed, cache=cold)
    time.sleep(2.5)            # compiling: a cold cache takes far longer than this
    assert first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not last.exists()
    positions = []
    for attempt in range(6):
        process = train(killed, "--resume", cache=cold)
        after_mid_epoch_checkpoint = attempt % 2 == 0
        seen = _stamp(last)
        while process.poll() is None:          # wait for progress: a new checkpoint
            if _stamp(last) != seen:
                seen = _stamp(last)
                if not after_mid_epoch_checkpoint or \
                        checkpoint.load(last)[3]["position"]["step"]:
                    break
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.002) if after_mid_epoch_checkpoint else
                   math.exp(rng.uniform(math.log(1e-4), math.log(0.3))))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        positions.append(checkpoint.load(last)[3]["position"])
    else:
        process = train(killed, "--resume", cache=cold)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    assert len(positions) >= 3 and any(p["step"] for p in positions), positions
    a, b = same_weights(tmp_path / "straight" / "last.npz", last)
    timing = ("seconds", "images_per_second")
    assert [{k: v for k, v in row.items() if k not in timing} for row in a["history"]] == \
        [{k: v for k, v in row.items() if k not in timing} for row in b["history"]]


def _stamp(path):
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def test_ctrl_c_in_a_real_training_process(tmp_path):
    """SIGINT to a real `cnngraph train`: the step in flight finishes, last.npz is written and
    named by its full path, exit status 130; resumed, the run ends with an uninterrupted run's
    weights."""
    spec, data = tmp_path / "spec.yaml", make_quadrants(tmp_path / "data", n=200)
    spec.write_text(KILL_SPEC)
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "CI": "true"}

    def train(out, *extra):
        return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", str(spec),
                                 "--data", str(data), "--out", str(out),
                                 "--checkpoint-every", "2", *extra], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def after_a_checkpoint(process, last):
        seen = _stamp(last)
        while process.poll() is None and _stamp(last) == seen:
            time.sleep(0.001)
        assert process.poll() is None, process.stderr.read()

    straight = train(tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    out = tmp_path / "run"
    last = out / "last.npz"
    first = train(out)
    after_a_checkpoint(first, last)
    first.send_signal(signal.SIGINT)
    message = first.stderr.read()
    assert first.wait(timeout=60) == 130, message
    named = message.split("interrupted; saved ")[1].split(" (")[0]
    assert os.path.isabs(named) and os.path.samefile(named, last)
    assert checkpoint.load(last)[3]["position"]["step"] > 0      # mid-epoch

    resumed = train(out, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    same_weights(tmp_path / "straight" / "last.npz", last)


def test_a_second_ctrl_c_stops_at_once_naming_the_last_checkpoint(setup, cli, tmp_path,
                                                                   monkeypatch):
    """The second Ctrl-C is Python's KeyboardInterrupt, wherever it lands (two signals sent
    together reach a process as one, so this is driven in-process)."""
    spec, data, out = tmp_path / "spec.yaml", setup[2], tmp_path / "run"
    assert cli("train", spec, "--data", data, "--out", out, "--epochs", "1").exit_code == 0
    before = (out / "last.npz").read_bytes()

    def stop_now(self, ctrl_c):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner._Run, "_train_epoch", stop_now)
    result = cli("train", spec, "--out", out, "--resume", "--epochs", "2")
    assert result.exit_code == 130
    assert f"stopped at once; the last checkpoint is {(out / 'last.npz').resolve()}" in \
        result.stderr
    assert (out / "last.npz").read_bytes() == before
    fresh = cli("train", spec, "--data", data, "--out", tmp_path / "new")
    assert fresh.exit_code == 130 and "stopped; nothing was saved yet" in fresh.stderr
