"""Neural-network modules: Module and Parameter, containers, layers; `init` for weight
initialisation and `functional` (F) for the layer math as functions."""
from . import functional, init
from .layers import Flatten, Identity, Linear, ModuleList, Sequential
from .module import Module, Parameter
