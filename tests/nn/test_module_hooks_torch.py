"""Forward pre-hooks and forward hooks, checked against torch.nn.Module itself: the order the
hooks run in, what each sees, what a returned value replaces, and handle.remove()."""
import numpy as np
import pytest
import torch

import tinygrad_lite as tl
from tinygrad_lite import nn


class _Scale(nn.Module):
    def forward(self, x, k=1.0):
        return x * k


class _TScale(torch.nn.Module):
    def forward(self, x, k=1.0):
        return x * k


def _run(module_cls, tensor, register):
    """Register hooks built by register(module, log) on a fresh module, call it twice (once
    after removing the handles), and return (outputs, log)."""
    m, log = module_cls(), []
    handles = register(m, log)
    x = tensor(np.arange(3.0))
    out1 = np.asarray(m(x, k=2.0).tolist())
    for h in handles:
        h.remove()
    out2 = np.asarray(m(x, k=2.0).tolist())
    return (out1, out2), log


def _both(register):
    ours = _run(_Scale, lambda a: tl.tensor(a), register)
    theirs = _run(_TScale, lambda a: torch.tensor(a), register)
    np.testing.assert_array_equal(ours[0][0], theirs[0][0])
    np.testing.assert_array_equal(ours[0][1], theirs[0][1])
    assert ours[1] == theirs[1]
    return ours


def test_pre_hook_replaces_args_with_a_tuple_or_a_single_value_as_torch():
    def register(m, log):
        return [m.register_forward_pre_hook(lambda mod, args: log.append(("a", len(args)))),
                m.register_forward_pre_hook(lambda mod, args: (args[0] + 1,)),
                m.register_forward_pre_hook(lambda mod, args: args[0] * 10),  # single value
                m.register_forward_hook(
                    lambda mod, args, out: log.append(("post", args[0].tolist())))]
    (out1, out2), log = _both(register)
    np.testing.assert_array_equal(out1, [20.0, 40.0, 60.0])  # ((x + 1) * 10) * k
    np.testing.assert_array_equal(out2, [0.0, 2.0, 4.0])     # no hooks after remove()
    assert log == [("a", 1), ("post", [10.0, 20.0, 30.0])]   # forward hooks see new args


def test_prepend_and_registration_order_as_torch():
    def register(m, log):
        return [m.register_forward_pre_hook(lambda mod, args: log.append("pre1")),
                m.register_forward_pre_hook(lambda mod, args: log.append("pre0"), prepend=True),
                m.register_forward_hook(lambda mod, args, out: log.append("post1")),
                m.register_forward_hook(lambda mod, args, out: log.append("post0"),
                                        prepend=True)]
    _, log = _both(register)
    assert log == ["pre0", "pre1", "post0", "post1"]


def test_with_kwargs_hooks_see_and_replace_keyword_arguments_as_torch():
    def register(m, log):
        return [m.register_forward_pre_hook(
                    lambda mod, args, kwargs: (args, {"k": kwargs["k"] * 3}), with_kwargs=True),
                m.register_forward_hook(
                    lambda mod, args, kwargs, out: log.append(kwargs["k"]) or out + 1,
                    with_kwargs=True)]
    (out1, _), log = _both(register)
    np.testing.assert_array_equal(out1, [1.0, 7.0, 13.0])  # x * 6 + 1
    assert log == [6.0]


def test_removing_one_registration_of_a_twice_registered_hook_keeps_the_other():
    def register(m, log):
        hook = lambda mod, args: log.append("pre")  # noqa: E731
        first = m.register_forward_pre_hook(hook)
        m.register_forward_pre_hook(hook)
        first.remove()
        return []
    _, log = _both(register)
    assert log == ["pre", "pre"]  # one per call, both calls


def test_pre_hook_with_kwargs_must_return_args_and_kwargs():
    m = _Scale()
    m.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match="_Scale: a forward pre-hook .*with_kwargs=True"):
        m(tl.ones(2))


def test_handle_removes_itself_as_a_context_manager():
    m, log = _Scale(), []
    with m.register_forward_pre_hook(lambda mod, args: log.append(1)):
        m(tl.ones(1))
    m(tl.ones(1))
    assert log == [1]
