"""One seeded generator for everything random (init, dropout masks, shuffles), so that
manual_seed(n) makes a run repeatable. Numbers are drawn on the host with NumPy's PCG64 and
moved to the device, so a seed gives the same values on every device."""
import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the global generator in place and return it, as torch.manual_seed does. In
    place, so that a generator obtained earlier (generator(), an earlier manual_seed's return
    value, a DataLoader or a layer that kept it) draws the new seed's numbers too."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative int, got {seed!r}")
    # The state of a fresh PCG64 is exactly default_rng(seed)'s, buffered bits included.
    _generator.bit_generator.state = np.random.PCG64(int(seed)).state
    return _generator


def generator():
    """The one generator everything random draws from (reseeded by manual_seed)."""
    return _generator
