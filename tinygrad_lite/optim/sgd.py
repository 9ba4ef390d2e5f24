"""Stochastic gradient descent with momentum, dampening and Nesterov momentum (PyTorch's
torch.optim.SGD, same arguments and update).

With g_t the gradient (negated when maximize), lambda the weight decay, mu the momentum,
tau the dampening and gamma the learning rate:

    g_t <- g_t + lambda * theta_{t-1}
    b_t  = g_t                                  on the first step
    b_t  = mu * b_{t-1} + (1 - tau) * g_t       after
    g_t <- g_t + mu * b_t  (Nesterov)   or   g_t <- b_t
    theta_t = theta_{t-1} - gamma * g_t

The Nesterov form is the usual change of variables of the look-ahead update (Sutskever et
al., 2013), so the gradient is taken at the parameters themselves.

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
"""
from .optimizer import Optimizer, check_number, required

__all__ = ["SGD"]


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, g):
        if g["lr"] is not required:
            check_number("learning rate", g["lr"], 0.0)
        check_number("momentum value", g["momentum"], 0.0)
        check_number("dampening", g["dampening"])
        check_number("weight_decay value", g["weight_decay"], 0.0)
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum requires a momentum > 0 and zero "
                             f"dampening, got momentum={g['momentum']}, "
                             f"dampening={g['dampening']}")

    def _update(self, p, grad, g, state):
        first = False
        if g["momentum"] != 0 and state.get("momentum_buffer") is None:
            state["momentum_buffer"], first = self._zeros(p), True
        buf = state["momentum_buffer"].array if g["momentum"] != 0 else self._unused(p)
        p.device.backend.sgd_step(p.array, grad, buf, g["lr"], g["weight_decay"],
                                  g["momentum"], g["dampening"], g["nesterov"], g["maximize"],
                                  first)
