"""Element-wise CPU kernel: one fused loop for every op in `kernels.scalar` (one to four
operands and a scalar parameter), over arrays of any strides, planned by
`kernels.plan.strided_plan`.

Every array reaches the kernel as a 1-D C-contiguous view of the memory it spans, plus an
element offset and steps for a loop nest of at most three dims. Permuted, sliced, expanded
(stride 0) and reversed (negative stride) operands are read where they lie, never copied to C
order first; a C-contiguous operand is its own flat view, so C inputs keep the vectorised path.
The loop is compiled once per (op, serial/parallel), lazily, with the op fixed as a constant so
that it vectorises (the arity follows from the op code). Small arrays (under GENERIC_MAX_SIZE
elements) take one copy per family of ops (kernels.scalar's adapters: the core unary ops, the
core binary ops, ...), the op code a run-time argument: it runs a few times slower per element,
which at these sizes is little next to the cost of the call, and it spares each op its own
compilation (0.7 s each on a cold cache, against about 1 s for a whole family; a training
step's loss alone used ten op codes on 1,280 elements)."""
from functools import lru_cache

import numpy as np
from numba import prange
from numpy.lib.stride_tricks import as_strided

from .. import scalar
from ..plan import broadcast_shape, memory_extent, memory_order, output_order, strided_plan
from .jit import ELEMENTWISE_PARALLEL_MIN_SIZE, SCALAR, specialised

_apply = SCALAR.apply

CHUNK = 4096  # elements per parallel work item: big enough to amortise the index arithmetic
OP = -1  # fixed per compiled copy by jit.specialised; -1 in the generic copy (op read from `op`)
# Tunable: arrays below this many elements take their family's generic copy. Measured (float32,
# one core, a call through elementwise()): ADD on 1,024 elements 4.5 us generic vs 3.9 us its
# own copy, 8,192: 10.6 vs 4.8, 32,768: 31.6 vs 7.7 (0.8 ns per element more); EXP about 15%
# slower throughout. Below 16K elements a call costs at most about 10 us more.
GENERIC_MAX_SIZE = 1 << 14


def _elementwise_loop(a, b, c, d, out, steps, p, op):
    # steps rows: (n0, n1, n2, -), then (offset, step0, step1, step2) into the flat output, a, b,
    # c and d. The output is walked in its own memory order: a new output's last step is 1.
    n0, n1, n2 = steps[0, 0], steps[0, 1], steps[0, 2]
    so, sa, sb, sc, sd = steps[1], steps[2], steps[3], steps[4], steps[5]
    chunks = (n2 + CHUNK - 1) // CHUNK
    unit = sa[3] == 1 and sb[3] == 1 and sc[3] == 1 and sd[3] == 1 and so[3] == 1
    code = OP if OP >= 0 else op  # a constant in a specialised copy: the branch folds away
    for t in prange(n0 * n1 * chunks):
        row, part = t // chunks, t % chunks
        i, j = row // n1, row % n1
        ao, bo = sa[0] + i * sa[1] + j * sa[2], sb[0] + i * sb[1] + j * sb[2]
        co, do = sc[0] + i * sc[1] + j * sc[2], sd[0] + i * sd[1] + j * sd[2]
        oo = so[0] + i * so[1] + j * so[2]
        lo, hi = part * CHUNK, min(n2, (part + 1) * CHUNK)
        if unit:  # the common case: slices index from 0, with no offset arithmetic for Numba
            # to guard against negative indices, so the loop vectorises (measured 7x)
            x, y = a[ao + lo:ao + hi], b[bo + lo:bo + hi]
            z, w = c[co + lo:co + hi], d[do + lo:do + hi]
            o = out[oo + lo:oo + hi]
            for k in range(hi - lo):
                o[k] = _apply(code, x[k], y[k], z[k], w[k], p)
        else:
            s0, s1, s2, s3, s4 = so[3], sa[3], sb[3], sc[3], sd[3]
            for k in range(lo, hi):
                out[oo + k * s0] = _apply(code, a[ao + k * s1], b[bo + k * s2], c[co + k * s3],
                                          d[do + k * s4], p)


_compiled = {}


def _kernel(op, size):
    """The compiled loop for op at this size: the generic copy of op's family (its adapter in
    kernels.scalar) below GENERIC_MAX_SIZE, else op's own serial or parallel copy."""
    family = scalar.adapter(op)
    key = family if size < GENERIC_MAX_SIZE else (op, size >= ELEMENTWISE_PARALLEL_MIN_SIZE)
    fn = _compiled.get(key)
    if fn is None:
        helpers = {"_apply": getattr(SCALAR, family)}
        if key is family:  # the op code stays a run-time argument
            fn = specialised(_elementwise_loop, False, helpers=helpers, GENERIC=family)
        else:
            fn = specialised(_elementwise_loop, key[1], helpers=helpers, OP=op)
        _compiled[key] = fn
    return fn


# How an array is seen as a flat 1-D C-contiguous view of its memory (the kernel's operands):
_C, _PERM, _SPAN = range(3)  # reshape(-1); transpose(perm).reshape(-1); as_strided over a span


def _view_of(shape, strides, itemsize):
    """(element strides, how, arg, offset of the first element in the flat view), or None for
    strides that are not whole elements (byte-offset views, such as a field of a packed record
    array: no flat view of whole elements exists, so the call copies through _agreeing)."""
    if any(s % itemsize for s in strides):
        return None
    elem = tuple(s // itemsize for s in strides)
    low, span = memory_extent(shape, elem)
    if all(s > 0 or n == 1 for n, s in zip(shape, elem)):
        perm = memory_order(shape, elem)
        step, dense = 1, True  # dense in order perm: then transpose(perm) is C-contiguous,
        for a in reversed(perm):  # and reshape(-1) of it a view (NumPy's flag rule)
            if shape[a] != 1:
                dense, step = dense and elem[a] == step, step * shape[a]
        if dense:
            return elem, (_C if perm == tuple(range(len(shape))) else _PERM), perm, 0
        return elem, _SPAN, (span, None), 0
    # A view can only start at an element of the array: reversed dims are flipped first so
    # that it starts at the lowest address; the first element then lies -low further on.
    flip = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in elem) if low else None
    return elem, _SPAN, (span, flip), -low


