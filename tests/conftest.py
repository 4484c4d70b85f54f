import os
import sys
import textwrap
from pathlib import Path

# The CUDA backend's tests run in Numba's simulator unless told otherwise (set
# NUMBA_ENABLE_CUDASIM=0 on a GPU machine); Numba reads this once, on import.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# Tests compile many small networks: no background compile helpers (cnngraph/runtime/warm.py),
# except where tests/runtime/test_warm.py starts one.
os.environ.setdefault("CNNGRAPH_COMPILE_HELPER", "off")
# the repository root (`cli`) and tests/ (`helpers`, the one module tests share) importable
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest
from click.testing import CliRunner

import cnngraph

from helpers import TRAINING_SPEC, make_quadrants

# The modules that take longest (seconds of their tests in a CI run of three processes on two
# cores), first. pytest-xdist keeps a module's tests in one process (`--dist loadscope`) and,
# run with `--no-loadscope-reorder`, hands modules out in this order; its own order (most tests
# first) left the three-test modules that compile from cold caches to the end, alone for minutes.
SLOWEST_FIRST = [
    "ops/test_conv.py",                   # 289
    "interchange/test_onnx_import.py",    # 229
    "train/test_parallel.py",             # 182
    "runtime/test_determinism.py",        # ~150 (3 cold compiles, was 7 in 229)
    "train/test_run_safety.py",           # 121
    "kernels/test_cuda_ptx.py",           # 112
    "runtime/test_cuda.py",               # 84
    "interchange/test_onnx_export.py",    # 60
    "test_bench_scripts.py",              # 59
    "ops/test_conv_depthwise.py",         # 54
    "test_cli.py",                        # 50
    "runtime/test_warm.py",               # 49
    "tools/test_compare.py",              # 45
    "ops/test_pointwise.py",              # 44
    "test_zoo.py",                        # 42
    "train/test_runner.py",               # 41
]


def pytest_collection_modifyitems(items):
    rank = {f"tests/{module}": place for place, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec (dedented text) to a file and return its path."""
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path
    return write


@pytest.fixture
def cli():
    """Run the click command line in-process; returns the click Result."""
    from cli import main
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    return run


@pytest.fixture
def setup(tmp_path, write_spec):
    """The tiny training run of helpers.TRAINING_SPEC: its network, text, data and folder."""
    spec = write_spec(TRAINING_SPEC)
    data = make_quadrants(tmp_path / "data")
    return cnngraph.load(spec), spec.read_text(), str(data), tmp_path
