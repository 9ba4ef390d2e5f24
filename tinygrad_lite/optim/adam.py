"""Adam (Kingma and Ba, 2015) and AdamW (Loshchilov and Hutter, 2019): running averages of the
gradient and of its square, bias-corrected, with optional AMSGrad (PyTorch's torch.optim.Adam
and AdamW, same arguments and update).

With g_t the gradient (negated when maximize), t counted from 1 and lambda the weight decay:

    Adam:  g_t <- g_t + lambda * theta_{t-1}          (L2 through the gradient)
    AdamW: theta_{t-1} <- theta_{t-1} * (1 - lr * lambda)   (decoupled decay)
    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
    AMSGrad: v^max_t = max(v^max_{t-1}, v_t), used in place of v_t below
    theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

So the first step moves each element by about lr (m_1 / sqrt(v_1) = sign(g) after correction).

    opt = optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
"""
import math

from .optimizer import Optimizer, check_number

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    _DECOUPLED = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check_group(self, g):
        name = type(self).__name__
        check_number("learning rate", g["lr"], 0.0)
        check_number("epsilon value", g["eps"], 0.0)
        check_number("weight_decay value", g["weight_decay"], 0.0)
        betas = g["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        g["betas"] = tuple(betas)
        check_number("beta parameter at index 0", betas[0], 0.0, 1.0, high_open=True)
        check_number("beta parameter at index 1", betas[1], 0.0, 1.0, high_open=True)

    def _update(self, p, grad, g, state):
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = self._zeros(p), self._zeros(p)
        if g["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = self._zeros(p)
        state["step"] += 1
        beta1, beta2 = g["betas"]
        t = state["step"]
        max_sq = state["max_exp_avg_sq"].array if g["amsgrad"] else self._unused(p)
        p.device.backend.adam_step(
            p.array, grad, state["exp_avg"].array, state["exp_avg_sq"].array, max_sq, g["lr"],
            beta1, beta2, g["eps"], g["weight_decay"], self._DECOUPLED, g["amsgrad"],
            g["maximize"], g["lr"] / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t))


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2): the decay shrinks the parameters
    directly instead of entering the moment estimates."""
    _DECOUPLED = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
