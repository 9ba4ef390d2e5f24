"""nn.utils, as in PyTorch: gradient clipping and penalties (nn/regularization.py), and folding
an eval-mode batch norm into the layer before it (nn/normalization.py)."""
from .normalization import *  # noqa: F401,F403
from .regularization import *  # noqa: F401,F403
