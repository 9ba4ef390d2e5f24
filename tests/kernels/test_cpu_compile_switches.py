"""What the cold-start work changed in the CPU backend (issue 23): the element-wise and reduction
parallel switches (ELEMENTWISE_/REDUCE_PARALLEL_MIN_SIZE, above the per-channel kernels'
PARALLEL_MIN_SIZE), reductions compiled per kind (sum, or max/min), and pool kernels compiled
per mode (max or average; loop order). Results on both sides of each switch,
in every mode, against NumPy; and the copies a call picks.

Sizes past the new switches are 2M elements: float32 keeps them at 8 MB."""
import numpy as np
import pytest

import sys

from tinygrad_lite.kernels import cpu as K
from tinygrad_lite.kernels import scalar as S
from tinygrad_lite.kernels.cpu import jit

F32 = np.float32
RNG = np.random.default_rng(7)
_ew = sys.modules["tinygrad_lite.kernels.cpu.elementwise"]
_reduce = sys.modules["tinygrad_lite.kernels.cpu.reduce"]
_pool = sys.modules["tinygrad_lite.kernels.cpu.pool"]


def test_switch_order():
    # the streaming kernels go parallel later than the per-channel ones, never earlier
    assert jit.ELEMENTWISE_PARALLEL_MIN_SIZE >= jit.PARALLEL_MIN_SIZE
    assert jit.REDUCE_PARALLEL_MIN_SIZE >= jit.PARALLEL_MIN_SIZE


@pytest.mark.parametrize("n", [jit.PARALLEL_MIN_SIZE + 1, jit.ELEMENTWISE_PARALLEL_MIN_SIZE - 1,
                               jit.ELEMENTWISE_PARALLEL_MIN_SIZE,
                               jit.ELEMENTWISE_PARALLEL_MIN_SIZE + 5])
def test_elementwise_on_both_sides_of_its_switch(n):
    a, b = RNG.standard_normal(n).astype(F32), RNG.standard_normal(n).astype(F32)
    np.testing.assert_array_equal(K.elementwise(S.ADD, (a, b), F32), a + b)
    parallel = n >= jit.ELEMENTWISE_PARALLEL_MIN_SIZE
    assert (S.ADD, parallel) in _ew._compiled
    assert _ew._kernel(S.ADD, n) is _ew._compiled[(S.ADD, parallel)]


