"""train.search: the distributions draw inside their ranges (LogUniform uniformly per decade),
the search calls the objective as often as its budget says, its configs depend on the seed
alone, the table is the same in this process, in a ProcessPoolExecutor and on a Dask
LocalCluster, failed trials are recorded and ranked last, successive halving gives the best
trials the most epochs, a grid is the whole product, refine narrows around the best, a best
value at a range's edge warns, and the table, CSV and plot hold what the trials did."""
import concurrent.futures
import csv
import functools
import itertools
import math
import os
import subprocess
import sys
import uuid
import warnings

import numpy as np
import pytest

from tinygrad_lite.train.search import (Choice, IntUniform, LogUniform, RangeEdgeWarning,
                                        Uniform, search)

# The edge warning has its own test; elsewhere it would only fill the report.
pytestmark = pytest.mark.filterwarnings("ignore::tinygrad_lite.train.search.RangeEdgeWarning")

SPACE = {"lr": LogUniform(1e-4, 1.0), "weight_decay": LogUniform(1e-6, 1e-2),
         "dropout": Uniform(0.0, 0.5), "width": IntUniform(4, 16),
         "act": Choice(["relu", "tanh", "gelu"])}


# Objectives live at module level: worker processes import them from this module.
def bowl(config, seed, budget=1):
    """A cheap, deterministic stand-in for training: best at lr 1e-2, weight decay 1e-4,
    dropout 0.2, relu; a little seeded noise; fails for lr > 0.1 (the run "diverges": a
    NaN metric) and for width 13 (an exception)."""
    if config["width"] == 13:
        raise ValueError(f"width {config['width']} is unlucky")
    if config["lr"] > 0.1:
        return {"val_accuracy": math.nan, "loss": math.inf}
    score = (1.0 - 0.1 * (math.log10(config["lr"]) + 2) ** 2
             - 0.05 * (math.log10(config["weight_decay"]) + 4) ** 2
             - (config["dropout"] - 0.2) ** 2 - 0.1 * (config["act"] != "relu"))
    noise = np.random.default_rng(seed).normal(scale=1e-3)
    return {"val_accuracy": score + noise + 0.01 * budget, "loss": -score}


def stamp(config, directory):
    """Leaves one file per call (to count calls made in other processes)."""
    with open(os.path.join(directory, uuid.uuid4().hex), "w"):
        pass
    return {"val_accuracy": config["x"]}


def table(result):
    """Everything a trial's outcome is, but its time; floats as repr (exact, and NaN equals
    NaN)."""
    return [(t.index, t.config, t.seed, t.status, repr(t.metrics), t.error, t.budget,
             repr(t.rungs)) for t in result.trials]


# ----------------------------------------------------------------------------- distributions
def test_distributions_draw_within_their_bounds():
    rng = np.random.default_rng(0)
    u = np.array([Uniform(-1.0, 2.0).sample(rng) for _ in range(4000)])
    assert u.min() >= -1.0 and u.max() < 2.0 and abs(u.mean() - 0.5) < 0.05
    # LogUniform: uniform in log, so each of the three decades gets a third of the draws
    # (standard deviation of a third's estimate from 6000 draws: 0.006)
    lg = np.array([LogUniform(1e-4, 1e-1).sample(rng) for _ in range(6000)])
    assert lg.min() >= 1e-4 and lg.max() < 1e-1
    decades = np.histogram(np.log10(lg), bins=[-4, -3, -2, -1])[0] / len(lg)
    np.testing.assert_allclose(decades, 1 / 3, atol=0.03)
    # IntUniform includes both ends, each value equally likely
    ints = [IntUniform(2, 5).sample(rng) for _ in range(4000)]
    assert all(type(v) is int for v in ints)
    counts = np.bincount(ints, minlength=6)[2:] / len(ints)
    assert set(ints) == {2, 3, 4, 5}
    np.testing.assert_allclose(counts, 0.25, atol=0.04)
    assert {Choice(["a", 3, None]).sample(rng) for _ in range(200)} == {"a", 3, None}


