"""Numba kernels for whole NHWC host batches (uint8 or float32), run before a batch goes to a
device. Each kernel reads the source once and writes the output once: the random numbers
(offsets, flips, factors) are drawn on the host per batch and passed in, so a kernel is a pure
function of its arguments and the same seed gives the same batch on any thread.

The loops run over images with `prange` and release the GIL (`nogil`), so the DataLoader's
worker threads overlap with the training step. A store to a uint8 output rounds to nearest and
saturates to 0..255, as image libraries do; a float32 output is stored unchanged.

Only the dtype pairs the package uses are compiled (each signature costs ~1 s of cold
compile): uint8 -> float32 and float32 -> float32 conversions, and same-dtype augmentations.
"""
import numba
import numpy as np
from numba import prange

from ..kernels.cpu.jit import parallel_kernel as kernel


@numba.njit(inline="always")
def _store(v, saturate):
    """Round and clamp to 0..255 when the destination is uint8 (saturate), else pass through."""
    if saturate:
        return min(max(np.floor(v + 0.5), 0.0), 255.0)
    return v


@kernel
def affine(x, scale, shift, saturate, out):
    """out[n,h,w,c] = x[n,h,w,c] * scale[n', c] + shift[n'', c], n' = n if `scale` has one
    row per image, else 0, and n'' likewise for `shift` (each table on its own): per-channel
    normalisation (one row each) and per-image colour shifts (one scale row, a shift row per
    image) in one pass, converting the dtype on the way."""
    N, H, W, C = x.shape
    # Each table's own row step: a shared scale with per-image shifts must still give image n
    # shift row n (taking both steps from `scale` gave every image the first shift).
    scale_step = 1 if scale.shape[0] > 1 else 0
    shift_step = 1 if shift.shape[0] > 1 else 0
    for n in prange(N):
        rs, rt = n * scale_step, n * shift_step
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    out[n, h, w, c] = _store(x[n, h, w, c] * scale[rs, c] + shift[rt, c],
                                             saturate)


@kernel
def crop_flip(x, top, left, flip, pad, reflect, out):
    """out[n, i, j] = P[n, top[n] + i, left[n] + j'] where P is x padded by `pad` pixels
    (zeros, or reflection without repeating the edge as np.pad mode="reflect"), and
    j' = W_out - 1 - j when flip[n] (horizontal flip), else j. Padding is never materialised:
    a padded coordinate maps back to a source pixel or to zero."""
    N, H, W, C = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for n in prange(N):
        for i in range(Ho):
            r = top[n] + i - pad
            if reflect:
                r = -r if r < 0 else (2 * (H - 1) - r if r >= H else r)
            for j in range(Wo):
                jj = Wo - 1 - j if flip[n] else j
                s = left[n] + jj - pad
                if reflect:
                    s = -s if s < 0 else (2 * (W - 1) - s if s >= W else s)
                inside = 0 <= r < H and 0 <= s < W
                for c in range(C):
                    out[n, i, j, c] = x[n, r, s, c] if inside else 0


@kernel
def resized_crop(x, boxes, flip, saturate, out):
    """Bilinear resize of the box (top, left, height, width) of each image, in source pixels,
    to out's H x W (pixel centres aligned, as align_corners=False), then an optional flip."""
    N, H, W, C = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for n in prange(N):
        y0, x0, bh, bw = boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3]
        for i in range(Ho):
            fy = min(max(y0 + (i + 0.5) * bh / Ho - 0.5, 0.0), H - 1.0)
            r0 = int(fy)
            r1 = min(r0 + 1, H - 1)
            ay = fy - r0
            for j in range(Wo):
                jj = Wo - 1 - j if flip[n] else j
                fx = min(max(x0 + (jj + 0.5) * bw / Wo - 0.5, 0.0), W - 1.0)
                s0 = int(fx)
                s1 = min(s0 + 1, W - 1)
                ax = fx - s0
                for c in range(C):
                    top = x[n, r0, s0, c] * (1.0 - ax) + x[n, r0, s1, c] * ax
                    bot = x[n, r1, s0, c] * (1.0 - ax) + x[n, r1, s1, c] * ax
                    out[n, i, j, c] = _store(top * (1.0 - ay) + bot * ay, saturate)


@kernel
def color_jitter(x, brightness, contrast, saturation, hi, saturate, out):
    """Per image n, in this order (torchvision's definitions, each clamped to [0, hi]):
    brightness x*b; contrast m + c*(x - m) with m the image's mean grey level; saturation
    g + s*(x - g) with g the pixel's grey level (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).
    A factor of 1 leaves the image unchanged."""
    N, H, W, C = x.shape
    for n in prange(N):
        b, k, s = brightness[n], contrast[n], saturation[n]
        mean = 0.0
        for h in range(H):
            for w in range(W):
                v0 = min(max(x[n, h, w, 0] * b, 0.0), hi)
                v1 = min(max(x[n, h, w, 1] * b, 0.0), hi)
                v2 = min(max(x[n, h, w, 2] * b, 0.0), hi)
                mean += 0.299 * v0 + 0.587 * v1 + 0.114 * v2
        mean /= H * W
        for h in range(H):
            for w in range(W):
                v0 = min(max(x[n, h, w, 0] * b, 0.0), hi)
                v1 = min(max(x[n, h, w, 1] * b, 0.0), hi)
                v2 = min(max(x[n, h, w, 2] * b, 0.0), hi)
                v0 = min(max(mean + k * (v0 - mean), 0.0), hi)
                v1 = min(max(mean + k * (v1 - mean), 0.0), hi)
                v2 = min(max(mean + k * (v2 - mean), 0.0), hi)
                g = 0.299 * v0 + 0.587 * v1 + 0.114 * v2
                out[n, h, w, 0] = _store(min(max(g + s * (v0 - g), 0.0), hi), saturate)
                out[n, h, w, 1] = _store(min(max(g + s * (v1 - g), 0.0), hi), saturate)
                out[n, h, w, 2] = _store(min(max(g + s * (v2 - g), 0.0), hi), saturate)


@kernel
def cutout(x, top, left, size):
    """Zero, in place, the size x size square at (top[n], left[n]) of each image, clipped to
    the image (the corner may lie outside it, as in DeVries and Taylor, 2017)."""
    N, H, W, C = x.shape
    for n in prange(N):
        for i in range(max(top[n], 0), min(top[n] + size, H)):
            for j in range(max(left[n], 0), min(left[n] + size, W)):
                for c in range(C):
                    x[n, i, j, c] = 0


@kernel
def mix(x, partner, lam, saturate, out):
    """out[n] = lam[n] * x[n] + (1 - lam[n]) * x[partner[n]] (Mixup's convex combination)."""
    N, H, W, C = x.shape
    for n in prange(N):
        a, p = lam[n], partner[n]
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    out[n, h, w, c] = _store(a * x[n, h, w, c] + (1.0 - a) * x[p, h, w, c],
                                             saturate)
