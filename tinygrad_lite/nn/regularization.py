"""Gradient clipping (as torch.nn.utils.clip_grad_norm_ / clip_grad_value_) and the L1, L2 and
elastic-net penalties, loss terms that work with any optimiser.

    loss = F.cross_entropy(model(x), y) + nn.utils.l1_penalty(model.parameters(), 1e-5)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
"""
import math

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "l1_penalty", "l2_penalty",
           "elastic_net_penalty"]


def _tensors(name, parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    if not hasattr(parameters, "__iter__"):
        raise TypeError(f"{name}: expected a Tensor or an iterable of Tensors, got "
                        f"{type(parameters).__name__}")
    tensors = list(parameters)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected Tensors, got a {type(t).__name__}")
    return tensors


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their total norm (the norm of all gradients
    concatenated) is at most max_norm: each is multiplied by max_norm / (total + 1e-6) when that
    is below 1. norm_type is any p > 0, or inf (the largest |g|). Returns the total
    norm before clipping as a 0-d float64 Tensor on the gradients' device. error_if_nonfinite:
    raise if the total norm is nan or inf (the gradients are then left as they are)."""
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    grads = [p.grad for p in _tensors("clip_grad_norm_", parameters) if p.grad is not None]
    if not grads:
        return Tensor(0.0, dtype="float64")
    pieces = [g.device.backend.grad_norm_pow(g.array, norm_type) for g in grads]
    if norm_type == math.inf:
        total = max(pieces)
    else:
        total = math.fsum(pieces) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is {total}, so they cannot be clipped; set "
                           "error_if_nonfinite=False to go on anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)  # one in-place kernel per gradient, and its version counter bumped
    return Tensor(total, dtype="float64", device=grads[0].device)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _tensors("clip_grad_value_", parameters):
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)


def _penalty(name, parameters, term):
    tensors = _tensors(name, parameters)
    if not tensors:
        raise ValueError(f"{name}: got no parameters")
    total = None
    for t in tensors:
        value = term(t)
        total = value if total is None else total + value
    return total


def l1_penalty(parameters, weight=1.0):
    """weight * sum |w| over every element of every parameter (a differentiable 0-d Tensor;
    its gradient weight * sign(w) drives weights to exactly zero: sparsity)."""
    return weight * _penalty("l1_penalty", parameters, lambda t: t.abs().sum())


def l2_penalty(parameters, weight=1.0):
    """weight * sum w^2. SGD's weight_decay=lambda is the gradient of l2_penalty with
    weight lambda / 2 (for Adam it is not the same: see AdamW)."""
    return weight * _penalty("l2_penalty", parameters, lambda t: (t * t).sum())


def elastic_net_penalty(parameters, l1_weight=1.0, l2_weight=1.0):
    """Elastic net: l1_weight * sum |w| + l2_weight * sum w^2 (L1 + L2), in one pass over the
    parameters."""
    return _penalty("elastic_net_penalty", parameters,
                    lambda t: l1_weight * t.abs().sum() + l2_weight * (t * t).sum())
