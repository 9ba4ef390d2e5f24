"""Normalisation as functions, PyTorch's names, arguments and semantics: batch_norm,
layer_norm, group_norm, instance_norm, plus batch norm with a fused ReLU (activation="relu").

Each is ONE Function (the graph shows BatchNorm, not ten nodes) over the shared kernels of
kernels/<device>/norm.py: statistics (mean and biased variance per group, one pass), normalise
+ affine (+ ReLU), and the closed-form backward

    xhat = (x - mean) / sqrt(var + eps),  h = g * weight
    dx = (h - mean_group(h) - xhat * mean_group(h * xhat)) / sqrt(var + eps)
    dweight = sum(g * xhat),  dbias = sum(g)

(with g masked by the ReLU). The norms differ only in how channels are grouped: the input is
seen as (N, C, *S) and `per_sample` / `group_size` say which elements share statistics (see
kernels/cpu/norm.py). With constant statistics (batch norm in eval, running statistics) the
group means vanish from dx, and the op is the per-channel linear map x * scale + shift.

Running statistics are updated in place, outside any graph, with the unbiased batch variance;
normalisation uses the biased one, as PyTorch does."""
from math import prod
from typing import NamedTuple

from .. import ops
from ..autograd import Function
from .checks import float_tensor

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm"]


class Grouping(NamedTuple):
    """How a norm groups its input: the logical `view` of x ((N, C, *S); layer norm's (A, D)),
    whether statistics are per sample, how many consecutive channels share them, eps, and
    whether a ReLU follows (batch norm's fused activation)."""
    view: tuple
    per_sample: bool
    group_size: int
    eps: float
    relu: bool = False


class _Norm(Function):
    """y = norm(x) * weight + bias over the kernels' (N, C, *S) description. Inputs: x, then
    weight and bias when given (`affine` says which). `grouping`: a Grouping. `stats`: (mean,
    rstd) when the statistics are constants, else None (computed here from x). `running`:
    (running_mean, running_var, momentum) to update in place with the batch statistics."""

    def forward(self, x, *params, affine, grouping, stats=None, running=None):
        k = self.k
        view, per_sample, group_size, eps, relu = grouping
        self.SAVES = tuple(range(1 + len(params)))  # backward reads x, weight and bias
        self.shape, self.view = x.shape, view
        params = iter(params)
        weight = next(params) if affine[0] else None
        bias = next(params) if affine[1] else None
        self.param_shapes = (None if weight is None else weight.shape,
                             None if bias is None else bias.shape)
        C = view[1]
        if weight is not None:
            weight = k.reshape(weight, (C,))
        if bias is not None:
            bias = k.reshape(bias, (C,))
        xv = k.reshape(x, view)
        if stats is None:
            mean, var, rstd = k.norm_stats(xv, per_sample, group_size, eps)
            if running is not None:
                running_mean, running_var, momentum = running
                count = prod(view) // mean.size
                running_mean._write(lambda m, v: k.norm_update_running(
                    m, v, mean, var, momentum, count), running_var)
        else:
            mean, rstd = stats
        self.saved = (xv, weight, bias, mean, rstd)
        self.options = (per_sample, group_size, relu, stats is None)
        return k.reshape(k.norm_apply(xv, mean, rstd, weight, bias, per_sample, group_size,
                                      relu), self.shape)

    def backward(self, g):
        k = self.k
        xv, weight, bias, mean, rstd = self.saved
        per_sample, group_size, relu, batch_stats = self.options
        dx, dw, db = k.norm_backward(xv, k.reshape(g, self.view), mean, rstd, weight, bias,
                                     per_sample, group_size, relu, batch_stats)
        grads = [k.reshape(dx, self.shape) if self.needs_input_grad[0] else None]
        if weight is not None:
            grads.append(k.reshape(dw, self.param_shapes[0]))
        if bias is not None:
            grads.append(k.reshape(db, self.param_shapes[1]))
        return tuple(grads)


class BatchNorm(_Norm):
    pass


class LayerNorm(_Norm):
    pass


class GroupNorm(_Norm):
    pass


class InstanceNorm(_Norm):
    pass


# ----- argument checks -----
def _check_input(name, x, min_dims):
    float_tensor(name, "input", x)
    if x.ndim < min_dims:
        raise ValueError(f"{name}: expected an input with at least {min_dims} dims, got shape "
                         f"{x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: expected a non-empty input, got shape {x.shape}")


def _check_vector(name, what, t, shape, x):
    """None, or a Tensor of `shape` with x's dtype and device."""
    if t is None:
        return
    if not isinstance(t, ops.Tensor):
        raise TypeError(f"{name}: expected {what} to be a Tensor or None, got "
                        f"{type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected {what} of shape {tuple(shape)}, got {t.shape} "
                         f"(input shape {x.shape})")
    if t.dtype != x.dtype:
        raise TypeError(f"{name}: expected {what} of dtype {x.dtype} (the input's), got "
                        f"{t.dtype}")
    if t.device != x.device:
        raise RuntimeError(f"{name}: expected {what} on {x.device} (the input's device), "
                           f"got {t.device}")


