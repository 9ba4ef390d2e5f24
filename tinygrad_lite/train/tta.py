"""Test-time augmentation (TTA): average the model's softmax probabilities over fixed views of
each test image, the lectures' "marginalise the noise at test time" for augmentation (ResNet
averages 10 crops, the 4 corners and the centre and their mirror images, at several scales).

A view is a named, deterministic map of an (N, C, H, W) batch to a batch of the same shape;
its pixels are moved on the host by the data package's Numba kernels (one pass per view):

    identity, hflip                 the image, its mirror image
    crop(top, left, size, pad)      a window of the image padded by `pad` zeros, resized back
    crops5(size, pad)               the 4 corners and the centre: with size=None and pad=p, the
                                    translations by +-p pixels (pad-and-crop, for 32x32 images)
    crops10(size, pad)              crops5 and their mirror images
    scale(s)                        zoom by s about the centre (bilinear)

    views = crops10(pad=4)                            # or [identity, hflip], or a list of yours
    probs = tta_predict(model, x, views=views)        # (N, classes): averaged probabilities
    result = evaluate_tta(model, test_loader, views)  # accuracy plain, with TTA, per view
    print(result)

Everything runs the model in eval mode under no_grad and puts its mode back, as
train.evaluate does.
"""
import contextlib
from dataclasses import dataclass, field

import numpy as np

from ..autograd import no_grad
from ..data import kernels as K
from ..device import get_device
from ..nn import functional as F
from ..tensor import Tensor
from .loop import _correct, _model_device, _split, _to

__all__ = ["View", "identity", "hflip", "crop", "crops5", "crops10", "scale", "tta_predict",
           "evaluate_tta", "TTAResult"]


class View:
    """A named view: `apply_nhwc(x)` maps a host (N, H, W, C) array to one of the same shape;
    calling the view on an (N, C, H, W) Tensor does the same and returns a Tensor on its
    device. Build your own from a function on NHWC arrays: View("name", fn)."""

    def __init__(self, name, nhwc_fn):
        if not isinstance(name, str) or not callable(nhwc_fn):
            raise TypeError(f"View: expected a name (str) and a function of NHWC arrays, got "
                            f"{type(name).__name__} and {type(nhwc_fn).__name__}")
        self.name, self._fn = name, nhwc_fn

    def apply_nhwc(self, x):
        out = self._fn(x)
        if out.shape != x.shape:
            raise ValueError(f"view {self.name!r}: made a batch of shape {out.shape} from one "
                             f"of shape {x.shape}; a view keeps the shape")
        return out

    def __call__(self, x):
        return _from_nhwc(self.apply_nhwc(_to_nhwc(f"view {self.name!r}", x)), x.device)

    def __repr__(self):
        return f"View({self.name!r})"


def _to_nhwc(name, x):
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise TypeError(f"{name}: expected an (N, C, H, W) Tensor, got "
                        f"{getattr(x, 'shape', type(x).__name__)}")
    return np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))


def _from_nhwc(nhwc, device):
    """An (N, C, H, W) Tensor over NHWC memory, as the DataLoader hands batches over."""
    return Tensor(nhwc, dtype=nhwc.dtype, device=device).permute(0, 3, 1, 2)


def _pair(name, size):
    if size is None:
        return None
    size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: expected a positive size or (height, width), got {size}")
    return int(size[0]), int(size[1])


def _check_pad(name, pad):
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"{name}: expected an int pad >= 0, got {pad!r}")
    return int(pad)


def _resize(x, boxes, H, W):
    """Each image's box (top, left, height, width), bilinearly resized to H x W."""
    out = np.empty((x.shape[0], H, W, x.shape[3]), x.dtype)
    K.resized_crop(x, np.ascontiguousarray(np.broadcast_to(boxes, (x.shape[0], 4))),
                   np.zeros(x.shape[0], np.bool_), x.dtype == np.uint8, out)
    return out


