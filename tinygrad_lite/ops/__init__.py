"""Differentiable ops, one module per family; each Function keeps forward and backward together."""
