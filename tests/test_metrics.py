"""FID/KID/precision-recall math against closed forms and independent derivations,
and the offline feature extractor those metrics are computed in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from trainer import feature_extractors, metrics

# sha256 of random-conv-v1's weights. If this changes, numbers from before and
# after are no longer comparable: give the extractor a new versioned name.
RANDOM_CONV_V1_FINGERPRINT = "d3bfea84a05db3de044bfa6993c7b9be981a4f214584cc71355fa08b4ee8c2ea"


def _random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T + 0.5 * np.eye(dim)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1 S2) without sqrtm: S1 S2 is similar to S1^1/2 S2 S1^1/2, which is PSD,
    so the trace of its square root is the sum of square roots of that matrix's eigenvalues."""
    values, vectors = np.linalg.eigh(sigma1)
    root1 = vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    return float(np.sqrt(np.clip(inner, 0.0, None)).sum())


def test_identical_sets_score_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert metrics.fid(features, features) == pytest.approx(0.0, abs=1e-8)


def test_shift_of_mean_adds_its_squared_norm():
    features = np.random.default_rng(1).normal(size=(400, 8))
    shift = np.arange(8) * 0.25
    # Same covariance, so FID is exactly |shift|^2.
    assert metrics.fid(features, features + shift) == pytest.approx(float(shift @ shift), rel=1e-8)


def test_diagonal_gaussians_match_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum())
    # By hand: means 1 + 0 + 6.25, standard deviations (1-3)^2 + (2-1)^2 + 0.
    assert expected == pytest.approx(12.25)
    got = metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_samples_from_known_gaussians_approach_analytic_value():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.zeros(3), np.array([0.5, -0.5, 0.0])
    var1, var2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 2.0, 1.0])
    a = rng.normal(size=(200_000, 3)) * np.sqrt(var1) + mu1
    b = rng.normal(size=(200_000, 3)) * np.sqrt(var2) + mu2
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum())
    assert metrics.fid(a, b) == pytest.approx(expected, abs=0.02)


def test_non_commuting_2d_covariances_match_closed_form():
    # For 2x2 PSD M with eigenvalues l1, l2: tr sqrt(M) = sqrt(l1) + sqrt(l2) = sqrt(tr M + 2 sqrt(det M)),
    # and S1 S2 has the eigenvalues of S1^1/2 S2 S1^1/2, so tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    sigma1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    sigma2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    assert not np.allclose(sigma1 @ sigma2, sigma2 @ sigma1)
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, 0.0])
    tr_sqrt = np.sqrt(np.trace(sigma1 @ sigma2) + 2 * np.sqrt(np.linalg.det(sigma1) * np.linalg.det(sigma2)))
    expected = 5.0 + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-10)


def test_rotated_covariance_by_90_degrees_swaps_axes():
    sigma1 = np.diag([4.0, 1.0])
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    sigma2 = rotation @ sigma1 @ rotation.T  # diag(1, 4)
    # (2 - 1)^2 + (1 - 2)^2
    assert metrics.frechet_distance(np.zeros(2), sigma1, np.zeros(2), sigma2) == pytest.approx(2.0, rel=1e-10)


def test_non_commuting_high_dim_matches_eigen_derivation():
    rng = np.random.default_rng(3)
    sigma1, sigma2 = _random_spd(rng, 12), _random_spd(rng, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(sigma1) + np.trace(sigma2)
                     - 2 * _trace_sqrt_product(sigma1, sigma2))
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_fid_is_symmetric():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(300, 10))
    b = rng.normal(size=(250, 10)) @ rng.normal(size=(10, 10)) + 1.0
    assert metrics.fid(a, b) == pytest.approx(metrics.fid(b, a), rel=1e-8)
    assert metrics.fid(a, b) > 1.0


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(1000, 7)) * 3.0 + 2.0
    stats = metrics.FeatureStats(7)
    for start, stop in [(0, 1), (1, 130), (130, 130), (130, 777), (777, 1000)]:
        stats.update(features[start:stop])
    assert stats.count == 1000
    np.testing.assert_allclose(stats.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(features, rowvar=False), rtol=1e-10)
    other = rng.normal(size=(600, 7))
    streamed = metrics.fid_from_stats(stats, metrics.FeatureStats(7).update(other[:300]).update(other[300:]))
    assert streamed == pytest.approx(metrics.fid(features, other), rel=1e-10)


