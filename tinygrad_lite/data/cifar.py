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
from .download import ENV_VAR, download_url, extract_tar, md5sum, resolve_root
from .transforms import apply_transform

__all__ = ["CIFAR10", "SAMPLE_PATH"]

SAMPLE_PATH = pathlib.Path(__file__).with_name("cifar10_sample.npz")


class CIFAR10(Dataset):
    """CIFAR-10 as in torchvision: ds[i] -> (uint8 (32, 32, 3) image, int label).

    root: the directory holding cifar-10-batches-py/, or that folder itself (default:
    $TINYGRAD_LITE_DATA, else ~/.cache/tinygrad_lite). download=True fetches and verifies the
    official archive when the files are missing. transform: a batch transform
    (data.transforms) applied to every batch the DataLoader gathers. sample: False (full set
    or an error), "auto" (the full set, else the shipped sample, saying so) or True (the
    sample). A root you give (the argument or $TINYGRAD_LITE_DATA) must hold the data set,
    even with sample="auto": the sample stands in only for the default root, so a mistyped
    path is an error, not a quiet run on 5,000 images.

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
        self.train, self.transform = train, transform
        self.root, self.given_by = resolve_root(root)
        self.data_dir = self._locate(self.root)
        self.is_sample = sample is True
        if not self.is_sample:
            if download:
                self.download()
            missing = self._missing()
            if missing and sample == "auto" and self.given_by is None:
                print(f"CIFAR10: full data set not found under {self.data_dir} "
                      f"(missing {', '.join(missing)}); using the {SAMPLE_PATH.name} sample "
                      f"shipped with tinygrad_lite", file=sys.stderr)
                self.is_sample = True
            elif missing:
                raise FileNotFoundError(self._missing_message(missing))
        if self.is_sample:
            self.data, self.targets = self._load_sample()
        else:
            self.data, self.targets = self._load_batches()

    def _locate(self, root):
        """root/cifar-10-batches-py, or root itself when it is that folder (by name, or
        because it holds the batch files and has no such subfolder)."""
        if root.name == self.folder:
            return root
        if not (root / self.folder).is_dir() and any(
                (root / f).is_file() for f in (*self.train_files, *self.test_files)):
            return root
        return root / self.folder

    def _files(self):
        return self.train_files if self.train else self.test_files

    def _missing(self):
        return [f for f in self._files() if not (self.data_dir / f).is_file()]

    def _missing_message(self, missing):
        provide = (f"Provide the data set (python version) by passing root=<the directory "
                   f"holding {self.folder}/, or that folder itself>, by setting "
                   f"{ENV_VAR}=<that directory>, or with download=True (fetches {self.url})")
        if self.given_by is None:
            return (f"CIFAR10: {', '.join(missing)} not found in {self.data_dir}. {provide}; "
                    f"or pass sample='auto' to use the 5,000-image sample shipped with the "
                    f"package.")
        looked = (f"{self.data_dir}" if self.data_dir != self.root / self.folder
                  else f"{self.data_dir} and in {self.root} itself")
        return (f"CIFAR10: {self.root} (given by {self.given_by}) does not hold the CIFAR-10 "
                f"data set: looked for {', '.join(self._files())} in {looked}; missing "
                f"{', '.join(missing)}. {provide}. The 5,000-image sample shipped with the "
                f"package stands in (sample='auto') only when no root is given: neither "
                f"root= nor ${ENV_VAR}.")

    def download(self):
        """Fetch, check (MD5) and unpack the archive into root unless the files are there."""
        if not self._missing():
            return
        # into the folder's parent, so that root may name either of them
        parent = self.data_dir.parent if self.data_dir.name == self.folder else self.root
        parent.mkdir(parents=True, exist_ok=True)
        archive = parent / self.archive
        if not (archive.is_file() and md5sum(archive) == self.md5):
            download_url(self.url, archive, self.md5)
        self.data_dir = extract_tar(archive, parent, self.folder)

    def _load_batches(self):
        images, labels = [], []
        for name in self._files():
            path = self.data_dir / name
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
