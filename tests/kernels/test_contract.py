"""Both backends export the one contract written in kernels/__init__.py: the same names with
the same signatures, and the same answers to unknown op codes."""
import inspect

import pytest

from tinygrad_lite.kernels import cpu, cuda, scalar


CORE = ["NAME", "empty", "full", "from_numpy", "to_numpy", "is_array", "contiguous",
        "elementwise", "reduce", "argreduce", "matmul", "reshape", "permute", "expand",
        "getitem", "cat", "pad", "index_add"]


def test_backends_export_the_same_names_and_signatures():
    assert cpu.__all__ == cuda.__all__
    for name in cpu.__all__:
        a, b = getattr(cpu, name), getattr(cuda, name)
        if callable(a):
            assert inspect.signature(a) == inspect.signature(b), name
    assert (cpu.NAME, cuda.NAME) == ("cpu", "cuda")


@pytest.mark.parametrize("backend", [cpu, cuda])
def test_api_is_the_core_then_each_family_module(backend):
    families = (backend.conv, backend.pool, backend.norm, backend.optim)
    assert backend.__all__ == CORE + [name for f in families for name in f.__all__]
    for family in families:
        assert family.__all__, f"{family.__name__} exports nothing"


@pytest.mark.parametrize("backend", [cpu, cuda])
def test_op_codes_are_checked(backend):
    x = backend.full((3,), 1.0, "float32")
    with pytest.raises(ValueError, match="unknown op code 999"):
        backend.elementwise(999, (x,), x.dtype)
    with pytest.raises(ValueError, match="reads 2 operand"):
        backend.elementwise(scalar.ADD, (x,), x.dtype)


def test_op_codes_are_unique_across_arities():
    codes = {name: getattr(scalar, name) for name in dir(scalar)
             if name.isupper() and isinstance(getattr(scalar, name), int)
             and name not in ("SUM", "MAX", "MIN", "MAX_ARITY", "_BLOCK")}
    elementwise = {n: c for n, c in codes.items() if not n.startswith("_")}
    assert len(set(elementwise.values())) == len(elementwise)
    assert len(elementwise) == sum(scalar._COUNTS)  # every named code is a valid one
    for code in elementwise.values():
        assert 1 <= scalar.arity(code) <= scalar.MAX_ARITY
