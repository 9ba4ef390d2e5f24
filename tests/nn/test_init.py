"""Weight initialisation: the statistics each rule promises, the fans of linear and conv
weights, the gains, and the layer defaults."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import init


def test_fans_of_linear_and_conv_weights():
    assert init.calculate_fan_in_and_fan_out(tl.zeros(64, 32)) == (32, 64)
    assert init.calculate_fan_in_and_fan_out(tl.zeros(16, 3, 5, 5)) == (75, 400)  # k*k*in
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(tl.zeros(3))


def test_gains():
    assert init.calculate_gain("relu") == math.sqrt(2) and init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("linear") == init.calculate_gain("sigmoid") == 1
    with pytest.raises(ValueError, match="unknown nonlinearity 'swoosh'"):
        init.calculate_gain("swoosh")


CONV = (400, 3, 10, 10)  # fan_in 3 * 100 = 300, fan_out 400 * 100


@pytest.mark.parametrize("rule,shape,std", [
    (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), CONV, math.sqrt(2 / 300)),
    (lambda w: init.kaiming_uniform_(w, nonlinearity="relu"), CONV, math.sqrt(2 / 300)),
    (lambda w: init.xavier_normal_(w), (400, 300), math.sqrt(2 / (300 + 400))),
    (lambda w: init.xavier_uniform_(w, gain=2.0), (400, 300), 2 * math.sqrt(2 / 700)),
    (lambda w: init.small_normal_(w), CONV, 0.01),
    (lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh"), (4, 300, 10, 10),
     5 / 3 / 20),  # fan_out = 4 * 100
])
def test_rules_give_their_standard_deviation(rule, shape, std):
    tl.manual_seed(0)
    values = rule(tl.zeros(*shape)).numpy()
    assert abs(values.mean()) < 0.05 * std and abs(values.std() - std) < 0.03 * std


def test_seeded_constant_and_layer_defaults():
    tl.manual_seed(3)
    a = init.normal_(tl.zeros(5)).numpy()
    tl.manual_seed(3)
    np.testing.assert_array_equal(init.normal_(tl.zeros(5)).numpy(), a)
    np.testing.assert_array_equal(init.constant_(tl.zeros(3), 0.01).numpy(),
                                  np.float32([0.01] * 3))
    layer = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert layer.weight.numpy().std() > 0.5 * bound / math.sqrt(3)
    w = nn.Parameter(tl.zeros(3, 3))
    init.ones_(w)  # a parameter that requires grad: init runs under no_grad
    assert w.is_leaf and np.all(w.numpy() == 1)