def test_merge_equals_one_accumulator():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(500, 5)) + 10.0
    left = metrics.FeatureStats.from_features(features[:200])
    right = metrics.FeatureStats.from_features(features[200:] * 1.0)
    merged = metrics.FeatureStats(5).merge(left).merge(right)
    np.testing.assert_allclose(merged.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance, np.cov(features, rowvar=False), rtol=1e-10)


def test_large_common_offset_keeps_covariance_accurate():
    rng = np.random.default_rng(7)
    features = rng.normal(size=(2000, 4)) * 1e-2
    stats = metrics.FeatureStats.from_features(features[:1000] + 1e6).update(features[1000:] + 1e6)
    np.testing.assert_allclose(stats.covariance, np.cov(features, rowvar=False), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("case", ["fewer_samples_than_dims", "constant_feature", "duplicate_feature"])
def test_singular_covariance_gives_finite_number(case):
    rng = np.random.default_rng(8)
    if case == "fewer_samples_than_dims":  # e.g. 32 samples in a 256-d feature space
        a, b = rng.normal(size=(32, 256)), rng.normal(size=(32, 256)) + 0.5
    else:
        a, b = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) + 0.5
        if case == "constant_feature":
            a[:, 0] = 1.0
            b[:, 0] = 1.0
        else:
            a[:, 1] = a[:, 0]
            b[:, 1] = b[:, 0]
    value = metrics.fid(a, b)
    assert np.isfinite(value) and value > 0.0
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(axis=0) - b.mean(axis=0)
    derived = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * _trace_sqrt_product(sigma_a, sigma_b)
    assert value == pytest.approx(derived, rel=1e-3)  # the eps ridge moves it only slightly
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-3)


def test_sqrtm_failure_falls_back_to_eps_offset():
    # sqrtm of a nilpotent matrix does not exist; scipy returns NaNs and the eps*I retry must rescue it.
    sigma1 = np.array([[0.0, 1.0], [0.0, 0.0]])
    sigma2 = np.array([[0.0, 0.0], [0.0, 1.0]])
    product = sigma1 @ sigma2
    assert not np.isfinite(metrics._sqrtm(product)).all()
    assert np.isfinite(metrics.frechet_distance(np.zeros(2), sigma1, np.zeros(2), sigma2))


def test_invalid_covariance_raises_on_large_imaginary_part():
    with pytest.raises(ValueError, match="imaginary"):
        metrics.frechet_distance(np.zeros(2), np.diag([1.0, -4.0]), np.zeros(2), np.eye(2))


def test_rejects_mismatched_or_non_finite_inputs():
    with pytest.raises(ValueError, match="dimension"):
        metrics.fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.fid(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="2 samples"):
        _ = metrics.FeatureStats.from_features(np.zeros((1, 3))).covariance


def test_kid_is_near_zero_for_same_distribution_and_large_otherwise():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    far = rng.normal(size=(400, 16)) * 2.0 + 1.0
    same = metrics.kid(a, b, num_subsets=20, subset_size=200, seed=0)
    different = metrics.kid(a, far, num_subsets=20, subset_size=200, seed=0)
    assert abs(same.mean) < 0.05
    assert different.mean > 20 * max(abs(same.mean), same.std)
    assert metrics.kid(a, far, num_subsets=20, subset_size=200, seed=0) == different  # seeded
    assert same.subset_size == 200


