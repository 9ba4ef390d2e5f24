"""Determinism end to end: with tl.manual_seed(n), two CPU runs of the CIFAR-10 demo's convnet
(He init, BN, dropout) over two epochs of shuffled, augmented batches from the threaded loader
(2 workers, a crop with its own generator) through parallel Numba kernels give bit-identical
parameters and running statistics. Each batch's randomness is a function of (seed, epoch,
batch index), never of how the worker threads happen to be scheduled."""
import threading

import numpy as np

import tinygrad_lite as tl
from helpers import load_demo
from tinygrad_lite import data, optim
from tinygrad_lite.kernels.cpu.jit import PARALLEL_MIN_SIZE
from tinygrad_lite.kernels.cpu.parallel import SHARE_MIN_SIZE
from tinygrad_lite.nn import functional as F

BATCH, IMAGES, WIDTH = 64, 256, 8


def train_twice_over(seed, images, labels):
    """Two epochs from scratch; returns the state_dict as NumPy arrays and the losses."""
    demo = load_demo("train_cifar10")
    tl.manual_seed(seed)
    model = demo.convnet(width=WIDTH, hidden=32, dropout=0.5)
    aug = data.Compose([
        data.RandomCrop(32, padding=4, padding_mode="reflect",
                        generator=np.random.default_rng(seed + 1)),  # its own generator
        data.RandomHorizontalFlip(),  # the loader's per-batch generator
        data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)])
    loader = data.DataLoader(data.TensorDataset(images, labels, layout="NHWC"), BATCH,
                             shuffle=True, drop_last=True, transform=aug, num_workers=2)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                    weight_decay=5e-4)
    model.train()
    losses = []
    for _ in range(2):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}, losses


def test_two_seeded_runs_with_threads_and_augmentation_are_bit_identical():
    # the first conv's activations, BATCH x WIDTH x 32 x 32, run through the parallel twins
    # and the norm and pooling kernels' shared-out ranges
    assert BATCH * WIDTH * 32 * 32 >= max(PARALLEL_MIN_SIZE, SHARE_MIN_SIZE)
    sample = data.CIFAR10(train=True, sample=True)
    images, labels = sample.data[:IMAGES], sample.targets[:IMAGES]
    results = {}

    def run(i):
        results[i] = train_twice_over(7, images, labels)
    for i in range(2):  # a bounded wait: a hung loader fails instead of stalling the suite
        t = threading.Thread(target=run, args=(i,), daemon=True)
        t.start()
        t.join(300)
        assert not t.is_alive(), "a training run took more than 300 s"
        assert i in results, "the training run raised (see the thread's traceback above)"
    (first, loss1), (second, loss2) = results[0], results[1]
    assert len(loss1) == 2 * (IMAGES // BATCH) and np.isfinite(loss1).all()
    assert loss1 == loss2
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    # training moved the weights (a run that changed nothing would be trivially repeatable)
    tl.manual_seed(7)
    init = load_demo("train_cifar10").convnet(width=WIDTH, hidden=32, dropout=0.5)
    assert not np.array_equal(init[0].weight.numpy(), first["0.weight"])
