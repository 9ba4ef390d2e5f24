"""Losses, PyTorch's names, argument order and semantics, each with `reduction` "mean", "sum" or
"none".

cross_entropy and nll_loss are Functions: forward takes the log-softmax over dim 1 (shifted by
the row max, so logits of +-1e4 stay finite) and weights it by a target distribution q built on
the device (one-hot labels compared against arange(C), smoothed, class-weighted, zero where a
label is ignored), and backward is the closed form (softmax * sum_c q - q) * g. Labels never
reach an index map: the only host work is the check that they lie in [0, C). The simple losses
(mse, l1, smooth L1 / Huber, BCE with logits, multi-margin) are compositions of Tensor ops in
forms that stay finite for any finite input.
"""
from math import prod

import numpy as np

from .. import dtype as dt
from .. import ops
from ..autograd import Function
from ..kernels import scalar as S
from .reduce import _shifted_exp
from .checks import float_tensor

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(name, reduction):
    """ValueError naming `name` unless reduction is "mean", "sum" or "none"."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    return reduction


# ----- the Functions -----
def _constant(k, value, dtype):
    return k.full((), value, dtype)


def _class_shape(ndim, C):
    """(1, C, 1, ...): a per-class vector laid along dim 1 of an (N, C, d1, ...) tensor."""
    return (1, C) + (1,) * (ndim - 2)


_CLASSES = {}


def _classes(k, C, ndim):
    """arange(C) shaped to broadcast along dim 1 of an ndim-D tensor, on k's device: made once
    per (device, C, ndim) and reused, as only the comparison kernels read it."""
    key = (k.NAME, C, ndim)
    classes = _CLASSES.get(key)
    if classes is None:
        classes = _CLASSES[key] = k.from_numpy(
            np.arange(C, dtype=np.int64).reshape(_class_shape(ndim, C)))
    return classes


class _TargetLoss(Function):
    """loss[n, d...] = -sum_c q[n, c, d...] * logp[n, c, d...] for a target distribution q that
    forward builds on the device, reduced as asked: "mean" divides by `self.denom` (the summed
    weights of the counted targets, an array on the device). Subclasses give logp (and the
    softmax that backward needs) from their input."""

    def _build_q(self, x_dtype, shape, target, weight, ignore_index, smoothing, probs, mean):
        """q and the mean's divisor. Class indices: q = mask * ((1 - eps) * w[y] * onehot +
        eps / C * w), divisor sum(mask * w[y]) (PyTorch normalises the smoothing term by the
        label weights too). Probabilities: q = w * ((1 - eps) * t + eps / C), divisor N*d1*...
        The divisor is computed only for a mean (`mean`); None otherwise."""
        k, C, ndim = self.k, shape[1], len(shape)
        wc = None if weight is None else k.reshape(weight, _class_shape(ndim, C))
        if probs:
            self.target_scale = 1.0 - smoothing
            t = target
            if smoothing:
                t = k.elementwise(S.ADD, (k.elementwise(S.MUL, (t, _constant(
                    k, 1.0 - smoothing, x_dtype)), x_dtype), _constant(k, smoothing / C,
                                                                        x_dtype)), x_dtype)
            q = t if wc is None else k.elementwise(S.MUL, (t, wc), x_dtype)
            if q is target:  # never keep (or hand back) the caller's own storage
                q = k.elementwise(S.COPY, (q,), x_dtype)
            return q, (_constant(k, prod(shape) // C if C else 0, x_dtype) if mean else None)
        labels = k.reshape(target, (shape[0], 1) + tuple(shape[2:]))
        classes = _classes(k, C, ndim)
        onehot = k.elementwise(S.EQ, (labels, classes), x_dtype)  # (N, C, d...)
        mask = k.elementwise(S.NE, (labels, _constant(k, ignore_index, dt.int64)), x_dtype)
        if wc is None:
            wy = mask  # (N, 1, d...): 1 for a counted target, 0 for an ignored one
        else:
            wy = k.reduce(S.SUM, k.elementwise(S.MUL, (onehot, wc), x_dtype), (1,), True)
            wy = k.elementwise(S.MUL, (wy, mask), x_dtype)
        picked = wy if not smoothing else k.elementwise(
            S.MUL, (wy, _constant(k, 1.0 - smoothing, x_dtype)), x_dtype)
        q = k.elementwise(S.MUL, (onehot, picked), x_dtype)
        if smoothing:
            spread = k.elementwise(S.MUL, (mask, _constant(k, smoothing / C, x_dtype)), x_dtype)
            if wc is not None:
                spread = k.elementwise(S.MUL, (spread, wc), x_dtype)
            q = k.elementwise(S.ADD, (q, spread), x_dtype)
        if wc is None:  # each counted target's q sums to 1 over the classes: sum_c q = mask
            self.q_total = mask
        return q, (k.reduce(S.SUM, wy, tuple(range(ndim)), False) if mean else None)

    def _reduce(self, logp, q, reduction, denom):
        k, shape = self.k, logp.shape
        self.shape, self.reduction, self.denom = shape, reduction, denom
        terms = k.elementwise(S.MUL, (q, logp), logp.dtype)
        if reduction == "none":
            return k.elementwise(S.NEG, (k.reduce(S.SUM, terms, (1,), False),), logp.dtype)
        total = k.elementwise(S.NEG, (k.reduce(S.SUM, terms, tuple(range(len(shape))), False),),
                              logp.dtype)
        return total if reduction == "sum" else k.elementwise(S.DIV, (total, denom), total.dtype)

    def _upstream(self, g):
        """g shaped to broadcast against (N, C, d...), with the mean's 1/divisor folded in."""
        k = self.k
        if self.reduction == "none":
            return k.reshape(g, (self.shape[0], 1) + tuple(self.shape[2:]))
        return g if self.reduction == "sum" else k.elementwise(S.DIV, (g, self.denom), g.dtype)


