"""Check tinygrad_lite against PyTorch (CPU, float64) where both implement the same thing. The
checks are test modules that `make test` runs; this runs just them, for a quick look:

    python tools/check_against_torch.py [pytest options, e.g. -x -k conv2d]

tests/nn/test_layers_torch.py      layers, activations, losses, normalisation, pooling, conv,
                                   gradient clipping, a small convnet trained for 4 steps
tests/optim/test_optim_torch.py    every optimiser rule and switch, param groups, L-BFGS
tests/optim/test_lr_scheduler_torch.py  the learning-rate schedules
tests/test_extremes.py             |x| = 1e3, 1e4, constant channels, underflowing probabilities
Needs `pip install torch` (each module is skipped, saying so, without it)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/nn/test_layers_torch.py", "tests/optim/test_optim_torch.py",
           "tests/optim/test_lr_scheduler_torch.py", "tests/test_extremes.py"]


def main(argv):
    import pytest
    paths = [str(ROOT / m) for m in MODULES if (ROOT / m).exists()]
    return pytest.main(["-n", "0", "-q", *paths, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
