"""tools/compile_profile.py: its listener times each top-level Numba compilation once, charging
a helper compiled inside a kernel's compilation to the kernel. (The cold-start figures it
prints are information, not tests.)"""
import sys
from pathlib import Path

import numba
from numba.core import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.compile_profile import CompileTimes  # noqa: E402


def test_top_level_compilations_are_timed_once_with_helpers_inside():
    @numba.njit
    def helper(x):
        return x * 2

    @numba.njit
    def kernel(x):
        return helper(x) + 1

    times = CompileTimes()
    event.register("numba:compile", times)
    try:
        assert kernel(3) == 7
        assert kernel(2.5) == 6.0  # a second signature: a second compilation of kernel
    finally:
        event.unregister("numba:compile", times)
    name = f"{__name__}.kernel"
    assert list(times.count) == [name] and times.count[name] == 2
    assert times.seconds[name] > 0
    assert times.by_module() == {__name__: times.seconds[name]}
