"""FID/KID/precision-recall math against closed forms and independent derivations,
and the offline feature extractor those metrics are computed in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ganpipe.evaluation import feature_extractors, metrics

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
        "import sys, numpy as np; from ganpipe.evaluation.feature_extractors import get_extractor; "
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


# --- density/coverage, KID in closed form, streaming summaries ------------------------------------


def _brute_force_manifold(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The k-NN metrics straight from their definitions, one full distance matrix at a time."""
    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))

    real_radii = np.sort(dist(real, real), axis=1)[:, k]
    fake_radii = np.sort(dist(fake, fake), axis=1)[:, k]
    cross = dist(fake, real)
    return {
        "precision": float(np.mean((cross <= real_radii[None, :]).any(axis=1))),
        "recall": float(np.mean((cross <= fake_radii[:, None]).any(axis=0))),
        "density": float((cross <= real_radii[None, :]).sum() / (k * len(fake))),
        "coverage": float(np.mean(cross.min(axis=0) <= real_radii)),
    }


def test_blocked_knn_metrics_equal_their_definitions():
    rng = np.random.default_rng(12)
    real, fake = rng.normal(size=(150, 5)), rng.normal(size=(120, 5)) * 1.3 + 0.2
    expected = _brute_force_manifold(real, fake, k=4)
    for block_size in (7, 1000):  # blocks smaller than, and larger than, the sets
        pr = metrics.precision_recall(real, fake, k=4, block_size=block_size)
        dc = metrics.density_coverage(real, fake, k=4, block_size=block_size)
        assert (pr.precision, pr.recall) == pytest.approx((expected["precision"], expected["recall"]), abs=1e-12)
        assert (dc.density, dc.coverage) == pytest.approx((expected["density"], expected["coverage"]), abs=1e-12)


def test_identical_sets_are_perfect_on_every_knn_metric():
    features = np.random.default_rng(13).normal(size=(300, 6))
    pr = metrics.precision_recall(features, features)
    dc = metrics.density_coverage(features, features)
    assert pr.precision == pr.recall == dc.coverage == 1.0


def test_coverage_and_density_match_their_expectation_for_one_distribution():
    """Same continuous distribution, N real and M fake samples: the ranking of the N-1 other reals and
    the M fakes by distance to a real sample is uniformly random, so it is NOT covered exactly when its
    k nearest are all real: E[coverage] = 1 - prod_{i<k} (N-1-i)/(N+M-1-i) (0.969 for N=M=1000, k=5).
    The real k-NN ball holds k/N of the probability mass on average, so E[density] = 1."""
    n, k = 1000, 5
    expected = 1.0 - np.prod([(n - 1 - i) / (2 * n - 1 - i) for i in range(k)])
    assert expected == pytest.approx(0.969, abs=1e-3)
    rng = np.random.default_rng(14)
    results = [metrics.density_coverage(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)), k=k) for _ in range(4)]
    assert np.mean([r.coverage for r in results]) == pytest.approx(expected, abs=0.01)
    assert np.mean([r.density for r in results]) == pytest.approx(1.0, abs=0.05)


def test_coverage_and_recall_expose_mode_collapse_that_fid_underplays():
    rng = np.random.default_rng(15)
    centres = rng.normal(size=(10, 8)) * 4.0  # ten well separated modes
    real = centres[rng.integers(0, 10, 2000)] + rng.normal(size=(2000, 8))
    healthy = centres[rng.integers(0, 10, 2000)] + rng.normal(size=(2000, 8))
    two_modes = centres[rng.integers(0, 2, 2000)] + rng.normal(size=(2000, 8))
    reference = metrics.FeatureSummary.from_features(real)
    good = metrics.score(metrics.FeatureSummary.from_features(healthy), reference, kid_subsets=10)
    collapsed = metrics.score(metrics.FeatureSummary.from_features(two_modes), reference, kid_subsets=10)
    assert good.coverage > 0.9 and good.recall > 0.8
    assert collapsed.coverage < 0.3 and collapsed.recall < 0.3
    assert collapsed.precision > 0.8  # every sample it draws is realistic


