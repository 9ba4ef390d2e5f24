"""gradcheck itself: it passes correct gradients and catches wrong ones."""
import numpy as np

import tinygrad_lite as tl
from tinygrad_lite.autograd import Function


class WrongSquare(Function):
    """x^2 with a deliberately wrong backward (3x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * 3 * self.x,)


def test_passes_a_correct_gradient_and_reports_the_error():
    x = tl.Tensor(np.linspace(-1, 1, 5))
    result = tl.gradcheck(lambda t: (t * t).exp(), [x])
    assert result and result.max_rel_error < 1e-6
    assert "passed=True" in repr(result)


def test_catches_a_wrong_gradient_and_says_where():
    x = tl.Tensor([1.0, 2.0, 3.0])
    result = tl.gradcheck(lambda t: WrongSquare.apply(t), [x])
    assert not result
    assert result.max_rel_error > 0.1 and result.worst[0] == 0
    assert "worst at input 0" in repr(result)


def test_a_function_that_does_not_return_a_tensor_is_named():
    import pytest
    with pytest.raises(TypeError, match="gradcheck: fn must return a Tensor, got float"):
        tl.gradcheck(lambda x: 1.0, [tl.tensor([1.0])])
