"""Datasets, as in torch.utils.data: a Dataset has __len__ and __getitem__(i) -> sample. A
dataset that holds whole arrays also has __getitems__(indices, generator=None) -> a batch
gathered in one fancy-indexing step per field, which the DataLoader uses instead of one call
per sample; `generator` is the batch's random generator, for a dataset's own transform."""
import numpy as np

from .. import random as tl_random

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


class Dataset:
    """Base class: subclasses define __len__ and __getitem__."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


def _host(a):
    """A NumPy array from a Tensor (any device) or array-like."""
    return a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else \
        np.asarray(a)


LAYOUTS = ("NCHW", "NHWC")


def check_layout(name, layout):
    if layout not in LAYOUTS:
        raise ValueError(f"{name}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout


class TensorDataset(Dataset):
    """Samples i of equally long arrays or Tensors (kept on the host as NumPy arrays).

    `layout` says how 4-D images in the first array are stored: "NCHW" (the default, as in
    PyTorch) or "NHWC" (channels last, as CIFAR10 holds them). The DataLoader reads it; it
    never guesses a layout from the dtype.

    >>> ds = TensorDataset(images_uint8_nchw, labels)   # ds[3] -> (image, label)
    >>> ds = TensorDataset(images_uint8_nhwc, labels, layout="NHWC")
    """

    def __init__(self, *arrays, layout="NCHW"):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array")
        self.arrays = tuple(_host(a) for a in arrays)
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: all arrays need the same first dimension, got "
                             f"shapes {[a.shape for a in self.arrays]}")
        self.layout = check_layout("TensorDataset", layout)
        if layout == "NHWC" and self.arrays[0].ndim != 4:
            raise ValueError(f"TensorDataset: layout='NHWC' describes 4-D images (N, H, W, C) "
                             f"in the first array, got shape {self.arrays[0].shape}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def __getitems__(self, indices, generator=None):
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, np.asarray(indices, np.int64).reshape(-1)
        if len(self.indices) and (self.indices.min() < -len(dataset)
                                  or self.indices.max() >= len(dataset)):
            raise IndexError(f"Subset: indices must lie in [0, {len(dataset)}), got "
                             f"[{self.indices.min()}, {self.indices.max()}]")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __getattr__(self, name):
        # __getitems__ exists where the wrapped dataset gathers batches itself; `classes` and
        # `layout` describe the samples and show through. Not `data`/`targets`: those would be
        # the whole wrapped set's, not this subset's.
        if name == "__getitems__" and "dataset" in vars(self) \
                and hasattr(self.dataset, "__getitems__"):
            return lambda indices, generator=None: self.dataset.__getitems__(
                self.indices[indices], generator=generator)
        if name in ("classes", "layout") and "dataset" in vars(self):
            return getattr(self.dataset, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def random_split(dataset, lengths, generator=None):
    """Split into non-overlapping Subsets of the given lengths (ints summing to len(dataset),
    or fractions summing to 1, remainders going to the first splits, as PyTorch), using a
    random permutation from `generator` (default: tinygrad_lite.random.generator())."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(f, float) for f in lengths) and abs(sum(lengths) - 1) < 1e-6:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(k) != k or k < 0 for k in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths must be non-negative ints summing to the "
                         f"dataset's length {n} (or fractions summing to 1), got {lengths}")
    order = (generator or tl_random.generator()).permutation(n)
    bounds = np.cumsum([0] + [int(k) for k in lengths])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
