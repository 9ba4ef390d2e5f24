"""The per-element math of the optimiser updates, written once for both devices.

Each rule is a plain Python function that updates element `i` of a parameter `p` and of its
state arrays in place, from the gradient `g`. `compile_all(jit)` compiles them for one device
(kernels/cpu/optim.py passes `numba.njit(inline="always")` and calls them from prange loops;
kernels/cuda/optim.py passes `kernels.cuda.jit.device` and calls them from grid-stride loops),
so the loops are all that differs between the devices.

Switches (nesterov, amsgrad, centered, maximize...) are runtime arguments, so each kernel
compiles once per dtype; a state array a switch leaves unused is an empty array of the
parameter's dtype (one signature), never indexed. Scalars arrive as float64 and the arithmetic
runs in float64; each value is rounded once, when it is stored into the parameter's or a state
array's dtype. The update equations are PyTorch's (torch/optim/*.py), documented in
tinygrad_lite/optim/.
"""
import math
import types

import numpy as np


def sgd(i, p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, first):
    """SGD: d = g (+ weight_decay * p); with momentum, b = d on the first step, else
    b = momentum * b + (1 - dampening) * d, and d = d + momentum * b (Nesterov) or b;
    p -= lr * d. `first`: the momentum buffer is initialised this step."""
    d = -np.float64(g[i]) if maximize else np.float64(g[i])
    if weight_decay != 0.0:
        d += weight_decay * p[i]
    if momentum != 0.0:
        b = d if first else momentum * buf[i] + (1.0 - dampening) * d
        buf[i] = b
        d = d + momentum * b if nesterov else b
    p[i] = p[i] - lr * d


def adagrad(i, p, g, state_sum, clr, weight_decay, eps, maximize):
    """AdaGrad: d = g (+ weight_decay * p); sum += d^2; p -= clr * d / (sqrt(sum) + eps),
    with the decayed rate clr = lr / (1 + (t - 1) * lr_decay) from the host. The square root
    reads the stored (rounded) sum, as PyTorch does."""
    d = -np.float64(g[i]) if maximize else np.float64(g[i])
    if weight_decay != 0.0:
        d += weight_decay * p[i]
    state_sum[i] = state_sum[i] + d * d
    p[i] = p[i] - clr * d / (math.sqrt(np.float64(state_sum[i])) + eps)


def rmsprop(i, p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum,
            centered, maximize):
    """RMSprop: d = g (+ weight_decay * p); v = alpha * v + (1 - alpha) * d^2; centred:
    m = alpha * m + (1 - alpha) * d and the denominator uses v - m^2; step = d / (sqrt(.) +
    eps); with momentum, buf = momentum * buf + step and step = buf; p -= lr * step. Each
    stored average is read back rounded, as PyTorch's in-place updates do."""
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


def adam(i, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
         decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt):
    """Adam / AdamW: AdamW (`decoupled`) shrinks p by (1 - lr * weight_decay), Adam adds
    weight_decay * p to d; m = beta1 * m + (1 - beta1) * d; v = beta2 * v + (1 - beta2) * d^2;
    AMSGrad uses vmax = max(vmax, v) in place of v; p -= step_size * m /
    (sqrt(v) / bias_correction2_sqrt + eps), with step_size = lr / (1 - beta1^t) and
    bias_correction2_sqrt = sqrt(1 - beta2^t) from the host, computed once per step."""
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


def norm_pow(total, x, p):
    """One element x folded into a gradient-norm accumulator: total + |x|^p, or max(total, |x|)
    for p = inf. p = 2 and 1 avoid the pow call (the common cases)."""
    a = abs(np.float64(x))
    if p == math.inf:
        return max(total, a)
    if p == 2.0:
        return total + a * a
    if p == 1.0:
        return total + a
    return total + a ** p


_FUNCTIONS = ("sgd", "adagrad", "rmsprop", "adam", "norm_pow")


def compile_all(jit):
    """Every function above compiled with `jit` (as kernels/scalar.py's compile_all does: each
    copy's scope holds the compiled versions, should one rule ever call another). Returns a
    namespace: compiled.sgd, compiled.adam, ..."""
    scope = dict(globals())
    for name in _FUNCTIONS:
        fn = globals()[name]
        scope[name] = jit(types.FunctionType(fn.__code__, scope, name, fn.__defaults__))
    return types.SimpleNamespace(**{name: scope[name] for name in _FUNCTIONS})
