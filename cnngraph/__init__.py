"""cnngraph: a declarative graph-spec compiler for convolutional networks."""
from .api import load
from .errors import DataError, SpecError
from .ir import Network, Node

__version__ = "0.1.0"
__all__ = ["load", "Network", "Node", "SpecError", "DataError", "__version__"]
