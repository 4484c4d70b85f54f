"""Pure passes over the IR: shapes, gradients, fusion, folding, memory plan, initial values."""