def _window(x, top, left, size, pad, flip):
    """The size window at (top, left) of the images padded by `pad` zeros, mirrored when
    `flip`, resized back to the images' size when it has another; or a clear error when the
    window does not fit."""
    N, H, W, C = x.shape
    h, w = size or (H, W)
    if top < 0 or left < 0 or top + h > H + 2 * pad or left + w > W + 2 * pad:
        raise ValueError(f"crop: the {h}x{w} window at ({top}, {left}) does not fit in the "
                         f"{H + 2 * pad}x{W + 2 * pad} image (a {H}x{W} image padded by {pad})")
    out = np.empty((N, h, w, C), x.dtype)
    K.crop_flip(x, np.full(N, top, np.int64), np.full(N, left, np.int64),
                np.full(N, flip, np.bool_), pad, False, out)
    return out if (h, w) == (H, W) else _resize(out, np.array([0.0, 0.0, h, w]), H, W)


identity = View("identity", lambda x: x)
hflip = View("hflip", lambda x: _window(x, 0, 0, None, 0, True))


def crop(top, left, size=None, pad=0, flip=False, name=None):
    """The view of the size window (default: the image's size) whose top-left corner is at
    (top, left) in the image padded by `pad` zero pixels, mirrored when `flip`, and resized
    bilinearly back to the image's size when the window has another size."""
    size, pad = _pair("crop", size), _check_pad("crop", pad)
    label = name or f"crop({top},{left})" + ("+flip" if flip else "")
    return View(label, lambda x: _window(x, top, left, size, pad, flip))


_POSITIONS = ("centre", "top_left", "top_right", "bottom_left", "bottom_right")


