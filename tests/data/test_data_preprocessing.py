"""Preprocessing fitted on training data: the transformed training data has the statistics the
method promises, the fitted numbers round-trip through state_dict, test data reuses them."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from tinygrad_lite import data


def correlated(seed, n, d):
    """Samples with a random full-rank covariance and non-zero mean."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) + 2 * np.eye(d)
    return (rng.normal(size=(n, d)) @ mix + rng.normal(size=d) * 5).astype(np.float32)


def covariance(z):
    z = z.reshape(len(z), -1).astype(np.float64)
    c = z - z.mean(axis=0)
    return c.T @ c / len(z)


@given(seed=st.integers(0, 1000), d=st.integers(1, 6))
def test_zca_whitened_training_data_has_zero_mean_and_identity_covariance(seed, d):
    x = correlated(seed, 300, d)
    zca = data.ZCAWhitening(eps=0.0).fit(x)
    z = zca(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(covariance(z), np.eye(d), atol=1e-4)
    np.testing.assert_allclose(zca.matrix, zca.matrix.T, atol=1e-5)  # ZCA: symmetric


@given(seed=st.integers(0, 1000), d=st.integers(2, 6), data_=st.data())
def test_pca_whitening_keeps_the_top_components_decorrelated(seed, d, data_):
    k = data_.draw(st.integers(1, d))
    x = correlated(seed, 300, d)
    pca = data.PCAWhitening(n_components=k, eps=0.0).fit(x)
    z = pca(x)
    assert z.shape == (300, k) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(covariance(z), np.eye(k), atol=1e-4)
    # the kept directions are those of largest variance
    lam = np.linalg.eigvalsh(covariance(x))[::-1]
    np.testing.assert_allclose(pca.eigvals, lam, rtol=1e-6, atol=1e-8)


def test_whitening_images_and_eps_and_state_dict():
    x = (np.random.default_rng(0).random((400, 2, 2, 3)) * 255).astype(np.uint8)
    zca = data.ZCAWhitening(eps=1e-3).fit(x)
    z = zca(x)
    assert z.shape == x.shape
    cov = covariance(z)
    # eps shrinks each direction's variance to lam / (lam + eps): close to, below, one
    np.testing.assert_allclose(np.diag(cov), 1, atol=1e-3)
    assert np.all(np.diag(cov) < 1)
    loaded = data.ZCAWhitening().load_state_dict(zca.state_dict())
    test = x[:7]
    np.testing.assert_array_equal(loaded(test), zca(test))
    pca = data.PCAWhitening(2).fit(x)
    np.testing.assert_array_equal(data.PCAWhitening().load_state_dict(pca.state_dict())(test),
                                  pca(test))


def test_mean_image_and_standardize_on_uint8_images():
    rng = np.random.default_rng(1)
    x = (rng.random((50, 3, 4, 3)) * np.array([255, 100, 30])).astype(np.uint8)
    m = data.MeanImage().fit(x)
    np.testing.assert_allclose(m(x).mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(m(x[:2]), x[:2] - x.mean(axis=0), rtol=1e-5, atol=1e-4)
    s = data.Standardize().fit(x)
    z = s(x)  # one kernel from uint8
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1, rtol=1e-5)
    ref = (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-5)
    centred = data.Standardize(std=False).fit(x)
    np.testing.assert_allclose(centred(x), x - x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-4)
    restored = data.Standardize().load_state_dict(s.state_dict())
    np.testing.assert_array_equal(restored(x[:3]), z[:3])
    feats = x.reshape(50, -1)[:, :5].astype(np.float64)  # (N, D) features: per feature
    np.testing.assert_allclose(data.Standardize().fit(feats)(feats).std(axis=0), 1, rtol=1e-5)


def test_clear_errors():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(RuntimeError, match="ZCAWhitening: call fit"):
        data.ZCAWhitening()(x)
    with pytest.raises(ValueError, match=r"MeanImage: fitted on samples of shape \(3,\)"):
        data.MeanImage().fit(x)(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="Standardize: fitted on 3 channels"):
        data.Standardize().fit(x)(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"PCAWhitening: n_components must be in \[1, 3\]"):
        data.PCAWhitening(4).fit(np.random.default_rng(0).random((5, 3)))
    with pytest.raises(ValueError, match="ZCAWhitening.fit: expected a numeric batch"):
        data.ZCAWhitening().fit(np.zeros((1, 3)))
    with pytest.raises(KeyError, match="missing"):
        data.MeanImage().load_state_dict({})


@pytest.mark.parametrize("cls", [data.MeanImage, data.Standardize, data.PCAWhitening,
                                 data.ZCAWhitening])
def test_a_tensor_gets_a_clear_error_that_says_what_is_wanted(cls):
    x = np.random.default_rng(8).random((6, 2, 2, 3)).astype(np.float32)
    batch = tl.Tensor(x).permute(0, 3, 1, 2)  # what a DataLoader hands the model
    name = cls.__name__
    with pytest.raises(TypeError, match=rf"{name}.fit: expected a NumPy array on the host "
                                        rf"\(NHWC images .* got a Tensor of shape "
                                        rf"\(6, 3, 2, 2\)"):
        cls().fit(batch)
    fitted = cls().fit(x)
    with pytest.raises(TypeError, match=rf"{name}: expected a NumPy array .* got a Tensor .*"
                                        rf"t.permute\(0, 2, 3, 1\).numpy\(\)"):
        fitted(batch)
    np.testing.assert_array_equal(fitted(batch.permute(0, 2, 3, 1).numpy()), fitted(x))
