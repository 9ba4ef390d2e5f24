"""Kernels: one backend package per device (kernels/cpu, kernels/cuda) exporting the same names
with the same signatures, listed in each package's `__all__`; tests/kernels/test_contract.py
checks that they match. Ops reach a backend only through `tensor.device.backend`.

The contract (every array argument is a backend array: NumPy on the CPU, a numba.cuda device
array on CUDA):

  memory
    empty(shape, dtype) / full(shape, value, dtype)       new C-contiguous arrays
    from_numpy(a) / to_numpy(a) / is_array(obj)           host <-> device
    contiguous(x)                                         x, or a C-contiguous copy
  element-wise
    elementwise(op, arrays, dtype, shape=None, param=0.0, out=None)
        op: a code from kernels.scalar; len(arrays) must equal scalar.arity(op) (ValueError
        otherwise, and for unknown codes). Operands broadcast together (and to `shape`).
        Operands may be strided views (permuted, sliced, expanded) and are read as they are.
        `param` is the op's constant (a slope, an alpha). Without `out` the result is a new
        array whose memory layout follows the operands (kernels.plan.output_strides: the
        layout of the first operand that has the full output shape, so an NHWC-strided batch
        stays NHWC); with `out` the result is written into it (any strides; it may be one of
        the operands, element for element, which is how in-place ops run).
  reductions
    reduce(op, x, axes, keepdims)   SUM / MAX / MIN over sorted non-negative axes; floats
                                    accumulate in float64, int64 and bool sums exactly in int64
    argreduce(op, x, axis)          MAX / MIN -> int64 index, the first on ties
  linear algebra
    matmul(a, b)                    (..., M, K) @ (..., K, N), equal leading dims
  movement
    reshape / permute / expand / getitem / cat / pad     NumPy semantics for keys and shapes
    index_add(shape, key, values)   zeros(shape) with values added at [key], repeated indices
                                    summed (np.add.at): the gradient of getitem

New families (conv, pooling, normalisation, optimiser updates) add a module to each backend
and their names to both `__all__` lists. `scalar` holds the math both devices compile; `plan`
the index arithmetic both devices use.
"""
