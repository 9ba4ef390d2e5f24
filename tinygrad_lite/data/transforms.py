"""Batch augmentations on NHWC host arrays (uint8 or float32), before a batch goes to a device.

Every transform takes a whole batch (N, H, W, C) and draws its random numbers for the batch on
the host from a NumPy Generator (the `generator` given to the transform, else the one the
DataLoader passes for this batch, else tinygrad_lite.random.generator(), which manual_seed
resets); one Numba kernel then applies them. Same generator state, same batch. In a
DataLoader, a transform's own generator gives one seed per epoch (drawn in the iterating
thread) and each batch draws from a generator derived from (that seed, batch index), so
worker threads never share it.

Transforms take channels-last (N, H, W, C) batches; an NCHW batch is refused with an error
that says so (the DataLoader makes a dataset's NCHW images NHWC for its transform).

    >>> aug = Compose([RandomCrop(32, padding=4, padding_mode="reflect"),
    ...                RandomHorizontalFlip(), Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    >>> x = aug(images_uint8)                   # float32 (N, 32, 32, 3)
    >>> x, soft = Mixup(0.2, num_classes=10)(x, labels)

Transforms that change targets (Mixup) are called with them: `t(x, y)` returns `(x, y)`.
uint8 stays uint8 (rounded, saturated) and float32 stays float32, except Normalize, which
returns float32 (from uint8 it divides by 255 first, as torchvision's ToTensor + Normalize).
"""
import contextlib
import threading

import numpy as np

from .. import random as tl_random
from . import kernels as K

__all__ = ["Transform", "Compose", "RandomHorizontalFlip", "RandomCrop", "RandomResizedCrop",
           "ColorJitter", "PCAColorShift", "Cutout", "Mixup", "Normalize", "tta_predict",
           "CIFAR10_MEAN", "CIFAR10_STD"]

# Per-channel statistics of the CIFAR-10 training images on the [0, 1] scale.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def check_batch(name, x, channels=None):
    """A C-contiguous (N, H, W, C) uint8 or float32 array, or a clear error."""
    if not isinstance(x, np.ndarray):
        what = (f"a Tensor of shape {tuple(x.shape)}" if hasattr(x, "numpy")
                and hasattr(x, "device") else type(x).__name__)
        raise TypeError(f"{name}: expected a NumPy (N, H, W, C) batch on the host, got {what}; "
                        f"transforms run on host batches before the model: give them to a "
                        f"DataLoader as its transform (it hands them NHWC batches)")
    if x.ndim != 4 or x.dtype not in (np.uint8, np.float32):
        raise TypeError(f"{name}: expected a uint8 or float32 (N, H, W, C) batch, got "
                        f"{x.dtype} with shape {x.shape}")
    # Channels first (1 or 3 of them) with larger images behind: an NCHW batch, which the
    # kernels would read as 1- or 3-pixel-high images (a crop fails as "larger than the
    # image", a flip mirrors the wrong axis). A 1- or 3-pixel-high NHWC image with more than
    # 4 channels, the only NHWC batch this refuses, is no image to augment.
    if x.shape[1] in (1, 3) and x.shape[3] > 4 and x.shape[2] > 4:
        raise ValueError(f"{name}: expected NHWC images (N, H, W, C), got shape {x.shape}, "
                         f"which looks like NCHW (channels first); transforms work on "
                         f"channels-last batches: declare the dataset's layout (the "
                         f"DataLoader then hands transforms NHWC batches) or pass "
                         f"x.transpose(0, 2, 3, 1)")
    if channels is not None and x.shape[3] != channels:
        raise ValueError(f"{name}: expected {channels} channels (NHWC), got shape {x.shape}")
    return np.ascontiguousarray(x)


def _size(name, size):
    size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: expected a positive size or (height, width), got {size}")
    return int(size[0]), int(size[1])


