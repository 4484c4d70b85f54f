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

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "bench"))   # the IR-to-PyTorch translator, shared with benchmarks


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