class CrossEntropy(_TargetLoss):
    """Inputs: logits (N, C, d...) and target (int64 labels (N, d...), or probabilities of the
    logits' shape when probs=True). Backward: d/dx = (softmax * sum_c q - q) * g, which is
    softmax - onehot_smoothed for an unweighted counted label; d/dt = -(1-eps) * w * logp * g
    for probability targets."""

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, probs=False):
        k = self.k
        m, e, s = _shifted_exp(k, x, (1,))
        logp = k.elementwise(S.SUB, (k.elementwise(S.SUB, (x, m), x.dtype),
                                     k.elementwise(S.LOG, (s,), x.dtype)), x.dtype)
        self.q_total = None
        q, denom = self._build_q(x.dtype, x.shape, target, weight, ignore_index,
                                 label_smoothing, probs, reduction == "mean")
        # keep only what backward reads: q for d/dx, the weight and logp for d/dtarget
        self.q, self.weight = (q if self.needs_input_grad[0] else None), weight
        if self.needs_input_grad[0]:
            self.p = k.elementwise(S.DIV, (e, s), x.dtype)
            if self.q_total is None:
                self.q_total = k.reduce(S.SUM, q, (1,), True)
        if probs and self.needs_input_grad[1]:
            self.logp = logp
        return self._reduce(logp, q, reduction, denom)

    def backward(self, g):
        k, gl = self.k, self._upstream(g)
        dx = dt_ = None
        if self.needs_input_grad[0]:
            spread = k.elementwise(S.MUL, (self.p, self.q_total), g.dtype)
            dx = k.elementwise(S.MUL, (k.elementwise(S.SUB, (spread, self.q), g.dtype), gl),
                               g.dtype)
        if self.needs_input_grad[1]:  # probability targets only (labels never require grad)
            scale = _constant(k, -self.target_scale, g.dtype)
            if self.weight is not None:
                scale = k.elementwise(S.MUL, (k.reshape(self.weight, _class_shape(
                    len(self.shape), self.shape[1])), scale), g.dtype)
            dt_ = k.elementwise(S.MUL, (k.elementwise(S.MUL, (self.logp, scale), g.dtype), gl),
                                g.dtype)
        return dx, dt_


class NLLLoss(_TargetLoss):
    """Inputs: log-probabilities (N, C, d...) and int64 labels (N, d...). loss = -w[y] * lp[y]
    (0 where y == ignore_index); backward: -q * g."""

    def forward(self, lp, target, weight=None, ignore_index=-100, reduction="mean"):
        q, denom = self._build_q(lp.dtype, lp.shape, target, weight, ignore_index, 0.0, False,
                                 reduction == "mean")
        self.q = q
        return self._reduce(lp, q, reduction, denom)

    def backward(self, g):
        k = self.k
        return (k.elementwise(S.MUL, (k.elementwise(S.NEG, (self.q,), g.dtype),
                                      self._upstream(g)), g.dtype), None)


# ----- argument checks -----
def _same_device(name, ref, x, what):
    if x.device != ref.device:
        raise RuntimeError(f"{name}: expected {what} on {ref.device} (the input's device), got "
                           f"{x.device}; move it with .to(device)")


