"""Noise layers as functions, PyTorch's (and torchvision's) names and semantics: dropout,
dropout2d, drop_connect and stochastic_depth. Each is "inverted": survivors are scaled by
1 / (1 - p) in training, so nothing changes at test time, where each one is the identity (the
very same tensor, no copy).

A mask is drawn on the host with the one seeded generator (random.generator(), reset by
manual_seed), so a seed gives the same mask on every device; it is built once per call, already
scaled, in x's dtype, moved to x's device and multiplied in with the existing `mul` (broadcast
for dropout2d and stochastic depth). The gradient is therefore g * mask * scale, and no kernel
of its own is needed.

nn.functional re-exports these; the modules in nn/dropout.py call them."""
import numbers

import numpy as np

from .. import random
from .checks import float_tensor


def _check_p(name, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability p must be a number in [0, 1], got {p!r}")
    return float(p)


def _apply_mask(x, p, mask_shape):
    """x * mask, mask of mask_shape (broadcasting against x): 1 / (1 - p) with probability
    1 - p, else 0; all zeros when p == 1."""
    if p == 1.0:
        mask = np.zeros(mask_shape, dtype=x.dtype)
    else:
        # The draw stays float64 (the seeded stream is part of the behaviour); the mask is
        # made in x's dtype in one pass (keep * scale is 0 or the scale rounded once, as
        # before) and handed to the device without Tensor()'s validating copies.
        keep = random.generator().random(mask_shape) >= p
        mask = np.multiply(keep, x.dtype.type(1.0 / (1.0 - p)), dtype=x.dtype)
    return x * x._wrap(x.device.backend.from_numpy(mask), x.device, False)


def dropout(x, p=0.5, training=True):
    """Zero each element independently with probability p and scale the rest by 1 / (1 - p)
    (inverted dropout: the expectation of every element is unchanged). p = 1 gives zeros;
    with training=False or p = 0 the input itself is returned."""
    p = _check_p("dropout", p)
    float_tensor("dropout", "input", x)
    if not training or p == 0.0:
        return x
    return _apply_mask(x, p, x.shape)


def dropout2d(x, p=0.5, training=True):
    """Zero whole channels: x is (N, C, H, W) (or unbatched (C, H, W)), and each (n, c) feature
    map is zeroed with probability p, the rest scaled by 1 / (1 - p) (Tompson et al.:
    neighbouring pixels are correlated, so element-wise dropout barely regularises a conv)."""
    p = _check_p("dropout2d", p)
    float_tensor("dropout2d", "input", x)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 4-D input (N, C, H, W) or a 3-D input "
                         f"(C, H, W), got shape {x.shape}")
    if not training or p == 0.0:
        return x
    return _apply_mask(x, p, tuple(x.shape[:-2]) + (1, 1))


def drop_connect(x, weight, bias=None, p=0.5, training=True):
    """A linear layer x @ (weight * mask).T + bias whose weight entries (out_features,
    in_features) are dropped with probability p and the rest scaled by 1 / (1 - p) (Wan et al.,
    2013: drop connections, not activations; the bias is kept). One mask per call, shared by
    the whole batch; with training=False (or p = 0) it is F.linear(x, weight, bias)."""
    p = _check_p("drop_connect", p)
    float_tensor("drop_connect", "input", x)
    float_tensor("drop_connect", "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"drop_connect: expected a 2-D weight (out_features, in_features), "
                         f"got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"drop_connect: expected input with last dimension {weight.shape[1]} "
                         f"(in_features), got shape {x.shape}")
    if training and p != 0.0:
        weight = _apply_mask(weight, p, weight.shape)
    out = x @ weight.T
    return out if bias is None else out + bias


def stochastic_depth(x, p, mode, training=True):
    """torchvision's stochastic depth (Huang et al., 2016), applied to the output of a residual
    branch before it is added to the skip path: with probability p the branch is dropped
    (zeroed), else scaled by 1 / (1 - p). mode="row" decides per sample (dim 0), independently;
    mode="batch" decides once for the whole batch. Identity with training=False or p = 0."""
    p = _check_p("stochastic_depth", p)
    if mode not in ("row", "batch"):
        raise ValueError(f"stochastic_depth: mode must be 'row' or 'batch', got {mode!r}")
    float_tensor("stochastic_depth", "input", x)
    if mode == "row" and x.ndim == 0:
        raise ValueError("stochastic_depth: mode 'row' needs an input with a batch dim "
                         "(dim 0), got a 0-d tensor")
    if not training or p == 0.0:
        return x
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    return _apply_mask(x, p, shape)
