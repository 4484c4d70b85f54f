"""The spec front end: read YAML with positions, validate it, expand blocks into a flat graph."""