def _as_float_like(name, ref, x, what):
    """x (a Tensor, number or array) as a float tensor of ref's dtype on ref's device."""
    if not isinstance(x, ops.Tensor):
        x = ops.Tensor(x, dtype=ref.dtype, device=ref.device)
    _same_device(name, ref, x, what)
    if not dt.is_float(x.dtype):
        raise TypeError(f"{name}: expected {what} to be a float tensor, got {x.dtype}")
    return x.astype(ref.dtype)


def _class_weight(name, x, weight, C):
    if weight is None:
        return None
    weight = _as_float_like(name, x, weight, "weight")
    if weight.shape != (C,):
        raise ValueError(f"{name}: weight has shape {weight.shape}, expected ({C},): one "
                         f"weight per class")
    return weight


def _check_labels(name, target, C, ignore_index):
    """Labels are read on the host once, before any kernel: each is in [0, C) or ignore_index."""
    labels = target.device.backend.to_numpy(target.array)
    bad = (labels < 0) | (labels >= C)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        label = int(labels[bad].reshape(-1)[0])
        raise ops.LabelError(f"{name}: target label {label} is out of range for {C} classes "
                         f"(expected 0 <= label < {C}"
                         + ("" if ignore_index is None else f", or ignore_index={ignore_index}")
                         + ")")


def _labels(name, x, target, ignore_index):
    """Validate int64 labels of shape (N, d1, ...) for input x of shape (N, C, d1, ...)."""
    if not isinstance(target, ops.Tensor):
        raise TypeError(f"{name}: expected target to be a Tensor, got {type(target).__name__}")
    _same_device(name, x, target, "target")
    expected = (x.shape[0],) + x.shape[2:]
    if target.dtype != dt.int64:
        raise ops.DTypeError(f"{name}: expected target to hold int64 class indices of shape "
                             f"{expected}, got a {target.dtype} tensor of shape "
                             f"{target.shape}; convert labels with target.long()")
    if target.shape != expected:
        raise ValueError(f"{name}: target has shape {target.shape}, expected {expected} for "
                         f"input of shape {x.shape}")
    _check_labels(name, target, x.shape[1], ignore_index)


def _onehot(labels, C, dtype, op=S.EQ):
    """[labels == c] (op EQ; NE gives its complement) along dim 1 of size C, as a constant
    `dtype` tensor, for labels (N, 1, d...): one comparison kernel against arange(C), no index
    map."""
    k = labels.device.backend
    classes = _classes(k, C, labels.ndim)
    return labels._wrap(k.elementwise(op, (labels.array, classes), dtype), labels.device, False)


def _batched(name, x, what="input"):
    """(x as (N, C, ...), whether it was unbatched (C,))."""
    if x.ndim == 0:
        raise ValueError(f"{name}: {what} has shape (), expected (C,), (N, C) or "
                         f"(N, C, d1, ...)")
    return (x.reshape(1, x.shape[0]), True) if x.ndim == 1 else (x, False)


def _unbatch(loss, unbatched, reduction):
    return loss.reshape(()) if unbatched and reduction == "none" else loss


