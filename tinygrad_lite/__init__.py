"""tinygrad_lite: a small reverse-mode autograd engine with Numba CPU and Numba-CUDA kernels."""
from . import dtype as dtypes
from .autograd import (detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad,
                       set_detect_anomaly)
from .creation import (arange, cat, concatenate, eye, full, maximum, minimum, normal, ones,
                       ones_like, rand, randint, randn, stack, tensor, uniform, where, zeros,
                       zeros_like)
from .determinism import are_deterministic_algorithms_enabled, use_deterministic_algorithms
from .device import Device, cuda_is_available, get_device
from .dtype import bool_, float32, float64, int64
from .gradcheck import GradcheckResult, gradcheck
from .ops import DimError, DTypeError, LabelError, ShapeError
from .random import manual_seed
from . import threads
from .threads import get_num_threads, set_num_threads
from .tensor import Tensor
from . import data, nn, optim  # noqa: E402  (they build on Tensor)

__version__ = "0.1.0"
