"""One seeded generator for everything random (init, dropout masks, shuffles), so that
manual_seed(n) makes a run repeatable. Numbers are drawn on the host with NumPy's PCG64 and
moved to the device, so a seed gives the same values on every device."""
import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the global generator; returns it, as torch.manual_seed does."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator():
    return _generator