# ----- the Tensor-level entry points -----
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy between logits (C,), (N, C) or (N, C, d1, ...) and a target of
    int64 class indices (N,) / (N, d1, ...), or of float class probabilities with the logits'
    shape (soft labels, mixup). As torch.nn.functional.cross_entropy:

        loss_n = -sum_c q_nc * log_softmax(x)_nc
        labels:        q_nc = [y_n != ignore] * ((1 - eps) * w_{y_n} [c == y_n] + eps * w_c / C)
        probabilities: q_nc = w_c * ((1 - eps) * t_nc + eps / C)

    "mean" divides the summed loss by sum_n [y_n != ignore] * w_{y_n} for labels and by the
    number of targets for probabilities. The gradient is (softmax * sum_c q - q) * g.

    >>> cross_entropy(tl.tensor([[2.0, 0.0, 0.0]]), tl.tensor([0]))  # -log(e^2 / (e^2 + 2))
    """
    name = "cross_entropy"
    check_reduction(name, reduction)
    x, unbatched = _batched(name, float_tensor(name, "input", input))
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    w = _class_weight(name, x, weight, x.shape[1])
    probs = isinstance(target, ops.Tensor) and dt.is_float(target.dtype)
    if probs:
        _same_device(name, x, target, "target")
        t = target.reshape(x.shape) if unbatched and target.shape == input.shape else target
        if t.shape != x.shape:
            labels = () if unbatched else input.shape[:1] + input.shape[2:]
            if target.shape == labels:  # float labels: the dtype, not the shape, is wrong
                raise ops.DTypeError(
                    f"{name}: target of shape {target.shape} holds {target.dtype} values: "
                    f"expected int64 class indices of shape {labels} (convert with "
                    f"target.long()) or float class probabilities of shape {input.shape}")
            raise ValueError(f"{name}: target has shape {target.shape}, expected "
                             f"{input.shape} (class probabilities) or {labels} (int64 class "
                             f"indices) for input of shape {input.shape}")
        out = CrossEntropy.apply(x, t.astype(x.dtype), weight=None if w is None else w.array,
                                 reduction=reduction, label_smoothing=float(label_smoothing),
                                 probs=True)
    else:
        t = target.reshape(1) if unbatched and isinstance(target, ops.Tensor) and \
            target.ndim == 0 else target
        _labels(name, x, t, ignore_index)
        out = CrossEntropy.apply(x, t, weight=None if w is None else w.array,
                                 ignore_index=int(ignore_index), reduction=reduction,
                                 label_smoothing=float(label_smoothing), probs=False)
    return _unbatch(out, unbatched, reduction)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of int64 labels under log-probabilities (C,), (N, C) or
    (N, C, d1, ...): loss_n = -w_{y_n} * input[n, y_n], 0 where y_n == ignore_index; "mean"
    divides by the summed weights of the counted labels (torch.nn.functional.nll_loss).

    >>> nll_loss(tl.tensor([[-0.1, -2.4]]), tl.tensor([1]))  # 2.4
    """
    name = "nll_loss"
    check_reduction(name, reduction)
    x, unbatched = _batched(name, float_tensor(name, "input", input))
    w = _class_weight(name, x, weight, x.shape[1])
    t = target.reshape(1) if unbatched and isinstance(target, ops.Tensor) and \
        target.ndim == 0 else target
    _labels(name, x, t, ignore_index)
    out = NLLLoss.apply(x, t, weight=None if w is None else w.array,
                        ignore_index=int(ignore_index), reduction=reduction)
    return _unbatch(out, unbatched, reduction)


def _input_and_target(name, input, target):
    """input and target as float tensors of one shape, dtype and device."""
    input = float_tensor(name, "input", input)
    target = _as_float_like(name, input, target, "target")
    if target.shape != input.shape:
        raise ValueError(f"{name}: target has shape {target.shape}, expected {input.shape} "
                         f"(the input's shape)")
    return input, target


def _reduced(loss, reduction):
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: (input - target)^2, reduced.

    >>> mse_loss(tl.tensor([1.0, 2.0]), tl.tensor([0.0, 0.0]))  # 2.5
    """
    check_reduction("mse_loss", reduction)
    input, target = _input_and_target("mse_loss", input, target)
    d = input - target
    return _reduced(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error |input - target| (gradient 0 where they are equal, as PyTorch).

    >>> l1_loss(tl.tensor([1.0, -2.0]), tl.tensor([0.0, 0.0]))  # 1.5
    """
    check_reduction("l1_loss", reduction)
    input, target = _input_and_target("l1_loss", input, target)
    return _reduced((input - target).abs(), reduction)