def test_precision_recall_separates_quality_from_coverage():
    rng = np.random.default_rng(10)
    real = rng.normal(size=(500, 4))
    matched = metrics.precision_recall(real, rng.normal(size=(500, 4)))
    collapsed = metrics.precision_recall(real, rng.normal(size=(500, 4)) * 0.1)  # inside, but covers little
    assert matched.precision > 0.8 and matched.recall > 0.8
    assert collapsed.precision > 0.95 and collapsed.recall < 0.3


# --- the offline feature extractor ----------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """1,797 real 8x8 handwritten digits as uint8 [N, 8, 8, 1]."""
    return np.clip(load_digits().images * 16.0, 0, 255).astype(np.uint8)[..., None]


def test_default_extractor_is_versioned_and_shaped():
    extractor = feature_extractors.get_extractor("random-conv")
    assert isinstance(extractor, feature_extractors.FeatureExtractor)
    assert extractor.name == "random-conv-v1"
    assert feature_extractors.get_extractor("random-conv-v1").name == "random-conv-v1"
    images = np.random.default_rng(0).integers(0, 256, size=(5, 16, 16, 1), dtype=np.uint8)
    features = extractor(images)
    assert features.shape == (5, extractor.feature_dim) and features.dtype == np.float64
    assert np.isfinite(features).all()
    assert extractor(images[:0]).shape == (0, extractor.feature_dim)


def test_unknown_extractor_and_bad_images_are_rejected():
    with pytest.raises(ValueError, match="random-conv"):
        feature_extractors.get_extractor("inception")
    extractor = feature_extractors.get_extractor()
    with pytest.raises(ValueError, match="uint8"):
        extractor(np.zeros((2, 8, 8, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        extractor(np.zeros((2, 8, 8, 4), dtype=np.uint8))


def test_weights_are_pinned():
    assert feature_extractors.get_extractor().weights_fingerprint() == RANDOM_CONV_V1_FINGERPRINT


def test_features_are_identical_in_another_process(tmp_path, digits):
    images = digits[:64]
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np; from trainer.feature_extractors import get_extractor; "
        "e = get_extractor('random-conv'); "
        f"np.save(sys.argv[1], e(np.load(sys.argv[2]))); print(e.weights_fingerprint())"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "features.npy"),
                             str(tmp_path / "images.npy")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == RANDOM_CONV_V1_FINGERPRINT
    other_process = np.load(tmp_path / "features.npy")
    np.testing.assert_allclose(other_process, feature_extractors.get_extractor()(images), rtol=1e-12, atol=0)


def test_batching_and_grey_replication_do_not_change_features(digits):
    images = digits[:50]
    whole = feature_extractors.RandomConvExtractor(batch_size=128)(images)
    np.testing.assert_allclose(feature_extractors.RandomConvExtractor(batch_size=7)(images), whole, rtol=1e-12)
    np.testing.assert_allclose(feature_extractors.get_extractor()(np.repeat(images, 3, axis=-1)), whole,
                               rtol=1e-12)


@pytest.mark.parametrize("size", [8, 28, 64])
def test_any_image_size_is_resized_to_the_same_feature_space(size):
    images = np.random.default_rng(size).integers(0, 256, size=(3, size, size, 3), dtype=np.uint8)
    assert feature_extractors.get_extractor()(images).shape == (3, 256)


def test_fid_separates_real_from_noise(digits):
    extractor = feature_extractors.get_extractor()
    real_a, real_b = extractor(digits[:600]), extractor(digits[600:1200])
    noise = np.random.default_rng(11).integers(0, 256, size=(600, 8, 8, 1), dtype=np.uint8)
    blank = np.zeros((600, 8, 8, 1), dtype=np.uint8)
    real_vs_real = metrics.fid(real_a, real_b)
    assert metrics.fid(real_a, extractor(noise)) > 50 * real_vs_real
    assert metrics.fid(real_a, extractor(blank)) > 50 * real_vs_real
