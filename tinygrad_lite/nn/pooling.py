"""Pooling layers, PyTorch's names, arguments and defaults: MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d, AdaptiveMaxPool2d and FractionalMaxPool2d. Each checks its arguments when it
is built (errors name the layer) and calls its function in ops/pool.py; no parameters.

FractionalMaxPool2d is the one that behaves differently in training and evaluation: in
training each forward draws new pseudo-random regions from the package's seeded generator
(Graham, 2014); in evaluation every plane uses u = 0.5, so evaluation is deterministic (the
regions a sample would get on average, instead of averaging several random draws)."""
import numpy as np

from ..ops import pool as P
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
           "FractionalMaxPool2d"]


class MaxPool2d(Module):
    """Max over kernel_size windows moved by stride (default kernel_size), with -inf padding
    and dilation; return_indices also returns the argmax (h * W + w within each plane).
    (N, C, H, W) or (C, H, W) -> (N, C, OH, OW), OH = floor((H + 2p - d (k - 1) - 1) / s) + 1
    (ceil in ceil_mode).

        >>> nn.MaxPool2d(2)(tl.randn(8, 16, 32, 32)).shape
        (8, 16, 16, 16)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        P.check_pool_args("MaxPool2d", kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        return P._max_pool2d("MaxPool2d", x, self.kernel_size, self.stride, self.padding,
                             self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over kernel_size windows moved by stride (default kernel_size), zero padding. The
    divisor: the window size with its padding (count_include_pad=True), the number of input
    elements in it (False), or divisor_override."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        P.check_pool_args("AvgPool2d", kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return P._avg_pool2d("AvgPool2d", x, self.kernel_size, self.stride, self.padding,
                             self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Mean over output_size regions, region i spanning [floor(i H / oh), ceil((i + 1) H / oh));
    output_size an int or a pair whose None entries keep the input size. AdaptiveAvgPool2d(1)
    is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        P.check_output_size("AdaptiveAvgPool2d", output_size)
        self.output_size = output_size

    def forward(self, x):
        return P._adaptive_pool2d("AdaptiveAvgPool2d", x, self.output_size, False, False)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max over the regions of AdaptiveAvgPool2d; return_indices also returns the argmax."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        P.check_output_size("AdaptiveMaxPool2d", output_size)
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return P._adaptive_pool2d("AdaptiveMaxPool2d", x, self.output_size, True,
                                  self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class FractionalMaxPool2d(Module):
    """Fractional max pooling (Graham, 2014): kernel_size windows at pseudo-random overlapping
    positions that shrink the input to output_size, or to floor(input size * output_ratio)
    (give exactly one). Training: new regions each forward, one random sequence per sample,
    channel and dim, from tinygrad_lite.random.generator() (manual_seed repeats them).
    Evaluation: u = 0.5 for every plane, so the same input always gives the same output.
    _random_samples (N, C, 2), if given, fixes the regions in both modes."""

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                 _random_samples=None):
        super().__init__()
        P.check_fractional_args("FractionalMaxPool2d", kernel_size, output_size, output_ratio)
        self.kernel_size, self.output_size, self.output_ratio = (kernel_size, output_size,
                                                                 output_ratio)
        self.return_indices, self._random_samples = return_indices, _random_samples

    def forward(self, x):
        samples = self._random_samples
        if samples is None and not self.training and getattr(x, "ndim", None) in (3, 4):
            samples = np.full((1 if x.ndim == 3 else x.shape[0], x.shape[-3], 2), 0.5)
        return P._fractional_max_pool2d("FractionalMaxPool2d", x, self.kernel_size,
                                        self.output_size, self.output_ratio,
                                        self.return_indices, samples)

    def extra_repr(self):
        size = (f"output_size={self.output_size}" if self.output_size is not None else
                f"output_ratio={self.output_ratio}")
        return f"kernel_size={self.kernel_size}, {size}"
