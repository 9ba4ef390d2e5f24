"""CUDA kernels for optimiser updates, in place: the loops of kernels/cpu/optim.py as
grid-stride kernels, one thread per element, the same float64 arithmetic and the same
switches as runtime arguments (one compile per dtype). A state array a switch leaves unused is
an empty device array of the parameter's dtype."""
import math

import numpy as np
from numba import cuda

from ..scalar import MAX, SUM
from .jit import MAX_BLOCKS, THREADS, kernel, launch
from .memory import empty, flat
from .reduce import reduce

__all__ = ["sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "grad_norm_pow"]


@kernel
def _sgd(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, first):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = -np.float64(g[i]) if maximize else np.float64(g[i])
        if weight_decay != 0.0:
            d += weight_decay * p[i]
        if momentum != 0.0:
            b = d if first else momentum * buf[i] + (1.0 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


@kernel
def _adagrad(p, g, state_sum, clr, weight_decay, eps, maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = -np.float64(g[i]) if maximize else np.float64(g[i])
        if weight_decay != 0.0:
            d += weight_decay * p[i]
        state_sum[i] = state_sum[i] + d * d
        p[i] = p[i] - clr * d / (math.sqrt(np.float64(state_sum[i])) + eps)


@kernel
def _rmsprop(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, centered,
             maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
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


@kernel
def _adam(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
          decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
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


@kernel
def _norm_pow_partials(x, p, partials):
    # Each thread folds its grid-stride share into partials[thread]; the existing reduction
    # then combines the partials (one small array, whatever the size of x).
    t = cuda.grid(1)
    total = 0.0
    for i in range(t, x.size, cuda.gridsize(1)):
        a = abs(np.float64(x[i]))
        if p == math.inf:
            total = max(total, a)
        elif p == 2.0:
            total += a * a
        elif p == 1.0:
            total += a
        else:
            total += a ** p
    partials[t] = total


def _run(fn, param, *args):
    p = flat(param)
    if p.size:
        launch(fn, p.size)(p, *args)


def sgd_step(param, grad, buf, lr, weight_decay, momentum, dampening, nesterov, maximize,
             first):
    _run(_sgd, param, flat(grad), flat(buf), float(lr), float(weight_decay), float(momentum),
         float(dampening), bool(nesterov), bool(maximize), bool(first))


def adagrad_step(param, grad, state_sum, clr, weight_decay, eps, maximize):
    _run(_adagrad, param, flat(grad), flat(state_sum), float(clr), float(weight_decay),
         float(eps), bool(maximize))


def rmsprop_step(param, grad, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                 momentum, centered, maximize):
    _run(_rmsprop, param, flat(grad), flat(square_avg), flat(grad_avg), flat(buf), float(lr),
         float(alpha), float(eps), float(weight_decay), float(momentum), bool(centered),
         bool(maximize))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
              weight_decay, decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    _run(_adam, param, flat(grad), flat(exp_avg), flat(exp_avg_sq), flat(max_exp_avg_sq),
         float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
         bool(decoupled), bool(amsgrad), bool(maximize), float(step_size),
         float(bias_correction2_sqrt))


def grad_norm_pow(x, norm_type):
    """sum(|x|^norm_type), or max|x| for norm_type = inf, as a Python float."""
    x = flat(x)
    if x.size == 0:
        return 0.0
    threads = min(THREADS, (x.size + 31) // 32 * 32)
    blocks = min(MAX_BLOCKS, (x.size + threads - 1) // threads)
    partials = empty((blocks * threads,), np.float64)
    _norm_pow_partials[blocks, threads](x, float(norm_type), partials)
    op = MAX if norm_type == math.inf else SUM
    return float(reduce(op, partials, (0,), False).copy_to_host())
