"""Test setup: CUDA tests run on Numba's CUDA simulator unless TINYGRAD_LITE_REAL_GPU=1 (then on
a real GPU); hypothesis runs a fixed number of examples with no deadline (Numba compiles on
first call)."""
import os

if not os.environ.get("TINYGRAD_LITE_REAL_GPU"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", max_examples=15, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