def _corner(position, H, W, h, w, pad):
    """(top, left) of an h x w window at `position` of the padded H x W image."""
    bottom, right = H + 2 * pad - h, W + 2 * pad - w
    return {"centre": (bottom // 2, right // 2), "top_left": (0, 0), "top_right": (0, right),
            "bottom_left": (bottom, 0), "bottom_right": (bottom, right)}[position]


def _positioned(position, size, pad, flip):
    def fn(x):
        h, w = size or x.shape[1:3]
        top, left = _corner(position, x.shape[1], x.shape[2], h, w, pad)
        return _window(x, top, left, size, pad, flip)
    return View(position + ("+flip" if flip else ""), fn)


def crops5(size=None, pad=0, flip=False):
    """The centre and the four corner windows of size `size` (default: the image's size) of
    the image padded by `pad` zeros, in that order, each resized back to the image's size when
    `size` differs (mirrored when `flip`). crops5(pad=4) on 32x32 images: the image and its
    translations by 4 pixels diagonally; crops5(size=28): ResNet's corner and centre crops."""
    size, pad = _pair("crops5", size), _check_pad("crops5", pad)
    return [_positioned(p, size, pad, flip) for p in _POSITIONS]


def crops10(size=None, pad=0):
    """crops5 and their mirror images: ResNet's 10 crops (Krizhevsky et al. 2012, He et al.
    2016)."""
    return crops5(size, pad) + crops5(size, pad, flip=True)


def scale(s):
    """Zoom by s about the centre: the central (H / s) x (W / s) window resized bilinearly to
    H x W. s > 1 zooms in; s < 1 zooms out (the edge pixels extend past the border)."""
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < float("inf"):
        raise ValueError(f"scale: expected a positive finite factor, got {s!r}")

    def fn(x):
        H, W = x.shape[1:3]
        h, w = H / s, W / s
        return _resize(x, np.array([(H - h) / 2, (W - w) / 2, h, w]), H, W)
    return View(f"scale({s:g})", fn)


@contextlib.contextmanager
def _evaluating(model):
    """Eval mode and no graph for the block, then the model's mode back; a plain function
    (no train/eval) is called as it is."""
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        with no_grad():
            yield
    finally:
        if was_training is not None:
            model.train(was_training)


def _check_views(name, views):
    views = list(views)
    if not views or not all(isinstance(v, View) for v in views):
        raise TypeError(f"{name}: expected a non-empty list of Views (identity, hflip, "
                        f"crops10(...), scale(s), View(name, fn)), got {views!r}")
    names = [v.name for v in views]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{name}: view names must differ, {repeated} appear more than once")
    return views


def _probabilities(model, x, nhwc, view, plain_output=None):
    """The model's softmax probabilities (host array) on `view` of the batch x."""
    if view is identity and plain_output is not None:
        output = plain_output
    else:
        output = model(_from_nhwc(view.apply_nhwc(nhwc), x.device))
    return F.softmax(output, dim=1).numpy()


def tta_predict(model, x, flip=True, shift=0, views=None):
    """The model's softmax probabilities averaged over views of the batch x ((N, C, H, W)
    Tensor), an (N, classes) Tensor on x's device. `views` (a list of Views) gives them;
    without it, the image, with `shift` > 0 also its four corner crops and centre crop of the
    image zero-padded by `shift` pixels (translations by +-shift), each also mirrored when
    `flip` (crops10(pad=shift)). Eval mode under no_grad, the model's mode restored."""
    if views is None:
        views = crops5(pad=shift) if shift else [identity]
        if flip:
            views = views + (crops5(pad=shift, flip=True) if shift else [hflip])
    views = _check_views("tta_predict", views)
    nhwc = _to_nhwc("tta_predict", x)
    total = None
    with _evaluating(model):
        for view in views:
            p = _probabilities(model, x, nhwc, view)
            total = p if total is None else total + p
    return Tensor(total / len(views), device=x.device)


@dataclass
class TTAResult:
    """Accuracies from evaluate_tta: `plain` (the model on the unchanged images, as
    train.evaluate reports it), `tta` (the probabilities averaged over all the views) and
    `per_view` (view name -> accuracy of that view alone); `gain` = tta - plain and `gains`
    (per view, against plain)."""
    plain: float
    tta: float
    per_view: dict = field(default_factory=dict)
    count: int = 0

    @property
    def gain(self):
        return self.tta - self.plain

    @property
    def gains(self):
        return {name: acc - self.plain for name, acc in self.per_view.items()}

    def __str__(self):
        lines = [f"{'':<22}{'accuracy':>9}{'gain':>9}",
                 f"{'plain':<22}{self.plain:>9.4f}",
                 f"{f'TTA ({len(self.per_view)} views)':<22}{self.tta:>9.4f}{self.gain:>+9.4f}"]
        lines += [f"{'  ' + name:<22}{acc:>9.4f}{acc - self.plain:>+9.4f}"
                  for name, acc in self.per_view.items()]
        return "\n".join(lines)


def evaluate_tta(model, loader, views, device=None):
    """Accuracy of `model` over `loader` without and with test-time augmentation (softmax
    probabilities averaged over `views`), and of each view alone: a TTAResult. Needs class
    labels (or class probabilities) as targets. Eval mode under no_grad, mode restored."""
    views = _check_views("evaluate_tta", views)
    device = get_device(device) if device is not None else _model_device(model)
    plain, tta, count = 0, 0, 0
    per_view = {v.name: 0 for v in views}
    with _evaluating(model):
        for batch in loader:
            x, y = _split(batch, "evaluate_tta")
            x, y = _to(x, device, "evaluate_tta"), _to(y, device, "evaluate_tta")
            output = model(x)
            hits = _correct(output, y)
            if hits is None:
                raise ValueError(f"evaluate_tta: accuracy needs class labels or class "
                                 f"probabilities as targets, got {y.dtype} targets of shape "
                                 f"{y.shape} for outputs of shape {output.shape}")
            plain, count = plain + hits[0], count + hits[1]
            nhwc, total = _to_nhwc("evaluate_tta", x), None
            for view in views:
                p = _probabilities(model, x, nhwc, view, plain_output=output)
                per_view[view.name] += _correct(Tensor(p), y)[0]
                total = p if total is None else total + p
            tta += _correct(Tensor(total), y)[0]
    if count == 0:
        raise ValueError("evaluate_tta: the loader yielded no batches")
    return TTAResult(plain / count, tta / count, {k: v / count for k, v in per_view.items()},
                     count)
