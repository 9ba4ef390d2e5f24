"""Activation functions beyond relu/sigmoid/tanh/leaky_relu (which live in ops/elementwise.py):
ELU, SELU, GELU (exact and tanh-approximated), SiLU/Swish, PReLU and Maxout, with PyTorch's
names and semantics. Each element-wise one is a fused kernel of kernels.scalar forward and
backward; the math there exponentiates only non-positive numbers, so any finite input gives
finite outputs and gradients without overflow.

The functions below are the functional entry points (nn.functional re-exports them); the
modules in nn/activation.py hold their parameters and call them."""
from .. import dtype as dt
from .. import ops
from ..kernels import scalar as S
from . import elementwise as E
from . import reduce as R

# y = OP(x; param) with dx = GRAD(g, x; param): every one reads its input, not its output
Elu = E._unary("Elu", S.ELU, S.ELU_GRAD, False)              # param = alpha
Selu = E._unary("Selu", S.SELU, S.SELU_GRAD, False)
Gelu = E._unary("Gelu", S.GELU, S.GELU_GRAD, False)
GeluTanh = E._unary("GeluTanh", S.GELU_TANH, S.GELU_TANH_GRAD, False)
Swish = E._unary("Swish", S.SWISH, S.SWISH_GRAD, False)      # param = beta


class PRelu(E.Binary):
    """where(x > 0, x, a * x) with a slope tensor `a` that broadcasts against x; the slope's
    gradient is summed over the dimensions it was broadcast along (Binary.backward)."""
    OP, READS = S.PRELU, ((0, 1), (0,))  # d/dx reads x and the slope, d/dslope only x

    def grad_a(self, g):  # g where x > 0, else g * a (the slope at 0, as in PyTorch)
        slope = self.k.elementwise(S.PRELU_SLOPE, (self.a, self.b), g.dtype)
        return self.k.elementwise(S.MUL, (g, slope), g.dtype)

    def grad_b(self, g):  # g * x where x <= 0, else 0
        return self.k.elementwise(S.PRELU_GRAD_WEIGHT, (g, self.a), g.dtype)


def _check(name, x):
    if not isinstance(x, ops.Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")


def _activate(name, fn, x, param=0.0):
    _check(name, x)
    return E.unary(fn, x, float(param))


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return _activate("elu", Elu, x, alpha)


def selu(x):
    """scale * elu(x, alpha) with PyTorch's fixed alpha = 1.6732632423543772 and
    scale = 1.0507009873554805: self-normalising (mean 0, variance 1 kept layer after layer
    with weights of variance 1 / fan_in)."""
    return _activate("selu", Selu, x)


def gelu(x, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF (exact, via erf); approximate="tanh" gives
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in PyTorch."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _activate("gelu", Gelu if approximate == "none" else GeluTanh, x)


def swish(x, beta=1.0):
    """x * sigmoid(beta * x)."""
    return _activate("swish", Swish, x, beta)


def silu(x):
    """x * sigmoid(x): swish with beta 1."""
    return _activate("silu", Swish, x, 1.0)


def prelu(x, weight):
    """where(x > 0, x, weight * x). `weight` is 1-D: one element shared by every input
    element, or one per channel, the channel being dim 1 of x (as in PyTorch). Gradients
    reach both x and weight."""
    _check("prelu", x)
    _check("prelu", weight)
    if weight.ndim != 1:
        raise ValueError(f"prelu: expected a 1-D weight, got shape {weight.shape}")
    channels = weight.shape[0]
    if channels != 1:
        if x.ndim < 2 or x.shape[1] != channels:
            raise ValueError(f"prelu: weight has {channels} elements (one per channel), but "
                             f"the input of shape {x.shape} has "
                             + (f"{x.shape[1]} channels in dim 1" if x.ndim >= 2
                                else "no channel dim (fewer than 2 dims)"))
        weight = weight.reshape((channels,) + (1,) * (x.ndim - 2))
    else:
        weight = weight.reshape(())
    dtype = dt.promote(x.dtype, weight.dtype)
    if not dt.is_float(dtype):
        dtype = dt.float32
    return PRelu.apply(E.cast(x, dtype), E.cast(weight, dtype))


def maxout(x, pieces):
    """Max over groups of `pieces` consecutive elements of the last dim: x of shape
    (..., out * pieces) gives (..., out), out[..., j] = max(x[..., j*pieces:(j+1)*pieces]).
    At a tie the gradient is shared evenly between the tied elements (as amax does)."""
    _check("maxout", x)
    if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive int, got {pieces!r}")
    if x.ndim == 0 or x.shape[-1] % pieces:
        raise ValueError(f"maxout: the last dim of the input must be a multiple of pieces "
                         f"({pieces}), got shape {x.shape}")
    if not dt.is_float(x.dtype):
        x = E.cast(x, dt.float32)
    return R.amax(x.reshape(tuple(x.shape[:-1]) + (x.shape[-1] // pieces, pieces)), -1)
