"""Normalisation layers, PyTorch's names, defaults and semantics: BatchNorm1d, BatchNorm2d,
LayerNorm, InstanceNorm2d, GroupNorm; and folding an eval-mode batch norm into the conv or
linear layer before it (fuse_conv_bn_eval, fuse_linear_bn_eval, exported by nn.utils).

Layers are thin: they check the input, hold gamma (weight) and beta (bias) and the running
statistics (buffers running_mean, running_var, num_batches_tracked, updated in place while
training), and call the functions of ops/norm.py. Batch norm uses batch statistics in training
and the running ones in eval (model.train() / model.eval())."""
import copy

import numpy as np

from .. import creation
from ..autograd import no_grad
from ..ops import norm as N
from ..tensor import Tensor
from .activation import ReLU
from .layers import Sequential
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "InstanceNorm2d", "GroupNorm",
           "fuse_conv_bn_eval", "fuse_linear_bn_eval"]


class _NormBase(Module):
    """Per-channel affine parameters and (optionally) running statistics."""
    _optional_state = ("num_batches_tracked",)  # as PyTorch: a checkpoint may lack it

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, device,
                 dtype):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or \
                num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, "
                             f"got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = {"dtype": dtype, "device": device}
        if affine:
            self.weight = Parameter(creation.ones(num_features, **kw))
            self.bias = Parameter(creation.zeros(num_features, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, **kw))
            self.register_buffer("running_var", creation.ones(num_features, **kw))
            self.register_buffer("num_batches_tracked", Tensor(
                np.zeros((), np.int64), device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    @no_grad()
    def reset_running_stats(self):
        """running_mean = 0, running_var = 1, num_batches_tracked = 0, in place."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    @no_grad()
    def reset_parameters(self):
        """Running statistics reset, gamma = 1, beta = 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.zero_()

    def _check_channels(self, x):
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels, "
                             f"got {x.shape[1]} (input shape {x.shape})")

    def _counts(self):
        return self.training and self.track_running_stats

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    DIMS = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, activation=None, device=None, dtype=None):
        if activation not in (None, "relu"):
            raise ValueError(f"{type(self).__name__}: activation must be None or 'relu', got "
                             f"{activation!r}")
        self.activation = activation
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype)

    def forward(self, x):
        if x.ndim not in self.DIMS:
            raise ValueError(f"{type(self).__name__}: expected "
                             f"{' or '.join(f'{d}-D' for d in self.DIMS)} input (got "
                             f"{x.ndim}-D input)")
        self._check_channels(x)
        batch_stats = self.training or not self.track_running_stats
        if batch_stats and x.size // x.shape[1] <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel "
                             f"when training, got input size {x.shape}")
        # The factor of this batch in the running averages: momentum, or 1 / batches seen
        # including this one (a cumulative average) when momentum is None.
        factor = 0.0
        if self._counts():
            factor = self.momentum if self.momentum is not None else \
                1.0 / (float(self.num_batches_tracked.item()) + 1.0)
        use_running = self.track_running_stats and (self.training or not batch_stats)
        out = N.batch_norm(x, self.running_mean if use_running else None,
                           self.running_var if use_running else None, self.weight, self.bias,
                           batch_stats, factor, self.eps, activation=self.activation)
        if self._counts():  # counted only once batch_norm accepted the input
            with no_grad():
                self.num_batches_tracked.add_(1)
        return out

    def extra_repr(self):
        extra = "" if self.activation is None else f", activation={self.activation}"
        return super().extra_repr() + extra


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) input over N (and L), per channel. Training: batch
    statistics, running averages updated; eval: the running averages."""
    DIMS = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) input over N, H, W, per channel (Ioffe and Szegedy, 2015).
    activation="relu" fuses the ReLU that usually follows into the same kernels."""
    DIMS = (4,)


