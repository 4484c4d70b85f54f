"""softmax's test cases: across the channels of maps, and of vectors between dense layers."""
from ..pointwise.cases import on_maps_and_vectors

CASES = on_maps_and_vectors("softmax")
