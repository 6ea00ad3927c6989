"""Sample-quality metrics over image features: FID, KID, precision/recall.

This is the one place the project computes them. The evaluator's blessing
decision, the trainer's monitoring and the benchmarks all call these
functions, so a number in a report means the same thing everywhere.

Everything here works on feature vectors (see ``trainer.feature_extractors``),
never on pixels, and is plain NumPy/SciPy so it runs without TensorFlow.
Statistics are kept in float64: FID subtracts large, nearly equal traces, and
float32 accumulation over tens of thousands of samples loses the digits that
separate two good generators.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import linalg

# Added to both covariances when their product has no usable square root
# (e.g. fewer samples than feature dimensions); the value pytorch-fid uses.
DEFAULT_EPS = 1e-6
# A sqrtm result whose imaginary part exceeds this (relative to its real
# part's scale) means the computation failed, not rounding: raise.
IMAGINARY_TOLERANCE = 1e-3


class FeatureStats:
    """Running mean and covariance of feature vectors fed batch by batch.

    Keeps count, sum and sum of outer products (float64), so memory is
    O(D^2) whatever the number of samples: 50k samples never sit in memory at
    once. Sums are taken around a fixed shift (the first batch's mean), which
    keeps the one-pass covariance as accurate as the two-pass one even when
    features have a large common offset.
    """

    def __init__(self, dim: int):
        if dim < 1:
            raise ValueError(f"feature dimension must be >= 1, got {dim}")
        self.dim = dim
        self.count = 0
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(dim, dtype=np.float64)
        self._outer = np.zeros((dim, dim), dtype=np.float64)

    @classmethod
    def from_features(cls, features: np.ndarray) -> "FeatureStats":
        features = _as_features(features)
        stats = cls(features.shape[1])
        stats.update(features)
        return stats

    def update(self, features: np.ndarray) -> "FeatureStats":
        """Adds a batch [N, D] of features; returns self so calls can chain."""
        features = _as_features(features, dim=self.dim)
        if features.shape[0] == 0:
            return self
        if self._shift is None:
            self._shift = features.mean(axis=0)
        centred = features - self._shift
        self.count += features.shape[0]
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Adds another accumulator's samples (e.g. from another worker); returns self."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into {self.dim}")
        if other.count == 0:
            return self
        if self._shift is None:
            self._shift = other._shift.copy()
        # Re-express the other's sums around this accumulator's shift.
        delta = other._shift - self._shift
        self._outer += (other._outer + np.outer(other._sum, delta) + np.outer(delta, other._sum)
                        + other.count * np.outer(delta, delta))
        self._sum += other._sum + other.count * delta
        self.count += other.count
        return self

    @property
    def mean(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError("no samples accumulated")
        return self._shift + self._sum / self.count

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased sample covariance (divides by N - 1, as ``np.cov`` does)."""
        if self.count < 2:
            raise ValueError(f"covariance needs at least 2 samples, have {self.count}")
        centred_mean = self._sum / self.count
        cov = (self._outer - self.count * np.outer(centred_mean, centred_mean)) / (self.count - 1)
        return (cov + cov.T) / 2.0  # exact symmetry for sqrtm


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = DEFAULT_EPS) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)), the
    formula behind FID (Heusel et al. 2017). When the covariance product is
    singular and its square root comes back non-finite, eps*I is added to both
    covariances, as the reference implementations do. A small imaginary part
    is rounding and is dropped; a large one raises, because the number would
    be meaningless.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in shape: {mu1.shape} vs {mu2.shape}")
    dim = mu1.shape[0]
    if sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(f"covariances must be {dim}x{dim}, got {sigma1.shape} and {sigma2.shape}")
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} has non-finite entries")

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not _usable_root(covmean):
        # Singular product (e.g. fewer samples than dimensions): its square
        # root is ill-conditioned and comes back non-finite or with large
        # imaginary junk. A tiny ridge makes it well-posed.
        offset = np.eye(dim) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not np.isfinite(covmean).all():
        raise ValueError("sqrtm(sigma1 @ sigma2) is not finite even after adding eps*I")
    if np.iscomplexobj(covmean):
        # Only the diagonal enters the trace; a sizeable imaginary part there
        # is not rounding.
        imaginary = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if imaginary > IMAGINARY_TOLERANCE * _scale(covmean):
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has a large imaginary part ({imaginary:.3g}); "
                             "the covariances are not valid (not positive semi-definite?)")
        covmean = covmean.real
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    # The true value is >= 0; a tiny negative one is cancellation in the traces.
    return max(distance, 0.0)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # singular input: we check the result ourselves
        root = linalg.sqrtm(matrix, disp=False)[0]
    return np.asarray(root)


