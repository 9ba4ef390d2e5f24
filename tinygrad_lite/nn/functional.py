"""tinygrad_lite.nn.functional (imported as F): layer math as functions, PyTorch's names and
argument order. Modules in nn/ hold parameters and call these."""
from ..ops import elementwise as E
from ..ops import movement as V
from ..ops.conv import *  # noqa: F401,F403  (each op module lists its functions in __all__)
from ..ops.norm import *  # noqa: F401,F403
from ..ops.pool import *  # noqa: F401,F403
from ..ops.activation import elu, gelu, maxout, prelu, selu, silu, swish  # noqa: F401
from ..ops.dropout import drop_connect, dropout, dropout2d, stochastic_depth  # noqa: F401
from ..ops.loss import (binary_cross_entropy_with_logits, cross_entropy, huber_loss,  # noqa: F401
                        l1_loss, mse_loss, multi_margin_loss, nll_loss, smooth_l1_loss)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, weight (out_features, in_features)."""
    out = x @ weight.T
    return out if bias is None else out + bias


def relu(x):
    return x.relu()


def sigmoid(x):
    return x.sigmoid()


def tanh(x):
    return x.tanh()


def leaky_relu(x, negative_slope=0.01):
    return E.unary(E.LeakyRelu, x, negative_slope)


def softmax(x, dim=-1):
    return x.softmax(dim)


def log_softmax(x, dim=-1):
    return x.log_softmax(dim)


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: `pad` is flat, last dim first: (left, right) pads the last dim,
    (left, right, top, bottom) the last two. Modes constant (value, default 0; negative widths
    crop), reflect, replicate and circular. Tensor.pad takes NumPy's pairs per dim instead."""
    return V.torch_pad(input, pad, mode, value)