def test_kid_matches_closed_form_mmd_in_one_dimension():
    """k(x, y) = (xy + 1)^3 for x ~ N(a, 1), y ~ N(b, 1) independent has
    E k = E[x^3]E[y^3] + 3E[x^2]E[y^2] + 3ab + 1 = (a^3+3a)(b^3+3b) + 3(1+a^2)(1+b^2) + 3ab + 1,
    so for a=0, b=1: MMD^2 = f(0,0) + f(1,1) - 2 f(0,1) = 4 + 32 - 2*7 = 22. The estimator is unbiased."""
    rng = np.random.default_rng(16)
    a, b = rng.normal(size=(20_000, 1)), rng.normal(size=(20_000, 1)) + 1.0
    result = metrics.kid(a, b, num_subsets=100, subset_size=1000, seed=0)
    assert result.mean == pytest.approx(22.0, abs=1.0)


def test_kid_expectation_is_zero_for_one_distribution():
    rng = np.random.default_rng(17)
    means = [metrics.kid(rng.normal(size=(400, 16)), rng.normal(size=(400, 16)), num_subsets=10,
                         subset_size=200, seed=s).mean for s in range(10)]
    different = metrics.kid(rng.normal(size=(400, 16)), rng.normal(size=(400, 16)) + 0.5, num_subsets=10,
                            subset_size=200, seed=0).mean
    # Unbiased: the average over independent draws sits within its standard error of 0.
    assert abs(np.mean(means)) < 3 * np.std(means) / np.sqrt(len(means)) + 1e-4
    assert different > 10 * np.std(means)


def test_summary_keeps_a_bounded_uniform_subset_whatever_the_batching():
    rng = np.random.default_rng(18)
    features = rng.normal(size=(5000, 4))
    one_shot = metrics.FeatureSummary(4, max_kept=700, seed=3).update(features)
    batched = metrics.FeatureSummary(4, max_kept=700, seed=3)
    for start, stop in [(0, 1), (1, 999), (999, 999), (999, 4321), (4321, 5000)]:
        batched.update(features[start:stop])
    assert one_shot.count == batched.count == 5000
    np.testing.assert_array_equal(one_shot.sample(), batched.sample())
    assert one_shot.sample().shape == (700, 4)
    # A prefix of the kept sample is a uniform subset too; the rows are real input rows.
    rows = {row.tobytes() for row in features}
    assert all(row.tobytes() in rows for row in one_shot.sample(50))
    assert one_shot.sample(50).shape == (50, 4)
    # Uniform: kept rows' original positions spread over the whole stream, not only its start.
    positions = np.flatnonzero(np.isin(features[:, 0], one_shot.sample()[:, 0]))
    assert 1500 < positions.mean() < 3500
    # FID still sees every sample.
    np.testing.assert_allclose(batched.stats.mean, features.mean(axis=0), rtol=1e-12)


def test_fifty_thousand_samples_stream_in_bounded_memory():
    """50k x 256 float64 features would be 100 MB at once; the summary holds O(D^2 + max_kept * D)."""
    rng = np.random.default_rng(19)
    real, fake = metrics.FeatureSummary(256), metrics.FeatureSummary(256)
    for _ in range(50):
        real.update(rng.normal(size=(1000, 256)))
        fake.update(rng.normal(size=(1000, 256)) * 1.1)
    assert real.count == fake.count == 50_000
    assert real.sample().shape == (metrics.DEFAULT_MAX_KEPT, 256)
    scores = metrics.score(fake, real, kid_subsets=5, manifold_samples=1000)
    # Covariance 1.21 I vs I in 256 dims: FID = 256 * (1.1 - 1)^2 = 2.56, plus FID's positive
    # finite-sample bias (of order D^2 / N here).
    assert 2.56 < scores.fid < 2.56 + 2 * 256**2 / 50_000
    assert scores.num_samples == 50_000 and scores.manifold_samples == 1000
    assert 0.0 <= scores.coverage <= 1.0 and scores.kid > 0


def test_score_of_a_set_against_itself_is_perfect():
    features = np.random.default_rng(20).normal(size=(400, 8))
    summary = metrics.FeatureSummary.from_features(features)
    scores = metrics.score(summary, summary)
    assert scores.fid == pytest.approx(0.0, abs=1e-8)
    assert scores.precision == scores.recall == scores.coverage == 1.0
    assert scores.diversity == pytest.approx(1.0)
    assert set(scores.to_dict()) >= {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}


def test_score_skips_knn_metrics_it_cannot_compute():
    rng = np.random.default_rng(21)
    tiny = metrics.score(metrics.FeatureSummary.from_features(rng.normal(size=(4, 3))),
                         metrics.FeatureSummary.from_features(rng.normal(size=(50, 3))))
    assert np.isfinite(tiny.fid) and tiny.kid is not None
    assert tiny.recall is None and tiny.coverage is None and tiny.manifold_samples == 0