def _scale(matrix: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(np.diagonal(matrix).real))))


def _usable_root(root: np.ndarray) -> bool:
    if not np.isfinite(root).all():
        return False
    if np.iscomplexobj(root):
        return float(np.max(np.abs(root.imag))) <= IMAGINARY_TOLERANCE * _scale(root)
    return True


def fid(features_a: np.ndarray, features_b: np.ndarray, eps: float = DEFAULT_EPS) -> float:
    """Frechet distance between the Gaussian fits of two feature sets [N, D] and [M, D]."""
    stats_a = FeatureStats.from_features(features_a)
    stats_b = FeatureStats.from_features(features_b)
    return fid_from_stats(stats_a, stats_b, eps=eps)


def fid_from_stats(stats_a: FeatureStats, stats_b: FeatureStats, eps: float = DEFAULT_EPS) -> float:
    """FID from two accumulators, for features that were streamed in batches."""
    if stats_a.dim != stats_b.dim:
        raise ValueError(f"feature dimensions differ: {stats_a.dim} vs {stats_b.dim}")
    return frechet_distance(stats_a.mean, stats_a.covariance, stats_b.mean, stats_b.covariance, eps=eps)


@dataclasses.dataclass(frozen=True)
class KidResult:
    """KID as mean and standard deviation over random subsets (Binkowski et al. 2018)."""

    mean: float
    std: float
    num_subsets: int
    subset_size: int


def kid(features_a: np.ndarray, features_b: np.ndarray, num_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> KidResult:
    """Kernel Inception Distance: unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3.

    Unlike FID it has an unbiased estimator, so it is fairer at small sample
    counts; the spread over subsets says how much to trust a difference.
    Subsets are drawn without replacement within each subset, from a seeded
    generator, so the result is reproducible.
    """
    features_a = _as_features(features_a)
    features_b = _as_features(features_b, dim=features_a.shape[1])
    size = min(subset_size, features_a.shape[0], features_b.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, have {features_a.shape[0]} "
                         f"and {features_b.shape[0]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets, dtype=np.float64)
    for index in range(num_subsets):
        a = features_a[rng.choice(features_a.shape[0], size, replace=False)]
        b = features_b[rng.choice(features_b.shape[0], size, replace=False)]
        values[index] = _polynomial_mmd2_unbiased(a, b)
    return KidResult(mean=float(values.mean()), std=float(values.std()), num_subsets=num_subsets,
                     subset_size=size)


def _polynomial_mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    dim = a.shape[1]
    k_aa = (a @ a.T / dim + 1.0) ** 3
    k_bb = (b @ b.T / dim + 1.0) ** 3
    k_ab = (a @ b.T / dim + 1.0) ** 3
    m = a.shape[0]
    n = b.shape[0]
    term_aa = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    term_bb = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(term_aa + term_bb - 2.0 * k_ab.mean())


@dataclasses.dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision/recall (Kynkaanniemi et al. 2019): quality vs. coverage."""

    precision: float  # share of generated samples inside the real manifold
    recall: float  # share of real samples inside the generated manifold
    k: int


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3) -> PrecisionRecall:
    """k-NN manifold precision and recall; separates "blurry but varied" from "sharp but collapsed".

    Each set's manifold is the union of balls reaching each sample's k-th
    nearest neighbour within its own set. Memory is O(N*M), fine for the few
    thousand samples an evaluation uses.
    """
    real = _as_features(real_features)
    fake = _as_features(fake_features, dim=real.shape[1])
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    real_radii = _kth_neighbour_distance(real, k)
    fake_radii = _kth_neighbour_distance(fake, k)
    cross = _pairwise_distances(fake, real)  # [fake, real]
    precision = float(np.mean((cross <= real_radii[None, :]).any(axis=1)))
    recall = float(np.mean((cross <= fake_radii[:, None]).any(axis=0)))
    return PrecisionRecall(precision=precision, recall=recall, k=k)


def _kth_neighbour_distance(features: np.ndarray, k: int) -> np.ndarray:
    distances = _pairwise_distances(features, features)
    # Index 0 of each sorted row is the sample itself (distance 0).
    return np.partition(distances, k, axis=1)[:, k]


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _as_features(features: np.ndarray, dim: int | None = None) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"features must be a 2-D array [N, D], got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"features have dimension {array.shape[1]}, expected {dim}")
    if not np.isfinite(array).all():
        raise ValueError("features contain non-finite values")
    return array
