"""RMSprop (Hinton's "leaky AdaGrad"): a running average of squared gradients, decay `alpha`,
scales each element's step; optionally centred (divide by an estimate of the variance instead
of the raw second moment) and with momentum (PyTorch's torch.optim.RMSprop, same arguments
and update).

With g_t the gradient (negated when maximize) and lambda the weight decay:

    g_t <- g_t + lambda * theta_{t-1}
    v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2
    centred: m_t = alpha * m_{t-1} + (1 - alpha) * g_t,  v~_t = v_t - m_t^2;  else v~_t = v_t
    u_t = g_t / (sqrt(v~_t) + eps)
    momentum mu > 0: b_t = mu * b_{t-1} + u_t, u_t <- b_t
    theta_t = theta_{t-1} - lr * u_t

    opt = optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.99)
"""
from .optimizer import Optimizer, check_number

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      maximize=maximize))

    def _check_group(self, g):
        check_number("learning rate", g["lr"], 0.0)
        check_number("epsilon value", g["eps"], 0.0)
        check_number("momentum value", g["momentum"], 0.0)
        check_number("weight_decay value", g["weight_decay"], 0.0)
        check_number("alpha value", g["alpha"], 0.0)

    def _update(self, p, grad, g, state):
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = self._zeros(p)
        if g["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._zeros(p)
        if g["centered"] and "grad_avg" not in state:
            state["grad_avg"] = self._zeros(p)
        state["step"] += 1
        unused = self._unused(p)
        grad_avg = state["grad_avg"].array if g["centered"] else unused
        buf = state["momentum_buffer"].array if g["momentum"] > 0 else unused
        p.device.backend.rmsprop_step(p.array, grad, state["square_avg"].array, grad_avg, buf,
                                      g["lr"], g["alpha"], g["eps"], g["weight_decay"],
                                      g["momentum"], g["centered"], g["maximize"])
