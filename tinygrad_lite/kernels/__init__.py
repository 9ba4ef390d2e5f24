"""Kernels, one backend package per device with identical names:

  empty(shape, dtype) / full(shape, value, dtype) / from_numpy(a) / to_numpy(a) / is_array(a)
  elementwise(op, arrays, dtype)   op from kernels.scalar; arity = len(arrays); broadcasting
  reduce(op, x, axes, keepdims)    SUM / MAX / MIN over sorted axes
  argreduce(op, x, axis)           MAX / MIN -> int64 index, first on ties
  matmul(a, b)                     (..., M, K) @ (..., K, N), equal leading dims
  reshape / permute / expand / getitem / cat / pad    movement
  scatter_add(shape, index, values)                    the gradient of any gather

`scalar` holds the math both devices compile; `plan` the index arithmetic both devices use.
"""
