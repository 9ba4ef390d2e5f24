"""Data preprocessing fitted on the training set and reused unchanged at test time (CS231n:
"statistics computed on training data only"). Each class has fit(x) -> self, transform(x)
(also __call__, so it slots into a Compose) and state_dict()/load_state_dict() of plain NumPy
arrays (saved with a model checkpoint as .npz). Results are float32; fitting runs in float64.

    >>> norm = Standardize().fit(train.data)        # per-channel mean/std of uint8 NHWC images
    >>> x = norm(batch)                             # float32, one kernel from uint8
    >>> zca = ZCAWhitening(eps=1e-2).fit(features)  # features (N, D) or images (N, H, W, C)

Statistics are in the units of the data they were fitted on (0..255 for uint8 images).
"""
import numpy as np

from . import kernels as K

__all__ = ["MeanImage", "Standardize", "PCAWhitening", "ZCAWhitening"]


def host_array(name, x):
    """x as a NumPy array, or a clear error for a Tensor (np.asarray of one fails with "setting
    an array element with a sequence"). A Tensor is refused rather than converted: the
    statistics are per last axis, and a batch Tensor from the DataLoader is (N, C, H, W), whose
    last axis is the width, not the channels."""
    if not isinstance(x, np.ndarray) and hasattr(x, "numpy") and hasattr(x, "device"):
        raise TypeError(
            f"{name}: expected a NumPy array on the host (NHWC images (N, H, W, C) or "
            f"features (N, D)), got a Tensor of shape {tuple(x.shape)}; preprocessing runs on "
            f"host batches before the model: use it as (or in) a DataLoader's transform, which "
            f"sees NHWC batches, or pass an array (for an (N, C, H, W) Tensor: "
            f"t.permute(0, 2, 3, 1).numpy())")
    return np.asarray(x)


class _Fitted:
    _state = ()  # names of the fitted arrays

    def _check(self, x):
        name = type(self).__name__
        if getattr(self, self._state[0]) is None:
            raise RuntimeError(f"{name}: call fit(training_data) (or load_state_dict) first")
        x = host_array(name, x)
        if x.shape[1:] != self.shape:
            raise ValueError(f"{name}: fitted on samples of shape {self.shape}, got a batch of "
                             f"shape {x.shape}")
        return x

    @staticmethod
    def _training(name, x, min_ndim=2):
        x = host_array(f"{name}.fit", x)
        if x.ndim < min_ndim or x.shape[0] < 2 or x.dtype.kind not in "uif":
            raise ValueError(f"{name}.fit: expected a numeric batch (N, ...) with N >= 2, got "
                             f"{x.dtype} with shape {x.shape}")
        return x

    def __call__(self, x):
        return self.transform(x)

    def state_dict(self):
        state = {k: np.array(getattr(self, k)) for k in self._state}
        state["shape"] = np.array(self.shape, np.int64)  # the shape of one training sample
        return state

    def load_state_dict(self, state):
        missing = [k for k in (*self._state, "shape") if k not in state]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}")
        for k in self._state:
            setattr(self, k, np.array(state[k]))
        self.shape = tuple(int(s) for s in state["shape"])
        self._build()
        return self

    def _build(self):
        """Derive the matrices transform() uses from the fitted state."""


class MeanImage(_Fitted):
    """Subtract the mean training image (AlexNet): x - mean_n x_n, element-wise."""
    _state = ("mean",)

    def __init__(self):
        self.mean, self.shape = None, None

    def fit(self, x):
        x = self._training("MeanImage", x)
        self.mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.shape = x.shape[1:]
        return self

    def transform(self, x):
        x = self._check(x)
        return np.subtract(x, self.mean, dtype=np.float32)


