"""Test setup: CUDA tests run on Numba's CUDA simulator unless TINYGRAD_LITE_REAL_GPU=1 (then on
a real GPU). Hypothesis profiles (HYPOTHESIS_PROFILE=...): `default`, a fixed, derandomised
set sized for `make test` on 2 cores; `thorough`, many more random examples for runs by hand.
Neither has a deadline: Numba compiles on first call."""
import os
import sys

if not os.environ.get("TINYGRAD_LITE_REAL_GPU"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    # The simulator runs each GPU thread as a Python thread, and a thread waiting at a
    # barrier (cuda.syncthreads, as in the block reductions) gets the GIL back only after the
    # switch interval: 5 ms by default, which made a 4-element reduction take 30 ms.
    sys.setswitchinterval(5e-5)

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much]
settings.register_profile("default", max_examples=15, deadline=None, derandomize=True,
                          suppress_health_check=_QUIET)
settings.register_profile("thorough", max_examples=400, deadline=None, derandomize=False,
                          suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# On Numba's CUDA simulator every GPU thread is a Python thread, so one hypothesis example of a
# CUDA test costs what dozens of CPU examples do. In the default profile a test's CUDA case runs
# half of its examples (its CPU case keeps them all); on a real GPU and under `thorough`,
# all of them. Hypothesis binds a test's settings when it is decorated, so the CUDA case swaps
# them for its run (a no-op if a hypothesis version names that attribute otherwise).
_SIMULATED = not os.environ.get("TINYGRAD_LITE_REAL_GPU") and \
    os.environ.get("HYPOTHESIS_PROFILE", "default") == "default"


@pytest.fixture(autouse=True)
def _fewer_examples_on_the_simulator(request):
    test = getattr(request.node, "obj", None)
    bound = getattr(test, "_hypothesis_internal_use_settings", None)
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if not (_SIMULATED and bound is not None and params.get("device") == "cuda"):
        yield
        return
    test._hypothesis_internal_use_settings = settings(
        bound, max_examples=max(1, bound.max_examples // 2))
    try:
        yield
    finally:
        test._hypothesis_internal_use_settings = bound
