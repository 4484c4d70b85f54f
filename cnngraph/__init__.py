"""cnngraph: a declarative graph-spec compiler for convolutional networks."""
from .api import compile, load, loads, summary
from .errors import DataError, SpecError
from .ir import Network, Node

__version__ = "0.1.0"
__all__ = ["load", "loads", "compile", "summary", "Network", "Node", "SpecError", "DataError",
           "__version__"]