def test_bad_ranges_are_refused_by_name():
    with pytest.raises(ValueError, match="LogUniform: needs 0 < lo"):
        LogUniform(0.0, 1.0)
    with pytest.raises(ValueError, match="Uniform: needs lo < hi"):
        Uniform(1.0, 1.0)
    with pytest.raises(ValueError, match="IntUniform: lo must be an int"):
        IntUniform(0.5, 3)
    with pytest.raises(ValueError, match="Choice: needs at least one value"):
        Choice([])
    with pytest.raises(TypeError, match=r"space\['lr'\] must be"):
        search(bowl, {"lr": (1e-4, 1e-1)}, n_trials=2, progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        search(bowl, SPACE, method="bayes", progress=False)
    with pytest.raises(TypeError, match="executor must be None, a concurrent.futures.Executor"):
        search(bowl, SPACE, executor="processes", progress=False)


# ----------------------------------------------------------------------------- budget, seed
def test_search_calls_the_objective_n_trials_times_with_seeded_configs():
    calls = []

    def objective(config):  # sequential: a closure is fine without worker processes
        calls.append(config)
        return {"val_accuracy": config["dropout"]}

    result = search(objective, SPACE, n_trials=7, seed=3, progress=False)
    assert len(calls) == 7 and len(result) == 7
    assert sorted(t.index for t in result) == list(range(7))
    assert calls == [t.config for t in sorted(result, key=lambda t: t.index)]
    for config in calls:
        assert list(config) == list(SPACE)
        assert all(SPACE[name].contains(v) for name, v in config.items())
    again = search(objective, SPACE, n_trials=7, seed=3, progress=False)
    other = search(objective, SPACE, n_trials=7, seed=4, progress=False)
    assert table(again) == table(result)
    assert [t.config for t in sorted(other, key=lambda t: t.index)] != calls[:7]
    # the best first: values do not increase down the table
    values = [t.value for t in result]
    assert values == sorted(values, reverse=True) and result.best is result.trials[0]


def test_seed_and_budget_reach_the_objective_only_when_it_takes_them():
    seen = []

    def with_both(config, budget, seed):
        seen.append((budget, seed))
        return {"loss": 1.0}

    result = search(with_both, {"x": Uniform(0, 1)}, n_trials=3, metric="loss", mode="min",
                    max_budget=5, progress=False)
    assert seen == [(5, t.seed) for t in sorted(result, key=lambda t: t.index)]
    assert len({s for _, s in seen}) == 3  # a seed of its own per trial
    with pytest.raises(TypeError, match="takes no budget= keyword"):
        search(lambda config: {"loss": 1.0}, {"x": Uniform(0, 1)}, n_trials=1, max_budget=2,
               progress=False)
    with pytest.raises(TypeError, match="requires budget="):
        search(with_both, {"x": Uniform(0, 1)}, n_trials=1, progress=False)


# ----------------------------------------------------------------------------- executors
@pytest.fixture(scope="module")
def dask_client():
    """One small Dask cluster of worker processes for the module (it takes seconds to start),
    closed at the end."""
    import logging

    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_the_table_is_the_same_in_processes_and_on_a_dask_cluster(dask_client):
    kwargs = dict(space=SPACE, n_trials=8, seed=11, progress=False)
    here = search(bowl, **kwargs)
    errors = {t.error.split(":")[0] for t in here if not t.ok}
    assert errors == {"val_accuracy is nan", "ValueError"}  # each kind travels back
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        assert table(search(bowl, executor=pool, **kwargs)) == table(here)
        halving = dict(kwargs, method="halving", n_trials=9, max_budget=3)
        assert table(search(bowl, executor=pool, **halving)) == table(search(bowl, **halving))
    # a Client as the executor: search makes it get_executor(pure=False)
    assert table(search(bowl, executor=dask_client, **kwargs)) == table(here)


def test_equal_calls_on_dask_all_run(dask_client, tmp_path):
    """Dask runs calls with equal arguments once unless pure=False; search passes it even
    for a get_executor() made without it. Three trials of the same config and no seed
    parameter are three equal calls: each must run."""
    objective = functools.partial(stamp, directory=str(tmp_path))
    result = search(objective, {"x": Choice([0.5])}, n_trials=3,
                    executor=dask_client.get_executor(), progress=False)
    assert [t.status for t in result] == ["ok"] * 3
    assert len(os.listdir(tmp_path)) == 3


def test_a_process_pool_needs_a_picklable_objective():
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="cannot be pickled.*top level of a module"):
            search(lambda config: {"val_accuracy": 1.0}, {"x": Uniform(0, 1)}, n_trials=2,
                   executor=pool, progress=False)


