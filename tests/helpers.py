"""Strategies and checks shared by the tests."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lite as tl

DEVICES = ["cpu", "cuda"]
device_param = pytest.mark.parametrize("device", DEVICES)


def max_side(device):
    return 3 if device == "cpu" else 2  # the CUDA simulator runs kernels in Python: keep it tiny


def shapes(device, min_dims=0, max_dims=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1,
                            max_side=max_side(device))


def broadcast_pair(device, max_dims=3):
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims,
                                             min_side=1, max_side=max_side(device))


def values(shape, low=-3.0, high=3.0, unique=False):
    return hnp.arrays(np.float64, shape, unique=unique,
                      elements=st.floats(low, high, allow_nan=False, allow_infinity=False))


def away_from_zero(shape, low=0.2, high=3.0):
    """Values with |x| in [low, high] and either sign (for abs, division)."""
    return st.tuples(values(shape, low, high), hnp.arrays(np.bool_, shape)).map(
        lambda p: np.where(p[1], p[0], -p[0]))


def assert_gradcheck(fn, arrays, device):
    inputs = [tl.Tensor(a, dtype=tl.float64, device=device) for a in arrays]
    result = tl.gradcheck(fn, inputs)
    assert result, result


def run(fn, arrays, device, dtype=tl.float64):
    """fn applied to tensors made from arrays on device, as a NumPy array."""
    return fn(*[tl.Tensor(a, dtype=dtype, device=device) for a in arrays]).numpy()


def separated(shape):
    """Distinct values at least 0.1 apart, so that max/min have no near-ties that would make
    centred differences straddle a kink."""
    return hnp.arrays(np.float64, shape, unique=True,
                      elements=st.integers(-30, 30).map(lambda i: i / 10))


def load_demo(name):
    """demos/<name>.py as a module (the demos are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "demos" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"demo_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
