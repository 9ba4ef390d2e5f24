"""CIFAR-10 (Krizhevsky, 2009) from the official "python version" layout:
root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}, each a pickle whose
b"data" is (10000, 3072) uint8 rows of 1024 red, 1024 green, 1024 blue values.

Images are held as one uint8 (N, 32, 32, 3) NHWC array (`data`) and int64 labels
(`targets`), so the DataLoader gathers a batch with one fancy index.

With sample="auto", a class-balanced sample of real CIFAR-10 images shipped in the package
(cifar10_sample.npz: 5,000 training images, 500 per class, and 1,000 test images, 100 per
class; made by tools/make_cifar_sample.py) stands in when the full set is not found, so demos
run without data or network; sample=True always uses it.
"""
import pathlib
import pickle
import sys

import numpy as np

from .dataset import Dataset
from .download import ENV_VAR, data_root, download_url, extract_tar, md5sum
from .transforms import apply_transform

__all__ = ["CIFAR10", "SAMPLE_PATH"]

SAMPLE_PATH = pathlib.Path(__file__).with_name("cifar10_sample.npz")


class CIFAR10(Dataset):
    """CIFAR-10 as in torchvision: ds[i] -> (uint8 (32, 32, 3) image, int label).

    root: the directory holding cifar-10-batches-py/ (default: $TINYGRAD_LITE_DATA, else
    ~/.cache/tinygrad_lite). download=True fetches and verifies the official archive when the
    files are missing. transform: a batch transform (data.transforms) applied to every batch
    the DataLoader gathers. sample: False (full set or an error), "auto" (the full set, else
    the shipped sample, saying so) or True (the sample).

    >>> train = CIFAR10(train=True, sample="auto")
    >>> train.data.shape, train.targets[:3], train.classes[0]
    ((50000, 32, 32, 3), array([...]), 'airplane')
    """
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    md5 = "c58f30108f718f92721af3b95e74349a"
    folder = "cifar-10-batches-py"
    archive = "cifar-10-python.tar.gz"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
    layout = "NHWC"  # the DataLoader turns `data` batches into (N, C, H, W) views

    def __init__(self, root=None, train=True, transform=None, download=False, sample=False):
        if sample not in (False, True, "auto"):
            raise ValueError(f"CIFAR10: sample must be False, True or 'auto', got {sample!r}")
        self.root, self.train, self.transform = data_root(root), train, transform
        self.is_sample = sample is True
        if not self.is_sample:
            if download:
                self.download()
            missing = self._missing()
            if missing and sample == "auto":
                print(f"CIFAR10: full data set not found under {self.root / self.folder} "
                      f"(missing {', '.join(missing)}); using the {SAMPLE_PATH.name} sample "
                      f"shipped with tinygrad_lite", file=sys.stderr)
                self.is_sample = True
            elif missing:
                raise FileNotFoundError(self._missing_message(missing))
        if self.is_sample:
            self.data, self.targets = self._load_sample()
        else:
            self.data, self.targets = self._load_batches()

    def _files(self):
        return self.train_files if self.train else self.test_files

    def _missing(self):
        return [f for f in self._files() if not (self.root / self.folder / f).is_file()]

    def _missing_message(self, missing):
        return (f"CIFAR10: {', '.join(missing)} not found in {self.root / self.folder}. "
                f"Provide the data set (python version) by passing root=<directory holding "
                f"{self.folder}/>, by setting {ENV_VAR}=<that directory>, or with "
                f"download=True (fetches {self.url}); or pass sample='auto' to use the "
                f"5,000-image sample shipped with the package.")

    def download(self):
        """Fetch, check (MD5) and unpack the archive into root unless the files are there."""
        if not self._missing():
            return
        archive = self.root / self.archive
        if not (archive.is_file() and md5sum(archive) == self.md5):
            download_url(self.url, archive, self.md5)
        extract_tar(archive, self.root, self.folder)

    def _load_batches(self):
        images, labels = [], []
        for name in self._files():
            path = self.root / self.folder / name
            try:
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
                rows = np.asarray(batch[b"data"])
                y = np.asarray(batch[b"labels"], np.int64)
                if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 3072 \
                        or len(y) != len(rows):
                    raise ValueError(f"data {rows.dtype} {rows.shape} with {len(y)} labels, "
                                     f"expected uint8 (n, 3072) and n labels")
                if len(y) and (y.min() < 0 or y.max() > 9):
                    raise ValueError(f"labels in [{y.min()}, {y.max()}], expected 0..9")
            except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError,
                    AttributeError, IndexError) as e:
                raise OSError(f"CIFAR10: {path} is truncated or corrupt ({type(e).__name__}: "
                              f"{e}); delete it and download again (download=True, "
                              f"{self.url}) or point root/{ENV_VAR} at a good copy") from e
            images.append(rows)
            labels.append(y)
        rows = np.concatenate(images)
        # channel-planar rows (3, 32, 32) -> NHWC, copied once into one contiguous array
        data = np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        return data, np.concatenate(labels)

    def _load_sample(self):
        split = "train" if self.train else "test"
        try:
            with np.load(SAMPLE_PATH) as f:
                return f[f"{split}_images"], f[f"{split}_labels"].astype(np.int64)
        except (OSError, KeyError, ValueError) as e:
            raise OSError(f"CIFAR10: the shipped sample {SAMPLE_PATH} is missing or corrupt "
                          f"({e}); regenerate it with tools/make_cifar_sample.py") from e

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        x, y = apply_transform(self.transform, self.data[[index]], self.targets[[index]],
                               None)
        return x[0], (y[0].item() if np.ndim(y) == 1 else y[0])

    def __getitems__(self, indices, generator=None):
        return apply_transform(self.transform, self.data[indices], self.targets[indices],
                               generator)

    def __repr__(self):
        return (f"CIFAR10(split={'train' if self.train else 'test'}, n={len(self)}, "
                f"root={str(self.root)!r}{', sample' if self.is_sample else ''})")
