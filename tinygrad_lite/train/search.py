"""Hyperparameter search: many short training runs ("trials"), each a call `objective(config)`
that trains and returns a dict of metrics, over a space of ranges (the lectures' recipe: a
coarse random search in short runs, then a finer one around the best, trained longer).

    from tinygrad_lite.train.search import LogUniform, search

    def objective(config, budget, seed):      # module level: process pools pickle it
        tl.manual_seed(seed)
        ...train for `budget` epochs with config["lr"], config["weight_decay"]...
        return {"val_accuracy": history["val_accuracy"][-1]}

    space = {"lr": LogUniform(1e-4, 1e-1), "weight_decay": LogUniform(1e-6, 1e-2)}
    coarse = search(objective, space, n_trials=20, max_budget=2)
    print(coarse)                              # the trials, best first
    coarse.plot("coarse.png")                  # each parameter against the metric
    fine = search(objective, coarse.refine(), n_trials=10, max_budget=10, seed=1)

Methods: "random" (configs drawn independently; Bergstra and Bengio, 2012: better than a grid
when few parameters matter), "grid" (the product of grid_points values per range and every
Choice value) and "halving" (successive halving: n_trials configs get min_budget epochs, the
best 1/eta of them eta times more, and so on up to max_budget).

Trials are independent, so they run on any concurrent.futures.Executor: in this process when
`executor` is None, in a ProcessPoolExecutor, or on a Dask cluster (a distributed.Client, or
its get_executor()). The configs, and each trial's seed, are drawn up front from `seed`
alone, and results are kept in the drawn order, so the table is the same on every executor
and whatever order the trials finish in. A trial that raises, or returns a NaN, infinite or
missing metric, is recorded as failed with the reason; the search goes on.
"""
import concurrent.futures
import csv
import inspect
import itertools
import math
import os
import pickle
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

__all__ = ["Uniform", "LogUniform", "IntUniform", "Choice", "Trial", "SearchResult",
           "RangeEdgeWarning", "search"]

METHODS = ("random", "grid", "halving")
# The best value of a range in its outer EDGE fraction (log scale for log ranges) draws a
# RangeEdgeWarning: the optimum may lie beyond the range.
EDGE = 0.1
# A refined range keeps at least this fraction of its old width (in log for log ranges), so
# that top trials which agree (one grid point, a single trial) still leave room to search.
MIN_REFINED_FRACTION = 0.1


# ----------------------------------------------------------------------------- the space
class _Range:
    """A numeric range [lo, hi]; subclasses say how it is drawn and on which scale it is
    measured (`_scale`: linear, or log for LogUniform)."""
    log = False

    def __init__(self, lo, hi):
        name = type(self).__name__
        for what, v in (("lo", lo), ("hi", hi)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v):
                raise ValueError(f"{name}: {what} must be a finite number, got {v!r}")
        if not lo < hi:
            raise ValueError(f"{name}: needs lo < hi, got lo={lo!r}, hi={hi!r}")
        self.lo, self.hi = lo, hi

    def _scale(self, v):
        return math.log(v) if self.log else float(v)

    def _unscale(self, u):
        return math.exp(u) if self.log else float(u)

    def position(self, v):
        """Where v lies in the range: 0 at lo, 1 at hi (on the log scale for log ranges)."""
        lo, hi = self._scale(self.lo), self._scale(self.hi)
        return (self._scale(v) - lo) / (hi - lo)

    def contains(self, v):
        return self.lo <= v <= self.hi

    def narrowed(self, lo, hi):
        """The same kind of range over [lo, hi] (scaled values: log for log ranges), clipped
        to this one (in its own units, so that rounding never leaves it)."""
        return type(self)(max(self.lo, self._unscale(lo)), min(self.hi, self._unscale(hi)))

    def __eq__(self, other):
        return type(self) is type(other) and (self.lo, self.hi) == (other.lo, other.hi)

    def __repr__(self):
        return f"{type(self).__name__}({self.lo!r}, {self.hi!r})"


class Uniform(_Range):
    """A float drawn uniformly from [lo, hi) (grid: evenly spaced, both ends included)."""

    def sample(self, rng):
        return float(rng.uniform(self.lo, self.hi))

    def grid(self, points):
        return [float(v) for v in np.linspace(self.lo, self.hi, points)]


