"""Sample-quality metrics over image features: FID, KID, precision/recall, density/coverage.

This is the one place the project computes them. The evaluator's blessing
decision and the benchmarks all call these
functions, so a number in a report means the same thing everywhere.

Everything here works on feature vectors (see ``ganpipe.evaluation.feature_extractors``),
never on pixels, and is plain NumPy/SciPy so it runs without TensorFlow.
Statistics are kept in float64: FID subtracts large, nearly equal traces, and
float32 accumulation over tens of thousands of samples loses the digits that
separate two good generators.

Streaming: :class:`FeatureSummary` takes features batch by batch and keeps
only O(D^2) statistics plus a bounded random subset, so 50k samples never sit
in memory; :func:`score` turns two summaries into every number at once. FID
alone cannot tell a sharp generator stuck on one digit from a good one, so
recall and coverage report mode collapse as numbers of their own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
from scipy import linalg

# Added to both covariances when their product has no usable square root
# (e.g. fewer samples than feature dimensions); the value pytorch-fid uses.
DEFAULT_EPS = 1e-6
# A sqrtm result whose imaginary part exceeds this (relative to its real
# part's scale) means the computation failed, not rounding: raise.
IMAGINARY_TOLERANCE = 1e-3
# Rows of a distance matrix computed at once by the k-NN metrics: 512 rows
# against 10k samples is 40 MB of float64.
DEFAULT_BLOCK_SIZE = 512
# Feature vectors a FeatureSummary keeps for KID and the k-NN metrics.
DEFAULT_MAX_KEPT = 10_000
# Samples per set for precision/recall, density/coverage (O(N^2 D) each).
DEFAULT_MANIFOLD_SAMPLES = 5_000


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
    m = a.shape[0]
    n = b.shape[0]
    k_aa = _cubic_kernel(a, a)
    k_bb = _cubic_kernel(b, b)
    term_aa = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    term_bb = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(term_aa + term_bb - 2.0 * _cubic_kernel(a, b).mean())


def _cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a.b / D + 1)^3, cubed by two in-place multiplications (``** 3`` calls pow, ~5x slower)."""
    gram = a @ b.T
    gram /= a.shape[1]
    gram += 1.0
    cubed = gram * gram
    cubed *= gram
    return cubed


