"""The CUDA backend: each op's `cuda` lowering, device arrays, launches on the default stream.

Parameters, gradients, optimiser state and every planned buffer live on the device; a training
step moves the input batch and its labels to the device (through pinned staging buffers) and
reads nothing back until the loss or the logits are asked for.
"""
from __future__ import annotations

import importlib

import numpy as np

from ..ir import Node
from ..kernels.cuda.launch import SIMULATOR, require_cuda
from ..lowering import Lowering
from ..ops import REGISTRY

SUPPORT = "cnngraph.kernels.cuda.support"


class CudaBackend:
    name = "cuda"
    support_kernels = {SUPPORT: {"sum_cuda", "softmax_xent_cuda"}}
    # ops whose kernels apply a following activation in their output loop (cnngraph.fuse)
    fuses = frozenset({"conv", "dense", "batchnorm"})
    profile_imports = ["from numba.cuda import synchronize as _sync"]
    sync = "_sync()"

    def __init__(self):
        require_cuda()
        from numba import cuda
        self.cuda = cuda
        self._staging: dict[tuple, np.ndarray] = {}
        self._labels = None
        self._partials = None      # per-block partial sums of the gradient norm

    def lower(self, node: Node) -> Lowering:
        module = importlib.import_module(REGISTRY[node.op].package + ".cuda")
        return module.LOWER[node.op](node, 0)

    def sum_call(self, out: str, parts: list[str]) -> str:
        return f"sum_cuda({out}, ({', '.join(parts)},))"

    def loss_call(self, logits: str, dlogits: str) -> str:
        return f"softmax_xent_cuda({logits}, labels, {dlogits}, smoothing)"

    def empty(self, size: int, dtype):
        return self.cuda.device_array(size, dtype)

    def zeros(self, array) -> None:
        self.from_host(np.zeros(array.shape, array.dtype), array)

    def to_host(self, array) -> np.ndarray:
        return array.copy_to_host()

    def from_host(self, array: np.ndarray, out) -> None:
        out.copy_to_device(np.ascontiguousarray(array, dtype=out.dtype).reshape(out.shape))

    def upload(self, array: np.ndarray, out) -> None:
        """Copy a batch into a device array through a pinned buffer kept per shape and dtype."""
        array = np.asarray(array, dtype=out.dtype)
        key = (array.shape, array.dtype.str)
        if key not in self._staging:
            self._staging[key] = self.cuda.pinned_array(array.shape, array.dtype)
        staging = self._staging[key]
        staging[...] = array
        out.copy_to_device(staging.reshape(out.shape))

    def device_labels(self, labels: np.ndarray):
        if self._labels is None or self._labels.size < labels.size:
            self._labels = self.cuda.device_array(labels.size, labels.dtype)
        view = self._labels[:labels.size]
        self.upload(labels, view)
        return view

    def scalar(self, value) -> float:
        return float(value.copy_to_host()[0])

    def squared_norm(self, array) -> float:
        from ..kernels.cuda.launch import MAX_BLOCKS
        from ..kernels.cuda.support import squared_norm_cuda
        if self._partials is None or self._partials.dtype != array.dtype:
            self._partials = self.cuda.device_array(MAX_BLOCKS + 1, array.dtype)
        return squared_norm_cuda(array, self._partials)

    def fold(self, fold, params: dict, buffers: dict, out_weight, out_bias) -> None:
        """Batch norm folded into its conv, on the device (nothing comes back to the host)."""
        from ..ops.batchnorm.cuda import fold_cuda
        fold_cuda(fold, params, buffers, out_weight, out_bias)

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
