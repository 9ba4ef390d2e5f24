"""use_deterministic_algorithms(mode): whether ops must pick kernels whose results do not depend
on thread scheduling, as torch.use_deterministic_algorithms.

Every CPU kernel is deterministic already (parallel loops split work the same way each run
and never race). On CUDA, the default backward of max and average pooling scatters with
atomic adds, whose order (and so the float rounding of overlapping windows' sums) varies from
run to run; with the flag on it gathers instead (kernels/cuda/pool.py), bit for bit the CPU's
sums, at the cost of reading every window that could cover each input element.
"""

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled"]

_enabled = False


def use_deterministic_algorithms(mode):
    """Turn deterministic kernels on (True) or off (False) for the whole process."""
    global _enabled
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: expected True or False, got {mode!r}")
    _enabled = mode


def are_deterministic_algorithms_enabled():
    return _enabled
