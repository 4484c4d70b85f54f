"""cnngraph: a declarative graph-spec compiler for convolutional networks."""
from .api import compile, load
from .errors import DataError, SpecError
from .ir import Network, Node

__version__ = "0.1.0"
__all__ = ["load", "compile", "Network", "Node", "SpecError", "DataError", "__version__"]
