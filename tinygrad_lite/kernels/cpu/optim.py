"""CPU kernels for optimiser updates, in place: one fused loop per rule family, over the flat
elements of a parameter, its gradient and its state arrays.

Each kernel reads the gradient once and writes the parameter and the state in the same pass,
so an update makes no temporaries. Switches (nesterov, amsgrad, centered, maximize...) are
runtime arguments, so each family compiles once per dtype; a state array a switch leaves unused
is passed as an empty array of the parameter's dtype (one signature). Scalars arrive as float64
and the arithmetic runs in float64, rounded once into the parameter's dtype. The update
equations are PyTorch's (torch/optim/*.py), documented in tinygrad_lite/optim/.
"""
import math

import numpy as np
from numba import prange

from .jit import kernel, twin

__all__ = ["sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "grad_norm_pow"]


def _flat(a):
    """A 1-D view of `a`'s storage (a copy only for a strided input, which is read, never
    written: parameters and state are C-contiguous, checked by the optimiser)."""
    return a.reshape(-1)


def _sgd_loop(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, first):
    for i in prange(p.size):
        d = -np.float64(g[i]) if maximize else np.float64(g[i])
        if weight_decay != 0.0:
            d += weight_decay * p[i]
        if momentum != 0.0:
            b = d if first else momentum * buf[i] + (1.0 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


def _adagrad_loop(p, g, state_sum, clr, weight_decay, eps, maximize):
    for i in prange(p.size):
        d = -np.float64(g[i]) if maximize else np.float64(g[i])
        if weight_decay != 0.0:
            d += weight_decay * p[i]
        s = state_sum[i] + d * d
        state_sum[i] = s
        p[i] = p[i] - clr * d / (math.sqrt(np.float64(state_sum[i])) + eps)


def _rmsprop_loop(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum,
                  centered, maximize):
    for i in prange(p.size):
        d = -np.float64(g[i]) if maximize else np.float64(g[i])
        if weight_decay != 0.0:
            d += weight_decay * p[i]
        square_avg[i] = alpha * square_avg[i] + (1.0 - alpha) * d * d
        v = np.float64(square_avg[i])
        if centered:
            grad_avg[i] = alpha * grad_avg[i] + (1.0 - alpha) * d
            m = np.float64(grad_avg[i])
            v -= m * m
        step = d / (math.sqrt(v) + eps)
        if momentum > 0.0:
            buf[i] = momentum * buf[i] + step
            step = np.float64(buf[i])
        p[i] = p[i] - lr * step


def _adam_loop(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
               decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    for i in prange(p.size):
        d = -np.float64(g[i]) if maximize else np.float64(g[i])
        w = np.float64(p[i])
        if decoupled:
            w *= 1.0 - lr * weight_decay
        elif weight_decay != 0.0:
            d += weight_decay * w
        exp_avg[i] = beta1 * exp_avg[i] + (1.0 - beta1) * d
        exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (1.0 - beta2) * d * d
        v = np.float64(exp_avg_sq[i])
        if amsgrad:
            if max_exp_avg_sq[i] > v:
                v = np.float64(max_exp_avg_sq[i])
            max_exp_avg_sq[i] = v
        p[i] = w - step_size * exp_avg[i] / (math.sqrt(v) / bias_correction2_sqrt + eps)


def _norm_pow_loop(x, p):
    # sum |x|^p, or max |x| for p = inf; p = 2 and 1 avoid the pow call (the common cases).
    # Serial: a float reduction in a prange would need a per-thread buffer; a gradient norm
    # is memory-bound and runs once per step.
    total = 0.0
    for i in range(x.size):
        a = abs(np.float64(x[i]))
        if p == np.inf:
            total = max(total, a)
        elif p == 2.0:
            total += a * a
        elif p == 1.0:
            total += a
        else:
            total += a ** p
    return total


_sgd, _adagrad, _rmsprop, _adam = (twin(f) for f in (_sgd_loop, _adagrad_loop, _rmsprop_loop,
                                                       _adam_loop))
_norm_pow = kernel(_norm_pow_loop)


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
