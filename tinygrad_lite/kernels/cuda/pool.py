"""CUDA kernels for pooling forward and backward."""
__all__ = []
