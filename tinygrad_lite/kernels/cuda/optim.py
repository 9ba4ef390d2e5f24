"""CUDA kernels for optimiser updates, in place."""
__all__ = []