# --- model-based extractors: InceptionV3 from a weights file, Keras and SavedModel feature models ----


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A weights file in the layout of Keras' ImageNet download (legacy HDF5), from a RANDOMLY
    initialised InceptionV3: the real ImageNet weights cannot be had offline. It exercises the
    loading path and the architecture, not the meaning of Inception features."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(299, 299, 3))
    path = tmp_path_factory.mktemp("keras_home") / "models" / feature_extractors.INCEPTION_WEIGHTS_FILE
    path.parent.mkdir()
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return path, model


def test_inception_v3_loads_user_weights_and_computes_pool3_features(inception_weights, digits, monkeypatch):
    import tensorflow as tf

    path, model = inception_weights
    extractor = feature_extractors.get_extractor(f"inception-v3:{path}")
    assert extractor.feature_dim == 2048
    # Not Keras' ImageNet file (its MD5 differs): the name says so, with a fingerprint.
    assert extractor.name.startswith("inception-v3-pool3@sha256:")
    images = digits[:5]
    features = extractor(images)
    assert features.shape == (5, 2048) and features.dtype == np.float64
    # The weights in the file were loaded (a fresh random init would give other numbers): same as the
    # saved network on 299x299 RGB inputs scaled to [-1, 1].
    x = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(images, tf.float32)), (299, 299), antialias=True)
    np.testing.assert_allclose(features, model(x / 127.5 - 1.0, training=False).numpy(), rtol=1e-4, atol=1e-6)

    # Without a path: Keras' cache under $KERAS_HOME/models, never a download.
    monkeypatch.setenv("KERAS_HOME", str(path.parent.parent))
    assert feature_extractors.get_extractor("inception-v3").name == extractor.name


def test_inception_v3_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    if (feature_extractors.os.path.isfile(f"/tmp/.keras/models/{feature_extractors.INCEPTION_WEIGHTS_FILE}")):
        pytest.skip("this machine has Keras' cached InceptionV3 weights in /tmp/.keras")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        feature_extractors.get_extractor("inception-v3")
    # A local run says so before it trains, not after.
    from ganpipe.pipeline.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="Nothing is downloaded"):
        load_config(None, {"evaluate.extractor": "inception-v3"}).check_local_files()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        feature_extractors.get_extractor(f"inception-v3:{tmp_path / 'missing.h5'}")


def test_keras_and_savedmodel_feature_models_by_path(tmp_path, digits):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3))
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, activation="relu")(inputs / 255.0))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "features.keras")
    extractor = feature_extractors.get_extractor(f"keras:{tmp_path / 'features.keras'}")
    assert extractor.name.startswith("keras:features.keras@sha256:") and extractor.feature_dim == 6
    images = digits[:9]  # 8x8 grey: resized to 12x12 and made RGB for this model
    expected_input = tf.image.grayscale_to_rgb(tf.image.resize(tf.constant(images, tf.float32), (12, 12),
                                                               antialias=True))
    np.testing.assert_allclose(extractor(images), model(expected_input).numpy(), rtol=1e-5, atol=1e-7)

    class Features(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
        def __call__(self, pixels):
            flat = tf.reshape(pixels, [-1, 64])
            return {"features": tf.stack([tf.reduce_mean(flat, 1), tf.math.reduce_std(flat, 1)], axis=1),
                    "other": flat}

    module = Features()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    extractor = feature_extractors.get_extractor(f"savedmodel:{tmp_path / 'sm'}")
    assert extractor.name.startswith("savedmodel:sm@sha256:") and extractor.feature_dim == 2
    colour = np.repeat(digits[:4], 3, axis=-1)  # RGB in, the model wants grey
    grey = tf.image.rgb_to_grayscale(tf.constant(colour, tf.float32)).numpy().reshape(4, 64)
    np.testing.assert_allclose(extractor(colour), np.stack([grey.mean(1), grey.std(1)], axis=1), rtol=1e-5)


def test_extractor_specs_are_parsed_without_loading_anything():
    assert feature_extractors.parse_spec("random-conv") == ("random-conv", None)
    assert feature_extractors.parse_spec("inception-v3") == ("inception-v3", None)
    assert feature_extractors.parse_spec("inception-v3:/w.h5") == ("inception-v3", "/w.h5")
    assert feature_extractors.parse_spec("savedmodel:/models/f") == ("savedmodel", "/models/f")
    for bad in ("inception", "keras:", "onnx:/x.onnx"):
        with pytest.raises(ValueError):
            feature_extractors.parse_spec(bad)