@pytest.mark.parametrize("rows", [3, 2 * jit.REDUCE_PARALLEL_MIN_SIZE // 1000 + 1])
@pytest.mark.parametrize("op, ref", [(S.SUM, np.sum), (S.MAX, np.max), (S.MIN, np.min)])
def test_reductions_per_kind_on_both_sides_of_the_switch(rows, op, ref):
    x = RNG.standard_normal((rows, 1000)).astype(F32)
    for axes in [(0,), (1,), (0, 1)]:  # a non-last axis (column chunks), rows, everything
        got = K.reduce(op, x, axes, False)
        want = ref(x.astype(np.float64) if op == S.SUM else x, axis=axes)
        np.testing.assert_allclose(got, want, rtol=1e-5 if op == S.SUM else 0, atol=1e-2)
    # a sum copy and a max/min copy are different kernels; max and min share one
    assert _reduce._reduce(10, True) is not _reduce._reduce(10, False)
    assert _reduce._reduce(10, True) is _reduce._reduce(11, True)


def test_argreduce_past_the_switch():
    x = RNG.standard_normal((3, jit.REDUCE_PARALLEL_MIN_SIZE // 3 + 7)).astype(F32)
    np.testing.assert_array_equal(K.argreduce(S.MAX, x, 1), x.argmax(1))
    np.testing.assert_array_equal(K.argreduce(S.MIN, x, 0), x.argmin(0))


def test_variants_make_one_copy_per_mode_and_size_class():
    picks = jit.variants(lambda: None, ("A",), min_size=100)
    assert picks(5, True) is picks(99, True)
    assert picks(5, True) is not picks(5, False)
    assert picks(5, True) is not picks(100, True)
    assert picks(100, True) is picks(10 ** 6, True)


@pytest.mark.parametrize("channels_last", [True, False])
def test_norm_in_both_layouts_with_relu(channels_last):
    x = RNG.standard_normal((2, 3, 4, 5))
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) \
        if channels_last else x
    mean, var, rstd = K.norm_stats(x, False, 1, 1e-5)
    np.testing.assert_allclose(mean, x.mean((0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var((0, 2, 3)), rtol=1e-12)
    y = K.norm_apply(x, mean, rstd, None, None, False, 1, True)
    want = np.maximum((x - mean[:, None, None]) * rstd[:, None, None], 0)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    assert (y.strides[1] == y.itemsize) == channels_last  # the input's layout


@pytest.mark.parametrize("is_max", [True, False])
def test_pool_mode_copies_are_separate(is_max):
    assert _pool._forward(10, is_max, True) is not _pool._forward(10, is_max, False)
    assert _pool._forward(10, True, True) is not _pool._forward(10, False, True)
    assert _pool._backward(10, True) is not _pool._backward(10, False)


def test_every_cpu_kernel_releases_the_gil():
    """Compute kernels run without the GIL (the DataLoader's threads keep working meanwhile):
    every cached Numba dispatcher of the CPU kernel modules and the data kernels, and the
    specialised copies, are compiled with nogil. Inlined math (cache off) is compiled into its
    callers and does not count."""
    import importlib
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    from tinygrad_lite.kernels import cpu
    from tinygrad_lite.kernels.cpu import jit

    modules = [importlib.import_module(f"tinygrad_lite.kernels.cpu.{m.name}")
               for m in pkgutil.iter_modules(cpu.__path__)]
    modules.append(importlib.import_module("tinygrad_lite.data.kernels"))
    dispatchers = [(f"{m.__name__}.{name}", obj) for m in modules for name, obj in vars(m).items()
                   if isinstance(obj, Dispatcher)
                   and type(obj._cache).__name__ == "FunctionCache"]
    assert len(dispatchers) >= 10  # the module-level ones; most kernels are specialised copies
    holding = [name for name, d in dispatchers if not d.targetoptions.get("nogil")]
    assert not holding, f"these kernels hold the GIL: {holding}"

    def loop(x):
        return x + 1

    for parallel in (False, True):
        assert jit.specialised(loop, parallel).targetoptions["nogil"]


def _every_op():
    for arity, count in enumerate(S._COUNTS, start=1):
        for i in range(count):
            yield (arity - 1) * S._BLOCK + i, arity


@pytest.mark.parametrize("op, arity", list(_every_op()))
def test_generic_small_copy_matches_each_ops_own_copy(monkeypatch, op, arity):
    """Arrays under GENERIC_MAX_SIZE run an op through the copy of its family (its adapter in
    kernels.scalar) that reads the op code at run time; from that size each op has its own
    copy. The two give the same numbers, bit for bit (NaN where NaN), for every op, in both
    float dtypes, on contiguous and strided operands; and a call picks the family's copy below
    the switch, the op's own from it."""
    limit = _ew.GENERIC_MAX_SIZE
    assert _ew._kernel(op, limit - 1) is _ew._compiled[S.adapter(op)]
    assert _ew._kernel(op, limit) is _ew._compiled[(op, False)]
    rng = np.random.default_rng(op)
    n = 777
    for dtype in (np.float32, np.float64):
        data = [rng.uniform(-3, 3, 2 * n).astype(dtype) for _ in range(arity)]
        data[0][:4] = [0.0, -0.0, np.inf, np.nan]  # the edge cases of every op's math
        if op in (S.POW, S.POW_GRAD_BASE, S.POW_GRAD_EXP):
            data[0][4:] = np.abs(data[0][4:]) + 0.5  # real powers of a positive base
        for operands in ([x[:n] for x in data], [x[::2] for x in data]):
            results = []
            for switch in (n + 1, 0):  # the generic copy, then the op's own
                monkeypatch.setattr(_ew, "GENERIC_MAX_SIZE", switch)
                results.append(K.elementwise(op, operands, dtype, param=0.3))
            np.testing.assert_array_equal(results[0], results[1])