class LogUniform(_Range):
    """A positive float whose logarithm is drawn uniformly: each decade of [lo, hi) is equally
    likely (learning rates, weight decay). Grid: geometrically spaced, both ends included."""
    log = True

    def __init__(self, lo, hi):
        super().__init__(lo, hi)
        if lo <= 0:
            raise ValueError(f"LogUniform: needs 0 < lo < hi, got lo={lo!r}, hi={hi!r}")

    def sample(self, rng):
        return math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))

    def grid(self, points):
        return [float(v) for v in np.geomspace(self.lo, self.hi, points)]


class IntUniform(_Range):
    """An int drawn uniformly from lo..hi, both ends included (as random.randint); lo == hi is
    allowed (a refined range can shrink to one value). Grid: evenly spaced, rounded, without
    repeats."""

    def __init__(self, lo, hi):
        for what, v in (("lo", lo), ("hi", hi)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"IntUniform: {what} must be an int, got {v!r}")
        if not lo <= hi:
            raise ValueError(f"IntUniform: needs lo <= hi, got lo={lo!r}, hi={hi!r}")
        self.lo, self.hi = int(lo), int(hi)

    def position(self, v):
        return 0.5 if self.lo == self.hi else (v - self.lo) / (self.hi - self.lo)

    def sample(self, rng):
        return int(rng.integers(self.lo, self.hi, endpoint=True))

    def grid(self, points):
        return sorted({int(v) for v in np.round(np.linspace(self.lo, self.hi, points))})

    def narrowed(self, lo, hi):  # outwards to whole numbers: the top trials stay inside
        return IntUniform(max(self.lo, math.floor(lo + 1e-9)),
                          min(self.hi, math.ceil(hi - 1e-9)))


class Choice:
    """One of `values`, each equally likely (grid: all of them, in their order)."""

    def __init__(self, values):
        self.values = list(values)
        if not self.values:
            raise ValueError("Choice: needs at least one value, got none")

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, points):
        return list(self.values)

    def contains(self, v):
        return v in self.values

    def __eq__(self, other):
        return type(self) is type(other) and self.values == other.values

    def __repr__(self):
        return f"Choice({self.values!r})"


def _check_space(space):
    if not isinstance(space, dict) or not space:
        raise TypeError(f"search: space must be a non-empty dict of name -> Uniform, "
                        f"LogUniform, IntUniform or Choice, got {space!r}")
    for name, dist in space.items():
        if not isinstance(name, str):
            raise TypeError(f"search: space names must be str, got {name!r}")
        if not isinstance(dist, (_Range, Choice)):
            raise TypeError(f"search: space[{name!r}] must be a Uniform, LogUniform, "
                            f"IntUniform or Choice, got {dist!r}")


# ----------------------------------------------------------------------------- trials
@dataclass
class Trial:
    """One row of a search's result.

    index: the trial's place in the drawn order (what `seed` decides); config: the
    hyperparameters (the space's names); seed: the seed the objective was given (when it
    takes `seed=`); status: "ok" or "failed"; value: the searched metric (NaN when failed);
    metrics: everything the objective returned; error: why it failed; time: seconds spent
    in the objective (summed over its rungs); budget: what it last trained with (None when
    no budget was given); rungs: [(budget, value)] per run (halving: one per rung reached)."""
    index: int
    config: dict
    seed: int
    status: str = "pending"
    value: float = math.nan
    metrics: dict = field(default_factory=dict)
    error: str = None
    time: float = 0.0
    budget: object = None
    rungs: list = field(default_factory=list)

    @property
    def ok(self):
        return self.status == "ok"


