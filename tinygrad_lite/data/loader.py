"""DataLoader: batches of a Dataset as Tensors, shuffled with a seeded generator, augmented
per batch, and loaded ahead in background threads so loading overlaps the training step.

Images come out in the layout the conv kernels prefer: an (N, C, H, W) float32 Tensor whose
memory is (N, H, W, C) (a permuted view, like PyTorch's channels_last). uint8 images become
float32 in [0, 1] in one kernel; put Normalize (or a fitted Standardize) last in the
transform to normalise in that same pass instead.

Determinism: each epoch draws one seed from `generator` (default
tinygrad_lite.random.generator(), reset by manual_seed) in the iterating thread; the shuffle
and each batch's augmentation use generators derived from (seed, batch index) only. A
transform built with its own generator (the loader's or the dataset's, or one inside a
Compose) likewise gives one seed per epoch, drawn in the iterating thread, and draws from a
generator derived from (that seed, batch index). So the batches are the same with or without
worker threads, in any thread timing.
"""
import collections
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import random as tl_random
from ..tensor import Tensor
from . import kernels as K
from .dataset import Dataset, check_layout
from .transforms import apply_transform, batch_generators, own_generator_transforms

__all__ = ["DataLoader", "default_collate"]


def default_collate(samples):
    """A list of samples (tuples of arrays/scalars, or arrays) -> a tuple of stacked NumPy
    arrays, one per field."""
    if isinstance(samples[0], (tuple, list)):
        return tuple(np.stack([np.asarray(s[i]) for s in samples])
                     for i in range(len(samples[0])))
    return (np.stack([np.asarray(s) for s in samples]),)


def _to_float(x):
    """uint8 images (any 4-D layout) -> float32 in [0, 1], in one kernel pass. One scale for
    every channel, so the kernel sees the batch as (N, everything, 1, 1)."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, np.float32)
    flat = (x.shape[0], -1, 1, 1)
    K.affine(x.reshape(flat), np.full((1, 1), 1 / 255, np.float32),
             np.zeros((1, 1), np.float32), False, out.reshape(flat))
    return out


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` (the last one smaller unless
    drop_last), in a random order each epoch if `shuffle`.

    The layout of 4-D images in a batch's first field is the one the dataset declares in its
    `layout` attribute ("NHWC" for CIFAR10, TensorDataset(..., layout="NHWC")), else "NCHW"
    (as a PyTorch dataset); it is never guessed from the dtype. uint8 images become float32
    in [0, 1]. `transform` is a batch transform (see data.transforms) applied to the first
    field and the second (targets) of each batch; transforms work on NHWC batches, so NCHW
    images are made NHWC for them. NHWC images (declared, or out of a transform) become an
    (N, C, H, W) view over NHWC float32 memory; NCHW ones without a transform stay as they
    are. Other fields become Tensors of their dtype.
    `num_workers` threads (0: load in the iterating thread) keep up to
    num_workers * prefetch_factor batches ready. A custom `collate_fn(list_of_samples)`
    replaces all of this and its result is yielded as it is.

    >>> loader = DataLoader(CIFAR10(train=True), batch_size=128, shuffle=True, drop_last=True,
    ...                     transform=Compose([RandomCrop(32, 4), RandomHorizontalFlip()]),
    ...                     num_workers=2)
    >>> for images, labels in loader: ...           # (128, 3, 32, 32) float32, (128,) int64
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, transform=None,
                 num_workers=0, prefetch_factor=None, generator=None, collate_fn=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: expected a dataset (with __len__ and __getitem__, "
                            f"e.g. a data.Dataset), got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got "
                             f"{num_workers!r}")
        if prefetch_factor is not None and num_workers == 0:
            raise ValueError("DataLoader: prefetch_factor needs num_workers > 0 (batches are "
                             "prefetched by worker threads)")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be >= 1, got {prefetch_factor}")
        if collate_fn is not None and transform is not None:
            raise ValueError("DataLoader: give transform or collate_fn, not both (a custom "
                             "collate_fn's output is not a batch the transforms understand)")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last, self.transform = shuffle, drop_last, transform
        self.num_workers, self.prefetch_factor = num_workers, prefetch_factor or 2
        self.generator, self.collate_fn = generator, collate_fn

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batch(self, indices, rng, derived=None):
        """Gather, augment and convert one batch (runs in a worker thread). `derived`:
        {id(transform): this batch's generator} for the transforms with their own."""
        with batch_generators(derived or {}):
            return self._make_batch(indices, rng)

    def _make_batch(self, indices, rng):
        if self.collate_fn is not None:
            return self.collate_fn([self.dataset[int(i)] for i in indices])
        gather = getattr(self.dataset, "__getitems__", None)
        if gather is None:
            fields = default_collate([self.dataset[int(i)] for i in indices])
        elif isinstance(self.dataset, Dataset):  # ours take the batch's generator
            fields = gather(indices, generator=rng)
        else:
            fields = gather(indices)
        fields = list(fields)
        layout = check_layout(f"DataLoader: {type(self.dataset).__name__}.layout",
                              getattr(self.dataset, "layout", "NCHW"))
        images = np.ndim(fields[0]) == 4
        if images and layout == "NCHW" and self.transform is not None:
            fields[0] = np.ascontiguousarray(np.asarray(fields[0]).transpose(0, 2, 3, 1))
        nhwc = images and (layout == "NHWC" or self.transform is not None)
        if self.transform is not None:
            fields[0], y = apply_transform(self.transform, fields[0],
                                           fields[1] if len(fields) > 1 else None, rng)
            fields[1:2] = [] if y is None else [y]
        out = []
        for i, f in enumerate(fields):
            f = np.asarray(f)
            if i == 0 and images and f.ndim == 4:
                f = _to_float(f) if f.dtype == np.uint8 else np.ascontiguousarray(f)
                t = Tensor(f)
                out.append(t.permute(0, 3, 1, 2) if nhwc else t)
            else:
                out.append(Tensor(f))
        return tuple(out)

    def _own_generator_transforms(self):
        """The transforms with their own generator: in `transform`, and in the transform of
        the dataset (and of the datasets a Subset wraps)."""
        found = own_generator_transforms(self.transform)
        d, seen = self.dataset, set()
        while d is not None and id(d) not in seen:
            seen.add(id(d))
            attrs = getattr(d, "__dict__", {})
            found += [t for t in own_generator_transforms(attrs.get("transform"))
                      if all(t is not f for f in found)]
            d = attrs.get("dataset")
        return found

    def __iter__(self):
        n = len(self.dataset)
        seed = int((self.generator or tl_random.generator()).integers(2 ** 63))
        # In this (the iterating) thread, in a fixed order: one seed per epoch from each
        # transform's own generator; worker threads never touch those generators.
        own = [(id(t), int(t.generator.integers(2 ** 63)))
               for t in self._own_generator_transforms()]
        order = np.random.default_rng(seed).permutation(n) if self.shuffle else np.arange(n)
        batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        jobs = ((b, np.random.default_rng([seed, i]),
                 {k: np.random.default_rng([s, i]) for k, s in own})
                for i, b in enumerate(batches))
        if self.num_workers == 0:
            return (self._batch(*job) for job in jobs)
        return self._prefetched(list(jobs))

    def _prefetched(self, jobs):
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="DataLoader")
        pending = collections.deque()
        try:
            for job in jobs:
                pending.append(pool.submit(self._batch, *job))
                # at most num_workers * prefetch_factor batches running or queued
                if len(pending) >= self.num_workers * self.prefetch_factor:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # also on break/exception: drop queued batches, let running ones finish
            pool.shutdown(wait=True, cancel_futures=True)
