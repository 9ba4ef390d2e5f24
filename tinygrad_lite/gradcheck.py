"""Gradient checking, the lectures' way: analytic gradients against centred finite differences
in float64, judged by relative error."""
import numpy as np

from . import dtype as dt
from .tensor import Tensor


class GradcheckResult:
    """Truthy when every gradient element passed; says where the worst relative error was."""

    def __init__(self, passed, max_rel_error, worst, analytic, numeric):
        self.passed, self.max_rel_error, self.worst = passed, max_rel_error, worst
        self.analytic, self.numeric = analytic, numeric

    def __bool__(self):
        return self.passed

    def __repr__(self):
        where = "" if self.worst is None else (
            f", worst at input {self.worst[0]} index {self.worst[1]}: analytic "
            f"{self.worst[2]:.6g} vs numeric {self.worst[3]:.6g}")
        return (f"GradcheckResult(passed={self.passed}, max_rel_error="
                f"{self.max_rel_error:.3g}{where})")


def _output(fn, inputs):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _scalar_objective(fn, inputs, weights):
    out = _output(fn, inputs)
    return out if weights is None else (out * weights).sum()


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare the gradient of a random projection <w, fn(*inputs)> computed by backward()
    with centred differences (f(x+eps) - f(x-eps)) / 2 eps, element by element, in float64.

    `inputs` are tensors (or arrays); float ones are checked. An element passes when
    |analytic - numeric| <= atol + rtol * |numeric|. Returns a GradcheckResult that reports the
    worst relative error |a - n| / max(|a|, |n|) and where it occurred."""
    inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    leaves = [Tensor(x.numpy(), dtype=dt.float64, device=x.device, requires_grad=True)
              if dt.is_float(x.dtype) else x for x in inputs]
    checked = [i for i, x in enumerate(leaves) if x.requires_grad]
    probe = _output(fn, leaves)
    weights = None
    if probe.size != 1:
        rng = np.random.default_rng(seed)
        weights = Tensor(rng.standard_normal(probe.shape), dtype=dt.float64, device=probe.device)
    _scalar_objective(fn, leaves, weights).backward()

    passed, worst_err, worst = True, 0.0, None
    analytic_all, numeric_all = [], []
    for i in checked:
        x = leaves[i]
        base = x.numpy().astype(np.float64)
        analytic = (x.grad.numpy() if x.grad is not None else np.zeros_like(base)).reshape(-1)
        numeric = np.empty(base.size)
        flat = base.reshape(-1)
        for j in range(flat.size):
            values = []
            for delta in (eps, -eps):
                moved = flat.copy()
                moved[j] += delta
                trial = list(leaves)
                trial[i] = Tensor(moved.reshape(base.shape), dtype=dt.float64, device=x.device)
                values.append(_scalar_objective(fn, trial, weights).item())
            numeric[j] = (values[0] - values[1]) / (2 * eps)
        diff = np.abs(analytic - numeric)
        ok = diff <= atol + rtol * np.abs(numeric)
        passed &= bool(ok.all())
        rel = diff / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-300)
        rel = np.where(diff == 0, 0.0, rel)
        if rel.size and rel.max() >= worst_err:
            j = int(np.argmax(rel))
            index = tuple(int(n) for n in np.unravel_index(j, base.shape))
            worst_err, worst = float(rel[j]), (i, index, float(analytic[j]), float(numeric[j]))
        analytic_all.append(analytic.reshape(base.shape))
        numeric_all.append(numeric.reshape(base.shape))
    return GradcheckResult(passed, worst_err, worst, analytic_all, numeric_all)