def _run_trial(objective, config, kwargs, metric):
    """One call of the objective, in whichever process runs it. Failures come back as data
    (status and the error's text), so a failed trial travels like a finished one and never
    stops the search."""
    start = time.perf_counter()
    try:
        returned = objective(dict(config), **kwargs)
        if not isinstance(returned, dict):
            raise TypeError(f"the objective must return a dict of metrics, got "
                            f"{type(returned).__name__}")
        metrics = {}
        for name, v in returned.items():
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"the objective returned metric {name!r} = {v!r}; metrics "
                                f"must be numbers")
            metrics[str(name)] = float(v)
    except Exception as exc:  # the trial failed; the search records it and goes on
        return {"status": "failed", "metrics": {}, "error": f"{type(exc).__name__}: {exc}",
                "time": time.perf_counter() - start}
    elapsed = time.perf_counter() - start
    if metric not in metrics:
        return {"status": "failed", "metrics": metrics, "time": elapsed,
                "error": f"the objective returned no {metric!r} (it returned "
                         f"{sorted(metrics)})"}
    if not math.isfinite(metrics[metric]):  # NaN: diverged; inf: a loss that blew up
        return {"status": "failed", "metrics": metrics, "time": elapsed,
                "error": f"{metric} is {metrics[metric]}"}
    return {"status": "ok", "metrics": metrics, "error": None, "time": elapsed}


