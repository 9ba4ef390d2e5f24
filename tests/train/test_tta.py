"""train.tta: the named views (flip, the 10 crops, scales) checked on small arrays by hand,
tta_predict averaging softmax probabilities over them, and evaluate_tta's accuracies (plain =
train.evaluate's, with TTA, per view), all in eval mode with the model's mode restored."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import data, nn
from tinygrad_lite.train import evaluate
from tinygrad_lite.train import tta as T


def nchw(a):
    """An (N, C, H, W) float32 Tensor from an array."""
    return tl.Tensor(np.asarray(a, np.float32))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


IMAGE = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]


def test_ten_crops_of_a_padded_image_by_hand():
    views = T.crops10(pad=1)
    assert [v.name for v in views] == [
        "centre", "top_left", "top_right", "bottom_left", "bottom_right", "centre+flip",
        "top_left+flip", "top_right+flip", "bottom_left+flip", "bottom_right+flip"]
    got = {v.name: v(nchw(IMAGE)).numpy()[0, 0] for v in views}
    # the 3x3 windows at the corners and the centre of the image padded by one zero pixel
    expected = {
        "centre": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "top_left": [[0, 0, 0], [0, 1, 2], [0, 4, 5]],
        "top_right": [[0, 0, 0], [2, 3, 0], [5, 6, 0]],
        "bottom_left": [[0, 4, 5], [0, 7, 8], [0, 0, 0]],
        "bottom_right": [[5, 6, 0], [8, 9, 0], [0, 0, 0]],
    }
    for name, window in expected.items():
        np.testing.assert_array_equal(got[name], window, err_msg=name)
        np.testing.assert_array_equal(got[name + "+flip"], np.fliplr(window), err_msg=name)
    np.testing.assert_array_equal(T.hflip(nchw(IMAGE)).numpy()[0, 0],
                                  [[3, 2, 1], [6, 5, 4], [9, 8, 7]])
    assert T.identity(nchw(IMAGE)).shape == (1, 1, 3, 3)


def test_smaller_crops_and_scales_are_resized_back_bilinearly():
    # f(i, j) = 10 i + j is linear, so bilinear resizing samples it exactly
    ramp = (10 * np.arange(4)[:, None] + np.arange(4)[None, :]).astype(np.float32)
    image = np.stack([ramp, -ramp])[None]  # (1, 2, 4, 4): two channels
    # the 2x2 bottom-right crop of the 3x3 top-left part, sampled at its rows/cols 0, .5, 1
    # (align_corners=False: source coordinate (i + 0.5) * 2 / 3 - 0.5, clamped to the window)
    part = image[:, :, :3, :3]
    got = T.crops5(size=2)[4](nchw(part)).numpy()
    at = np.array([1.0, 1.5, 2.0])
    np.testing.assert_allclose(got[0, 0], 10 * at[:, None] + at[None, :], rtol=1e-6)
    np.testing.assert_allclose(got[0, 1], -got[0, 0], rtol=1e-6)
    # zoom by 2: the central 2x2 of the 4x4 image, sampled at 0.75, 1.25, 1.75, 2.25
    got = T.scale(2)(nchw(image)).numpy()
    at = np.array([0.75, 1.25, 1.75, 2.25])
    np.testing.assert_allclose(got[0, 0], 10 * at[:, None] + at[None, :], rtol=1e-6)
    assert T.scale(2).name == "scale(2)"
    np.testing.assert_allclose(T.scale(1)(nchw(image)).numpy(), image, rtol=1e-6)
    with pytest.raises(ValueError, match=r"crop: the 3x3 window at \(0, 2\) does not fit in "
                                         r"the 4x4 image"):
        T.crop(0, 2, size=3)(nchw(image))
    with pytest.raises(ValueError, match="scale: expected a positive finite factor"):
        T.scale(0)


def _pooled_model():
    """Global average pooling then a linear layer: blind to left and right."""
    tl.manual_seed(0)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))


def test_tta_of_a_flip_invariant_model_is_its_plain_prediction():
    model = _pooled_model()
    x = nchw(np.random.default_rng(0).normal(size=(5, 3, 6, 6)))
    plain = softmax(model(x).numpy())
    np.testing.assert_allclose(T.tta_predict(model, x, views=[T.identity, T.hflip]).numpy(),
                               plain, rtol=1e-6)
    np.testing.assert_allclose(T.tta_predict(model, x, flip=True).numpy(), plain, rtol=1e-6)
    # translations with zero padding change the pooled mean: not invariant, so a real change
    assert not np.allclose(T.tta_predict(model, x, shift=1).numpy(), plain, rtol=1e-4)


def _conv_model():
    tl.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_tta_predict_averages_the_softmax_over_the_views():
    model = _conv_model().eval()
    x = nchw(np.random.default_rng(1).normal(size=(4, 3, 6, 6)))
    views = [T.identity, T.hflip, T.scale(1.5)] + T.crops5(pad=2)[1:]
    ref = np.mean([softmax(model(v(x)).numpy()) for v in views], axis=0)
    model.train()
    got = T.tta_predict(model, x, views=views).numpy()
    assert model.training and model[3].training  # run in eval mode, mode put back
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # the old arguments mean crops10(pad=shift)
    np.testing.assert_allclose(T.tta_predict(model, x, shift=2).numpy(),
                               T.tta_predict(model, x, views=T.crops10(pad=2)).numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(data.tta_predict(model, x, shift=2).numpy(),
                                  T.tta_predict(model, x, shift=2).numpy())


def test_evaluate_tta_reports_plain_tta_and_each_view():
    rng = np.random.default_rng(2)
    images, labels = rng.normal(size=(20, 3, 6, 6)).astype(np.float32), rng.integers(0, 3, 20)
    loader = data.DataLoader(data.TensorDataset(images, labels), batch_size=8)
    model = _conv_model()
    views = T.crops10(pad=1) + [T.scale(1.2)]
    result = T.evaluate_tta(model, loader, views)
    assert model.training  # mode restored
    _, accuracy = evaluate(model, loader)
    assert result.plain == accuracy and result.count == 20
    model.eval()
    x = nchw(images)
    probs = [softmax(model(v(x)).numpy()) for v in views]
    assert list(result.per_view) == [v.name for v in views]
    for view, p in zip(views, probs):
        assert result.per_view[view.name] == np.mean(p.argmax(1) == labels), view.name
    assert result.tta == np.mean(np.mean(probs, axis=0).argmax(1) == labels)
    assert result.per_view["centre"] == result.plain  # the centre crop of pad 1 is the image
    assert result.gains["centre"] == 0 and result.gain == result.tta - result.plain
    assert "TTA (11 views)" in str(result) and "scale(1.2)" in str(result)


def test_tta_refuses_views_it_cannot_tell_apart():
    model = _pooled_model()
    loader = [(nchw(np.zeros((2, 3, 4, 4))), tl.Tensor(np.zeros(2, np.int64)))]
    with pytest.raises(ValueError, match=r"view names must differ, \['hflip'\] appear"):
        T.evaluate_tta(model, loader, [T.hflip, T.hflip])
    with pytest.raises(TypeError, match="expected a non-empty list of Views"):
        T.evaluate_tta(model, loader, [lambda x: x])
    with pytest.raises(ValueError, match="evaluate_tta: accuracy needs class labels"):
        T.evaluate_tta(model, [(loader[0][0], tl.Tensor(np.zeros((2, 7), np.float32)))],
                       [T.identity])