def test_searching_never_imports_dask():
    code = ("import sys\n"
            "from tinygrad_lite.train.search import search, Uniform\n"
            "search(lambda c: {'val_accuracy': c['x']}, {'x': Uniform(0, 1)}, n_trials=2,\n"
            "       progress=False)\n"
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ----------------------------------------------------------------------------- failures
def test_failed_trials_are_recorded_not_fatal():
    def objective(config):
        if config["x"] < 0.25:
            raise RuntimeError("diverged at epoch 2")
        if config["x"] < 0.5:
            return {"val_accuracy": math.nan}
        if config["x"] < 0.75:
            return {"loss": 0.3}
        return {"val_accuracy": config["x"]}

    result = search(objective, {"x": Uniform(0, 1)}, n_trials=24, progress=False)
    statuses = [t.status for t in result]
    assert statuses == sorted(statuses, key=lambda s: s != "ok")  # finished trials first
    errors = {t.error for t in result if not t.ok}
    for t in result:
        x = t.config["x"]
        assert t.ok == (x >= 0.75)
        if x < 0.25:
            assert t.error == "RuntimeError: diverged at epoch 2" and math.isnan(t.value)
        elif x < 0.5:
            assert t.error == "val_accuracy is nan"
        elif x < 0.75:
            assert "returned no 'val_accuracy'" in t.error and t.metrics == {"loss": 0.3}
    assert len(errors) == 3
    failed = [t.index for t in result if not t.ok]
    assert failed == sorted(failed)
    assert result.best.config["x"] == max(t.config["x"] for t in result)

    with pytest.warns(UserWarning, match="every trial failed"):
        nothing = search(lambda c: {"val_accuracy": math.nan}, {"x": Uniform(0, 1)},
                         n_trials=2, progress=False)
    with pytest.raises(RuntimeError, match="every trial failed.*val_accuracy is nan"):
        nothing.best


# ----------------------------------------------------------------------------- methods
def test_halving_gives_the_best_trials_the_most_budget():
    calls = []

    def objective(config, budget):
        calls.append(budget)
        return {"loss": (config["x"] - 0.3) ** 2 + 1.0 / budget}

    result = search(objective, {"x": Uniform(0, 1)}, n_trials=20, method="halving",
                    metric="loss", mode="min", min_budget=1, max_budget=10, eta=3,
                    progress=False)
    # rungs: 20 trials at 1 epoch, the best 6 at 3, the best 2 at 10 (the last rung is
    # max_budget itself)
    assert sorted(calls) == [1] * 20 + [3] * 6 + [10] * 2
    budgets = [t.budget for t in result]
    assert budgets == [10] * 2 + [3] * 4 + [1] * 14
    closest = sorted(result, key=lambda t: abs(t.config["x"] - 0.3))
    assert {t.index for t in closest[:2]} == {t.index for t in result.trials[:2]}
    assert result.best is closest[0]
    assert [b for b, _ in result.best.rungs] == [1, 3, 10]
    with pytest.raises(TypeError, match="takes no budget= keyword"):
        search(lambda config: {"loss": 1.0}, {"x": Uniform(0, 1)}, method="halving",
               max_budget=9, progress=False)


def test_grid_covers_the_product():
    space = {"lr": LogUniform(1e-3, 1e-1), "p": Uniform(0.0, 0.5), "w": IntUniform(1, 10),
             "act": Choice(["relu", "tanh"])}
    seen = []

    def objective(config):
        seen.append(config)
        return {"val_accuracy": -abs(math.log10(config["lr"]) + 2) - config["p"]}

    result = search(objective, space, method="grid", grid_points=3, progress=False)
    expected = itertools.product([1e-3, 1e-2, 1e-1], [0.0, 0.25, 0.5], [1, 6, 10],
                                 ["relu", "tanh"])
    assert len(seen) == len(result) == 54
    for config, (lr, p, w, act) in zip(seen, expected):
        assert config["lr"] == pytest.approx(lr, rel=1e-12)
        assert (config["p"], config["w"], config["act"]) == (p, w, act)
    with pytest.raises(ValueError, match="n_trials must be None"):
        search(objective, space, method="grid", n_trials=10, progress=False)


# ----------------------------------------------------------------------------- coarse to fine
def test_refine_narrows_around_the_best():
    result = search(bowl, SPACE, n_trials=40, seed=1, progress=False)
    fine = result.refine(factor=2.0, top=5)
    top = [t for t in result if t.ok][:5]
    for name, dist in SPACE.items():
        new = fine[name]
        assert type(new) is type(dist)
        for t in top:  # the top trials stay inside the new space
            assert new.contains(t.config[name]), (name, new, t.config[name])
        if isinstance(dist, Choice):
            assert new.values == [v for v in dist.values if v in {t.config[name] for t in top}]
            continue
        assert dist.lo <= new.lo <= new.hi <= dist.hi, (name, new)  # clipped to the old
        width = np.log(new.hi / new.lo) if dist.log else new.hi - new.lo
        old = np.log(dist.hi / dist.lo) if dist.log else dist.hi - dist.lo
        if name == "lr":  # the parameter the bowl is steepest in
            assert width < 0.6 * old, (name, new)
    # the rule: the top trials' span (in log for LogUniform) widened `factor` times about its
    # middle, at least a tenth of the old width, clipped to the old range
    logs = np.log([t.config["weight_decay"] for t in top])
    middle, half = (logs.max() + logs.min()) / 2, max(2.0 * np.ptp(logs), 0.1 * np.log(1e4)) / 2
    expected = np.exp(np.clip([middle - half, middle + half], np.log(1e-6), np.log(1e-2)))
    np.testing.assert_allclose([fine["weight_decay"].lo, fine["weight_decay"].hi], expected,
                               rtol=1e-12)
    # the best lr of this bowl is 1e-2: a second, finer search gets closer to it
    finer = search(bowl, fine, n_trials=20, seed=2, progress=False)
    assert abs(math.log10(finer.best.config["lr"]) + 2) <= \
        abs(math.log10(result.best.config["lr"]) + 2) + 0.05
    assert isinstance(fine["width"].lo, int)


def test_a_best_value_at_the_edge_of_its_range_warns():
    def objective(config):  # best at the highest lr: the range should go further
        return {"val_accuracy": math.log10(config["lr"]) - (config["p"] - 0.5) ** 2}

    space = {"lr": LogUniform(1e-5, 1e-1), "p": Uniform(0.0, 1.0)}
    with pytest.warns(RangeEdgeWarning, match=r"best lr = .* outer 10% \(log scale\).*high "
                                              r"end.*widen the range past 0.1") as record:
        search(objective, space, n_trials=30, progress=False)
    assert not any("best p" in str(w.message) for w in record)

    def inside(config):  # best at lr 1e-3, the middle of the range (in log)
        return {"val_accuracy": -(math.log10(config["lr"]) + 3) ** 2 - (config["p"] - 0.5) ** 2}

    with warnings.catch_warnings():  # a best value inside its range says nothing
        warnings.simplefilter("error", RangeEdgeWarning)
        search(inside, space, n_trials=30, progress=False)


# ----------------------------------------------------------------------------- outputs
def test_table_csv_and_plot_hold_the_trials(tmp_path):
    result = search(bowl, SPACE, n_trials=10, seed=5, progress=False)
    assert any(not t.ok for t in result)
    text = str(result)
    assert text.splitlines()[1].split()[:3] == ["rank", "trial", "status"]
    assert len(text.splitlines()) == 2 + len(result)
    path = result.to_csv(tmp_path / "sub" / "trials.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == [t.index for t in result]
    for row, t in zip(rows, result):
        assert float(row["lr"]) == t.config["lr"] and row["act"] == t.config["act"]
        assert row["status"] == t.status and row["error"] == (t.error or "")
        if t.ok:
            assert float(row["val_accuracy"]) == t.value
    assert any(r["status"] == "failed" for r in rows)

    fig = result.figure()
    scales = {ax.get_xlabel(): ax.get_xscale() for ax in fig.axes if ax.get_ylabel()}
    assert scales["lr"] == scales["weight_decay"] == "log"
    assert scales["dropout"] == scales["width"] == "linear"
    pair = [ax for ax in fig.axes if ax.get_title() == "val_accuracy over lr and weight_decay"]
    assert len(pair) == 1 and pair[0].get_yscale() == "log"
    # a small space keeps the PNG quick to draw
    small = search(bowl, {"lr": LogUniform(1e-4, 1.0), "weight_decay": LogUniform(1e-6, 1e-2),
                          "dropout": Choice([0.2]), "width": Choice([8]), "act": Choice(["relu"])},
                   n_trials=6, progress=False)
    png = small.plot(tmp_path / "search.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