def _probability(name, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: expected a probability p in [0, 1], got {p}")
    return float(p)


# Per thread: {id(transform): Generator} for the batch this thread is making. The DataLoader
# fills it (see batch_generators) so that a transform with its own generator draws from a
# generator derived, in the iterating thread and in batch order, from that generator, instead
# of from the shared generator itself, whose draws worker threads would interleave in whatever
# order they happen to run.
_batch = threading.local()


@contextlib.contextmanager
def batch_generators(generators):
    """Within the block and in this thread, a Transform whose id is a key of `generators`
    draws from that generator instead of its own."""
    previous = getattr(_batch, "generators", None)
    _batch.generators = generators
    try:
        yield
    finally:
        _batch.generators = previous


def own_generator_transforms(transform):
    """The Transforms, `transform` and those it composes, that have their own generator, in
    a fixed order (each once)."""
    found, seen = [], set()

    def walk(t):
        if id(t) in seen:
            return
        seen.add(id(t))
        if isinstance(t, Transform) and t.generator is not None:
            found.append(t)
        for child in getattr(t, "transforms", ()) if isinstance(t, Compose) else ():
            walk(child)
    if transform is not None:
        walk(transform)
    return found


def _rng(transform, generator):
    """The generator `transform` draws from: the one the loader derived for this batch from
    the transform's own generator, else its own, else the batch's (`generator`), else the
    package's global one."""
    derived = getattr(_batch, "generators", None)
    if derived and id(transform) in derived:
        return derived[id(transform)]
    if transform.generator is not None:
        return transform.generator
    return generator if generator is not None else tl_random.generator()


def apply_transform(transform, x, y, generator):
    """(x, y) through a Transform with this batch's generator, or x through a plain callable
    x -> x (a fitted preprocessor); None leaves both unchanged."""
    if transform is None:
        return x, y
    if isinstance(transform, Transform):
        return transform.apply(x, y, _rng(transform, generator))
    return transform(x), y


class Transform:
    """Base class: subclasses implement apply(x, y, rng) -> (x, y) on a checked batch."""
    generator = None

    def __call__(self, x, y=None, generator=None):
        out, y_out = self.apply(x, y, _rng(self, generator))
        return out if y is None else (out, y_out)

    def apply(self, x, y, rng):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "generator")
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order. Plain callables x -> x (a fitted preprocessor) fit in too."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def apply(self, x, y, rng):
        for t in self.transforms:
            x, y = apply_transform(t, x, y, rng)
        return x, y


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability p."""

    def __init__(self, p=0.5, generator=None):
        self.p, self.generator = _probability("RandomHorizontalFlip", p), generator

    def apply(self, x, y, rng):
        x = check_batch("RandomHorizontalFlip", x)
        N = x.shape[0]
        zeros = np.zeros(N, np.int64)
        out = np.empty_like(x)
        K.crop_flip(x, zeros, zeros, rng.random(N) < self.p, 0, False, out)
        return out, y


class RandomCrop(Transform):
    """Pad each image by `padding` pixels (zeros, or "reflect") and take a random size crop,
    uniform over all positions (the ResNet/CIFAR "pad 4 and crop 32" augmentation)."""

    def __init__(self, size, padding=0, padding_mode="constant", generator=None):
        if padding_mode not in ("constant", "reflect"):
            raise ValueError(f"RandomCrop: padding_mode must be 'constant' or 'reflect', got "
                             f"{padding_mode!r}")
        if padding < 0:
            raise ValueError(f"RandomCrop: expected padding >= 0, got {padding}")
        self.size, self.padding = _size("RandomCrop", size), int(padding)
        self.padding_mode, self.generator = padding_mode, generator

    def apply(self, x, y, rng):
        x = check_batch("RandomCrop", x)
        N, H, W, C = x.shape
        (h, w), p = self.size, self.padding
        if h > H + 2 * p or w > W + 2 * p:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image "
                             f"({H + 2 * p}, {W + 2 * p})")
        if self.padding_mode == "reflect" and p >= min(H, W):
            raise ValueError(f"RandomCrop: reflect padding {p} needs images larger than it, "
                             f"got {H}x{W}")
        top = rng.integers(0, H + 2 * p - h + 1, N)
        left = rng.integers(0, W + 2 * p - w + 1, N)
        out = np.empty((N, h, w, C), x.dtype)
        K.crop_flip(x, top, left, np.zeros(N, np.bool_), p, self.padding_mode == "reflect", out)
        return out, y


class RandomResizedCrop(Transform):
    """Crop a random box covering a fraction `scale` of the image area with aspect ratio in
    `ratio` (log-uniform), resized bilinearly to `size` (Inception/ResNet "scale
    augmentation", torchvision's RandomResizedCrop: 10 tries per image, then the centre crop)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
        if not (0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"RandomResizedCrop: expected 0 < scale[0] <= scale[1] and "
                             f"0 < ratio[0] <= ratio[1], got scale={scale}, ratio={ratio}")
        self.size, self.scale, self.ratio = _size("RandomResizedCrop", size), scale, ratio
        self.generator = generator

    def boxes(self, N, H, W, rng, tries=10):
        """(N, 4) float64 boxes (top, left, height, width) in source pixels."""
        area = H * W * rng.uniform(*self.scale, (N, tries))
        aspect = np.exp(rng.uniform(*np.log(self.ratio), (N, tries)))
        w = np.round(np.sqrt(area * aspect))
        h = np.round(np.sqrt(area / aspect))
        ok = (w >= 1) & (w <= W) & (h >= 1) & (h <= H)
        first = np.argmax(ok, axis=1)
        rows = np.arange(N)
        h, w, found = h[rows, first], w[rows, first], ok[rows, first]
        # Fallback: the centre crop with the aspect ratio clamped into `ratio`.
        ch, cw = H, W
        if W / H < self.ratio[0]:
            ch = round(W / self.ratio[0])
        elif W / H > self.ratio[1]:
            cw = round(H * self.ratio[1])
        top = np.where(found, np.floor(rng.random(N) * (H - h + 1)), (H - ch) // 2)
        left = np.where(found, np.floor(rng.random(N) * (W - w + 1)), (W - cw) // 2)
        h, w = np.where(found, h, ch), np.where(found, w, cw)
        return np.stack([top, left, h, w], axis=1)

    def apply(self, x, y, rng):
        x = check_batch("RandomResizedCrop", x)
        N, H, W, C = x.shape
        out = np.empty((N, *self.size, C), x.dtype)
        K.resized_crop(x, self.boxes(N, H, W, rng), np.zeros(N, np.bool_),
                       x.dtype == np.uint8, out)
        return out, y


def _factor_range(name, what, v):
    if v < 0:
        raise ValueError(f"{name}: expected {what} >= 0, got {v}")
    return max(0.0, 1.0 - v), 1.0 + v


class ColorJitter(Transform):
    """Random brightness, contrast and saturation: each factor uniform in [max(0, 1 - v),
    1 + v] per image, applied in that order (see kernels.color_jitter). Pixel range: 0..255
    for uint8, [0, 1] for float32 (as torchvision)."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, generator=None):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self._ranges = [_factor_range("ColorJitter", k, v) for k, v in
                        (("brightness", brightness), ("contrast", contrast),
                         ("saturation", saturation))]
        self.generator = generator

    def apply(self, x, y, rng):
        x = check_batch("ColorJitter", x, channels=3)
        b, c, s = (rng.uniform(lo, hi, x.shape[0]) for lo, hi in self._ranges)
        out = np.empty_like(x)
        uint8 = x.dtype == np.uint8
        K.color_jitter(x, b, c, s, 255.0 if uint8 else 1.0, uint8, out)
        return out, y

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation})")


class PCAColorShift(Transform):
    """AlexNet's "fancy PCA" colour augmentation (Krizhevsky et al., 2012): add to every pixel
    of image n the RGB vector  sum_i alpha_ni * sigma_i * p_i,  alpha_ni ~ N(0, std^2), where
    p_i are the principal components of the training pixels' RGB covariance and sigma_i the
    standard deviation along them (the paper writes the eigenvalue; sigma, as fb.resnet.torch
    uses, keeps the shift in pixel units). `fit(x)` computes p and sigma from uint8 or float
    NHWC training images, in their units."""

    def __init__(self, eigvals=None, eigvecs=None, std=0.1, generator=None):
        self.std, self.generator = float(std), generator
        self.sigma = None if eigvals is None else np.sqrt(np.asarray(eigvals, np.float64))
        self.eigvecs = None if eigvecs is None else np.asarray(eigvecs, np.float64)

    def fit(self, x):
        x = check_batch("PCAColorShift.fit", x, channels=3)
        pixels = x.reshape(-1, 3).astype(np.float64)
        eigvals, self.eigvecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
        self.sigma = np.sqrt(np.maximum(eigvals, 0.0))
        return self

    def state_dict(self):
        return {"sigma": self.sigma.copy(), "eigvecs": self.eigvecs.copy()}

    def load_state_dict(self, state):
        self.sigma, self.eigvecs = np.asarray(state["sigma"]), np.asarray(state["eigvecs"])

    def apply(self, x, y, rng):
        if self.sigma is None:
            raise RuntimeError("PCAColorShift: call fit(train_images) or pass eigvals and "
                               "eigvecs before using it")
        x = check_batch("PCAColorShift", x, channels=3)
        alpha = rng.normal(0.0, self.std, (x.shape[0], 3))
        shift = ((alpha * self.sigma) @ self.eigvecs.T).astype(np.float32)  # (N, 3)
        out = np.empty_like(x)
        K.affine(x, np.ones((1, 3), np.float32), shift, x.dtype == np.uint8, out)
        return out, y


class Cutout(Transform):
    """Zero a size x size square per image, centred on a uniformly random pixel and clipped to
    the image (DeVries and Taylor, 2017), with probability p."""

    def __init__(self, size, p=1.0, generator=None):
        if size < 1:
            raise ValueError(f"Cutout: expected size >= 1, got {size}")
        self.size, self.p, self.generator = int(size), _probability("Cutout", p), generator

    def apply(self, x, y, rng):
        x = check_batch("Cutout", x)
        N, H, W, _ = x.shape
        top = rng.integers(0, H, N) - self.size // 2
        left = rng.integers(0, W, N) - self.size // 2
        top[rng.random(N) >= self.p] = H  # a square below the image: nothing to zero
        out = x.copy()
        K.cutout(out, top, left, self.size)
        return out, y


class Mixup(Transform):
    """Mixup (Zhang et al., 2018): x_n <- lam x_n + (1 - lam) x_m, target_n <- lam e(y_n) +
    (1 - lam) e(y_m), with m a random permutation of the batch and lam ~ Beta(alpha, alpha)
    drawn once per batch. Targets are int class labels (N,) or class probabilities (N, C);
    the result's (N, num_classes) float32 rows sum to 1 and go straight into
    F.cross_entropy."""

    def __init__(self, alpha=1.0, num_classes=None, generator=None):
        if alpha <= 0:
            raise ValueError(f"Mixup: expected alpha > 0, got {alpha}")
        self.alpha, self.num_classes, self.generator = float(alpha), num_classes, generator

    def soft_targets(self, y):
        y = np.asarray(y)
        if y.ndim == 2:
            return y.astype(np.float32)
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise TypeError(f"Mixup: expected int labels (N,) or probabilities (N, C), got "
                            f"{y.dtype} with shape {y.shape}")
        if self.num_classes is None:
            raise ValueError("Mixup: give num_classes to turn int labels into probabilities")
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"Mixup: labels must lie in [0, {self.num_classes}), got "
                             f"[{y.min()}, {y.max()}]")
        return np.eye(self.num_classes, dtype=np.float32)[y]

    def apply(self, x, y, rng):
        if y is None:
            raise TypeError("Mixup: call it with the targets, mixup(x, y) -> (x, soft_y)")
        x = check_batch("Mixup", x)
        q = self.soft_targets(y)
        if len(q) != len(x):
            raise ValueError(f"Mixup: {len(x)} images but {len(q)} targets")
        N = x.shape[0]
        lam = np.full(N, rng.beta(self.alpha, self.alpha))
        partner = rng.permutation(N)
        out = np.empty_like(x)
        K.mix(x, partner, lam, x.dtype == np.uint8, out)
        return out, (lam[:, None] * q + (1 - lam[:, None]) * q[partner]).astype(np.float32)


class Normalize(Transform):
    """(x - mean) / std per channel into float32, in one pass; uint8 input is divided by 255
    first, so mean and std are on the [0, 1] scale as in torchvision."""

    def __init__(self, mean, std):
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        if mean.shape != std.shape or mean.ndim != 1 or np.any(std <= 0):
            raise ValueError(f"Normalize: expected per-channel mean and positive std of one "
                             f"length, got mean {mean.tolist()} and std {std.tolist()}")
        self.mean, self.std = mean, std

    def apply(self, x, y, rng):
        x = check_batch("Normalize", x, channels=len(self.mean))
        unit = 255.0 if x.dtype == np.uint8 else 1.0
        out = np.empty(x.shape, np.float32)
        K.affine(x, (1 / (unit * self.std))[None].astype(np.float32),
                 (-self.mean / self.std)[None].astype(np.float32), False, out)
        return out, y


def tta_predict(model, x, flip=True, shift=0, views=None):
    """Test-time augmentation, now in tinygrad_lite.train.tta (next to evaluate, with named
    views and evaluate_tta); this name stays for code that imports it from data. See
    train.tta.tta_predict."""
    # Imported when called: train imports the data package, so a module-level import here
    # would be circular.
    from ..train.tta import tta_predict as moved
    return moved(model, x, flip=flip, shift=shift, views=views)
