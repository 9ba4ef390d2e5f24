"""The one seeded generator: manual_seed reseeds it in place, so every holder of it follows."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import random as tl_random


def test_manual_seed_reseeds_a_generator_obtained_earlier():
    held = tl_random.generator()           # as a DataLoader or a layer may keep it
    returned = tl.manual_seed(1)
    held.random(5)                         # move it on
    assert tl.manual_seed(7) is held is returned is tl_random.generator()
    expected = np.random.default_rng(7)
    np.testing.assert_array_equal(held.random(4), expected.random(4))
    np.testing.assert_array_equal(returned.normal(size=3), expected.normal(size=3))


def test_a_seed_repeats_every_draw_whatever_was_drawn_before():
    tl.manual_seed(3)
    first = (tl.rand(3).numpy(), tl.randint(0, 10, 4).numpy(), tl.randn(2).numpy())
    tl_random.generator().integers(0, 2**32, 7)  # leaves buffered bits behind
    tl_random.generator().random(11)
    tl.manual_seed(3)
    again = (tl.rand(3).numpy(), tl.randint(0, 10, 4).numpy(), tl.randn(2).numpy())
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_manual_seed_rejects_what_is_not_a_seed():
    for bad in (-1, 1.5, "3", None):
        with pytest.raises(ValueError, match=f"manual_seed: expected a non-negative int, got "
                                             f"{bad!r}"):
            tl.manual_seed(bad)
    tl.manual_seed(np.int64(2))  # NumPy integers are seeds too
    np.testing.assert_array_equal(tl_random.generator().random(2),
                                  np.random.default_rng(2).random(2))
