"""Neural-network modules: Module and Parameter, containers, layers; `init` for weight
initialisation, `functional` (F) for the layer math as functions, and `summary` (torchinfo's
per-layer table)."""
from . import functional, init, utils
from .activation import (ELU, GELU, SELU, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, SiLU,
                         Swish, Tanh)
from .dropout import DropConnect, Dropout, Dropout2d, StochasticDepth
from .loss import (BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   MultiMarginLoss, NLLLoss, SmoothL1Loss)
from .layers import Flatten, Identity, Linear, ModuleList, Sequential
from .module import Module, Parameter
from .summary import LayerRow, ModelSummary, summary
from .conv import *  # noqa: F401,F403  (each layer module lists its layers in __all__)
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
