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
