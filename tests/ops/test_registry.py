"""What every registered op has: test cases that use it (`ops/<op>/cases.py`), a PyTorch
reference (`ops/<op>/reference.py`), one lowering for every target (`OpDef.lower`), and a row
in the README's op table."""
import importlib
import re

import pytest

from cnngraph.ops import REGISTRY

from helpers import ROOT, build


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_op_has_cases_that_use_it(tmp_path, name):
    cases = importlib.import_module(REGISTRY[name].package + ".cases").CASES
    assert any(name in {node.op for node in build(tmp_path, case).nodes} for case in cases)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_op_has_a_reference_and_a_lowering(name):
    assert callable(importlib.import_module(REGISTRY[name].package + ".reference").forward)
    assert REGISTRY[name].lower is not None


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_op_has_a_row_in_the_readme(name):
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"^\|[^|]*`{name}`", readme, re.MULTILINE), name
