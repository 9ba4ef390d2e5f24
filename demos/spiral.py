"""Two-layer network on the CS231n 2-D spiral: the first tinygrad_lite demo.

Three interleaved spiral arms (100 points each) are not linearly separable: a linear softmax
classifier tops out near 50% training accuracy. One hidden layer of 100 ReLU units bends the
decision boundary enough to separate the arms, and plain full-batch gradient descent on the
softmax cross-entropy loss gets the training accuracy above 95%.

Everything except the data generation goes through the Tensor API: matmul, broadcasting
bias add, ReLU as maximum(0), log_softmax, integer-array indexing to pick the correct-class
log-probabilities, and backward(). Exits with status 1 if the accuracy is below 0.95.

    python demos/spiral.py [--iterations 3000] [--device cpu|cuda]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl

N, D, K = 100, 2, 3  # points per class, input dimension, classes
HIDDEN = 100
LR, REG = 1.0, 1e-3
TARGET = 0.95


def make_spiral(seed=0):
    """CS231n's spiral: arm j sweeps angle 4j..4(j+1) while the radius grows 0..1; the angle
    noise (0.2 rad) makes the arms ragged so the problem is not trivially solvable."""
    rng = np.random.default_rng(seed)  # its own generator: the data never depends on init
    X = np.zeros((N * K, D), dtype=np.float32)
    y = np.zeros(N * K, dtype=np.int64)
    for j in range(K):
        ix = range(N * j, N * (j + 1))
        r = np.linspace(0.0, 1.0, N)
        t = np.linspace(j * 4, (j + 1) * 4, N) + rng.standard_normal(N) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    dev = args.device

    tl.manual_seed(0)
    X_np, y_np = make_spiral(seed=0)
    X, y = tl.Tensor(X_np, device=dev), tl.Tensor(y_np, device=dev)
    rows = tl.arange(N * K, device=dev)  # row indices for picking logp[i, y[i]]

    # CS231n's init: small random weights (0.01 * randn) and zero biases. With lr 1.0 this
    # converges; the tiny W2 keeps the initial loss at log(3) so early steps are stable.
    W1 = (0.01 * tl.randn(D, HIDDEN, device=dev)).detach().requires_grad_()
    b1 = tl.zeros(1, HIDDEN, device=dev, requires_grad=True)
    W2 = (0.01 * tl.randn(HIDDEN, K, device=dev)).detach().requires_grad_()
    b2 = tl.zeros(1, K, device=dev, requires_grad=True)
    params = (W1, b1, W2, b2)

    start = time.perf_counter()
    for it in range(args.iterations):
        hidden = (X @ W1 + b1).relu()
        logits = hidden @ W2 + b2
        logp = logits.log_softmax(axis=1)
        data_loss = -logp[rows, y].mean()  # mean negative log-likelihood of the true class
        reg_loss = REG * 0.5 * ((W1 * W1).sum() + (W2 * W2).sum())  # weights only, as in CS231n
        loss = data_loss + reg_loss
        loss.backward()

        with tl.no_grad():  # the update itself must not become part of any graph
            for p in params:
                p -= LR * p.grad  # in place: p stays the same leaf, its version goes up
                p.grad = None  # gradients accumulate, so clear them every step
        if it % 500 == 0 or it == args.iterations - 1:
            print(f"iteration {it:5d}: loss {loss.item():.4f}")
    elapsed = time.perf_counter() - start

    with tl.no_grad():
        logits = (X @ W1 + b1).relu() @ W2 + b2
        accuracy = float((logits.argmax(axis=1).numpy() == y_np).mean())
    print(f"training accuracy: {accuracy:.4f} (target >= {TARGET}) "
          f"in {elapsed:.2f} s on {dev}, {args.iterations} iterations")
    return 0 if accuracy >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
