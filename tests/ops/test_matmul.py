"""matmul: 2-D, batched with broadcast batch dims, and PyTorch's 1-D rules."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, max_side, run, values


@device_param
@given(data=st.data())
def test_matmul_forward_and_gradient(device, data):
    side = st.integers(1, max_side(device))
    m, k, n = data.draw(side), data.draw(side), data.draw(side)
    batch_a = tuple(data.draw(st.lists(st.integers(1, 2), max_size=2)))
    batch_b = tuple(1 if data.draw(st.booleans()) else s for s in batch_a)[
        data.draw(st.integers(0, len(batch_a))):]
    shape_a, shape_b = batch_a + (m, k), batch_b + (k, n)
    if data.draw(st.booleans()):  # PyTorch's vector cases
        shape_a = (k,) if data.draw(st.booleans()) else shape_a
        shape_b = (k,) if len(shape_a) > 1 and data.draw(st.booleans()) else shape_b
    a, b = data.draw(values(shape_a)), data.draw(values(shape_b))
    f = lambda x, y: x @ y  # noqa: E731
    np.testing.assert_allclose(run(f, [a, b], device), np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert_gradcheck(f, [a, b], device)


def test_matmul_shape_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        tl.zeros(2, 3) @ tl.zeros(4, 5)
    with pytest.raises(ValueError, match="batch dimensions"):
        tl.zeros(2, 2, 3) @ tl.zeros(3, 3, 4)