def _quadratic_then_linear(a, threshold):
    """c * (a - c/2) with c = min(a, threshold), for a = |d| >= 0: a^2/2 below the threshold,
    threshold * (a - threshold/2) above; one formula, so no branch is computed and thrown away,
    and its gradient, min(a, threshold), is continuous at the threshold."""
    c = a.clip(max=threshold)
    return c * (a - c * 0.5)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Smooth L1 (torch.nn.functional.smooth_l1_loss): 0.5 d^2 / beta where |d| < beta, else
    |d| - 0.5 beta, with d = input - target; beta = 0 is the L1 loss.

    >>> smooth_l1_loss(tl.tensor([0.5, 3.0]), tl.tensor([0.0, 0.0]))  # (0.125 + 2.5) / 2
    """
    name = "smooth_l1_loss"
    check_reduction(name, reduction)
    if not beta >= 0:
        raise ValueError(f"{name}: beta must be non-negative, got {beta}")
    input, target = _input_and_target(name, input, target)
    a = (input - target).abs()
    return _reduced(a if beta == 0 else _quadratic_then_linear(a, beta) * (1.0 / beta),
                    reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """Huber loss (torch.nn.functional.huber_loss): 0.5 d^2 where |d| < delta, else
    delta * (|d| - 0.5 delta); equal to delta * smooth_l1_loss(beta=delta).

    >>> huber_loss(tl.tensor([0.5, 3.0]), tl.tensor([0.0, 0.0]))  # (0.125 + 2.5) / 2
    """
    name = "huber_loss"
    check_reduction(name, reduction)
    if not delta > 0:
        raise ValueError(f"{name}: delta must be positive, got {delta}")
    input, target = _input_and_target(name, input, target)
    return _reduced(_quadratic_then_linear((input - target).abs(), delta), reduction)


def _broadcasts_to(name, what, x, shape):
    try:
        ok = np.broadcast_shapes(x.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: {what} has shape {x.shape}, expected a shape that "
                         f"broadcasts to the input's {shape}")


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable formula (torch's):

        loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * (log(1 + exp(-|x|)) + max(-x, 0))

    which is max(x, 0) - x*y + log(1 + exp(-|x|)) without pos_weight: exp only ever sees a
    non-positive number, so |x| up to 1e4 (and beyond) stays finite. `weight` scales each
    element (broadcast to the input), `pos_weight` the positive term per class (last dim).

    >>> binary_cross_entropy_with_logits(tl.tensor([0.0]), tl.tensor([1.0]))  # log 2
    """
    name = "binary_cross_entropy_with_logits"
    check_reduction(name, reduction)
    x, y = _input_and_target(name, input, target)
    if pos_weight is not None:
        pos_weight = _as_float_like(name, x, pos_weight, "pos_weight")
        _broadcasts_to(name, "pos_weight", pos_weight, x.shape)
    if weight is not None:
        weight = _as_float_like(name, x, weight, "weight")
        _broadcasts_to(name, "weight", weight, x.shape)
    # max(x, 0) = (x + |x|) / 2 and max(-x, 0) = (|x| - x) / 2, exactly in floating point;
    # written with |x| (whose gradient at 0 is 0) the loss has the right gradient at x = 0,
    # sigmoid(0) - y, where maximum's tie rule or relu's 0 would each give a wrong one.
    a = x.abs()
    log_term = (1.0 + (-a).exp()).log()  # log(1 + e^-|x|), in (0, log 2]
    if pos_weight is None:
        loss = (x + a) * 0.5 - x * y + log_term
    else:
        loss = (1.0 - y) * x + (1.0 + (pos_weight - 1.0) * y) * (log_term + (a - x) * 0.5)
    return _reduced(loss if weight is None else loss * weight, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Multiclass hinge loss (torch.nn.functional.multi_margin_loss), for scores (N, C) or (C,)
    and int64 labels (N,) or ():

        loss_n = sum_{j != y_n} w_{y_n} * max(0, margin - x[n, y_n] + x[n, j])^p / C

    p is 1 (the SVM hinge) or 2. The label's score is picked with a one-hot mask made on the
    device (no index map); the gradient at the hinge's kink is 0, as PyTorch's.

    >>> multi_margin_loss(tl.tensor([[0.1, 0.2, 0.4]]), tl.tensor([2]))  # (0.7 + 0.8) / 3
    """
    name = "multi_margin_loss"
    check_reduction(name, reduction)
    if p not in (1, 2):
        raise ValueError(f"{name}: only p = 1 and p = 2 are supported, got {p}")
    x = float_tensor(name, "input", input)
    if x.ndim not in (1, 2):
        raise ValueError(f"{name}: input has shape {x.shape}, expected (C,) or (N, C)")
    x, unbatched = _batched(name, x)
    C = x.shape[1]
    w = _class_weight(name, x, weight, C)
    t = target.reshape(1) if unbatched and isinstance(target, ops.Tensor) and \
        target.ndim == 0 else target
    _labels(name, x, t, None)
    onehot = _onehot(t.reshape(-1, 1), C, x.dtype)
    others = _onehot(t.reshape(-1, 1), C, x.dtype, S.NE)  # the j != y_n that are summed
    picked = (x * onehot).sum(axis=1, keepdims=True)
    hinge = (x - picked + float(margin)).relu()
    if p == 2:
        hinge = hinge * hinge
    if w is not None:
        others = others * (onehot * w.reshape(1, C)).sum(axis=1, keepdims=True)
    loss = (hinge * others).sum(axis=1) * (1.0 / C)
    return _unbatch(_reduced(loss, reduction), unbatched, reduction)
