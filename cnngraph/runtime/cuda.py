"""The CUDA backend: each op's `cuda` lowering, device arrays, kernels on one compute stream.

Parameters, gradients, optimiser state and every planned buffer live on the device; a training
step moves the input batch and its labels to the device and reads nothing back until the loss
or the logits are asked for. A batch announced with `Model.stage` is copied ahead, from pinned
memory on a copy stream, while the previous step's kernels run (`Stager`); a batch that was not
staged is copied when its step begins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import Node
from ..kernels.cuda.launch import SIMULATOR, SPLITS, require_cuda, stream
from ..ops.lowering import Lowering
from .backend import Target


@dataclass(eq=False)              # slots compare by identity
class _Slot:
    host: np.ndarray | None = None     # pinned
    device: object = None
    size: int = 0
    copied: object = None              # event: its host-to-device copy is done
    taken: object = None               # event: the step's copy out of it is done


class Stager:
    """Copies ahead of one tensor (the input or the labels), double-buffered: `put` copies an
    array into the next slot on the copy stream; `take` moves the oldest staged array into the
    step's buffer on the compute stream, once its copy is done. Events keep a slot from being
    refilled while a step still reads it."""

    def __init__(self, cuda, copy_stream):
        self.cuda, self.copy_stream = cuda, copy_stream
        self.slots, self.turn, self.pending = [_Slot(), _Slot()], 0, []

    def put(self, array: np.ndarray) -> None:
        slot = self.slots[self.turn]
        self.turn ^= 1
        if slot in self.pending:                    # never taken: superseded
            self.pending.remove(slot)
        if slot.copied is not None:
            slot.copied.synchronize()              # its pinned memory is free again
        if slot.host is None or slot.host.size < array.size or slot.host.dtype != array.dtype:
            slot.host = self.cuda.pinned_array(array.size, array.dtype)
            slot.device = self.cuda.device_array(array.size, array.dtype)
            slot.taken = None
        slot.size = array.size
        host = slot.host[:array.size]
        host[...] = array.reshape(-1)
        if slot.taken is not None:
            slot.taken.wait(self.copy_stream)      # the last step has read the device copy
        slot.device[:array.size].copy_to_device(host, stream=self.copy_stream)
        slot.copied = self.cuda.event()
        slot.copied.record(self.copy_stream)
        self.pending.append(slot)

    def take(self, out, compute) -> None:
        slot = self.pending.pop(0)
        slot.copied.wait(compute)
        out.copy_to_device(slot.device[:slot.size].reshape(out.shape), stream=compute)
        slot.taken = self.cuda.event()
        slot.taken.record(compute)

    def discard(self) -> None:
        self.pending.clear()


class CudaBackend:
    name = "cuda"
    profile_imports = ["from numba.cuda import synchronize as _sync"]
    sync = "_sync()"
    host_memory = False
    shards = 0                  # (the exact reduction is the CPU's)

    def __init__(self):
        require_cuda()
        from numba import cuda
        self.target = Target("cuda", SPLITS)
        self.small_batch = 0     # folding batch norm costs a GPU next to nothing
        self.cuda = cuda
        self._staging: dict[tuple, np.ndarray] = {}
        self._labels: dict[tuple, Any] = {}     # (slot, dtype) -> device array, grown
        copies = cuda.stream()
        self._ahead = {"input": Stager(cuda, copies), "labels": Stager(cuda, copies)}
        self._partials = None      # per-block partial sums of the gradient norm

    def lower(self, node: Node, training: bool = True, small_batch: bool = False) -> Lowering:
        return self.target.lower(node, training, small_batch)

    def before_first_training_step(self, model) -> None:
        pass

    def empty(self, size: int, dtype):
        return self.cuda.device_array(size, dtype)

    def zeros(self, array) -> None:
        self.from_host(np.zeros(array.shape, array.dtype), array)

    def to_host(self, array) -> np.ndarray:
        return array.copy_to_host()

    def from_host(self, array: np.ndarray, out) -> None:
        out.copy_to_device(np.ascontiguousarray(array, dtype=out.dtype).reshape(out.shape))

    def stage(self, x: np.ndarray, labels: np.ndarray) -> bool:
        """Start copying a batch that a coming step will use (see `Stager`)."""
        self._ahead["input"].put(x)
        self._ahead["labels"].put(labels)
        return True

    def unstage(self) -> None:
        for stager in self._ahead.values():
            stager.discard()

    def upload(self, array: np.ndarray, out, staged: bool = False) -> None:
        """Copy a batch into a device array: from its staged copy, or through a pinned buffer
        kept per shape and dtype (on the default stream, which waits for the compute stream)."""
        if staged:
            self._ahead["input"].take(out, stream())
            return
        array = np.asarray(array, dtype=out.dtype)
        key = (array.shape, array.dtype.str)
        if key not in self._staging:
            self._staging[key] = self.cuda.pinned_array(array.shape, array.dtype)
        staging = self._staging[key]
        staging[...] = array
        out.copy_to_device(staging.reshape(out.shape))

    def device_labels(self, labels: np.ndarray, staged: bool = False, slot: int = 0):
        key = (slot, labels.dtype.str)
        if key not in self._labels or self._labels[key].size < labels.size:
            self._labels[key] = self.cuda.device_array(labels.size, labels.dtype)
        view = self._labels[key][:labels.size].reshape(labels.shape)
        if staged:
            self._ahead["labels"].take(view, stream())
        else:
            self.upload(labels, view)
        return view

    def scalar(self, value) -> float:
        """Read a one-element device array (the default stream waits for the step)."""
        return float(value.copy_to_host()[0])

    def snapshot(self, array) -> np.ndarray:
        """Copy a device array to pinned host memory on the compute stream, without waiting:
        the copy is complete after the next read on the default stream."""
        key = ("snapshot", array.shape, array.dtype.str)
        if key not in self._staging:
            self._staging[key] = self.cuda.pinned_array(array.shape, array.dtype)
        array.copy_to_host(self._staging[key], stream=stream())
        return self._staging[key]

    def squared_norm(self, array) -> float:
        from ..kernels.cuda.launch import MAX_BLOCKS
        from ..kernels.cuda.support import squared_norm_cuda
        if self._partials is None or self._partials.dtype != array.dtype:
            self._partials = self.cuda.device_array(MAX_BLOCKS + 1, array.dtype)
        return squared_norm_cuda(array, self._partials)

    def fold(self, folds: tuple, params: dict, buffers: dict, folded: dict) -> None:
        """Batch norm folded into its conv, on the device (nothing comes back to the host)."""
        from ..ops.batchnorm.cuda import fold_cuda
        for fold in folds:
            fold_cuda(fold, params, buffers, folded[f"{fold.norm}.weight"],
                      folded[f"{fold.norm}.bias"])

    def synchronize(self) -> None:
        self.cuda.synchronize()

    def peak_gflops(self, dtype) -> tuple[float, str]:
        """The device's theoretical FP32 (or FP64) peak: SMs x cores per SM x 2 x clock."""
        if SIMULATOR:
            return float("nan"), "the simulator has no peak"
        device = self.cuda.get_current_device()
        cc = device.compute_capability
        fp32 = {(8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128}.get(cc, 128)
        fp64 = {(8, 0): 32, (9, 0): 64}.get(cc, 2)
        cores = fp32 if np.dtype(dtype) == np.float32 else fp64
        clock_hz = device.CLOCK_RATE * 1e3
        gflops = device.MULTIPROCESSOR_COUNT * cores * 2 * clock_hz / 1e9
        name = device.name.decode() if isinstance(device.name, bytes) else device.name
        return gflops, f"theoretical peak of the {name}, sm_{cc[0]}{cc[1]}"

    def scale(self, array, factor: float) -> None:
        from ..kernels.cuda.support import scale_cuda
        scale_cuda(array, factor)
