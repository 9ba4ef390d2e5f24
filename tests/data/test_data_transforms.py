"""Batch augmentations: shapes, dtypes, determinism under a seed, and each one against a
NumPy reference of what it says it does."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tl
from tinygrad_lite import data
from tinygrad_lite.data import kernels as K


def images(seed, shape, dtype=np.uint8, low=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(low, 256, shape).astype(np.uint8)
    return rng.random(shape, dtype=np.float32)


def everything(num_classes=4):
    return data.Compose([
        data.RandomResizedCrop(6, scale=(0.3, 1.0)), data.RandomCrop(6, 2, "reflect"),
        data.RandomHorizontalFlip(), data.ColorJitter(0.4, 0.4, 0.4),
        data.PCAColorShift([4.0, 1.0, 0.25], np.eye(3)), data.Cutout(3),
        data.Mixup(0.4, num_classes)])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_every_transform_keeps_dtype_and_is_deterministic_under_a_seed(dtype):
    x, y = images(0, (5, 7, 7, 3), dtype), np.array([0, 1, 2, 3, 1])
    out1, q1 = everything()(x, y, generator=np.random.default_rng(7))
    out2, q2 = everything()(x, y, generator=np.random.default_rng(7))
    out3, _ = everything()(x, y, generator=np.random.default_rng(8))
    assert out1.dtype == dtype and out1.shape == (5, 6, 6, 3) and q1.shape == (5, 4)
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(q1, q2)
    assert not np.array_equal(out1, out3)
    # the global generator is the default, and manual_seed resets it
    tl.manual_seed(3)
    a = data.RandomCrop(5, 1)(x)
    tl.manual_seed(3)
    np.testing.assert_array_equal(a, data.RandomCrop(5, 1)(x))


def test_flip_mirrors_and_twice_is_identity():
    x = images(1, (4, 3, 5, 2))
    flip = data.RandomHorizontalFlip(p=1.0)
    np.testing.assert_array_equal(flip(x), x[:, :, ::-1])
    np.testing.assert_array_equal(flip(flip(x)), x)
    np.testing.assert_array_equal(data.RandomHorizontalFlip(p=0.0)(x), x)
    x = np.arange(3, dtype=np.uint8).reshape(1, 1, 3, 1).repeat(64, axis=0)
    half = data.RandomHorizontalFlip()(x, generator=np.random.default_rng(0))
    flipped = half[:, 0, 0, 0] == 2
    assert 0 < flipped.sum() < 64  # p=0.5: some of each
    np.testing.assert_array_equal(half[flipped], x[flipped][:, :, ::-1])
    np.testing.assert_array_equal(half[~flipped], x[~flipped])


@given(n=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6), pad=st.integers(0, 3),
       ch=st.integers(1, 6), cw=st.integers(1, 6), reflect=st.booleans(), seed=st.integers(0, 99))
def test_random_crop_equals_a_crop_of_the_numpy_padded_image(n, h, w, pad, ch, cw, reflect,
                                                              seed):
    assume(ch <= h + 2 * pad and cw <= w + 2 * pad)
    assume(not reflect or pad < min(h, w))
    x = images(seed, (n, h, w, 2), low=1)
    mode = "reflect" if reflect else "constant"
    out = data.RandomCrop((ch, cw), pad, mode)(x, generator=np.random.default_rng(seed))
    assert out.shape == (n, ch, cw, 2) and out.dtype == np.uint8
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
    for i in range(n):  # some in-bounds window of the padded image is exactly this crop
        assert any(np.array_equal(padded[i, t:t + ch, s:s + cw], out[i])
                   for t in range(h + 2 * pad - ch + 1) for s in range(w + 2 * pad - cw + 1))


def test_random_crop_covers_every_offset():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1).repeat(400, axis=0)
    out = data.RandomCrop(1, padding=0)(x, generator=np.random.default_rng(0))
    assert set(out.reshape(-1).tolist()) == set(range(9))


def test_resized_crop_full_box_is_identity_and_boxes_stay_in_bounds():
    x = images(3, (3, 5, 5, 3))
    same = data.RandomResizedCrop(5, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_array_equal(same(x), x)
    const = np.full((2, 4, 6, 3), 0.25, np.float32)
    up = data.RandomResizedCrop((9, 7))(const)
    assert up.shape == (2, 9, 7, 3) and up.dtype == np.float32
    np.testing.assert_allclose(up, 0.25, rtol=1e-6)
    t = data.RandomResizedCrop(4, scale=(0.05, 1.0), ratio=(0.2, 5.0))
    boxes = t.boxes(500, 6, 9, np.random.default_rng(0))
    top, left, bh, bw = boxes.T
    assert np.all((top >= 0) & (left >= 0) & (bh >= 1) & (bw >= 1))
    assert np.all((top + bh <= 6) & (left + bw <= 9))


def test_resized_crop_matches_numpy_bilinear():
    x = images(4, (1, 4, 4, 1), np.float32)
    box = np.array([[1.0, 0.0, 2.0, 3.0]])  # top 1, left 0, height 2, width 3 -> 4 x 6
    out = np.empty((1, 4, 6, 1), np.float32)
    K.resized_crop(x, box, np.zeros(1, np.bool_), False, out)
    ys = np.clip(1 + (np.arange(4) + 0.5) * 2 / 4 - 0.5, 0, 3)
    xs = np.clip(0 + (np.arange(6) + 0.5) * 3 / 6 - 0.5, 0, 3)
    ref = np.empty((4, 6))
    for i, fy in enumerate(ys):
        for j, fx in enumerate(xs):
            r0, s0 = int(fy), int(fx)
            r1, s1, ay, ax = min(r0 + 1, 3), min(s0 + 1, 3), fy - r0, fx - s0
            img = x[0, :, :, 0]
            ref[i, j] = ((img[r0, s0] * (1 - ax) + img[r0, s1] * ax) * (1 - ay)
                         + (img[r1, s0] * (1 - ax) + img[r1, s1] * ax) * ay)
    np.testing.assert_allclose(out[0, :, :, 0], ref, rtol=1e-5)


def jitter_reference(x, b, c, s, hi):
    grey = np.array([0.299, 0.587, 0.114])
    v = np.clip(x.astype(np.float64) * b[:, None, None, None], 0, hi)
    m = (v @ grey).mean(axis=(1, 2))[:, None, None, None]
    v = np.clip(m + c[:, None, None, None] * (v - m), 0, hi)
    g = (v @ grey)[..., None]
    return np.clip(g + s[:, None, None, None] * (v - g), 0, hi)


def test_color_jitter_matches_numpy_and_identity_factors():
    x = images(5, (3, 4, 5, 3), np.float32)
    b, c, s = np.array([0.5, 1.0, 1.6]), np.array([1.3, 0.2, 1.0]), np.array([0.0, 1.0, 1.9])
    out = np.empty_like(x)
    K.color_jitter(x, b, c, s, 1.0, False, out)
    np.testing.assert_allclose(out, jitter_reference(x, b, c, s, 1.0), rtol=1e-5, atol=1e-6)
    u = images(6, (3, 4, 5, 3))
    out = np.empty_like(u)
    K.color_jitter(u, b, c, s, 255.0, True, out)
    ref = np.floor(jitter_reference(u, b, c, s, 255.0) + 0.5)
    assert np.abs(out.astype(np.int64) - ref).max() <= 1  # float32 vs float64 at .5 ties
    np.testing.assert_array_equal(data.ColorJitter()(u), u)


def test_pca_color_shift_adds_one_rgb_vector_per_image():
    x = images(7, (200, 4, 4, 3), np.float32)
    t = data.PCAColorShift(std=0.5).fit(x)
    np.testing.assert_allclose(t.eigvecs @ np.diag(t.sigma ** 2) @ t.eigvecs.T,
                               np.cov(x.reshape(-1, 3), rowvar=False), atol=1e-6)
    out = t(x[:5], generator=np.random.default_rng(0))
    shift = (out - x[:5]).reshape(5, -1, 3)
    np.testing.assert_allclose(shift, shift[:, :1].repeat(16, axis=1), atol=1e-6)
    assert np.abs(shift).max() > 0
    np.testing.assert_array_equal(data.PCAColorShift(std=0.0).fit(x)(x), x)
    t2 = data.PCAColorShift()
    t2.load_state_dict(t.state_dict())
    np.testing.assert_array_equal(t2.sigma, t.sigma)
    with pytest.raises(RuntimeError, match="PCAColorShift: call fit"):
        data.PCAColorShift()(x)


def test_pca_color_shift_draws_its_own_shift_for_every_image():
    """AlexNet's fancy PCA: alpha ~ N(0, std^2) per image and component; image n gets
    sum_i alpha_ni sigma_i p_i added to every pixel (the first image's shift for all was a
    bug)."""
    x = images(14, (6, 3, 2, 3), np.float32)
    sigma, eigvecs = np.array([0.5, 0.2, 0.1]), np.linalg.qr(
        np.random.default_rng(15).standard_normal((3, 3)))[0]
    t = data.PCAColorShift(sigma ** 2, eigvecs, std=0.3)
    out = t(x, generator=np.random.default_rng(16))
    alpha = np.random.default_rng(16).normal(0.0, 0.3, (6, 3))
    shift = (alpha * sigma) @ eigvecs.T  # (N, 3): row n is image n's RGB shift
    np.testing.assert_allclose(out, x + shift[:, None, None, :], rtol=1e-5, atol=1e-6)
    assert len({tuple(np.round(out[n, 0, 0] - x[n, 0, 0], 5)) for n in range(6)}) == 6
    u = images(17, (6, 3, 2, 3))  # uint8: rounded and saturated per image
    ref = np.clip(np.floor(u + 255 * shift[:, None, None, :] + 0.5), 0, 255)
    t255 = data.PCAColorShift((255 * sigma) ** 2, eigvecs, std=0.3)
    got = t255(u, generator=np.random.default_rng(16)).astype(np.int64)
    assert np.abs(got - ref).max() <= 1  # float32 vs float64 at .5 ties


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_cutout_zeroes_one_clipped_square_and_nothing_else(size):
    x = images(8, (40, 5, 6, 2), low=1)
    out = data.Cutout(size)(x, generator=np.random.default_rng(size))
    zero = out == 0
    np.testing.assert_array_equal(out[~zero], x[~zero])
    for n in range(len(x)):
        squares = []
        for cy in range(5):
            for cx in range(6):
                m = np.zeros((5, 6), bool)
                t, s = cy - size // 2, cx - size // 2
                m[max(t, 0):t + size, max(s, 0):s + size] = True
                squares.append(m)
        assert any(np.array_equal(zero[n, :, :, 0], m) for m in squares)
        assert np.array_equal(zero[n, :, :, 0], zero[n, :, :, 1])
    np.testing.assert_array_equal(data.Cutout(2, p=0.0)(x), x)


def test_mixup_targets_sum_to_one_and_mix_the_right_pairs():
    x = images(9, (6, 3, 3, 2), np.float32)
    y = np.arange(6)  # distinct labels: each soft row names the image's partner
    out, q = data.Mixup(1.0, num_classes=6)(x, y, generator=np.random.default_rng(4))
    assert q.dtype == np.float32 and q.shape == (6, 6) and out.dtype == np.float32
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-6)
    for n in range(6):
        ref = sum(q[n, m] * x[m] for m in range(6))
        np.testing.assert_allclose(out[n], ref, rtol=1e-5, atol=1e-6)
    # soft targets in, soft targets out (mixup after label smoothing or another mixup)
    _, q2 = data.Mixup(1.0)(x, q, generator=np.random.default_rng(5))
    np.testing.assert_allclose(q2.sum(axis=1), 1.0, rtol=1e-6)
    # the targets work as class probabilities in cross-entropy
    logits = tl.Tensor(np.zeros((6, 6), np.float32))
    loss = tl.nn.functional.cross_entropy(logits, tl.Tensor(q))
    np.testing.assert_allclose(loss.item(), np.log(6), rtol=1e-6)


def test_normalize_matches_numpy():
    mean, std = (0.5, 0.25, 0.1), (0.2, 0.3, 0.4)
    x = images(10, (2, 3, 4, 3))
    out = data.Normalize(mean, std)(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (x / 255.0 - mean) / std, rtol=1e-5, atol=1e-6)
    f = images(11, (2, 3, 4, 3), np.float32)
    np.testing.assert_allclose(data.Normalize(mean, std)(f), (f - mean) / std, rtol=1e-5,
                               atol=1e-6)


def test_tta_averages_softmax_over_flips_and_crops():
    x = images(12, (2, 4, 4, 3), np.float32)

    def model(t):  # logits: the mean of each channel over the top-left 2x2 window
        return t[:, :, :2, :2].mean(axis=(2, 3)) * 10

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def logits(v):
        return v[:, :2, :2, :].mean(axis=(1, 2)) * 10

    batch = tl.Tensor(x).permute(0, 3, 1, 2)
    got = data.tta_predict(model, batch, flip=True).numpy()
    ref = (softmax(logits(x)) + softmax(logits(x[:, :, ::-1]))) / 2
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    views = [p[:, t:t + 4, s:s + 4] for t, s in [(1, 1), (0, 0), (0, 2), (2, 0), (2, 2)]]
    ref = np.mean([softmax(logits(v)) for v in views], axis=0)
    got = data.tta_predict(model, batch, flip=False, shift=1).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_tta_runs_a_model_in_training_mode_in_eval_mode_and_restores_it():
    x = tl.Tensor(images(18, (3, 4, 4, 3), np.float32)).permute(0, 3, 1, 2)
    tl.manual_seed(0)
    model = tl.nn.Sequential(tl.nn.Flatten(), tl.nn.Linear(48, 5), tl.nn.Dropout(0.5))
    for training in (True, False):
        model.train(training)
        first = data.tta_predict(model, x, shift=1).numpy()
        again = data.tta_predict(model, x, shift=1).numpy()
        assert model.training is training and model[2].training is training
        np.testing.assert_array_equal(first, again)  # no dropout masks: deterministic
        model.eval()
        np.testing.assert_array_equal(first, data.tta_predict(model, x, shift=1).numpy())


@pytest.mark.parametrize("transform", [
    data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(), data.Cutout(4),
    data.ColorJitter(0.2), data.Normalize((0.5,) * 3, (0.2,) * 3)], ids=repr)
def test_nhwc_transforms_given_an_nchw_batch_say_the_layout_is_the_problem(transform):
    name = type(transform).__name__
    nchw = images(19, (2, 3, 32, 32))
    with pytest.raises(ValueError, match=rf"{name}: expected NHWC images \(N, H, W, C\), got "
                                         rf"shape \(2, 3, 32, 32\), which looks like NCHW"):
        transform(nchw)
    with pytest.raises(TypeError, match=rf"{name}: expected a NumPy \(N, H, W, C\) batch on "
                                        rf"the host, got a Tensor of shape \(2, 3, 32, 32\)"):
        transform(tl.Tensor(nchw.astype(np.float32)))
    transform(nchw.transpose(0, 2, 3, 1))  # the same batch channels-last is fine


def test_clear_errors():
    x = images(13, (2, 4, 4, 3))
    with pytest.raises(TypeError, match="RandomCrop: expected a uint8 or float32"):
        data.RandomCrop(2)(x.astype(np.float64))
    with pytest.raises(TypeError, match=r"Cutout: expected a uint8 or float32 \(N, H, W, C\)"):
        data.Cutout(2)(x[0])
    with pytest.raises(ValueError, match="RandomCrop: crop"):
        data.RandomCrop(9, padding=2)(x)
    with pytest.raises(ValueError, match="padding_mode"):
        data.RandomCrop(2, padding_mode="edge")
    with pytest.raises(ValueError, match="ColorJitter: expected 3 channels"):
        data.ColorJitter(0.1)(x[..., :2])
    with pytest.raises(TypeError, match="Mixup: call it with the targets"):
        data.Mixup(1.0, 3)(x)
    with pytest.raises(ValueError, match=r"Mixup: labels must lie in \[0, 3\)"):
        data.Mixup(1.0, 3)(x, np.array([0, 3]))
    with pytest.raises(ValueError, match="RandomHorizontalFlip: expected a probability"):
        data.RandomHorizontalFlip(1.5)
