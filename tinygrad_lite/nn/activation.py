"""Activation modules, PyTorch's names and defaults: ReLU, LeakyReLU, PReLU, ELU, SELU, SiLU,
Swish, GELU, Sigmoid, Tanh, and Maxout (not in PyTorch: a Linear(in, out * pieces) followed
by a max over each group of `pieces`). Each calls the functional form; only PReLU and Maxout
hold parameters."""
from .. import creation
from ..ops import activation as A
from . import functional as F
from .layers import Linear
from .module import Module, Parameter


class ReLU(Module):
    """max(0, x); the gradient at 0 is 0."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """Leaky ReLU whose slope is learned: `num_parameters` = 1 (one slope shared by every
    element) or the number of channels (dim 1 of the input), each starting at `init`."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) \
                or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int, got "
                             f"{num_parameters!r}")
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(creation.full((num_parameters,), init, dtype=dtype,
                                              device=device))

    def forward(self, x):
        n = self.num_parameters
        if n != 1 and (x.ndim < 2 or x.shape[1] != n):
            raise ValueError(f"PReLU: expected {n} channels in dim 1 (num_parameters), got "
                             f"input of shape {tuple(x.shape)}")
        return A.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return A.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SELU(Module):
    """scale * ELU(x, alpha), alpha = 1.6732632423543772, scale = 1.0507009873554805."""

    def forward(self, x):
        return A.selu(x)


class SiLU(Module):
    """x * sigmoid(x)."""

    def forward(self, x):
        return A.silu(x)


class Swish(Module):
    """x * sigmoid(beta * x); beta = 1 is SiLU."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return A.swish(x, self.beta)

    def extra_repr(self):
        return f"beta={self.beta}"


class GELU(Module):
    """x * Phi(x) (exact, erf), or its tanh approximation with approximate='tanh'."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got "
                             f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return A.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Maxout(Module):
    """max over k = `pieces` affine maps: y_j = max_i (w_ij . x + b_ij). Holds
    `linear` = Linear(in_features, out_features * pieces); unit j uses its output columns
    j * pieces ... j * pieces + pieces - 1. Twice the parameters of a Linear per neuron at
    pieces = 2."""

    def __init__(self, in_features, out_features, pieces=2, bias=True, device=None,
                 dtype=None):
        super().__init__()
        if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
            raise ValueError(f"Maxout: pieces must be a positive int, got {pieces!r}")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.linear = Linear(in_features, out_features * pieces, bias=bias, device=device,
                             dtype=dtype)

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Maxout: expected input with last dimension {self.in_features} "
                             f"(in_features), got shape {tuple(x.shape)}")
        return A.maxout(self.linear(x), self.pieces)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"pieces={self.pieces}")
