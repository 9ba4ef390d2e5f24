"""CPU kernels for optimiser updates, in place: one fused prange loop per rule family, over the
flat elements of a parameter, its gradient and its state arrays. The per-element math lives in
kernels/optim_math.py (shared with the CUDA kernels), inlined into these loops.

Each kernel reads the gradient once and writes the parameter and the state in the same pass,
so an update makes no temporaries. Switches are runtime arguments, so each family compiles once
per dtype (serial and parallel twins); see optim_math.py for the arithmetic and its rounding.
"""
import hashlib
import pathlib
import types

import numba
from numba import prange

from .. import optim_math
from .jit import INLINE, specialised, twin

__all__ = ["sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "grad_norm_pow"]

# Numba's cache checks only the timestamp of the file defining a kernel (this one), not of the
# optim_math.py it inlines: a tag of that file's contents in every kernel's name (next to
# jit.py's tag of scalar.py) gives an edited optim_math.py new cache entries, not stale code.
_MATH_TAG = hashlib.sha1(pathlib.Path(optim_math.__file__).read_bytes()).hexdigest()[:10]

_MATH = optim_math.compile_all(numba.njit(**INLINE))
_sgd_update, _adagrad_update, _rmsprop_update, _adam_update, _norm_pow_fold = (
    _MATH.sgd, _MATH.adagrad, _MATH.rmsprop, _MATH.adam, _MATH.norm_pow)


def _tagged(fn):
    """`fn` renamed with _MATH_TAG; `specialised` and `twin` build the kernel's name, hence its
    cache entry, from this name."""
    return types.FunctionType(fn.__code__, fn.__globals__, f"{fn.__name__}_{_MATH_TAG}",
                              fn.__defaults__)


def _flat(a):
    """A 1-D view of `a`'s storage (a copy only for a strided input, which is read, never
    written: parameters and state are C-contiguous, checked by the optimiser)."""
    return a.reshape(-1)


def _sgd_loop(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, first):
    for i in prange(p.size):
        _sgd_update(i, p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize,
                    first)


def _adagrad_loop(p, g, state_sum, clr, weight_decay, eps, maximize):
    for i in prange(p.size):
        _adagrad_update(i, p, g, state_sum, clr, weight_decay, eps, maximize)


def _rmsprop_loop(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum,
                  centered, maximize):
    for i in prange(p.size):
        _rmsprop_update(i, p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                        momentum, centered, maximize)


def _adam_loop(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
               decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    for i in prange(p.size):
        _adam_update(i, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                     weight_decay, decoupled, amsgrad, maximize, step_size,
                     bias_correction2_sqrt)


def _norm_pow_loop(x, p):
    # Serial: a float reduction in a prange would need a per-thread buffer; a gradient norm
    # is memory-bound and runs once per step.
    total = 0.0
    for i in range(x.size):
        total = _norm_pow_fold(total, x[i], p)
    return total


_sgd, _adagrad, _rmsprop, _adam = (twin(_tagged(f)) for f in (_sgd_loop, _adagrad_loop,
                                                               _rmsprop_loop, _adam_loop))
_norm_pow = specialised(_tagged(_norm_pow_loop))


def sgd_step(param, grad, buf, lr, weight_decay, momentum, dampening, nesterov, maximize,
             first):
    """SGD with momentum/dampening/Nesterov, in place on `param` and `buf` (see optim/sgd.py).
    `first`: the momentum buffer is initialised to the (decayed) gradient this step."""
    p = _flat(param)
    _sgd(p.size)(p, _flat(grad), _flat(buf), float(lr), float(weight_decay), float(momentum),
                 float(dampening), bool(nesterov), bool(maximize), bool(first))


def adagrad_step(param, grad, state_sum, clr, weight_decay, eps, maximize):
    """AdaGrad with the decayed rate `clr`, in place on `param` and `state_sum`."""
    p = _flat(param)
    _adagrad(p.size)(p, _flat(grad), _flat(state_sum), float(clr), float(weight_decay),
                     float(eps), bool(maximize))


def rmsprop_step(param, grad, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                 momentum, centered, maximize):
    """RMSprop (centred or not, with or without momentum), in place on `param` and state."""
    p = _flat(param)
    _rmsprop(p.size)(p, _flat(grad), _flat(square_avg), _flat(grad_avg), _flat(buf),
                     float(lr), float(alpha), float(eps), float(weight_decay), float(momentum),
                     bool(centered), bool(maximize))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
              weight_decay, decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    """Adam / AdamW (`decoupled`), AMSGrad optional, in place on `param` and state.
    step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t) come from
    the host, computed once per step."""
    p = _flat(param)
    _adam(p.size)(p, _flat(grad), _flat(exp_avg), _flat(exp_avg_sq), _flat(max_exp_avg_sq),
                  float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
                  bool(decoupled), bool(amsgrad), bool(maximize), float(step_size),
                  float(bias_correction2_sqrt))


def grad_norm_pow(x, norm_type):
    """sum(|x|^norm_type) as a Python float, or max|x| for norm_type = inf (the pieces of a
    total gradient norm, combined across parameters by the caller)."""
    x = _flat(x)
    return float(_norm_pow(x, float(norm_type)))
