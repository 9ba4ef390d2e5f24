"""L-BFGS (Nocedal and Wright, "Numerical Optimization", algorithms 7.4 and 7.5), as PyTorch's
torch.optim.LBFGS: for full-batch, deterministic problems, where a few well-chosen steps along
a quasi-Newton direction beat many small ones (it works poorly on noisy mini-batches).

Each step() runs up to `max_iter` iterations. An iteration builds the direction
d = -H g from the last `history_size` pairs (s = step taken, y = change in gradient) by the
two-loop recursion, scaled by H_0 = s.y / y.y, then moves t * d: with
line_search_fn="strong_wolfe" t satisfies the strong Wolfe conditions (sufficient decrease
c1 = 1e-4, curvature c2 = 0.9) found by bracketing and cubic interpolation; without it, t = lr
(the first iteration of a run takes min(1, 1/|g|_1) * lr). It stops when the largest gradient
element is below tolerance_grad, the step or the change in loss is below tolerance_change, or
max_iter / max_eval is reached.

The work is on float64 host copies of the flattened parameters (a few large steps per call);
the parameters are written back once per evaluation.

    opt = optim.LBFGS(model.parameters(), lr=1, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); return loss
    opt.step(closure)
"""
import math

import numpy as np

from ..kernels import scalar as S
from .optimizer import Optimizer, _enable_grad, check_number

__all__ = ["LBFGS"]


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clamped to
    `bounds` (default: between x1 and x2); the middle of the bounds if the cubic has none."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        t = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(t, lo), hi)


def strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                 max_ls=25):
    """A step t along d with f(x + t d) <= f + c1 t g.d and |g(x + t d).d| <= c2 |g.d|.
    `evaluate(t)` returns (loss, flat gradient) at x + t d. Returns (f, g, t, evaluations).

    First widen t until a bracket [t_prev, t] must hold an acceptable step (the loss rose,
    or the slope turned non-negative), then shrink the bracket by cubic interpolation (the
    "zoom"), nudging t away from the ends when it makes too little progress."""
    d_norm = np.abs(d).max()
    f_new, g_new = evaluate(t)
    evals, gtd_new = 1, g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done, ls_iter, bracket = False, 0, None
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, done = [[t, f_new, g_new, gtd_new]], True
            break
        if gtd_new >= 0:  # the slope turned: a minimum lies between t_prev and t
            bracket = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        # extrapolate: the cubic's minimiser, at least a bit beyond t and at most 10 t
        t_next = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                   bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals, gtd_new, ls_iter = evals + 1, g_new.dot(d), ls_iter + 1
    if bracket is None:  # no bracket within max_ls evaluations
        bracket = [[0.0, f, g, gtd], [t, f_new, g_new, gtd_new]]

    insufficient_progress = False
    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    while not done and ls_iter < max_ls:
        (t0, f0, _, gtd0), (t1, f1, _, gtd1) = bracket
        if abs(t1 - t0) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(t0, f0, gtd0, t1, f1, gtd1)
        top, bottom = max(t0, t1), min(t0, t1)
        eps = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < eps:  # too close to an end of the bracket
            if insufficient_progress or t >= top or t <= bottom:
                t = top - eps if abs(t - top) < abs(t - bottom) else bottom + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evals, gtd_new, ls_iter = evals + 1, g_new.dot(d), ls_iter + 1
        if f_new > f + c1 * t * gtd or f_new >= bracket[low][1]:
            bracket[high] = [t, f_new, g_new, gtd_new]
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = [t, f_new, g_new, gtd_new]
    t, f_new, g_new, _ = bracket[low]
    return f_new, g_new, t, evals


class LBFGS(Optimizer):
    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        check_number("learning rate", lr, 0.0)
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"LBFGS: max_iter must be a positive int, got {max_iter!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"LBFGS: history_size must be a positive int, got "
                             f"{history_size!r}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _check_group(self, g):
        check_number("learning rate", g["lr"], 0.0)

    # ----- flat host views of the parameters -----
    def _gather_flat_grad(self):
        return np.concatenate([
            np.zeros(p.size) if p.grad is None else p.grad.numpy().reshape(-1).astype(np.float64)
            for p in self._params])

    def _get_flat(self):
        return np.concatenate([p.numpy().reshape(-1).astype(np.float64) for p in self._params])

    def _set_flat(self, x):
        offset = 0
        for p in self._params:
            k = p.device.backend
            new = k.from_numpy(x[offset:offset + p.size].reshape(p.shape).astype(p.dtype))
            p._write(lambda a: k.elementwise(S.COPY, (new,), p.dtype, out=a))
            offset += p.size

    def _evaluate(self, closure):
        with _enable_grad():
            loss = closure()
        return float(loss.item() if hasattr(loss, "item") else loss), self._gather_flat_grad()

    def step(self, closure=None):
        """Up to max_iter L-BFGS iterations; `closure` (required) zeroes the gradients,
        computes the loss, calls backward() and returns the loss. Returns the first loss."""
        if closure is None:
            raise RuntimeError("LBFGS.step: a closure that re-evaluates the model and returns "
                               "the loss is required")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with _enable_grad():
            first_loss = closure()
        loss = float(first_loss.item() if hasattr(first_loss, "item") else first_loss)
        flat_grad = self._gather_flat_grad()
        evals = 1
        state["func_evals"] += 1
        if np.abs(flat_grad).max() <= tol_grad:
            return first_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = (state.get(k) for k in ("old_dirs", "old_stps", "ro"))
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, old_dirs, old_stps, ro, H_diag = -flat_grad, [], [], [], 1.0
            else:
                y, s = flat_grad - prev_flat_grad, d * t
                ys = y.dot(s)
                if ys > 1e-10:  # keep the pair only if it has positive curvature
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                # two-loop recursion: q = H g with H_0 = H_diag * I
                alpha = [0.0] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    alpha[i] = old_stps[i].dot(q) * ro[i]
                    q -= alpha[i] * old_dirs[i]
                d = q * H_diag
                for i in range(len(old_dirs)):
                    beta = old_dirs[i].dot(d) * ro[i]
                    d += old_stps[i] * (alpha[i] - beta)
            prev_flat_grad, prev_loss = flat_grad.copy(), loss
            t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tol_change:  # not a descent direction any more
                break

            x = self._get_flat()
            if group["line_search_fn"] == "strong_wolfe":
                def evaluate(step):
                    self._set_flat(x + step * d)
                    return self._evaluate(closure)

                loss, flat_grad, t, ls_evals = strong_wolfe(evaluate, t, d, loss, flat_grad,
                                                            gtd)
                self._set_flat(x + t * d)
            else:
                self._set_flat(x + t * d)
                ls_evals = 0
                if n_iter != max_iter:  # the last iteration needs no new gradient
                    loss, flat_grad = self._evaluate(closure)
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if n_iter == max_iter or evals >= max_eval:
                break
            if np.abs(flat_grad).max() <= tol_grad:
                break
            if np.abs(d * t).max() <= tol_change or abs(loss - prev_loss) < tol_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return first_loss