def _parameter(fn, name):
    """"required", "optional" or None: whether fn takes the keyword `name` (**kwargs counts
    as optional) and whether it has a default."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return None
    for p in params:
        if p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return "required" if p.default is p.empty else "optional"
    return "optional" if any(p.kind is p.VAR_KEYWORD for p in params) else None


def _is_dask(obj, class_name):
    """Whether obj is a distributed.<class_name>, found by the class's module and name so
    that a search without Dask never imports it."""
    return any(c.__name__ == class_name and c.__module__.split(".")[0] == "distributed"
               for c in type(obj).__mro__)


def _executor(executor):
    """(executor, extra keywords for its submit) for what the user passed. Dask treats calls
    with equal arguments as one unless pure=False: a Client becomes get_executor(pure=False),
    and a ClientExecutor gets pure=False with each submit (it hands submit's keywords to
    Client.submit)."""
    if executor is None:
        return None, {}
    if _is_dask(executor, "Client"):
        return executor.get_executor(pure=False), {}
    if _is_dask(executor, "ClientExecutor"):
        return executor, {"pure": False}
    if isinstance(executor, concurrent.futures.Executor):
        return executor, {}
    raise TypeError(f"search: executor must be None, a concurrent.futures.Executor or a "
                    f"distributed.Client, got {type(executor).__name__}")


def _check_picklable(objective, configs, executor):
    """A process pool pickles the objective and each config by reference to their module;
    fail now with a clear error rather than once per trial in the workers."""
    if not isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        return
    try:
        pickle.dumps((objective, configs))
    except Exception as exc:
        raise TypeError(
            f"search: the objective {getattr(objective, '__qualname__', objective)!r} (or a "
            f"config value) cannot be pickled for the ProcessPoolExecutor's worker processes "
            f"({type(exc).__name__}: {exc}); define the objective as a function at the top "
            f"level of a module (not a lambda, a nested function or a method of a local "
            f"class), binding arguments with functools.partial") from None


def _run_calls(calls, executor, submit_kwargs, bar):
    """Run (objective, config, kwargs, metric) calls; their outcomes in the calls' order,
    whatever order they finish in."""
    if executor is None:
        outcomes = []
        for call in calls:
            outcomes.append(_run_trial(*call))
            bar.update()
        return outcomes
    futures = []
    for call in calls:
        try:
            futures.append(executor.submit(_run_trial, *call, **submit_kwargs))
        except Exception as exc:  # e.g. a process pool broken by a worker that died
            futures.append(exc)
    pending = [f for f in futures if isinstance(f, concurrent.futures.Future)]
    bar.update(len(futures) - len(pending))
    for _ in concurrent.futures.as_completed(pending):
        bar.update()
    outcomes = []
    for f in futures:
        try:
            if isinstance(f, Exception):
                raise f
            outcomes.append(f.result())
        except Exception as exc:  # the executor lost the call (a worker died, a result
            # that did not pickle): that trial failed, the others stand
            outcomes.append({"status": "failed", "metrics": {}, "time": math.nan,
                             "error": f"{type(exc).__name__}: {exc}"})
    return outcomes


def _record(trial, outcome, budget, metric):
    trial.status, trial.metrics, trial.error = outcome["status"], outcome["metrics"], \
        outcome["error"]
    trial.value = outcome["metrics"][metric] if trial.ok else math.nan
    trial.time += outcome["time"]
    trial.budget = budget
    trial.rungs.append((budget, trial.value))


def _rung_budgets(min_budget, max_budget, eta):
    """min_budget, min_budget*eta, ... while below max_budget, then max_budget itself (ints
    when both ends are ints)."""
    count = int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9)) + 1
    budgets = [min_budget * eta ** i for i in range(count - 1)] + [max_budget]
    if isinstance(min_budget, int) and isinstance(max_budget, int):
        budgets = [int(round(b)) for b in budgets]
    return sorted(set(budgets))


def _best_first(trials, mode):
    """The finished trials, best first: the highest budget reached (halving), then the best
    value, then the drawn order (ties)."""
    sign = 1.0 if mode == "max" else -1.0
    return sorted((t for t in trials if t.ok),
                  key=lambda t: (-(t.budget or 0), -sign * t.value, t.index))


def _survivors(count, eta):
    """How many of a rung's trials go on to the next: the best 1/eta, at least one."""
    return max(1, int(count // eta))


def _draw(space, method, n_trials, grid_points, seed):
    """The configs and per-trial seeds: from `seed` alone, before any trial runs."""
    config_seq, seed_seq = np.random.SeedSequence(seed).spawn(2)
    if method == "grid":
        axes = [dist.grid(grid_points) for dist in space.values()]
        configs = [dict(zip(space, values)) for values in itertools.product(*axes)]
    else:
        rng = np.random.default_rng(config_seq)
        configs = [{name: dist.sample(rng) for name, dist in space.items()}
                   for _ in range(n_trials)]
    seeds = np.random.default_rng(seed_seq).integers(0, 2 ** 31 - 1, size=len(configs))
    return configs, [int(s) for s in seeds]


def _check_number(name, value, low, integer=False, where="search"):
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= low or \
            not math.isfinite(value):
        what = "an int" if integer else "a number"
        raise ValueError(f"{where}: {name} must be {what} >= {low}, got {value!r}")


def search(objective, space, n_trials=None, method="random", metric="val_accuracy",
           mode="max", seed=0, executor=None, grid_points=3, min_budget=1, max_budget=None,
           eta=3, progress=True):
    """Run trials of `objective` over `space`; returns a SearchResult (trials best first).

    objective(config, **extra) trains and returns a dict of metrics; `metric` names the one
    to maximise (mode="max") or minimise ("min"). It is given `seed=` (an int drawn from
    `seed`, the same for a trial on every executor: seed your run with it) and `budget=`
    (epochs) when its signature takes them. For a process pool it must be a module-level
    function (functools.partial of one binds other arguments).
    space: name -> Uniform(lo, hi), LogUniform(lo, hi), IntUniform(lo, hi) or Choice(values).
    method: "random": n_trials (default 20) configs drawn at random; "grid": every
    combination of grid_points values per range (geometric for LogUniform) and every Choice
    value (n_trials must be None); "halving": successive halving of n_trials (default 20)
    random configs, from min_budget to max_budget epochs, keeping the best 1/eta each rung
    (n_trials + n_trials/eta + ... objective calls). For "random" and "grid", max_budget, if
    given, is every trial's budget.
    executor: None (in this process, one trial after another), any
    concurrent.futures.Executor (ProcessPoolExecutor for local processes), or a Dask
    distributed.Client or its get_executor() (made pure=False here, so equal calls are not
    merged). The result is the same on all of them.
    A RangeEdgeWarning says when the best value of a range lies in its outer 10%.
    """
    if not callable(objective):
        raise TypeError(f"search: objective must be callable, got {type(objective).__name__}")
    _check_space(space)
    if method not in METHODS:
        raise ValueError(f"search: method must be one of {METHODS}, got {method!r}")
    if mode not in ("max", "min"):
        raise ValueError(f"search: mode must be 'max' or 'min', got {mode!r}")
    if not isinstance(metric, str):
        raise TypeError(f"search: metric must be a metric's name (str), got {metric!r}")
    _check_number("seed", seed, 0, integer=True)
    if method == "grid":
        if n_trials is not None:
            raise ValueError(f"search(method='grid'): the grid's size decides the number of "
                             f"trials (grid_points per range, every Choice value); n_trials "
                             f"must be None, got {n_trials!r}")
        _check_number("grid_points", grid_points, 2, integer=True)
    else:
        n_trials = 20 if n_trials is None else n_trials
        _check_number("n_trials", n_trials, 1, integer=True)
    takes_budget = _parameter(objective, "budget")
    if method == "halving":
        if max_budget is None:
            raise ValueError("search(method='halving'): needs max_budget (the most epochs a "
                             "trial trains)")
        _check_number("min_budget", min_budget, 0)
        _check_number("eta", eta, 1)
        if not 0 < min_budget < max_budget or eta == 1:
            raise ValueError(f"search(method='halving'): needs 0 < min_budget < max_budget and "
                             f"eta > 1, got min_budget={min_budget!r}, "
                             f"max_budget={max_budget!r}, eta={eta!r}")
    if max_budget is not None and not takes_budget:
        raise TypeError(f"search: a budget was given (max_budget={max_budget!r}) but the "
                        f"objective takes no budget= keyword; define it as "
                        f"objective(config, budget) and train for `budget` epochs")
    if max_budget is None and takes_budget == "required":
        raise TypeError("search: the objective requires budget= (epochs) but none was given; "
                        "pass max_budget (every trial's budget) or give budget a default")
    budgets = _rung_budgets(min_budget, max_budget, eta) if method == "halving" \
        else [max_budget]
    takes_seed = _parameter(objective, "seed") is not None
    executor, submit_kwargs = _executor(executor)

    configs, seeds = _draw(space, method, n_trials, grid_points, seed)
    _check_picklable(objective, configs, executor)
    trials = [Trial(i, config, s) for i, (config, s) in enumerate(zip(configs, seeds))]

    calls_planned = [len(trials)]  # trials per rung, for the progress bar
    for _ in budgets[1:]:
        calls_planned.append(_survivors(calls_planned[-1], eta))
    with tqdm(total=sum(calls_planned), desc=f"{method} search", unit="trial",
              disable=not progress, leave=False) as bar:
        alive = trials
        for budget in budgets:
            calls = []
            for t in alive:
                kwargs = {"seed": t.seed} if takes_seed else {}
                if budget is not None:
                    kwargs["budget"] = budget
                calls.append((objective, t.config, kwargs, metric))
            for t, outcome in zip(alive, _run_calls(calls, executor, submit_kwargs, bar)):
                _record(t, outcome, budget, metric)
            # successive halving: the best 1/eta (at least one) of this rung go on
            alive = _best_first(alive, mode)[:_survivors(len(alive), eta)]
            if not alive:
                break
    result = SearchResult(trials, space, metric=metric, mode=mode, method=method, seed=seed)
    if not any(t.ok for t in trials):
        warnings.warn(f"search: every trial failed (the first: {trials[0].error})",
                      UserWarning, stacklevel=2)
    for message in result.edge_messages():
        warnings.warn(message, RangeEdgeWarning, stacklevel=2)
    return result


# ----------------------------------------------------------------------------- the result
class RangeEdgeWarning(UserWarning):
    """The best value of a range lies at its edge: the optimum may lie beyond it."""


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class SearchResult:
    """A search's trials, best first (failed ones last, in drawn order); `best`, the table
    (`str(result)`), to_csv, plot, refine. Halving ranks trials by the budget they reached,
    then by the metric."""

    def __init__(self, trials, space, metric, mode, method, seed):
        self.space, self.metric, self.mode, self.method, self.seed = \
            dict(space), metric, mode, method, seed
        self.trials = _best_first(trials, mode) + sorted((t for t in trials if not t.ok),
                                                         key=lambda t: t.index)

    def __len__(self):
        return len(self.trials)

    def __iter__(self):
        return iter(self.trials)

    def __getitem__(self, i):
        return self.trials[i]

    @property
    def ok_trials(self):
        return [t for t in self.trials if t.ok]

    @property
    def best(self):
        """The best trial that finished (halving: of the highest budget reached)."""
        if not self.trials or not self.trials[0].ok:
            first = self.trials[0].error if self.trials else "there were no trials"
            raise RuntimeError(f"SearchResult.best: every trial failed (the first: {first})")
        return self.trials[0]

    # ----- the table
    def _metric_names(self):
        names = {name for t in self.trials for name in t.metrics}
        return [self.metric] + sorted(names - {self.metric})

    def _rows(self):
        """Header and rows (values, not text) of the table and the CSV."""
        metrics = self._metric_names()
        header = ["rank", "trial", "status", *self.space, *metrics, "budget", "seed", "time_s",
                  "error"]
        rows = []
        for rank, t in enumerate(self.trials, 1):
            rows.append([rank if t.ok else "", t.index, t.status,
                         *(t.config[name] for name in self.space),
                         *(t.metrics.get(name, "") for name in metrics),
                         "" if t.budget is None else t.budget, t.seed, t.time, t.error or ""])
        return header, rows

    def table(self, top=None):
        """The trials as aligned text, best first (the first `top` of them if given)."""
        header, rows = self._rows()
        text = [header] + [[_fmt(v) for v in row] for row in rows[:top]]
        for row in text:  # errors can be long: the table shows their start
            row[-1] = row[-1] if len(row[-1]) <= 60 else row[-1][:57] + "..."
        widths = [max(len(row[i]) for row in text) for i in range(len(header))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in text]
        failed = sum(not t.ok for t in self.trials)
        title = f"{self.method} search, {len(self.trials)} trials ({failed} failed), " \
                f"{self.mode} {self.metric}"
        return "\n".join([title] + lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<SearchResult {self.method}, {len(self.trials)} trials, {self.metric}>"

    def to_csv(self, path):
        """The table as CSV (full precision), best first; returns the path."""
        header, rows = self._rows()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    # ----- coarse to fine
    def edge_messages(self):
        """One line per range whose best value lies in its outer 10% (log scale for log
        ranges): the lectures' advice is to widen such a range and search again."""
        if not self.trials or not self.trials[0].ok:
            return []
        best, messages = self.trials[0].config, []
        for name, dist in self.space.items():
            if not isinstance(dist, _Range) or dist.lo == dist.hi:
                continue
            p = dist.position(best[name])
            if p < EDGE or p > 1 - EDGE:
                side = "low" if p < EDGE else "high"
                scale = " (log scale)" if dist.log else ""
                messages.append(
                    f"search: the best {name} = {best[name]:.4g} lies in the outer "
                    f"{EDGE:.0%}{scale} of its range [{dist.lo:.4g}, {dist.hi:.4g}], at the "
                    f"{side} end; the optimum may lie beyond it: widen the range past "
                    f"{dist.lo if side == 'low' else dist.hi:.4g} and search again")
        return messages

    def refine(self, factor=2.0, top=None):
        """A narrower space around the best trials, for the next, finer search.

        For each range: the span of the `top` best trials' values (default: the best quarter
        of the finished trials, at least 3), widened `factor` times about its middle (in log
        for LogUniform; ints outwards), never below a tenth of the old width, and clipped to
        the old range. Clipped because refining narrows within what was searched: outside
        it nothing was tried, and the old range holds the user's limits (a probability below
        1, a positive width). When the best lies at an edge, the RangeEdgeWarning says to
        widen that range yourself. A Choice keeps the values the top trials used."""
        _check_number("factor", factor, 1, where="SearchResult.refine")
        ok = self.ok_trials
        if not ok:
            self.best  # raises, naming the first failure
        if top is None:
            top = max(3, len(ok) // 4)
        _check_number("top", top, 1, integer=True, where="SearchResult.refine")
        chosen = ok[:top]
        refined = {}
        for name, dist in self.space.items():
            values = [t.config[name] for t in chosen]
            if isinstance(dist, Choice):
                refined[name] = Choice([v for v in dist.values if v in values])
                continue
            lo, hi = dist._scale(dist.lo), dist._scale(dist.hi)
            a, b = min(map(dist._scale, values)), max(map(dist._scale, values))
            half = max(factor * (b - a), MIN_REFINED_FRACTION * (hi - lo)) / 2
            middle = (a + b) / 2
            refined[name] = dist.narrowed(middle - half, middle + half)
        return refined

    # ----- the picture
    def _pair(self):
        """The two ranges to draw against each other: lr and weight_decay when both are in
        the space (the lectures' picture), else the first two log ranges; None if fewer."""
        ranges = [n for n, d in self.space.items() if isinstance(d, _Range)]
        if "lr" in ranges and "weight_decay" in ranges:
            return "lr", "weight_decay"
        logs = [n for n in ranges if self.space[n].log]
        return tuple(logs[:2]) if len(logs) >= 2 else None

    def figure(self):
        """A matplotlib Figure (Agg canvas, no pyplot): each parameter against the metric
        (log axes for log ranges, the best trial starred), and the two main log ranges
        against each other coloured by the metric, failed trials as grey crosses."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("SearchResult.plot: needs matplotlib (pip install "
                              "'tinygrad_lite[plots]')") from None
        from .plots import _figure
        names, pair = list(self.space), self._pair()
        panels = len(names) + (pair is not None)
        cols = min(3, panels)
        rows = math.ceil(panels / cols)
        fig, _ = _figure()
        fig.clear()
        width, height = 4.2 * cols, 3.6 * rows
        fig.set_size_inches(width, height)
        ok, failed = self.ok_trials, [t for t in self.trials if not t.ok]
        values = [t.value for t in ok]
        best = ok[0] if ok else None

        def position(name, trials):  # a Choice's values go to 0, 1, ... on the x axis
            dist = self.space[name]
            if isinstance(dist, Choice):
                return [dist.values.index(t.config[name]) for t in trials]
            return [t.config[name] for t in trials]

        def axis(ax, name, which):
            dist = self.space[name]
            getattr(ax, f"set_{which}label")(name)
            if isinstance(dist, Choice):
                getattr(ax, f"set_{which}ticks")(range(len(dist.values)),
                                                 [str(v) for v in dist.values])
            else:  # the whole range, a little beyond: where the trials lie within it
                getattr(ax, f"set_{which}scale")("log" if dist.log else "linear")
                lo, hi = dist._scale(dist.lo), dist._scale(dist.hi)
                margin = 0.04 * (hi - lo) if hi > lo else 0.5
                getattr(ax, f"set_{which}lim")(dist._unscale(lo - margin),
                                               dist._unscale(hi + margin))

        for i, name in enumerate(names):
            ax = fig.add_subplot(rows, cols, i + 1)
            ax.scatter(position(name, ok), values, s=18, alpha=0.8)
            if best is not None:
                ax.scatter(position(name, [best]), [best.value], marker="*", s=160,
                           color="tab:red", label="best")
                ax.legend(fontsize=8)
            axis(ax, name, "x")
            ax.set_ylabel(self.metric)
            ax.grid(alpha=0.3)
        if pair is not None:
            x, y = pair
            ax = fig.add_subplot(rows, cols, panels)
            points = ax.scatter(position(x, ok), position(y, ok), c=values, cmap="viridis",
                                s=30)
            if values:
                fig.colorbar(points, ax=ax, label=self.metric)
            if failed:
                ax.scatter(position(x, failed), position(y, failed), marker="x", color="grey",
                           label="failed")
            if best is not None:
                ax.scatter(position(x, [best]), position(y, [best]), marker="*", s=200,
                           facecolors="none", edgecolors="tab:red", label="best")
            if failed or best is not None:
                ax.legend(fontsize=8)
            axis(ax, x, "x")
            axis(ax, y, "y")
            ax.set_title(f"{self.metric} over {x} and {y}", fontsize=9)
        for ax in fig.axes:  # log axes' minor ticks cost half the drawing time
            ax.minorticks_off()
        fig.suptitle(f"{self.method} search: {len(ok)} of {len(self.trials)} trials finished")
        # fixed margins in inches (tight_layout measured every tick label: seconds)
        fig.subplots_adjust(left=0.8 / width, right=1 - 0.7 / width, bottom=0.6 / height,
                            top=1 - 0.7 / height, wspace=0.45, hspace=0.5)
        return fig

    def plot(self, path):
        """Draw figure() into a PNG at path; returns the path."""
        fig = self.figure()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path)
        return path
