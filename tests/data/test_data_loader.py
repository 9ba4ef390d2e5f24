"""Datasets and the DataLoader: order, seeding, drop_last, prefetching threads, and the
layout and values of the batches."""
import threading
import time

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import data


def image_set(n=10, h=3, w=4, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, c)).astype(np.uint8), np.arange(n) % 4


def labels_of(loader):
    return [b[1].numpy().tolist() for b in loader]


def test_tensor_dataset_subset_and_random_split():
    x, y = image_set()
    ds = data.TensorDataset(x, tl.Tensor(y))
    assert len(ds) == 10 and ds[3][0].shape == (3, 4, 3) and ds[3][1] == y[3]
    sub = data.Subset(ds, [4, 1, 7])
    assert len(sub) == 3 and sub[1][1] == y[1]
    np.testing.assert_array_equal(sub.__getitems__(np.array([0, 2]))[0], x[[4, 7]])
    assert not hasattr(sub, "arrays")  # the wrapped set's arrays would not be this subset's
    tl.manual_seed(0)
    parts = data.random_split(ds, [6, 4])
    tl.manual_seed(0)
    again = data.random_split(ds, [0.6, 0.4])
    assert [len(p) for p in parts] == [6, 4]
    np.testing.assert_array_equal(np.sort(np.concatenate([p.indices for p in parts])),
                                  np.arange(10))
    for p, q in zip(parts, again):
        np.testing.assert_array_equal(p.indices, q.indices)
    # floors 5, 2, 2; the remainder goes to the first split (as PyTorch)
    assert [len(p) for p in data.random_split(ds, [0.5, 0.25, 0.25])] == [6, 2, 2]
    with pytest.raises(ValueError, match="random_split: lengths must"):
        data.random_split(ds, [3, 3])
    with pytest.raises(ValueError, match="TensorDataset: all arrays need the same first"):
        data.TensorDataset(x, y[:5])
    with pytest.raises(IndexError, match=r"Subset: indices must lie in \[0, 10\)"):
        data.Subset(ds, [10])


def test_batches_are_float32_nchw_views_over_nhwc_memory_with_the_right_values():
    x, y = image_set(n=5, h=3, w=4, c=3)
    ds = data.TensorDataset(x, y, layout="NHWC")
    images, labels = next(iter(data.DataLoader(ds, batch_size=5)))
    assert images.shape == (5, 3, 3, 4) and images.dtype == tl.float32
    assert images.stride() == (3 * 4 * 3, 1, 4 * 3, 3)  # NHWC memory under the NCHW API
    np.testing.assert_allclose(images.numpy(), x.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    assert labels.dtype == tl.int64 and labels.numpy().tolist() == y.tolist()
    # Normalize last: converted and normalised in the same pass
    norm = data.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images, _ = next(iter(data.DataLoader(ds, 5, transform=norm)))
    assert images.stride() == (36, 1, 12, 3)
    np.testing.assert_allclose(images.numpy(), (x.transpose(0, 3, 1, 2) / 255 - 0.5) / 0.25,
                               rtol=1e-5, atol=1e-6)


def test_order_drop_last_and_the_last_partial_batch():
    x, y = image_set(n=10)
    ds = data.TensorDataset(x, np.arange(10))
    plain = data.DataLoader(ds, batch_size=4)
    assert len(plain) == 3 and labels_of(plain) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = data.DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and labels_of(dropped) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    exact = data.DataLoader(ds, batch_size=5, drop_last=True)
    assert len(exact) == 2 and [len(b) for b in labels_of(exact)] == [5, 5]
    assert labels_of(data.DataLoader(ds, batch_size=32)) == [list(range(10))]
    assert labels_of(data.DataLoader(ds, batch_size=32, drop_last=True)) == []


def test_shuffle_is_seeded_and_visits_every_sample_once():
    ds = data.TensorDataset(np.arange(50))
    loader = data.DataLoader(ds, batch_size=8, shuffle=True)
    tl.manual_seed(5)
    first = [b[0].numpy() for b in loader]
    second = [b[0].numpy() for b in loader]  # a new epoch, a new order
    tl.manual_seed(5)
    again = [b[0].numpy() for b in loader]
    order = np.concatenate(first)
    assert sorted(order.tolist()) == list(range(50)) and order.tolist() != list(range(50))
    assert np.concatenate(second).tolist() != order.tolist()
    assert np.concatenate(again).tolist() == order.tolist()
    own = data.DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(1))
    own2 = data.DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(1))
    assert [b[0].tolist() for b in own] == [b[0].tolist() for b in own2]


