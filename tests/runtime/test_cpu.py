"""The CPU backend's host buffers."""
import mmap
import threading

import numpy as np

import cnngraph
from cnngraph.runtime import cpu

SPEC = """version: 1
input: [2, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - flatten
  - dense: {out: 3}
"""


def test_mapped_buffers_hold_values(monkeypatch):
    for mapped_from, huge_from in ((1 << 12, 1 << 62), (1 << 12, 1 << 12)):
        monkeypatch.setattr(cpu, "MAPPED_FROM", mapped_from)
        monkeypatch.setattr(cpu, "HUGE_PAGES_FROM", huge_from)
        buffer = cpu.CpuBackend().empty(3000, np.float32)
        assert isinstance(buffer.base, memoryview) and isinstance(buffer.base.obj, mmap.mmap)
        assert buffer.flags.writeable and buffer.shape == (3000,) and buffer.dtype == np.float32
        buffer[:] = np.arange(3000)
        assert buffer[-1] == 2999
        assert cpu.CpuBackend().empty(0, np.float32).size == 0
        assert cpu.CpuBackend().empty(1000, np.float32).base is None   # below MAPPED_FROM


def resident_bytes(address: int) -> int:
    """The resident bytes of the mapping that starts at `address` (/proc/self/smaps)."""
    lines = open("/proc/self/smaps").read().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(f"{address:x}-"))
    rss = next(line for line in lines[start + 1:] if line.startswith("Rss:"))
    return int(rss.split()[1]) * 1024


def test_big_buffers_are_faulted_in_on_another_thread_keeping_what_is_written(monkeypatch):
    size = 64 << 20                            # float32 values: 256 MiB
    buffer = cpu.CpuBackend().empty(size, np.float32)
    buffer[::1 << 20] = np.arange(64)          # every 4 MiB, while it is being populated
    for thread in threading.enumerate():
        if thread.name == "cnngraph-populate":
            thread.join()
    address = buffer.__array_interface__["data"][0]
    assert resident_bytes(address) == 4 * size  # (checked first: reading maps pages in too)
    np.testing.assert_array_equal(buffer[::1 << 20], np.arange(64))
    assert (buffer.reshape(64, -1)[:, 1:] == 0).all()


def test_training_on_mapped_buffers_matches_plain_ones(write_spec, monkeypatch):
    path = write_spec(SPEC)
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 2, 8, 8)), rng.integers(0, 3, 5)
    results = []
    for mapped_from in (1 << 62, 0):           # plain buffers, then every buffer mapped
        monkeypatch.setattr(cpu, "MAPPED_FROM", mapped_from)
        monkeypatch.setattr(cpu, "HUGE_PAGES_FROM", mapped_from)
        model = cnngraph.compile(cnngraph.load(path), dtype="float64")
        results.append((model.loss_and_grad(x, labels), model.flat_grads.copy(),
                        model.forward(x)))
        assert isinstance(model.flat_params.base, memoryview) == (mapped_from == 0)
    (loss_a, grads_a, out_a), (loss_b, grads_b, out_b) = results
    assert loss_a == loss_b
    np.testing.assert_array_equal(grads_a, grads_b)
    np.testing.assert_array_equal(out_a, out_b)
