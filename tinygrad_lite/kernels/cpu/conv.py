"""CPU kernels for convolution (im2col + GEMM) forward and backward."""
__all__ = []
