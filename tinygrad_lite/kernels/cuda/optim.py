"""CUDA kernels for optimiser updates, in place: grid-stride loops, one thread per element,
calling the per-element math of kernels/optim_math.py (shared with kernels/cpu/optim.py) as
device functions: the same float64 arithmetic and the same switches as runtime arguments (one
compile per dtype). A state array a switch leaves unused is an empty device array of the
parameter's dtype."""
import math

import numpy as np
from numba import cuda

from .. import optim_math
from ..scalar import MAX, SUM
from .jit import MAX_BLOCKS, THREADS, device, kernel, launch
from .memory import empty, flat
from .reduce import reduce

__all__ = ["sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "grad_norm_pow"]

# No content tag needed (unlike the CPU kernels): CUDA kernels are not cached on disk (jit.py).
_MATH = optim_math.compile_all(device)
_sgd_update, _adagrad_update, _rmsprop_update, _adam_update, _norm_pow_fold = (
    _MATH.sgd, _MATH.adagrad, _MATH.rmsprop, _MATH.adam, _MATH.norm_pow)


@kernel
def _sgd(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, first):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        _sgd_update(i, p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize,
                    first)


@kernel
def _adagrad(p, g, state_sum, clr, weight_decay, eps, maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        _adagrad_update(i, p, g, state_sum, clr, weight_decay, eps, maximize)


@kernel
def _rmsprop(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, centered,
             maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        _rmsprop_update(i, p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay,
                        momentum, centered, maximize)


@kernel
def _adam(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
          decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        _adam_update(i, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                     weight_decay, decoupled, amsgrad, maximize, step_size,
                     bias_correction2_sqrt)


@kernel
def _norm_pow_partials(x, p, partials):
    # Each thread folds its grid-stride share into partials[thread]; the existing reduction
    # then combines the partials (one small array, whatever the size of x).
    t = cuda.grid(1)
    total = 0.0
    for i in range(t, x.size, cuda.gridsize(1)):
        total = _norm_pow_fold(total, x[i], p)
    partials[t] = total


def _run(fn, param, *args):
    p = flat(param)
    if p.size:
        # Scalars as np.float64: the same float64 type to the compiler as a Python float, but
        # on the simulator it keeps NumPy from doing `lr * float32 element` in float32 (a
        # Python float is a "weak" scalar to NumPy), so the simulator computes as the GPU does.
        args = [np.float64(a) if type(a) is float else a for a in args]
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
