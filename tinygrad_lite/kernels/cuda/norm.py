"""CUDA kernels for normalisation statistics, normalise+affine and backward."""
__all__ = []