def _check_eps(name, eps):
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
        raise ValueError(f"{name}: eps must be a non-negative number, got {eps!r}")
    return float(eps)


def _apply(cls, x, weight, bias, grouping, stats=None, running=None):
    affine = (weight is not None, bias is not None)
    inputs = [t for t in (x, weight, bias) if t is not None]
    return cls.apply(*inputs, affine=affine, grouping=grouping, stats=stats, running=running)


def _running_stats(x, running_mean, running_var, eps):
    """(mean, rstd) arrays on x's device from running statistics."""
    return x.device.backend.norm_running_stats(running_mean.array, running_var.array, eps)


# ----- the functions -----
def _check_channel_args(name, input, running_mean, running_var, weight, bias, eps):
    """Batch and instance norm: each per-channel vector given must have shape (C,); returns
    the checked eps."""
    C = input.shape[1]
    for what, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vector(name, what, t, (C,), input)
    return _check_eps(name, eps)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, activation=None):
    """Normalise each channel (dim 1) of (N, C, *S) by its mean and variance over N and S,
    then y = xhat * weight + bias. training=True: batch statistics (biased variance), and
    running_mean / running_var (if given) updated in place with momentum and the unbiased
    variance; training=False: the running statistics. activation="relu" fuses max(y, 0) into
    the same kernels (forward and backward); None is exactly PyTorch's batch_norm.

    >>> y = F.batch_norm(x, rm, rv, w, b, training=True)"""
    name = "batch_norm"
    _check_input(name, input, 2)
    if activation not in (None, "relu"):
        raise ValueError(f"{name}: activation must be None or 'relu', got {activation!r}")
    C = input.shape[1]
    eps = _check_channel_args(name, input, running_mean, running_var, weight, bias, eps)
    view = tuple(input.shape)
    stats = running = None
    if training:
        if input.size // C <= 1:
            raise ValueError(f"{name}: expected more than 1 value per channel when training, "
                             f"got input size {input.shape}")
        if (running_mean is None) != (running_var is None):
            raise ValueError(f"{name}: give both running_mean and running_var, or neither")
        if running_mean is not None:
            running = (running_mean, running_var, float(momentum))
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{name}: running_mean and running_var are required when "
                             "training=False (evaluation uses the running statistics)")
        stats = _running_stats(input, running_mean, running_var, eps)
    return _apply(BatchNorm, input, weight, bias, Grouping(view, False, 1, eps,
                                                           activation == "relu"),
                  stats=stats, running=running)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last len(normalized_shape) dims of each sample, which must equal
    normalized_shape; weight and bias (if given) have normalized_shape."""
    name = "layer_norm"
    _check_input(name, input, 1)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    if not shape or any(not isinstance(s, int) or s < 1 for s in shape) or \
            tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise ValueError(f"{name}: expected an input whose last dims are normalized_shape "
                         f"{shape}, got input shape {input.shape}")
    for what, t in (("weight", weight), ("bias", bias)):
        _check_vector(name, what, t, shape, input)
    D = prod(shape)
    view = (input.size // D, D)
    return _apply(LayerNorm, input, weight, bias, Grouping(view, True, D, _check_eps(name, eps)))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each sample's channels (dim 1 of (N, C, *S)) in num_groups groups of
    C / num_groups consecutive channels, over the group's channels and S; per-channel affine."""
    name = "group_norm"
    _check_input(name, input, 2)
    C = input.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1 \
            or C % num_groups:
        raise ValueError(f"{name}: expected the number of channels ({C}) to be divisible by "
                         f"num_groups, got num_groups={num_groups!r} (input shape "
                         f"{input.shape})")
    for what, t in (("weight", weight), ("bias", bias)):
        _check_vector(name, what, t, (C,), input)
    return _apply(GroupNorm, input, weight, bias,
                  Grouping(tuple(input.shape), True, C // num_groups, _check_eps(name, eps)))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) of (N, C, *S) over S. use_input_stats=True: those
    statistics, and running_mean / running_var (if given) updated in place with the batch
    average of the per-instance means and unbiased variances; False: the running statistics."""
    name = "instance_norm"
    _check_input(name, input, 3)
    C = input.shape[1]
    eps = _check_channel_args(name, input, running_mean, running_var, weight, bias, eps)
    view = tuple(input.shape)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{name}: running_mean and running_var are required when "
                             "use_input_stats=False")
        return _apply(InstanceNorm, input, weight, bias, Grouping(view, False, 1, eps),
                      stats=_running_stats(input, running_mean, running_var, eps))
    if input.size // (input.shape[0] * C) <= 1:
        raise ValueError(f"{name}: expected more than 1 spatial element when training, got "
                         f"input size {input.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{name}: give both running_mean and running_var, or neither")
    running = None if running_mean is None else (running_mean, running_var, float(momentum))
    return _apply(InstanceNorm, input, weight, bias, Grouping(view, True, 1, eps),
                  running=running)
