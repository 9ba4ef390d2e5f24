"""tinygrad_lite.data: datasets, the DataLoader, CIFAR-10, batch augmentation and
preprocessing fitted on training data. Everything runs on host NumPy arrays (NHWC images) and
hands the model (N, C, H, W) float32 Tensors over NHWC memory."""
from .dataset import *  # noqa: F401,F403
from .loader import *  # noqa: F401,F403
from .cifar import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403
from .preprocessing import *  # noqa: F401,F403
from . import dataset, loader, cifar, transforms, preprocessing  # noqa: F401
from .download import data_root  # noqa: F401

__all__ = [*dataset.__all__, *loader.__all__, *cifar.__all__, *transforms.__all__,
           *preprocessing.__all__, "data_root"]
