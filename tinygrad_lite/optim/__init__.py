"""Optimisers and learning-rate schedules, as torch.optim: `Optimizer` (parameter groups,
state_dict), the rules SGD (momentum, Nesterov), Adagrad, RMSprop, Adam, AdamW and LBFGS, the
penalties `l1_penalty`, `l2_penalty`, `elastic_net_penalty` (loss terms for any rule), and the
`lr_scheduler` and `swa_utils` (stochastic weight averaging, EMA) submodules."""
from . import lr_scheduler, swa_utils
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
from ..nn.regularization import elastic_net_penalty, l1_penalty, l2_penalty

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "LBFGS", "lr_scheduler",
           "swa_utils",
           "l1_penalty", "l2_penalty", "elastic_net_penalty"]
