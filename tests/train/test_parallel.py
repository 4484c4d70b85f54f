"""Data-parallel training on MPI (cnngraph/train/parallel.py): how a batch is cut into shards
and workers, the launcher's command line, and real jobs of two local workers under mpirun:
replicas that stay equal over an uneven last batch, and the faults that must end a job (an
error on one worker, a killed worker, a hung one) followed by a resume at another count."""
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import cnngraph
from cnngraph.kernels.cpu import workers
from cnngraph.train import checkpoint, parallel
from cnngraph.train.metrics import Accumulator

from helpers import ROOT, TRAINING_SPEC, make_quadrants

WORKER = ROOT / "tests" / "train" / "mpi_worker.py"
needs_mpi = pytest.mark.skipif(
    parallel.mpirun_path() is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs the `mpi` extra (mpi4py, and Open MPI's mpirun)")


@pytest.mark.parametrize("batch", [0, 1, 5, 16, 17])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_the_workers_shards_tile_the_batch_in_order(batch, size):
    bounds = [parallel.shard_bounds(batch, 8, rank, size) for rank in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == batch
    assert all(bounds[r][1] == bounds[r + 1][0] for r in range(size - 1))
    # each worker takes whole shards: its share is what its shards of the batch hold
    assert [hi - lo for lo, hi in bounds] == [
        sum(parallel.shard_bounds(batch, 8, s, 8)[1] - parallel.shard_bounds(batch, 8, s, 8)[0]
            for s in range(r * 8 // size, (r + 1) * 8 // size)) for r in range(size)]


def test_merged_metrics_are_those_of_all_the_samples():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((10, 4)), rng.integers(0, 4, 10)
    whole, parts = Accumulator(4), [Accumulator(4), Accumulator(4)]
    whole.add(logits, labels)
    parts[0].add(logits[:3], labels[:3])
    parts[1].add(logits[3:], labels[3:])
    merged = Accumulator(4)
    merged.load_state_dict(parallel.merge_states([p.state_dict() for p in parts]))
    result, expected = merged.result(), whole.result()
    assert result["confusion"] == expected["confusion"] and result["count"] == 10
    assert result["acc"] == expected["acc"] and np.isclose(result["loss"], expected["loss"])


def test_shards_must_divide_among_the_workers():
    world = parallel.World(0, 2)
    assert parallel.check_shards(world, None, "cpu") == parallel.DEFAULT_SHARDS
    assert parallel.check_shards(parallel.World(), None, "cpu") is None
    with pytest.raises(parallel.ParallelError, match="multiple of 2"):
        parallel.check_shards(world, 3, "cpu")
    with pytest.raises(parallel.ParallelError, match="on the CPU"):
        parallel.check_shards(world, 8, "cuda")


def test_the_launcher_shares_the_cores_out_and_runs_as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    command, env = parallel.launch_command(2, None, ["train", "s.yaml"], cores=2, environ={},
                                           mpirun="mpirun")
    assert command[:3] == ["mpirun", "-n", "2"] and "--bind-to" in command
    assert command[-5:] == ["mpi4py", "-m", "cnngraph", "train", "s.yaml"]
    assert env["NUMBA_NUM_THREADS"] == "1" and "--oversubscribe" not in command
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    command, env = parallel.launch_command(2, 2, ["train"], cores=2, environ={},
                                           mpirun="mpirun")
    assert "slot:PE=2" in command and "--oversubscribe" in command   # asked for: 4 on 2
    assert env["NUMBA_NUM_THREADS"] == "2"
    _, env = parallel.launch_command(2, None, ["train"], cores=8,
                                     environ={"NUMBA_NUM_THREADS": "3"}, mpirun="mpirun")
    assert env["NUMBA_NUM_THREADS"] == "3"                # the environment's is honoured


def test_the_launcher_says_what_to_install(monkeypatch):
    monkeypatch.setattr(parallel, "mpirun_path", lambda: None)
    with pytest.raises(parallel.ParallelError, match=r"cnngraph\[mpi\]"):
        parallel.launch_command(2, None, ["train"])


class _TwoWorkers(parallel.World):
    """Rank 0 of two, whose MPI calls the tests replace."""
    concurrent = True


def test_gradients_are_summed_in_buckets_as_the_backward_pass_completes_them(monkeypatch):
    """The buckets tile the gradients from the last layers' on, and each is handed to the
    summing thread during the backward pass, in bucket order, once its layers are done."""
    events: list = []

    class Recorder:
        def __init__(self, world):
            pass

        def put(self, array):
            events.append(("put", array))

        def wait(self, what):
            events.append(("wait", what))

    monkeypatch.setattr(parallel, "_Sender", Recorder)
    model = cnngraph.compile(cnngraph.load(str(ROOT / "specs" / "lenet.yaml")), seed=0)
    replicas = parallel.Replicas(_TwoWorkers(0, 2), model, 8, bucket_bytes=16 << 10)
    assert len(replicas.buckets) >= 3
    ranges = [r for r, _ in replicas.buckets]
    assert ranges[0][1] == model.flat_grads.size and ranges[-1][0] == 0
    assert all(ranges[k][0] == ranges[k + 1][1] for k in range(len(ranges) - 1))
    assert set().union(*(nodes for _, nodes in replicas.buckets)) == {
        name.rsplit(".", 1)[0] for name in model.params}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, *model.net.input_shape)).astype(np.float32)
    ready = replicas.begin()
    assert ready is not None

    def noted(node):
        events.append(("ready", node))
        ready(node)

    loss = model.loss_and_grad(x[:4], rng.integers(0, 10, 4), batch=8, ready=noted)
    during = [e for e in events if e[0] == "put"]
    assert len(during) == len(ranges)         # every bucket before the backward pass ended
    # each right after the ready of the last of its layers, in order, as views of the gradients
    for put, ((lo, hi), nodes) in zip(during, replicas.buckets, strict=True):
        assert np.shares_memory(put[1], model.flat_grads) and put[1].size == hi - lo
        at = next(i for i, e in enumerate(events) if e is put)
        assert at == 1 + max(events.index(("ready", node)) for node in nodes)
    replicas.reduce(loss, 8, (False, False))
    assert [e[0] for e in events[-2:]] == ["put", "wait"]      # then the control numbers
    workers.connect(None)


# -- two workers under mpirun -------------------------------------------------------------------

def _job(tmp_path, out, *args, fault=None, dump=None, workers=2, threads=1, timeout=120,
         spec=None):
    """`cnngraph train` of the tiny spec (or `spec`) in 2 workers under mpirun
    (tests/train/mpi_worker.py), one step a checkpoint; (exit status, output, seconds)."""
    if spec is None:
        spec = tmp_path / "spec.yaml"
        if not spec.exists():
            spec.write_text(TRAINING_SPEC)
    if not (tmp_path / "data").exists():
        make_quadrants(tmp_path / "data", n=97)       # 97 = 6 batches of 16 and 1
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "NUMBA_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    forwarded = ["-x", "NUMBA_NUM_THREADS", "-x", "PYTHONPATH"]
    for name, value in (("CNNGRAPH_TEST_FAULT", fault), ("CNNGRAPH_TEST_DUMP", dump)):
        if value:
            env[name] = str(value)
            forwarded += ["-x", name]
    command = [parallel.mpirun_path(), "-n", str(workers), "--bind-to", "none",
               "--oversubscribe", *forwarded, sys.executable, "-m", "mpi4py", str(WORKER),
               "train", str(spec), "--data", str(tmp_path / "data"), "--out", str(out),
               "--set", "train.val_split=0", "--set", "train.report=false",
               "--checkpoint-every", "1", *args]
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - began


@needs_mpi
def test_two_workers_train_as_replicas_over_an_uneven_last_batch(tmp_path):
    """The last batch of each epoch holds one sample: rank 0's shards are empty then. Both
    workers end with bitwise the same weights and statistics, which rank 0 checkpointed."""
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    code, output, _ = _job(tmp_path, out, "--epochs", "2", dump=dump)
    assert code == 0, output
    assert output.count("done: 2 epochs") == 1 and output.count("epoch 2/2") == 1
    ranks = [np.load(dump / f"rank{r}.npz") for r in range(2)]
    params, buffers, _, meta = checkpoint.load(out / "last.npz")
    saved = {**params, **buffers}
    assert ranks[0].files and set(ranks[0].files) == set(saved)
    for key in saved:
        assert np.array_equal(ranks[0][key], ranks[1][key]), key
        assert np.array_equal(ranks[0][key], saved[key]), key
    assert [row["epoch"] for row in meta["history"]] == [1, 2]
    assert meta["history"][-1]["train_loss"] < meta["history"][0]["train_loss"]


@needs_mpi
def test_the_launcher_starts_the_workers(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TRAINING_SPEC)
    make_quadrants(tmp_path / "data")
    done = subprocess.run([sys.executable, "-m", "cnngraph", "train", str(spec), "--data",
                           str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--epochs",
                           "1", "--workers", "2", "--set", "train.report=false"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "starting 2 workers" in output and output.count("done: 1 epochs") == 1
    assert (tmp_path / "run" / "last.npz").exists()


@needs_mpi
def test_an_error_on_one_worker_is_printed_once_and_ends_the_job(tmp_path):
    code, output, seconds = _job(tmp_path, tmp_path / "run", "--epochs", "3",
                                 fault="raise:1:3")
    assert code != 0 and seconds < 30, output
    assert output.count("RuntimeError: a fault injected on rank 1") == 1, output


@needs_mpi
def test_a_killed_worker_ends_the_job_and_the_run_resumes_on_one(tmp_path):
    out = tmp_path / "run"
    code, output, seconds = _job(tmp_path, out, "--epochs", "3", fault="kill:1:9")
    assert code != 0 and seconds < 30, output
    assert "rank 1" in output and "signal 9" in output, output
    meta = checkpoint.load(out / "last.npz")[3]
    assert meta["position"]["epoch"] == 1                   # saved in epoch 2, before the kill
    # resumed by a single process: the same run, carried on
    done = subprocess.run([sys.executable, "-m", "cnngraph", "train", str(tmp_path / "spec.yaml"),
                           "--out", str(out), "--resume"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from" in done.stderr
    history = checkpoint.load(out / "last.npz")[3]["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]


@needs_mpi
def test_a_hung_worker_trips_the_collective_deadline(tmp_path):
    out = tmp_path / "run"
    code, output, seconds = _job(tmp_path, out, "--epochs", "3", "--collective-timeout", "3",
                                 fault="hang:1:4")
    assert code != 0 and seconds < 30, output
    # (the first collective of the step in which it hangs: batch norm's statistics)
    assert "no answer from the other workers to the batch norm statistics of a step" in output
    code, output, _ = _job(tmp_path, out, "--resume")          # and at 2 workers again
    assert code == 0 and "resuming from" in output, output


@needs_mpi
def test_two_workers_train_as_one_process_does_and_either_resumes_the_others_run(tmp_path):
    """The same run at 1 and 2 workers: batch norm normalises with the whole batch's
    statistics (synchronised), every worker's loss is its part of the whole batch's mean, and
    a sample keeps its augmentation and dropout mask whichever worker takes it. The weights
    agree to the float rounding of sums taken in another order (not yet bitwise: see
    parallel.py); without batch norm synchronised they drift apart by 1e-3 and more. A run of
    one epoch at 2 workers, resumed by one process for a second epoch (at a constant rate),
    reaches those weights too."""
    constant = ("--set", "train.shards=8", "--set", "train.schedule=constant",
                "--set", "train.warmup_epochs=0")
    weights = []
    for count, epochs in ((1, 2), (2, 2), (2, 1)):
        dump = tmp_path / f"dump{count}-{epochs}"
        dump.mkdir()
        code, output, _ = _job(tmp_path, tmp_path / f"run{count}-{epochs}", "--epochs",
                               str(epochs), *constant, dump=dump, workers=count)
        assert code == 0, output
        weights.append(np.load(dump / "rank0.npz"))
    dump = tmp_path / "resumed"
    dump.mkdir()
    code, output, _ = _job(tmp_path, tmp_path / "run2-1", "--epochs", "2", "--resume",
                           dump=dump, workers=1)
    assert code == 0 and "resuming from" in output, output
    one, two, _, resumed = *weights, np.load(dump / "rank0.npz")
    assert set(one.files) == set(two.files) and "batchnorm1.running_var" in one.files
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(resumed[key], one[key], rtol=0, atol=1e-5, err_msg=key)
    assert not np.allclose(weights[2]["dense1.weight"], one["dense1.weight"], atol=1e-3)


@needs_mpi
@pytest.mark.parametrize("spec", ["tiny", "lenet-bn"])
def test_the_exact_reduction_trains_bitwise_alike_on_any_number_of_workers_and_threads(
        tmp_path, spec):
    """`train.reduction: exact`: 1 worker on 1 and 2 threads and 2 workers reach bitwise the
    same weights and batch norm statistics, over two epochs whose last batch (one sample)
    leaves a worker out, with synchronised batch norm: the tiny spec (14 steps, with dropout
    and augmentation) and LeNet-BN (26 steps of 8 images, resized to 28x28). A run of one
    epoch at 2 workers, resumed by one process for a second (at a constant rate), reaches
    those bits too."""
    exact = ("--set", "train.shards=8", "--set", "train.reduction=exact",
             "--set", "train.schedule=constant", "--set", "train.warmup_epochs=0")
    lenet = ROOT / "specs" / "lenet-bn.yaml" if spec == "lenet-bn" else None
    if lenet:
        exact += ("--set", "train.batch_size=8", "--resize", "28,28")
    weights = []
    for count, threads in ((1, 1), (1, 2), (2, 1)):
        dump = tmp_path / f"dump{count}-{threads}"
        dump.mkdir()
        code, output, _ = _job(tmp_path, tmp_path / f"run{count}-{threads}", "--epochs", "2",
                               *exact, dump=dump, workers=count, threads=threads, spec=lenet)
        assert code == 0, output
        weights.append(np.load(dump / "rank0.npz"))
    code, output, _ = _job(tmp_path, tmp_path / "resumed", "--epochs", "1", *exact,
                           workers=2, spec=lenet)
    assert code == 0, output
    (tmp_path / "dump-resumed").mkdir()
    code, output, _ = _job(tmp_path, tmp_path / "resumed", "--epochs", "2", "--resume",
                           dump=tmp_path / "dump-resumed", workers=1, spec=lenet)
    assert code == 0 and "resuming from" in output, output
    weights.append(np.load(tmp_path / "dump-resumed" / "rank0.npz"))
    first = weights[0]
    assert "batchnorm1.running_var" in first.files
    for other in weights[1:]:
        assert set(other.files) == set(first.files)
        for key in first.files:
            assert np.array_equal(other[key], first[key]), key