class InstanceNorm2d(_NormBase):
    """Normalise each (sample, channel) of (N, C, H, W) (or unbatched (C, H, W)) over H, W.
    Defaults as in PyTorch: no affine, no running statistics (then train and eval agree).
    With track_running_stats it has PyTorch's buffers (num_batches_tracked too, so state
    dicts match) but, as PyTorch, never counts batches: the running averages use momentum,
    and momentum=None means 0 (they stay as they are)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype)

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3-D or 4-D input (got {x.ndim}-D "
                             "input)")
        unbatched = x.ndim == 3
        if unbatched:
            x = x.reshape((1,) + tuple(x.shape))
        self._check_channels(x)
        use_input_stats = self.training or not self.track_running_stats
        factor = (self.momentum if self.momentum is not None else 0.0) if self._counts() \
            else 0.0
        out = N.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              use_input_stats, factor, self.eps)
        return out.reshape(tuple(out.shape[1:])) if unbatched else out


class GroupNorm(Module):
    """Normalise each sample's channels in num_groups groups (Wu and He, 2018); per-channel
    affine. The same in training and eval."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None):
        super().__init__()
        if not isinstance(num_groups, int) or num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = \
            num_groups, num_channels, eps, affine
        kw = {"dtype": dtype, "device": device}
        if affine:
            self.weight = Parameter(creation.ones(num_channels, **kw))
            self.bias = Parameter(creation.zeros(num_channels, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @no_grad()
    def reset_parameters(self):
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.zero_()

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, {self.num_channels}, *) with "
                             f"{self.num_channels} channels, got shape {x.shape}")
        return N.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm(Module):
    """Normalise each sample over its last dims, which must equal normalized_shape (Ba et al.,
    2016); elementwise affine of that shape. The same in training and eval."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got "
                             f"{normalized_shape!r}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        kw = {"dtype": dtype, "device": device}
        self.register_parameter("weight", Parameter(creation.ones(*shape, **kw))
                                if elementwise_affine else None)
        self.register_parameter("bias", Parameter(creation.zeros(*shape, **kw))
                                if elementwise_affine and bias else None)

    @no_grad()
    def reset_parameters(self):
        if self.weight is not None:
            self.weight.fill_(1.0)
        if self.bias is not None:
            self.bias.zero_()

    def forward(self, x):
        n = len(self.normalized_shape)
        if x.ndim < n or tuple(x.shape[x.ndim - n:]) != self.normalized_shape:
            raise ValueError(f"LayerNorm: expected input with shape [*, "
                             f"{', '.join(map(str, self.normalized_shape))}], got shape "
                             f"{x.shape}")
        return N.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


# ----- folding an eval-mode batch norm into the layer before it -----
def _fuse(name, layer, bn):
    """A deep copy of `layer` with W' = W * s (per output channel, dim 0 of W) and
    b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps): layer then bn in eval as one
    linear map."""
    if layer.training or bn.training:
        raise ValueError(f"{name}: both modules must be in eval mode (call .eval() first): "
                         f"the fold uses the running statistics")
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError(f"{name}: the batch norm has no running statistics to fold")
    out_channels = layer.weight.shape[0]
    if out_channels != bn.num_features:
        raise ValueError(f"{name}: the layer has {out_channels} output channels, the batch "
                         f"norm {bn.num_features} features")
    W = layer.weight.numpy().astype(np.float64)
    bias = getattr(layer, "bias", None)
    b = np.zeros(out_channels) if bias is None else bias.numpy().astype(np.float64)
    mean = bn.running_mean.numpy().astype(np.float64)
    var = bn.running_var.numpy().astype(np.float64)
    gamma = np.ones(out_channels) if bn.weight is None else bn.weight.numpy().astype(np.float64)
    beta = np.zeros(out_channels) if bn.bias is None else bn.bias.numpy().astype(np.float64)
    s = gamma / np.sqrt(var + bn.eps)
    fused = copy.deepcopy(layer)
    dtype, device = layer.weight.dtype, layer.weight.device
    fused.weight = Parameter(Tensor(W * s.reshape((-1,) + (1,) * (W.ndim - 1)), dtype=dtype,
                                    device=device))
    fused.bias = Parameter(Tensor((b - mean) * s + beta, dtype=dtype, device=device))
    return fused


def _with_activation(fused, bn):
    """A batch norm with a fused ReLU (activation="relu") is bn then ReLU: keep the ReLU after
    the folded layer, so the result computes the same function."""
    if getattr(bn, "activation", None) is None:
        return fused
    return Sequential(fused, ReLU())


def fuse_conv_bn_eval(conv, bn):
    """conv then bn (both in eval) as one new conv: weight (out, in, kh, kw) scaled per output
    channel, bias folded. The originals are not changed. If bn has a fused ReLU
    (activation="relu"), the result is Sequential(fused conv, ReLU())."""
    return _with_activation(_fuse("fuse_conv_bn_eval", conv, bn), bn)


def fuse_linear_bn_eval(linear, bn):
    """linear then bn (BatchNorm1d, both in eval) as one new linear layer; with a fused ReLU
    in bn, Sequential(fused linear, ReLU())."""
    return _with_activation(_fuse("fuse_linear_bn_eval", linear, bn), bn)