class Standardize(_Fitted):
    """(x - mean_c) / std_c over the last axis (channels of NHWC images, features of (N, D)),
    mean and (biased) std over all other axes: VGG's per-channel mean subtraction with
    std=False, ResNet's per-channel normalisation with std=True. A 4-D uint8/float32 batch is
    converted and normalised by one kernel."""
    _state = ("mean", "std")

    def __init__(self, std=True, eps=1e-8):
        self.use_std, self.eps = std, eps
        self.mean, self.std, self.shape = None, None, None

    def fit(self, x):
        x = self._training("Standardize", x)
        flat = x.reshape(-1, x.shape[-1])
        self.mean = flat.mean(axis=0, dtype=np.float64)
        self.std = (np.sqrt(flat.var(axis=0, dtype=np.float64)) + self.eps if self.use_std
                    else np.ones_like(self.mean))
        self.shape = x.shape[1:]
        return self

    def _check(self, x):
        if self.mean is None:
            raise RuntimeError("Standardize: call fit(training_data) (or load_state_dict) "
                               "first")
        x = host_array("Standardize", x)
        if x.ndim < 2 or x.shape[-1] != len(self.mean):
            raise ValueError(f"Standardize: fitted on {len(self.mean)} channels (last axis), "
                             f"got a batch of shape {x.shape}")
        return x

    def transform(self, x):
        x = self._check(x)
        scale, shift = 1 / self.std, -self.mean / self.std
        if x.ndim == 4 and x.dtype in (np.uint8, np.float32):
            out = np.empty(x.shape, np.float32)
            K.affine(np.ascontiguousarray(x), scale[None].astype(np.float32),
                     shift[None].astype(np.float32), False, out)
            return out
        return (x * scale + shift).astype(np.float32)


class _Whitening(_Fitted):
    """Flatten samples to vectors of D features, centre with the training mean and rotate
    into the eigenbasis U of the training covariance C = Xc^T Xc / N = U diag(lam) U^T,
    dividing each component by sqrt(lam + eps). eps keeps near-zero-variance directions
    (pixel noise) from being amplified without bound; eps -> 0 gives identity covariance."""
    _state = ("mean", "eigvecs", "eigvals", "eps")

    def __init__(self, eps=1e-5):
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: expected eps >= 0, got {eps}")
        self.eps = eps
        self.mean = self.eigvecs = self.eigvals = self.shape = None

    def fit(self, x):
        x = self._training(type(self).__name__, x)
        flat = x.reshape(len(x), -1).astype(np.float64)
        self.mean = flat.mean(axis=0)
        centred = flat - self.mean
        lam, U = np.linalg.eigh(centred.T @ centred / len(x))
        order = np.argsort(lam)[::-1]  # largest variance first
        self.eigvals, self.eigvecs = np.maximum(lam[order], 0.0), U[:, order]
        self.shape = x.shape[1:]
        self._build()
        return self

    def _centred(self, x):
        x = self._check(x)
        return x.reshape(len(x), -1) - self.mean.astype(np.float32)


class PCAWhitening(_Whitening):
    """PCA whitening: (x - mean) U_k / sqrt(lam_k + eps), the n_components (default: all)
    directions of largest variance; returns (N, n_components) decorrelated, unit-variance
    features."""
    _state = ("mean", "eigvecs", "eigvals", "eps", "n_components")

    def __init__(self, n_components=None, eps=1e-5):
        super().__init__(eps)
        self.n_components = n_components

    def _build(self):
        D = len(self.mean)
        k = D if self.n_components is None else int(self.n_components)
        if not 1 <= k <= D:
            raise ValueError(f"PCAWhitening: n_components must be in [1, {D}], got {k}")
        self.n_components = k
        self.projection = (self.eigvecs[:, :k] / np.sqrt(self.eigvals[:k] + self.eps)
                           ).astype(np.float32)

    def transform(self, x):
        return self._centred(x) @ self.projection


class ZCAWhitening(_Whitening):
    """ZCA whitening: (x - mean) U diag(1/sqrt(lam + eps)) U^T, the whitening closest to the
    data (it rotates back, so images still look like images); keeps x's shape."""

    def _build(self):
        self.matrix = ((self.eigvecs / np.sqrt(self.eigvals + self.eps)) @ self.eigvecs.T
                       ).astype(np.float32)

    def transform(self, x):
        x = host_array("ZCAWhitening", x)
        return (self._centred(x) @ self.matrix).reshape(x.shape)
