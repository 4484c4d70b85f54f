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


def mapping_of(address: int) -> dict:
    """The /proc/self/smaps entry of the mapping that holds `address`: its start, end and
    fields ("VmFlags": "rd wr ... hg")."""
    entry = None
    for line in open("/proc/self/smaps").read().splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and ":" not in head:           # a mapping's first line: start-end ...
            if entry is not None:
                return entry
            start, end = (int(part, 16) for part in head.split("-"))
            if start <= address < end:
                entry = {"start": start, "end": end}
        elif entry is not None:
            key, _, value = line.partition(":")
            entry[key] = value.strip()
    assert entry is not None, f"no mapping holds {address:#x}"
    return entry


def test_big_buffers_are_faulted_in_on_another_thread_keeping_what_is_written(monkeypatch):
    """What the backend asks of the kernel, not what the kernel does: how many pages are
    resident depends on the kernel's version (MADV_POPULATE_WRITE is Linux 5.14+), its
    transparent-huge-page settings and memory pressure."""
    calls = []
    madvise = cpu._MADVISE

    def spy(address, length, advice):
        calls.append((address, length, advice, threading.current_thread().name))
        return madvise(address, length, advice)

    monkeypatch.setattr(cpu, "_MADVISE", spy)
    size = cpu.HUGE_PAGES_FROM // 4            # float32 values: big enough for huge pages
    buffer = cpu.CpuBackend().empty(size, np.float32)
    buffer[::1 << 18] = np.arange(size >> 18)  # every MiB, while it may be being populated
    for thread in threading.enumerate():
        if thread.name == "cnngraph-populate":
            thread.join()
    address = buffer.__array_interface__["data"][0]
    # the whole buffer, populated for writing, once, on the populating thread
    assert calls == [(address, 4 * size, cpu.MADV_POPULATE_WRITE, "cnngraph-populate")]
    entry = mapping_of(address)                # (the kernel may merge it with a neighbour)
    assert entry["start"] <= address and address + 4 * size <= entry["end"]
    if hasattr(mmap, "MADV_HUGEPAGE") and "VmFlags" in entry:
        assert "hg" in entry["VmFlags"].split()   # huge pages asked for
    np.testing.assert_array_equal(buffer[::1 << 18], np.arange(size >> 18))
    assert (buffer.reshape(size >> 18, -1)[:, 1:] == 0).all()
    small = cpu.CpuBackend().empty(cpu.MAPPED_FROM // 4, np.float32)   # mapped, 4 KiB pages
    assert "hg" not in mapping_of(small.__array_interface__["data"][0]).get("VmFlags", "").split()


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
