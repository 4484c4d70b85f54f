"""The layering check (cnngraph/tools/layers.py): cnngraph keeps its rules, and the checker
finds each kind of violation in a small package made for the purpose."""
from pathlib import Path

from cnngraph.tools import layers


def test_cnngraph_keeps_its_layering():
    found = layers.violations(Path(layers.__file__).resolve().parents[1])
    assert found == []


def test_the_command_prints_the_violations_and_exits_1(tmp_path, monkeypatch, capsys):
    package = _write(tmp_path, {"spec/x.py": "from . import y\n", "spec/y.py": ""})
    monkeypatch.setattr(layers, "__file__", str(package / "tools" / "layers.py"))
    assert layers.main() == 0
    assert capsys.readouterr().out == "layers: no violations\n"
    (package / "spec" / "y.py").write_text("from ..runtime import model\n")
    (package / "runtime" / "model.py").parent.mkdir()
    (package / "runtime" / "model.py").write_text("")
    assert layers.main() == 1
    assert capsys.readouterr().out.startswith("layers: spec/")


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / "cnngraph"
    for path, text in {"__init__.py": "", **files}.items():
        for folder in (package / path).parents:
            if folder == root:
                break
            folder.mkdir(exist_ok=True)
            (folder / "__init__.py").touch()
        (package / path).write_text(text)
    return package


def test_the_checker_finds_every_kind_of_violation(tmp_path):
    package = _write(tmp_path, {
        # an upward import, inside a function, reached through another module
        "spec/expand.py": "def f():\n    from ..passes import plan\n",
        "passes/plan.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from cnngraph.train.config import X\n",
        "train/config.py": "X = 1\n",
        # a cycle through `from package import module`, and one through a package's __init__
        "runtime/cpu.py": "from . import warm\n",
        "runtime/warm.py": "from .cpu import CpuBackend\n",
        "tools/summary.py": "import cnngraph.tools.profile\n",
        "tools/profile.py": "from cnngraph.tools import summary\n",
        "kernels/__init__.py": "from .cpu import blas\n",
        "kernels/cpu/blas.py": "from .. import GEMM\n",
        # numba reached from a lowering
        "ops/base.py": "",
        "ops/relu/lower.py": "from ...kernels.cpu import peak\n",
        "kernels/cpu/peak.py": "import numba.core\n",
        "ops/big.py": "x = 1\n" * (layers.MAX_LINES + 1),
    })
    found = layers.violations(package)
    assert found == sorted([
        "cycle: cnngraph.kernels, cnngraph.kernels.cpu.blas",
        "cycle: cnngraph.runtime.cpu, cnngraph.runtime.warm",
        "cycle: cnngraph.tools.profile, cnngraph.tools.summary",
        "layers: passes/plan.py reaches cnngraph.train.config: cnngraph.passes.plan -> "
        "cnngraph.train.config",
        "layers: spec/expand.py reaches cnngraph.train.config: cnngraph.spec.expand -> "
        "cnngraph.passes.plan -> cnngraph.train.config",
        "numba: ops/relu/lower.py imports numba: cnngraph.ops.relu.lower -> "
        "cnngraph.kernels.cpu.peak",
        f"size: ops/big.py has {layers.MAX_LINES + 1} lines (at most {layers.MAX_LINES})",
    ])