def _flat(x, how, arg):
    if how == _C:
        return x.reshape(-1)
    if how == _PERM:
        return x.transpose(arg).reshape(-1)
    span, flip = arg
    return as_strided(x if flip is None else x[flip], (span,), (x.itemsize,))


@lru_cache(maxsize=4096)
def _launch(op, layouts, shape, out_layout):
    """Everything a call needs, cached per (op, operand layouts, target shape, out layout or
    None for a new result): (out_shape, alloc, inverse, views, steps) where a new result is
    np.empty(alloc).transpose(inverse) (inverse None: no transpose), views[i] = (how, arg) of
    each operand then `out`, and steps the kernel's int64 table; steps None when the layouts do
    not fit three loop dims (or are byte-offset views), so the call takes _agreeing."""
    scalar.check(op, len(layouts))
    in_shapes = tuple(lay[0] for lay in layouts)
    out_shape = in_shapes[0] if shape is None and all(s == in_shapes[0] for s in in_shapes) \
        else broadcast_shape("elementwise", *in_shapes, *(() if shape is None else (shape,)))
    if out_layout is not None and out_layout[0] != out_shape:
        raise ValueError(f"elementwise: out has shape {out_layout[0]}, the result {out_shape}")
    order = output_order(out_shape, in_shapes, tuple(lay[1] for lay in layouts))
    alloc, inverse = out_shape, None
    if order != tuple(range(len(out_shape))):
        alloc, inverse = tuple(out_shape[a] for a in order), tuple(np.argsort(order).tolist())
    if out_layout is None:  # a new result: dense in `order`, its flat view the allocation
        step, out_elem = 1, [0] * len(out_shape)
        for a in reversed(order):
            out_elem[a], step = step, step * out_shape[a]
        out_view = (tuple(out_elem), _C, None, 0)
    else:
        out_view = _view_of(*out_layout)
    views = [_view_of(*lay) for lay in layouts] + [out_view]
    if any(v is None for v in views):
        return out_shape, alloc, inverse, None, None
    plan = strided_plan(out_shape, out_view[0], in_shapes, tuple(v[0] for v in views[:-1]))
    if plan is None:
        return out_shape, alloc, inverse, None, None
    dims, lays = plan
    rows = [dims + (0,)] + [(v[3] + lay[0],) + lay[1:] for v, lay in zip(views[-1:] + views[:-1],
                                                                           lays)]
    rows += [rows[2]] * (scalar.MAX_ARITY + 2 - len(rows))  # unused operands repeat a's
    steps = np.array(rows, np.int64)
    steps.flags.writeable = False
    return out_shape, alloc, inverse, tuple((v[1], v[2]) for v in views), steps


def elementwise(op, arrays, dtype, shape=None, param=0.0, out=None):
    """Apply `op` (a code from kernels.scalar, reading len(arrays) operands) to arrays that
    broadcast together (and to `shape`, if given), with constant `param`. Returns a new `dtype`
    array laid out as plan.output_order says, or `out` (any strides, possibly an operand)
    written in place."""
    # Plain loops and no generators: this runs for every op, and on small arrays its Python
    # work is the op's cost (the a * b overhead pair of make bench).
    layouts = []
    for a in arrays:
        layouts.append((a.shape, a.strides, a.itemsize))
    given = out is not None
    out_shape, alloc, inverse, views, steps = _launch(
        op, tuple(layouts), None if shape is None else tuple(shape),
        (out.shape, out.strides, out.itemsize) if given else None)
    if not given:
        buf = np.empty(alloc, dtype)
        out = buf if inverse is None else buf.transpose(inverse)
    if out.size == 0:
        return out
    if steps is None:
        return _agreeing(op, arrays, out, param)
    flats = []
    for a, view in zip(arrays, views):
        flats.append(a.reshape(-1) if view[0] == _C else _flat(a, *view))
    first = flats[0]
    while len(flats) < scalar.MAX_ARITY:  # unused operands repeat the first
        flats.append(first)
    target = _flat(out, *views[-1]) if given else buf.reshape(-1)
    _kernel(op, out.size)(first, flats[1], flats[2], flats[3], target, steps, float(param), op)
    return out


def _agreeing(op, arrays, out, param):
    """The layouts do not fit three loop dims (operands or `out` in layouts that do not merge,
    such as a broadcast over alternating dims against a permuted operand; rare), or one is a
    byte-offset view: copy every operand into one dense layout, the one a new result gets, so
    that the launch is a single run, then copy into `out` unless it already has that layout."""
    layouts = tuple((a.shape, a.strides, a.itemsize) for a in arrays)
    _, alloc, inverse = _launch(op, layouts, out.shape, None)[:3]
    dense = np.empty(alloc, out.dtype)
    dense = dense if inverse is None else dense.transpose(inverse)
    same = []
    for a in arrays:
        copy = np.empty_like(dense, dtype=a.dtype)  # empty_like keeps dense's layout
        np.copyto(copy, np.broadcast_to(a, out.shape))
        same.append(copy)
    if out.strides == dense.strides:
        return elementwise(op, same, out.dtype, param=param, out=out)
    np.copyto(out, elementwise(op, same, out.dtype, param=param, out=dense))
    return out