def augment():
    return data.Compose([data.RandomCrop(4, padding=1), data.RandomHorizontalFlip(),
                         data.Cutout(2), data.Mixup(0.5, num_classes=4)])


@pytest.mark.parametrize("num_workers", [1, 3])
def test_prefetching_threads_give_the_same_batches_as_no_prefetch(num_workers):
    x, y = image_set(n=64, h=16, w=16)  # a 64 x 16 x 16 x 3 batch crosses 32k elements
    ds = data.TensorDataset(x, y, layout="NHWC")

    def batches(workers):
        tl.manual_seed(11)
        loader = data.DataLoader(ds, batch_size=12, shuffle=True, transform=augment(),
                                 num_workers=workers)
        return [(a.numpy(), b.numpy()) for a, b in loader]

    serial, threaded = batches(0), batches(num_workers)
    assert len(serial) == 6 and len(serial[-1][0]) == 4
    for (a, b), (c, d) in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    big = next(iter(data.DataLoader(ds, batch_size=64, num_workers=num_workers)))[0]
    np.testing.assert_allclose(big.numpy(), x.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)


def within(seconds, fn):
    """fn() in a daemon thread, failing (not hanging) if it takes longer than `seconds`."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as e:  # re-raised in the test's thread
            outcome["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"timed out after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def loader_threads():
    return {t for t in threading.enumerate() if t.name.startswith("DataLoader")}


def test_breaking_early_joins_the_worker_threads_and_errors_in_workers_surface():
    ds = data.TensorDataset(*image_set(n=40), layout="NHWC")
    before = loader_threads()

    def consume_two():
        loader = data.DataLoader(ds, batch_size=2, num_workers=2, prefetch_factor=3)
        seen = 0
        for seen, _ in enumerate(loader, 1):
            if seen == 2:
                break  # the pool shuts down: queued batches dropped, running ones joined
        return seen, loader_threads() - before
    seen, left = within(30, consume_two)
    assert seen == 2 and not any(t.is_alive() for t in left)

    def broken(x):
        raise RuntimeError("boom in the transform")
    with pytest.raises(RuntimeError, match="boom in the transform"):
        within(30, lambda: list(data.DataLoader(ds, batch_size=2, num_workers=2,
                                                transform=broken)))
    assert not any(t.is_alive() for t in loader_threads() - before)


class Counted(data.Dataset):
    """Counts the batches gathered (a loader thread gathers each batch once)."""

    def __init__(self, n):
        self.x, self.gathered, self.lock = np.arange(n), 0, threading.Lock()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]

    def __getitems__(self, indices, generator=None):
        with self.lock:
            self.gathered += 1
        return (self.x[indices],)


@pytest.mark.parametrize("num_workers, prefetch_factor", [(1, 1), (2, 2), (3, 1)])
def test_at_most_num_workers_times_prefetch_factor_batches_are_loaded_ahead(
        num_workers, prefetch_factor):
    ds = Counted(100)
    limit = num_workers * prefetch_factor
    loader = data.DataLoader(ds, batch_size=2, num_workers=num_workers,
                             prefetch_factor=prefetch_factor)

    def first_then_wait():
        it = iter(loader)
        first = next(it)
        time.sleep(0.3)  # time for the workers to run as far ahead as they are allowed
        ahead = ds.gathered
        second = next(it)
        time.sleep(0.3)
        then = ds.gathered
        it.close()
        return first, second, ahead, then
    first, second, ahead, then = within(30, first_then_wait)
    assert first[0].numpy().tolist() == [0, 1] and second[0].numpy().tolist() == [2, 3]
    # the batch the consumer holds plus those in flight or queued: `limit`, and one more
    # only once the consumer took the next
    assert ahead == limit and then == limit + 1


class Squares(data.Dataset):
    """A dataset with only __getitem__: batches go through default_collate."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.float32(i) * np.ones(2, np.float32), i * i


def test_generic_dataset_and_custom_collate():
    xs, ys = zip(*data.DataLoader(Squares(), batch_size=3))
    assert [t.shape for t in xs] == [(3, 2), (3, 2), (1, 2)]
    assert ys[1].numpy().tolist() == [9, 16, 25] and ys[1].dtype == tl.int64
    sums = list(data.DataLoader(Squares(), batch_size=4, collate_fn=lambda s: len(s)))
    assert sums == [4, 3]