@dataclasses.dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision/recall (Kynkaanniemi et al. 2019): quality vs. coverage."""

    precision: float  # share of generated samples inside the real manifold
    recall: float  # share of real samples inside the generated manifold
    k: int


@dataclasses.dataclass(frozen=True)
class DensityCoverage:
    """Density and coverage (Naeem et al. 2020): outlier-robust cousins of precision and recall.

    Coverage is the share of real samples that have a generated sample inside
    their own k-NN ball. It only uses the real manifold, so a handful of
    generated outliers cannot inflate it the way they inflate recall, and a
    generator stuck on a few modes scores low whatever its image quality.
    Density counts how many real balls each generated sample falls in
    (divided by k); it is ~1 for matching distributions and may exceed 1.
    """

    density: float
    coverage: float
    k: int


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3,
                     block_size: int = DEFAULT_BLOCK_SIZE) -> PrecisionRecall:
    """k-NN manifold precision and recall; separates "blurry but varied" from "sharp but collapsed".

    Each set's manifold is the union of balls reaching each sample's k-th
    nearest neighbour within its own set. Distances are computed in blocks of
    ``block_size`` rows, so memory is O(block_size * N), not O(N * M); time is
    still O(N * M * D), which is why evaluations cap the sample count used
    here (see :func:`score`).
    """
    real, fake = _manifold_inputs(real_features, fake_features, k)
    manifold = _Manifold(real, k_values=(k,), block_size=block_size)
    result = manifold.compare(fake, pr_k=k, dc_k=k)
    return PrecisionRecall(precision=result["precision"], recall=result["recall"], k=k)


def density_coverage(real_features: np.ndarray, fake_features: np.ndarray, k: int = 5,
                     block_size: int = DEFAULT_BLOCK_SIZE) -> DensityCoverage:
    """Density and coverage of ``fake_features`` against ``real_features`` (k-NN balls of the real set)."""
    real, fake = _manifold_inputs(real_features, fake_features, k)
    manifold = _Manifold(real, k_values=(k,), block_size=block_size)
    result = manifold.compare(fake, pr_k=k, dc_k=k)
    return DensityCoverage(density=result["density"], coverage=result["coverage"], k=k)


def _manifold_inputs(real_features: np.ndarray, fake_features: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    real = _as_features(real_features)
    fake = _as_features(fake_features, dim=real.shape[1])
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"k-NN metrics with k={k} need more than {k} samples per set, have "
                         f"{real.shape[0]} and {fake.shape[0]}")
    return real, fake


class _Manifold:
    """One real feature set's k-NN radii, computed once and reused against several generated sets.

    An evaluation compares the candidate, the baseline and a real train sample
    against the same eval reference: the reference's O(N^2) neighbour search
    is the expensive part, so it is done once here.
    """

    def __init__(self, real: np.ndarray, k_values: tuple[int, ...], block_size: int):
        self.real = real
        self.block_size = block_size
        self.real_sq = (real * real).sum(axis=1)
        self.radii, self.mean_distance = _neighbour_radii(real, self.real_sq, k_values, block_size)

    def compare(self, fake: np.ndarray, pr_k: int, dc_k: int) -> dict[str, float]:
        """Precision, recall, density, coverage and diversity of ``fake`` against this real set."""
        fake_sq = (fake * fake).sum(axis=1)
        fake_radii, fake_mean_distance = _neighbour_radii(fake, fake_sq, (pr_k,), self.block_size)
        real_pr, real_dc = self.radii[pr_k], self.radii[dc_k]
        n_real = self.real.shape[0]
        inside_real = 0  # generated samples inside the real manifold (precision)
        recalled = np.zeros(n_real, dtype=bool)  # real samples inside the generated manifold (recall)
        ball_hits = 0  # sum over generated samples of real dc-balls containing them (density)
        nearest_fake = np.full(n_real, np.inf)  # each real sample's nearest generated one (coverage)
        for start in range(0, fake.shape[0], self.block_size):
            stop = start + self.block_size
            distances = _distances(fake[start:stop], fake_sq[start:stop], self.real, self.real_sq)
            inside_real += int((distances <= real_pr[None, :]).any(axis=1).sum())
            recalled |= (distances <= fake_radii[pr_k][start:stop, None]).any(axis=0)
            ball_hits += int((distances <= real_dc[None, :]).sum())
            np.minimum(nearest_fake, distances.min(axis=0), out=nearest_fake)
        n_fake = fake.shape[0]
        return {
            "precision": inside_real / n_fake,
            "recall": float(recalled.mean()),
            "density": ball_hits / (dc_k * n_fake),
            "coverage": float((nearest_fake <= real_dc).mean()),
            # How spread out the generated samples are, relative to real ones
            # (mean pairwise feature distance): ~1 for a matching
            # distribution, near 0 when every seed gives nearly one image.
            "diversity": fake_mean_distance / self.mean_distance if self.mean_distance > 0 else float("nan"),
        }


def _neighbour_radii(features: np.ndarray, squared_norms: np.ndarray, k_values: tuple[int, ...],
                     block_size: int) -> tuple[dict[int, np.ndarray], float]:
    """Each sample's distance to its k-th nearest neighbour in its own set (for every k asked),
    and the mean distance between distinct samples; computed block by block."""
    n = features.shape[0]
    radii = {k: np.empty(n, dtype=np.float64) for k in k_values}
    total = 0.0
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        distances = _distances(features[start:stop], squared_norms[start:stop], features, squared_norms)
        # The sample itself sits at distance 0, so the k-th neighbour is at sorted index k.
        for k in k_values:
            radii[k][start:stop] = np.partition(distances, k, axis=1)[:, k]
        total += float(distances.sum())
    mean_distance = total / (n * (n - 1)) if n > 1 else 0.0
    return radii, mean_distance


def _distances(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    squared = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


class FeatureSummary:
    """What the metrics need from one image set, accumulated batch by batch.

    Holds the running mean/covariance of EVERY sample (FID) and a seeded,
    uniformly random subset of at most ``max_kept`` feature vectors (KID and
    the k-NN metrics, whose cost grows with the square of the sample count).
    Memory is O(D^2 + max_kept * D) however many samples stream through: 50k
    Inception features would be 800 MB as float64; the summary keeps 10k.

    The subset is bottom-k sampling: each sample gets a priority from a
    seeded generator drawn in arrival order and the ``max_kept`` smallest are
    kept. Any prefix of the kept samples sorted by priority is itself a
    uniform subset, and the result does not depend on how the stream was cut
    into batches.
    """

    def __init__(self, dim: int, max_kept: int = DEFAULT_MAX_KEPT, seed: int = 0):
        if max_kept < 2:
            raise ValueError(f"max_kept must be >= 2, got {max_kept}")
        self.dim = dim
        self.max_kept = max_kept
        self.stats = FeatureStats(dim)
        self._rng = np.random.default_rng(seed)
        self._priorities = np.empty(0, dtype=np.float64)
        self._kept = np.empty((0, dim), dtype=np.float64)
        self._manifolds: dict[tuple[int, tuple[int, ...]], _Manifold] = {}

    @classmethod
    def from_features(cls, features: np.ndarray, max_kept: int = DEFAULT_MAX_KEPT,
                      seed: int = 0) -> "FeatureSummary":
        features = _as_features(features)
        return cls(features.shape[1], max_kept=max_kept, seed=seed).update(features)

    @property
    def count(self) -> int:
        return self.stats.count

    def update(self, features: np.ndarray) -> "FeatureSummary":
        """Adds a batch [N, D]; returns self so calls can chain."""
        features = _as_features(features, dim=self.dim)
        self.stats.update(features)
        priorities = self._rng.random(features.shape[0])
        room = self.max_kept - self._priorities.shape[0]
        if room > 0:  # filling up: keep everything that fits
            self._priorities = np.concatenate([self._priorities, priorities[:room]])
            self._kept = np.concatenate([self._kept, features[:room]])
            priorities, features = priorities[room:], features[room:]
        if priorities.shape[0]:
            # Full: the max_kept smallest priorities of kept + new survive. Newcomers
            # overwrite the evicted rows in place (about max_kept / seen of a batch
            # enter), so a long stream never copies the whole kept array.
            combined = np.concatenate([self._priorities, priorities])
            survivors = np.zeros(combined.shape[0], dtype=bool)
            survivors[np.argpartition(combined, self.max_kept - 1)[: self.max_kept]] = True
            evicted = np.flatnonzero(~survivors[: self.max_kept])
            entering = np.flatnonzero(survivors[self.max_kept:])
            self._priorities[evicted] = priorities[entering]
            self._kept[evicted] = features[entering]
        self._manifolds.clear()
        return self

    def sample(self, size: int | None = None) -> np.ndarray:
        """A uniform random subset of the features seen (all kept ones when ``size`` is None)."""
        order = np.argsort(self._priorities, kind="stable")
        if size is not None:
            order = order[:size]
        return self._kept[order]

    def _manifold(self, size: int, k_values: tuple[int, ...], block_size: int) -> _Manifold:
        key = (size, k_values)
        if key not in self._manifolds:
            self._manifolds[key] = _Manifold(self.sample(size), k_values, block_size)
        return self._manifolds[key]


@dataclasses.dataclass(frozen=True)
class Scores:
    """Every number for one generated set against one real reference, in one feature space.

    ``None`` means the number could not be computed (too few samples).
    Lower is better for fid/kid; higher for precision/recall/density/coverage
    (density can exceed 1); diversity is ~1 when samples spread like real ones.
    """

    fid: float
    kid: Optional[float]
    kid_std: Optional[float]
    precision: Optional[float]
    recall: Optional[float]
    density: Optional[float]
    coverage: Optional[float]
    diversity: Optional[float]
    num_samples: int  # samples in the FID statistics
    num_reference: int
    manifold_samples: int  # per set, for the k-NN metrics (a uniform subset when capped)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Neighbourhood sizes of the k-NN metrics: Kynkaanniemi et al. 2019 (precision/recall, k=3) and
# Naeem et al. 2020 (density/coverage, k=5). Each needs more than k real images.
PR_K = 3
DC_K = 5


def score(generated: FeatureSummary, reference: FeatureSummary, *, pr_k: int = PR_K, dc_k: int = DC_K,
          kid_subsets: int = 100, kid_subset_size: int = 1000,
          manifold_samples: int = DEFAULT_MANIFOLD_SAMPLES, seed: int = 0,
          block_size: int = DEFAULT_BLOCK_SIZE) -> Scores:
    """All metrics of ``generated`` against ``reference``.

    FID uses every sample streamed through the summaries. KID uses subsets of
    at most ``kid_subset_size`` drawn from the kept samples, and never more
    than half the smaller set, so the subsets differ and ``kid_std`` means
    something. Precision/recall (k=``pr_k``), density/coverage (k=``dc_k``)
    and diversity use at most ``manifold_samples`` samples per set: they cost
    O(N^2 D), and 5,000 keeps a 10k-vs-10k evaluation to seconds on a CPU.
    The reference's neighbour radii are computed once and cached on it.
    """
    if generated.dim != reference.dim:
        raise ValueError(f"feature dimensions differ: {generated.dim} vs {reference.dim}")
    fid_value = fid_from_stats(generated.stats, reference.stats)
    fake_kept, real_kept = generated.sample(), reference.sample()
    smaller = min(len(fake_kept), len(real_kept))
    kid_value = kid_std = None
    if smaller >= 4:
        result = kid(fake_kept, real_kept, num_subsets=kid_subsets,
                     subset_size=min(kid_subset_size, smaller // 2), seed=seed)
        kid_value, kid_std = result.mean, result.std
    size = min(manifold_samples, smaller)
    manifold: dict[str, Optional[float]] = dict.fromkeys(
        ("precision", "recall", "density", "coverage", "diversity"))
    if size > max(pr_k, dc_k):
        real_manifold = reference._manifold(size, tuple(sorted({pr_k, dc_k})), block_size)
        manifold.update(real_manifold.compare(generated.sample(size), pr_k=pr_k, dc_k=dc_k))
    return Scores(fid=fid_value, kid=kid_value, kid_std=kid_std, num_samples=generated.count,
                  num_reference=reference.count, manifold_samples=size if manifold["recall"] is not None else 0,
                  **manifold)


def _as_features(features: np.ndarray, dim: int | None = None) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"features must be a 2-D array [N, D], got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"features have dimension {array.shape[1]}, expected {dim}")
    if not np.isfinite(array).all():
        raise ValueError("features contain non-finite values")
    return array
