"""`cnngraph summary` reads a spec and plans its memory without loading Numba (which takes
about a second to import): the pipeline up to the memory plan, and every op's lowering, are
numba-free."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = """
import sys
from cli import main
try:
    main(["summary", "specs/resnet18.yaml"], standalone_mode=False)
finally:
    print("numba" in sys.modules)
"""


def test_summary_of_resnet18_loads_no_numba():
    done = subprocess.run([sys.executable, "-c", SUMMARY], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resnet18" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"
