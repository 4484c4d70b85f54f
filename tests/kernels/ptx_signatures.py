"""Run training steps of the CUDA backend without a GPU, recording each kernel launch's
argument types instead of launching: the (kernel, signature) pairs the PTX test compiles.

Device arrays are replaced by host arrays with the device-array methods the backend calls; a
launch records `numba.typeof` of its arguments (the types a real launch would compile for).
Run in a process without the CUDA simulator (the PTX test starts one).
"""
from __future__ import annotations

import numpy as np
from numba import cuda, typeof
from numba.cuda.dispatcher import CUDADispatcher

LAUNCHES: dict[tuple, object] = {}


class HostArray(np.ndarray):
    def copy_to_host(self, out=None, stream=0):
        if out is None:
            return np.asarray(self).copy()
        out[...] = self
        return out

    def copy_to_device(self, array, stream=0):
        self[...] = array


class Stream:
    """Stands in for a CUDA stream or event: nothing runs, so there is nothing to order."""

    def __init__(self, *args):
        pass

    def record(self, stream=0):
        pass

    def wait(self, stream=0):
        pass

    def synchronize(self):
        pass


def host_array(shape, dtype):
    return np.zeros(shape, dtype).view(HostArray)


def _launcher(self, config):
    def record(*args):
        sig = tuple(typeof(np.asarray(a) if isinstance(a, np.ndarray) else a) for a in args)
        LAUNCHES.setdefault((self.py_func.__module__, self.py_func.__name__, sig), (self, sig))
    return record


def record_launches(networks, dtype: str = "float32") -> dict:
    """{(module, kernel, signature): (dispatcher, signature)} over training steps of networks
    (each a loaded Network) with every optimiser and gradient clipping."""
    CUDADispatcher.__getitem__ = _launcher
    cuda.device_array = host_array
    cuda.pinned_array = host_array
    cuda.stream = cuda.event = Stream
    from cnngraph.kernels.cuda import launch
    launch.SIMULATOR = True              # skip the GPU check; nothing is launched
    import cnngraph
    from cnngraph.train.optim import SGD, Adam, RMSProp, clip_grad_norm
    for net in networks:
        model = cnngraph.compile(net, backend="cuda", dtype=dtype)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, *net.input_shape))
        labels = rng.integers(0, net.output_shape[0], 2)
        for make in (lambda m: SGD(m, lr=0.1, momentum=0.9), Adam, RMSProp):
            opt = make(model)
            model.loss_and_grad(x, labels, input_grad=True)
            clip_grad_norm(model, 1.0)
            model.backend.scale(model.flat_grads, 0.5)   # nothing ran: the norm was 0
            opt.step()
        model.forward(x)
    record_losses(dtype)
    return LAUNCHES


def record_losses(dtype: str) -> None:
    """The loss launchers, called directly: a step launches only the losses its outputs use."""
    from cnngraph.kernels.cuda import support
    outputs, targets, grads = (host_array((2, 3), dtype) for _ in range(3))
    total = support.softmax_xent_cuda(outputs, host_array(2, np.int64), grads, 0.1, 0.3, 2)
    for loss in (support.mse_cuda, support.l1_cuda, support.bce_with_logits_cuda):
        loss(outputs, targets, grads, 0.3, 2, total=total)
    support.distill_cuda(outputs, targets, grads, 2.0, 0.5, True, 2, total=total)


def compile_ptx(dispatcher, signature, ccs: list[tuple[int, int]]) -> list[str]:
    """PTX of a kernel for each compute capability, with no GPU present: device functions it
    calls are compiled for the capability of a stand-in device. The kernel is typed and lowered
    once, and NVVM compiles that IR for each capability, as `cuda.compile_ptx` does for one
    (typing and lowering took five sixths of its time)."""
    from types import SimpleNamespace

    from numba.cuda import compiler
    from numba.cuda import dispatcher as module
    module.get_current_device = lambda: SimpleNamespace(compute_capability=ccs[0])
    library, _ = compiler._compile_pyfunc_with_fixup(dispatcher.py_func, signature,
                                                     device=False, cc=ccs[0], abi="numba")
    return [library.get_asm_str(cc=cc) for cc in ccs]


def all_kernels() -> set[tuple[str, str]]:
    """(module, name) of every CUDA kernel (not device function) the backend defines."""
    import importlib
    import importlib.util
    import pkgutil

    import cnngraph.kernels.cuda as kernels
    from cnngraph.ops import REGISTRY
    packages = dict.fromkeys(op.package for op in REGISTRY.values())
    modules = [importlib.import_module(f"{package}.cuda") for package in packages
               if importlib.util.find_spec(f"{package}.cuda")]     # some ops need no kernel
    modules += [importlib.import_module(f"{kernels.__name__}.{m.name}")
                for m in pkgutil.iter_modules(kernels.__path__)]
    for module in list(modules):
        generated = getattr(module, "KERNELS", None)     # per dtype, or one module
        modules += list(generated.values()) if isinstance(generated, dict) else \
            [generated] if generated is not None else []
    return {(v.py_func.__module__, v.py_func.__name__) for m in modules
            for v in vars(m).values()
            if isinstance(v, CUDADispatcher) and not v.targetoptions.get("device")}


def every_case() -> list:
    """The network of every test case of every op (`ops/<op>/cases.py`), and LeNet: between
    them they launch every CUDA kernel (the PTX test checks that)."""
    import importlib
    import sys
    import tempfile
    from pathlib import Path

    import cnngraph
    from cnngraph.ops import REGISTRY
    tests = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(tests))
    from helpers import SPECS, build
    networks = [cnngraph.load(SPECS / "lenet.yaml", input_shape=(1, 12, 12))]
    with tempfile.TemporaryDirectory() as folder:
        for package in dict.fromkeys(op.package for op in REGISTRY.values()):
            networks += [build(Path(folder), case)
                         for case in importlib.import_module(f"{package}.cases").CASES]
    return networks


def main() -> None:
    """Print JSON: every kernel, whether a launch of it was recorded, and for each recorded
    signature and compute capability whether it compiled and whether its PTX holds float64."""
    import json
    import sys
    networks = every_case()
    launches = {**record_launches(networks, "float32"), **record_launches(networks, "float64")}
    results = []
    for (module, name, sig), (dispatcher, signature) in sorted(launches.items(), key=str):
        float32 = "float32" in str(sig) and "float64" not in str(sig)
        ccs = [(8, 0), (9, 0)]
        for cc, ptx in zip(ccs, compile_ptx(dispatcher, signature, ccs), strict=True):
            results.append({"kernel": f"{module}.{name}", "signature": str(sig),
                            "cc": list(cc), "float32": float32, "f64": ".f64" in ptx,
                            "entry": ".entry" in ptx})
    recorded = sorted({(m, n) for m, n, _ in launches})
    json.dump({"kernels": sorted(all_kernels()), "recorded": recorded, "results": results},
              sys.stdout)


if __name__ == "__main__":
    main()
