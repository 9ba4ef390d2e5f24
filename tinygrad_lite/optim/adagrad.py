"""AdaGrad (Duchi et al., 2011): each element's step is divided by the root of the sum of its
squared gradients so far, so the effective step decays towards zero (PyTorch's
torch.optim.Adagrad, same arguments and update).

With g_t the gradient (negated when maximize), lambda the weight decay and t counted from 1:

    g_t <- g_t + lambda * theta_{t-1}
    gamma_t = lr / (1 + (t - 1) * lr_decay)
    s_t = s_{t-1} + g_t^2                       (s_0 = initial_accumulator_value)
    theta_t = theta_{t-1} - gamma_t * g_t / (sqrt(s_t) + eps)

    opt = optim.Adagrad(model.parameters(), lr=0.01)
"""
from .optimizer import Optimizer, check_number

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _check_group(self, g):
        check_number("learning rate", g["lr"], 0.0)
        check_number("lr_decay value", g["lr_decay"], 0.0)
        check_number("weight_decay value", g["weight_decay"], 0.0)
        check_number("initial_accumulator_value", g["initial_accumulator_value"], 0.0)
        check_number("epsilon value", g["eps"], 0.0)

    def _update(self, p, grad, g, state):
        if "sum" not in state:
            state["step"] = 0
            state["sum"] = self._zeros(p, g["initial_accumulator_value"])
        state["step"] += 1
        clr = g["lr"] / (1 + (state["step"] - 1) * g["lr_decay"])
        p.device.backend.adagrad_step(p.array, grad, state["sum"].array, clr,
                                      g["weight_decay"], g["eps"], g["maximize"])
