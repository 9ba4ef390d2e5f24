"""Weight initialisation, in place and under no_grad, with PyTorch's names and formulas.

fan_in / fan_out of a weight: a Linear weight (out, in) has fan_in = in; a conv weight
(out, in, kh, kw) has fan_in = in * kh * kw (the "Din" of the lectures) and
fan_out = out * kh * kw.

- Small random numbers, N(0, 0.01^2): `normal_(w, 0, 0.01)` (or `small_normal_`). Fine for
  small nets; in deep tanh nets the activations collapse to zero.
- Xavier (Glorot): std = gain * sqrt(2 / (fan_in + fan_out)). The lectures' simplified form
  std = 1/sqrt(Din) is `kaiming_normal_(w, nonlinearity="linear")`.
- Kaiming (He / MSRA): std = gain / sqrt(fan), gain sqrt(2) for ReLU: std = sqrt(2 / Din).
Random numbers come from the package's seeded generator (tl.manual_seed).
"""
import math

import numpy as np

from .. import random
from ..autograd import no_grad
from ..tensor import Tensor

_GAINS = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "sigmoid": 1.0,
          "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table): relu sqrt(2), tanh 5/3,
    leaky_relu sqrt(2 / (1 + slope^2)) with slope `param` (default 0.01), selu 3/4, 1 for the
    linear ones."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one "
                         f"of {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in and fan out need a weight with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:]))
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


@no_grad()
def _fill(tensor, values):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor, got {type(tensor).__name__}")
    tensor.copy_(Tensor(values, dtype=tensor.dtype))
    return tensor


def constant_(tensor, value):
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def uniform_(tensor, a=0.0, b=1.0):
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, random.generator().uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return _fill(tensor, random.generator().normal(mean, std, tensor.shape))


def small_normal_(tensor, std=0.01):
    """The lectures' "small random numbers": N(0, 0.01^2)."""
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))
