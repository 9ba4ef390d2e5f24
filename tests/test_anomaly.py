"""Anomaly mode (detect_anomaly): the first NaN/inf in forward or backward raises, naming the
op, its inputs and the line of user code that made it; outside the mode nothing is checked."""
import inspect
import re
import threading

import numpy as np
import pytest

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite import autograd
from tinygrad_lite.nn import functional as F


def here():
    """'this file:the caller's line', as the error reports it."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@device_param
def test_a_nan_in_forward_names_the_op_and_the_line(device):
    x = tl.tensor([1.0, -1.0], device=device, requires_grad=True)
    with tl.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            line = here(); x.log()  # noqa: E702  (the op and the line it is on)
    message = str(info.value)
    assert message.startswith("detect_anomaly: Log produced 1 NaN and 0 inf among 2 values in "
                              "output 0 ((2,) float32) from finite inputs")
    assert f"Inputs: (2,) float32 on {device}" in message
    assert f"called at {line} in test_a_nan_in_forward_names_the_op_and_the_line" in message


def test_ops_without_a_graph_are_checked_too_and_their_inputs_are_blamed():
    data = tl.tensor([1.0, np.inf])  # a bad value from outside any op
    with tl.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Mul produced 0 NaN and 1 inf .* given "
                                               r"non-finite inputs \(input 0: 0 NaN and 1 inf"
                                               r".*came from outside the checked ops"):
            data * 2.0


@device_param
def test_an_inf_gradient_in_backward_names_the_op_and_where_it_was_made(device):
    x = tl.tensor([0.0, 4.0], device=device, requires_grad=True)
    with tl.detect_anomaly():
        line = here(); root = x.sqrt()  # noqa: E702  sqrt is finite at 0, its slope is not
        loss = (root * 3.0).sum()
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("detect_anomaly: the gradient that Sqrt.backward returned for "
                              "its input 0 holds 0 NaN and 1 inf among 2 values ((2,) float32)")
    assert f"Sqrt was created at {line} in test_an_inf_gradient" in message
    assert x.grad is None  # raised before anything reached the leaf


def test_a_finite_graph_passes_with_the_same_gradients():
    tl.manual_seed(0)
    w0, x, y = tl.randn(4, 3), tl.randn(5, 4), tl.randint(0, 3, 5)
    grads = []
    for anomaly in (False, True):
        w = w0.detach().clone().requires_grad_()
        with autograd.set_detect_anomaly(anomaly):
            assert tl.is_anomaly_enabled() is anomaly
            loss = F.cross_entropy(((x @ w).relu() + 1.0).sqrt().log(), y)
            loss.backward()
        grads.append(w.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert not tl.is_anomaly_enabled()


def test_outside_the_mode_nan_flows_silently():
    x = tl.tensor([0.0, -1.0], requires_grad=True)
    with tl.detect_anomaly():
        pass
    y = x.log()  # NaN at -1: not checked
    assert np.isnan(y.numpy()[1])
    y.sum().backward()  # inf at 0: not checked either
    assert np.isinf(x.grad.numpy()[0]) and x.grad_fn is None
    assert "created_at" not in y.grad_fn.__dict__  # no stack walk outside the mode


def test_integer_outputs_are_not_checked():
    """Integers have no NaN or inf; the check reads their dtype and never their values."""
    calls = []
    real = autograd._nonfinite

    def spy(array):
        calls.append(array.dtype)
        return real(array)

    autograd._nonfinite = spy
    try:
        with tl.detect_anomaly():
            labels = tl.tensor([3, 1, 2]) * 2 + 1
            (labels > 2).sum()
    finally:
        autograd._nonfinite = real
    assert calls and all(d.kind in "ib" for d in calls)
    assert real(np.array([2**62], np.int64)) is None and real(np.array([True])) is None


def test_a_summed_gradient_that_overflows_is_caught_at_the_op_that_receives_it():
    x = tl.tensor([1e-30], requires_grad=True)
    with tl.detect_anomaly():
        h = x * 1.0
        # finite values; each path's gradient to h is 3e38, finite, their sum is not
        loss = (h * 3e38).sum() + (h * 3e38).sum()
        with pytest.raises(RuntimeError, match=r"the gradient reaching output 0 of Mul \(summed "
                                               r"over its readers, after hooks\) holds 0 NaN "
                                               r"and 1 inf"):
            loss.backward()


def test_a_nan_given_to_backward_is_named():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    with tl.detect_anomaly():
        y = x * 2.0
        with pytest.raises(RuntimeError, match="the gradient given to backward.. holds 1 NaN"):
            y.backward(gradient=[1.0, float("nan")])


def test_the_mode_is_per_thread_and_a_decorator():
    seen = []

    @tl.detect_anomaly
    def checked():
        return tl.is_anomaly_enabled()

    with tl.detect_anomaly():
        worker = threading.Thread(target=lambda: seen.append(tl.is_anomaly_enabled()))
        worker.start()
        worker.join()
        seen.append(tl.is_anomaly_enabled())
    assert seen == [False, True]
    assert checked() and not tl.is_anomaly_enabled()
    assert tl.autograd.detect_anomaly is tl.detect_anomaly
    with pytest.raises(TypeError, match="set_detect_anomaly: expected True or False, got 'on'"):
        tl.set_detect_anomaly("on")


def test_the_normal_path_reads_one_flag():
    """Function.apply pays one thread-local read for anomaly mode; the rest is behind it."""
    source = inspect.getsource(autograd.Function.apply)
    assert len(re.findall(r"_anomaly_mode\.enabled", source)) == 1
    assert "_user_site" not in source and "_nonfinite" not in source