def test_clear_errors():
    ds = data.TensorDataset(np.arange(4))
    with pytest.raises(ValueError, match="DataLoader: batch_size must be a positive int, got 0"):
        data.DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="prefetch_factor needs num_workers > 0"):
        data.DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="give transform or collate_fn, not both"):
        data.DataLoader(ds, transform=data.RandomHorizontalFlip(), collate_fn=list)
    with pytest.raises(ValueError, match="num_workers must be an int >= 0"):
        data.DataLoader(ds, num_workers=-1)


# ----- the layout of a dataset's images is declared, never guessed from the dtype -----
def test_a_tensor_dataset_of_nchw_uint8_images_comes_out_as_it_is():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (4, 3, 6, 5)).astype(np.uint8)  # NCHW, as PyTorch users store
    images, _ = next(iter(data.DataLoader(data.TensorDataset(x, np.arange(4)), batch_size=4)))
    assert images.shape == (4, 3, 6, 5) and images.dtype == tl.float32
    np.testing.assert_allclose(images.numpy(), x / 255.0, rtol=1e-6)
    assert data.TensorDataset(x).layout == "NCHW"
    # with a transform, the loader hands the transforms NHWC and returns NCHW views again
    flip = data.RandomHorizontalFlip(p=1.0)
    images, _ = next(iter(data.DataLoader(data.TensorDataset(x, np.arange(4)), batch_size=4,
                                          transform=flip)))
    assert images.shape == (4, 3, 6, 5) and images.stride() == (90, 1, 15, 3)
    np.testing.assert_allclose(images.numpy(), x[..., ::-1] / 255.0, rtol=1e-6)
    # a dataset that declares nothing is taken as it is (NCHW), whatever its dtype
    images, _ = next(iter(data.DataLoader(NoLayout(x), batch_size=4)))
    assert images.shape == (4, 3, 6, 5)
    np.testing.assert_allclose(images.numpy(), x / 255.0, rtol=1e-6)


class NoLayout(data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i


def test_a_tensor_dataset_declared_nhwc_gives_nchw_views_over_nhwc_memory():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (4, 6, 5, 3)).astype(np.uint8)
    for images in (x, x.astype(np.float32) / 255):  # the declaration, not uint8, decides
        ds = data.TensorDataset(images, np.arange(4), layout="NHWC")
        assert ds.layout == "NHWC" and data.Subset(ds, [0]).layout == "NHWC"
        batch, _ = next(iter(data.DataLoader(ds, batch_size=4)))
        assert batch.shape == (4, 3, 6, 5) and batch.stride() == (90, 1, 15, 3)
        np.testing.assert_allclose(batch.numpy(), x.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="TensorDataset: layout must be 'NCHW' or 'NHWC', "
                                         "got 'CHW'"):
        data.TensorDataset(x, layout="CHW")
    with pytest.raises(ValueError, match=r"TensorDataset: layout='NHWC' describes 4-D images "
                                         r"\(N, H, W, C\) in the first array, got shape \(4, 90\)"):
        data.TensorDataset(x.reshape(4, -1), layout="NHWC")


class Draws(data.Transform):
    """Writes two draws of its generator into each image, with a pause between them that
    depends on the batch, so that threads sharing one generator would interleave their
    draws."""

    def __init__(self, generator):
        self.generator = generator

    def apply(self, x, y, rng):
        out = x.astype(np.float32)
        out[:, 0, 0, 0] = rng.random()
        time.sleep(0.002 * (int(x[0, 0, 0, 2]) % 3))
        out[:, 0, 0, 1] = rng.random()
        return out, y


def test_a_transform_with_its_own_generator_is_deterministic_with_worker_threads():
    x = np.arange(48, dtype=np.float32).repeat(3).reshape(48, 1, 1, 3)

    def run(workers):
        aug = data.Compose([data.RandomCrop(1, padding=1, generator=np.random.default_rng(2)),
                            Draws(np.random.default_rng(1))])
        loader = data.DataLoader(data.TensorDataset(x, np.arange(48), layout="NHWC"),
                                 batch_size=2, transform=aug, num_workers=workers)
        return np.concatenate([b.numpy() for epoch in range(2) for b, _ in loader])

    serial = within(60, lambda: run(0))
    assert (serial[:, 2] == 0).any() and (serial[:, 2] > 0).any()  # crops in the padding too
    assert len(np.unique(serial[:, 0])) > 40  # the draws differ from batch to batch
    assert not np.array_equal(serial[:48], serial[48:])  # and from epoch to epoch
    for _ in range(3):
        np.testing.assert_array_equal(within(60, lambda: run(3)), serial)
