"""Noise modules, PyTorch's (and torchvision's) names and defaults: Dropout, Dropout2d,
DropConnect (a Linear whose weights are dropped) and StochasticDepth. Each draws its noise only
while `self.training` (Module.train() / eval()) and is the identity, or a plain Linear, in
evaluation; each calls its functional form in ops/dropout.py."""
from ..ops import dropout as D
from .layers import Linear
from .module import Module


class Dropout(Module):
    """Zero each element with probability p, scale the rest by 1 / (1 - p), in training."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = D._check_p("Dropout", p)

    def forward(self, x):
        return D.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Module):
    """Zero whole channels of an (N, C, H, W) or (C, H, W) input with probability p, scale the
    rest by 1 / (1 - p), in training."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = D._check_p("Dropout2d", p)

    def forward(self, x):
        return D.dropout2d(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class DropConnect(Linear):
    """A Linear(in_features, out_features, bias) whose weight entries are dropped with
    probability p (the rest scaled by 1 / (1 - p)) in training, with a fresh mask each forward;
    a plain Linear in evaluation. The bias is never dropped."""

    def __init__(self, in_features, out_features, p=0.5, bias=True, device=None, dtype=None):
        p = D._check_p("DropConnect", p)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p = p

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"DropConnect: expected input with last dimension "
                             f"{self.in_features} (in_features), got shape {x.shape}")
        return D.drop_connect(x, self.weight, self.bias, self.p, self.training)

    def extra_repr(self):
        return super().extra_repr() + f", p={self.p}"


class StochasticDepth(Module):
    """Drop a residual branch with probability p in training (torchvision): mode="row" per
    sample, mode="batch" for the whole batch; survivors scaled by 1 / (1 - p)."""

    def __init__(self, p, mode):
        super().__init__()
        self.p = D._check_p("StochasticDepth", p)
        if mode not in ("row", "batch"):
            raise ValueError(f"StochasticDepth: mode must be 'row' or 'batch', got {mode!r}")
        self.mode = mode

    def forward(self, x):
        return D.stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
