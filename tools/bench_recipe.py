"""The full CIFAR-10 recipe timed in tinygrad_lite and in PyTorch on the same machine, in one
run: issue 23's recipe goal (no slower than PyTorch, at the same accuracy).

    python tools/bench_recipe.py [--data-root DIR] [--epochs 12] [--threads N]
                                 [--engines tinygrad_lite,torch] [--subset N] [--val-split N]

What both engines share: the held-out split (--val-split images of the training set, chosen
by --seed), tinygrad_lite's DataLoader with the recipe's augmentation (flips, reflect-padded
crops, per-channel normalisation fitted on the training images) whose batches torch receives
as zero-copy channels_last views, the demo's network (demos/train_cifar10.py's `convnet`, our
initial weights copied into torch's), SGD with Nesterov momentum 0.9 and weight decay 5e-4
under each engine's own OneCycleLR (cosine, 25% warm-up, peak lr 0.05), batch 128, and the
same training loop. The engines run one after the other; each prints seconds per epoch, then
validation and test accuracy; at the end, the ratio of training times. Information, not a test.
"""
import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tinygrad_lite as tl  # noqa: E402
from tinygrad_lite import data, nn, optim, threads  # noqa: E402
from tinygrad_lite.nn import functional as F  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from bench import copy_weights  # noqa: E402

OURS = "tinygrad_lite"


def load_demo():
    spec = importlib.util.spec_from_file_location("train_cifar10", ROOT / "demos" /
                                                  "train_cifar10.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def loaders(args, demo):
    """(train, validation, test) loaders of tinygrad_lite, split and normalised as the demo
    does it."""
    train_set = data.CIFAR10(args.data_root, train=True, sample="auto")
    test_set = data.CIFAR10(args.data_root, train=False, sample="auto")
    if args.subset is not None and args.subset < len(train_set):
        train_set = data.Subset(train_set, np.arange(args.subset))
    train_set, val_set = demo.held_out(train_set, args.val_split, args.seed)
    normalize = data.Normalize(*demo.channel_stats(train_set))
    augment = data.Compose(demo.augmentation() + [normalize])
    return (data.DataLoader(train_set, args.batch_size, shuffle=True, drop_last=True,
                            transform=augment, num_workers=1,
                            generator=np.random.default_rng(args.seed)),
            data.DataLoader(val_set, 256, transform=normalize),
            data.DataLoader(test_set, 256, transform=normalize))


def torch_twin(torch, ours):
    """The same layers in torch (BN + ReLU where ours fuses them), our weights copied."""
    layers = []
    for m in ours:
        if isinstance(m, nn.Conv2d):
            layers.append(torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                                          padding=m.padding, bias=m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            layers.append(torch.nn.BatchNorm2d(m.num_features))
            if getattr(m, "activation", None) == "relu":
                layers.append(torch.nn.ReLU())
        elif isinstance(m, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(m.kernel_size))
        elif isinstance(m, nn.Flatten):
            layers.append(torch.nn.Flatten())
        elif isinstance(m, nn.Linear):
            layers.append(torch.nn.Linear(m.in_features, m.out_features))
        elif isinstance(m, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(m, nn.Dropout):
            layers.append(torch.nn.Dropout(m.p))
        else:
            raise TypeError(f"bench_recipe: no torch twin for {type(m).__name__}")
    twin = torch.nn.Sequential(*layers)
    copy_weights(torch, ours, twin)
    return twin.to(memory_format=torch.channels_last)


def engine_parts(engine, args, model, steps_per_epoch, torch):
    """(model, optimiser, scheduler, to_engine(x, y), cross_entropy, no_grad) of one engine."""
    if engine == OURS:
        opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                        weight_decay=5e-4)
        sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                              steps_per_epoch=steps_per_epoch, pct_start=0.25)
        return model, opt, sched, lambda x, y: (x, y), F.cross_entropy, tl.no_grad
    model = torch_twin(torch, model)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25)
    # our batches are NCHW views over NHWC memory: channels_last to torch, without a copy
    return (model, opt, sched,
            lambda x, y: (torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())),
            torch.nn.functional.cross_entropy, torch.no_grad)


def accuracy(model, loader, to_engine, no_grad):
    model.eval()
    correct = total = 0
    with no_grad():
        for x, y in loader:
            x, y = to_engine(x, y)
            correct += int((model(x).argmax(1) == y).sum().item())
            total += len(y)
    model.train()
    return correct / total


def run(engine, args, demo, torch):
    tl.manual_seed(args.seed)
    if torch is not None:
        torch.manual_seed(args.seed)
    train_loader, val_loader, test_loader = loaders(args, demo)
    model, opt, sched, to_engine, cross_entropy, no_grad = engine_parts(
        engine, args, demo.convnet(32, 256, 0.5), len(train_loader), torch)
    model.train()
    epoch_times = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        for x, y in train_loader:
            x, y = to_engine(x, y)
            opt.zero_grad(set_to_none=True)
            loss = cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
        epoch_times.append(time.perf_counter() - start)
        print(f"  {engine}: epoch {epoch + 1} in {epoch_times[-1]:.1f} s, last loss "
              f"{float(loss.item()):.3f}", flush=True)
    val = accuracy(model, val_loader, to_engine, no_grad)
    test = accuracy(model, test_loader, to_engine, no_grad)
    print(f"  {engine}: {sum(epoch_times):.1f} s of training for {args.epochs} epochs, "
          f"validation accuracy {val:.4f}, test accuracy {test:.4f}", flush=True)
    return sum(epoch_times), val, test


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None, help="as for demos/train_cifar10.py")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--subset", type=int, default=None, help="training images (smoke runs)")
    p.add_argument("--val-split", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="threads of both engines (default: the physical cores)")
    p.add_argument("--engines", default=f"{OURS},torch")
    args = p.parse_args(argv)
    args.engines = args.engines.split(",")
    unknown = set(args.engines) - {OURS, "torch"}
    if unknown:
        p.error(f"--engines: expected {OURS} and/or torch, got {sorted(unknown)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch = None
    if "torch" in args.engines:
        import torch
    if args.threads is not None:
        threads.set_num_threads(args.threads)
    n = threads.get_num_threads()
    if torch is not None:
        torch.set_num_threads(n)
    demo = load_demo()
    print(f"the full recipe, {args.epochs} epochs, {n} threads per engine")
    results = {e: run(e, args, demo, torch) for e in args.engines}
    if len(results) == 2:
        ours, theirs = results[OURS][0], results["torch"][0]
        print(f"training time {OURS} / torch: {ours:.1f} s / {theirs:.1f} s = "
              f"{ours / theirs:.2f} (above 1: tinygrad_lite is slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
