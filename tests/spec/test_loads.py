"""`cnngraph.loads`: a spec given as text."""
import pytest

import cnngraph
from cnngraph.errors import SpecError

from helpers import SPECS


def layers(net):
    return [(n.name, n.op, n.inputs, n.shape, n.params) for n in net.nodes]


def test_loads_equals_load_of_the_same_text(monkeypatch):
    text = (SPECS / "lenet.yaml").read_text()
    assert layers(cnngraph.loads(text)) == layers(cnngraph.load(SPECS / "lenet.yaml"))
    with pytest.raises(SpecError, match=r"mine.yaml:3:\d+"):
        cnngraph.loads("version: 1\ninput: [1, 4, 4]\nlayers: [convv: {out: 2}]\n",
                       name="mine.yaml")
    monkeypatch.chdir(SPECS)                      # include: paths from the working directory
    net = cnngraph.loads((SPECS / "resnet18.yaml").read_text())
    assert layers(net) == layers(cnngraph.load(SPECS / "resnet18.yaml"))
