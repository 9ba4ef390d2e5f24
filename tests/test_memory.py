"""Bounded memory: backward frees what the ops saved, no_grad records nothing, and a training
loop's memory stays flat over many steps."""
import gc
import os
import weakref

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import autograd, nn, optim
from tinygrad_lite.nn import functional as F


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def convnet():
    tl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def live_functions():
    # type(o), not isinstance: isinstance reads o.__class__, which some of torch's lazy module
    # objects (alive in the same process for the differential tests) answer with a warning
    return sum(issubclass(type(o), autograd.Function) for o in gc.get_objects())


def saved_arrays(fn):
    """The arrays a Function holds in its attributes (directly or in a tuple or list)."""
    found = []
    for value in vars(fn).values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, np.ndarray):
                found.append(item)
    return found


def test_backward_frees_every_array_the_ops_saved():
    model = convnet()
    x, y = tl.randn(4, 3, 8, 8), tl.randint(0, 10, 4)
    loss, twin = (F.cross_entropy(model(x), y) for _ in range(2))
    order = autograd.graph_order(loss)
    held = [a for fn in order for a in saved_arrays(fn)]
    assert len(held) >= len(order) // 2  # the forward saved arrays for backward
    # Arrays that live on anyway are not backward's to free: the inputs', the parameters'
    # and buffers', and constants that a kernel plan caches (the same objects in a second
    # forward of the same shapes, such as pooling's window tables). Every other saved array
    # was made for this forward and must die with the graph's saved values.
    alive = {id(t.array) for t in [x, y, *model.parameters(), *model.buffers()]}
    alive |= {id(a) for fn in autograd.graph_order(twin) for a in saved_arrays(fn)}
    refs = [weakref.ref(a) for a in held if id(a) not in alive]
    del held, twin
    assert len(refs) >= len(order) // 2
    loss.backward()
    gc.collect()
    assert all(fn.released and not saved_arrays(fn) for fn in order)
    assert [r for r in refs if r() is not None] == []
    assert [fn.name() for fn in autograd.graph_order(loss)] == [fn.name() for fn in order]


def test_no_grad_evaluation_records_nothing():
    model = convnet().eval()
    x = tl.randn(2, 3, 8, 8)
    gc.collect()
    before = live_functions()
    with tl.no_grad():
        out = model(x)
        loss = out.sum()
    gc.collect()
    assert out._ctx is None and loss._ctx is None and not loss.requires_grad
    assert live_functions() == before


def train(model, opt, x, y, steps, marks, zero_grad):
    sizes = {}
    for step in range(steps + 1):
        zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step in marks:
            gc.collect()
            sizes[step] = (rss_bytes(), live_functions())
    return sizes, loss


def test_memory_stays_flat_over_a_thousand_training_steps():
    """A small convnet trained with SGD momentum: after warm-up (kernels compiled, optimiser
    state made, allocator pools filled), neither the process's resident memory nor the number
    of live Functions grows. Half the steps zero .grad in place (gradients then accumulate
    into the same arrays), half set it to None."""
    model = convnet()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = tl.randn(4, 3, 8, 8), tl.randint(0, 10, 4)
    sizes = train(model, opt, x, y, 500, (200, 500), opt.zero_grad)[0]
    more, loss = train(model, opt, x, y, 500, (500,),
                       lambda: opt.zero_grad(set_to_none=False))
    (rss_200, fns_200), (rss_500, fns_500), (rss_1000, fns_1000) = sizes[200], sizes[500], \
        more[500]
    growth = max(rss_500, rss_1000) - rss_200
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 800 steps"
    # the last step's graph (loss is still referenced) and nothing from the steps before it
    assert fns_1000 == fns_500 == len(autograd.graph_order(loss)), (fns_500, fns_1000)
    assert np.isfinite(loss.item())
