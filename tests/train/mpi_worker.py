"""A worker of the data-parallel tests: `cnngraph train ...` as started under mpirun, with a fault
injected where CNNGRAPH_TEST_FAULT is KIND:RANK:STEP (KIND raise, kill or hang, at that rank's
STEP-th training step), and each rank's final weights written to CNNGRAPH_TEST_DUMP/rankR.npz."""
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))     # the repository root (`cli`)

from cli import main  # noqa: E402
from cnngraph.runtime.model import Model  # noqa: E402
from cnngraph.train import runner  # noqa: E402

RANK = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))


def inject(kind: str, step: int) -> None:
    original, calls = Model.loss_and_grad, [0]

    def faulty(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            if kind == "raise":
                raise RuntimeError(f"a fault injected on rank {RANK}")
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if kind == "hang":
                time.sleep(3600)
        return original(self, *args, **kwargs)

    Model.loss_and_grad = faulty


def dump_weights(folder: Path) -> None:
    fit = runner._Run.fit

    def fit_and_dump(self):
        result = fit(self)
        np.savez(folder / f"rank{RANK}.npz", **self.model.host_params(),
                 **self.model.host_buffers())
        return result

    runner._Run.fit = fit_and_dump


if __name__ == "__main__":
    if os.environ.get("CNNGRAPH_TEST_FAULT"):
        kind, rank, step = os.environ["CNNGRAPH_TEST_FAULT"].split(":")
        if int(rank) == RANK:
            inject(kind, int(step))
    if os.environ.get("CNNGRAPH_TEST_DUMP"):
        dump_weights(Path(os.environ["CNNGRAPH_TEST_DUMP"]))
    main(prog_name="cnngraph")
