"""2-D convolution, PyTorch's `conv2d` (a cross-correlation, as every framework computes it).

    out[n, o, oh, ow] = bias[o] + sum_{c, i, j} w[o, c, i, j]
                        * x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]

for output channel o in group g = o // (O / groups), zero outside the input (the padding).
The gradients are convolutions too: grad_w correlates the input with grad_out, grad_x is the
"transposed" convolution of grad_out with w, grad_b sums grad_out over (N, OH, OW). Each is
computed only when its input needs it.

Argument checks and the output size live here, once; the kernels (kernels/cpu/conv.py: im2col
over NHWC memory + BLAS; kernels/cuda/conv.py: an implicit-GEMM tiled kernel) get pairs of ints
and the output size. On the CPU the output is an NCHW view over NHWC memory (see DESIGN.md).
"""
import numbers

from ..autograd import Function
from ..kernels import scalar as S
from .checks import float_tensor, pair

__all__ = ["conv2d"]


class Conv2d(Function):
    """Inputs x (N, C, H, W), weight (O, C/groups, kh, kw) and optionally bias (O,); params
    stride, padding (top, left), dilation (pairs), groups, out_size (OH, OW)."""
    SAVES = (0, 1)  # backward reads x (for grad_w) and w (for grad_x)

    def forward(self, x, w, *bias, stride, padding, dilation, groups, out_size):
        self.x, self.w = x, w
        self.params = (stride, padding, dilation, groups)
        return self.k.conv2d(x, w, bias[0] if bias else None, stride, padding, dilation,
                             groups, out_size)

    def backward(self, g):
        need = self.needs_input_grad
        gx, gw = (None, None)
        if need[0] or need[1]:
            gx, gw = self.k.conv2d_backward(g, self.x, self.w, *self.params, need[0], need[1])
        if len(need) == 2:
            return gx, gw
        gb = self.k.reduce(S.SUM, g, (0, 2, 3), False) if need[2] else None
        return gx, gw, gb


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of input (N, C, H, W) or unbatched (C, H, W) with weight
    (O, C/groups, kh, kw), plus bias (O,); PyTorch's torch.nn.functional.conv2d.

    stride, dilation: int or pair, >= 1. padding: int or pair >= 0 (zeros on both sides), or
    "valid" (none) or "same" (output size = input size; stride 1 only; when the dilated kernel
    extent minus one is odd the extra row/column goes to the bottom/right, as in PyTorch).
    groups splits the channels into independent convolutions (groups = C is depthwise).

        >>> x = tl.randn(8, 3, 32, 32)
        >>> w = tl.randn(16, 3, 3, 3)
        >>> F.conv2d(x, w, padding=1).shape
        (8, 16, 32, 32)
    """
    name = "conv2d"
    float_tensor(name, "input", input)
    float_tensor(name, "weight", weight)
    if bias is not None:
        float_tensor(name, "bias", bias)
    if weight.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D weight (out_channels, in_channels/groups, "
                         f"kH, kW), got shape {weight.shape}")
    if input.ndim not in (3, 4):
        raise ValueError(f"{name}: expected 3-D (unbatched) or 4-D input (N, C, H, W), got "
                         f"shape {input.shape}")
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != input.dtype):
        raise TypeError(f"{name}: input, weight and bias must have one dtype, got input "
                        f"{input.dtype}, weight {weight.dtype}"
                        + (f", bias {bias.dtype}" if bias is not None else ""))
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    O, Cg, kh, kw = weight.shape
    if kh < 1 or kw < 1:
        raise ValueError(f"{name}: expected a kernel of at least 1x1, got weight shape "
                         f"{weight.shape}")
    C = input.shape[-3]
    if C != Cg * groups:
        raise ValueError(f"{name}: expected input with {Cg * groups} channels (weight "
                         f"{weight.shape} with groups={groups}), got {C} (input shape "
                         f"{input.shape})")
    if O % groups:
        raise ValueError(f"{name}: out_channels ({O}) must be divisible by groups ({groups})")
    if bias is not None and bias.shape != (O,):
        raise ValueError(f"{name}: expected bias of shape ({O},), got {bias.shape}")
    stride = pair(name, "stride", stride, 1)
    dilation = pair(name, "dilation", dilation, 1)
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)  # dilated kernel size
    if isinstance(padding, str):
        if padding == "valid":
            before = after = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride {stride}")
            before = ((extent[0] - 1) // 2, (extent[1] - 1) // 2)
            after = (extent[0] - 1 - before[0], extent[1] - 1 - before[1])
        else:
            raise ValueError(f"{name}: padding must be 'valid', 'same', an int or a pair, got "
                             f"{padding!r}")
    else:
        before = after = pair(name, "padding", padding, 0)
    H, W = input.shape[-2:]
    padded = (H + before[0] + after[0], W + before[1] + after[1])
    if padded[0] < extent[0] or padded[1] < extent[1]:
        raise ValueError(f"{name}: kernel size {extent[0]}x{extent[1]} (dilated) is larger "
                         f"than the padded input {padded[0]}x{padded[1]} (input shape "
                         f"{input.shape}, padding {padding!r})")
    out_size = ((padded[0] - extent[0]) // stride[0] + 1, (padded[1] - extent[1]) // stride[1] + 1)
    batched = input.ndim == 4
    x = input if batched else input.reshape(1, *input.shape)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    out = Conv2d.apply(*inputs, stride=stride, padding=before, dilation=dilation,
                       groups=int(groups), out_size=out_size)
    return out if batched else out.reshape(*out.shape[1:])
