"""Inception Score: exp(E_x KL(p(y|x) || p(y))), Salimans et al. 2016.

"Improved Techniques for Training GANs" (NeurIPS 2016). As in its reference
implementation (openai/improved-gan, ``inception_score/model.py``), the
samples are cut into ``splits`` contiguous parts (10 by default), the score is
computed on each part with that part's marginal p(y), and the mean and
standard deviation over the parts are reported.

The score is only as meaningful as the classifier giving p(y|x): with an
ImageNet InceptionV3 it is an ImageNet IS (published IS used the 2015-12-05
TF graph's 1008-way softmax, so Keras' weights give close, not equal,
numbers); with ganpipe's domain
classifier (``domain_classifier.py``) it is an in-domain score, comparable only
with scores from the same classifier. Every result names its classifier.

The accumulator streams: it keeps, per split, the sum of p(y|x) [K] and of
sum_y p log p, because E_x KL(p(y|x) || p(y)) = E_x sum_y p log p - sum_y p(y) log p(y)
with p(y) the split's mean prediction. Memory is O(splits x K) whatever the
number of samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
from scipy.special import xlogy

DEFAULT_SPLITS = 10


@dataclasses.dataclass(frozen=True)
class InceptionScore:
    """Mean and standard deviation of the per-split scores (each in [1, K] for K classes)."""

    mean: float
    std: float
    splits: int
    num_samples: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class InceptionScoreAccumulator:
    """Streams class probabilities [n, K] in; gives the Inception Score of all ``num_samples``.

    Split i holds samples ``[i * num_samples // splits, (i + 1) * num_samples // splits)`` in
    arrival order, the reference implementation's contiguous parts.

    Raises:
      ValueError: num_samples < splits, splits < 1, probabilities that are not
        [n, K] rows of finite non-negative numbers summing to 1 (within 1e-3),
        more samples than announced, or a result asked for before all arrived.
    """

    def __init__(self, num_samples: int, splits: int = DEFAULT_SPLITS):
        if splits < 1:
            raise ValueError(f"splits must be >= 1, got {splits}")
        if num_samples < splits:
            raise ValueError(f"the Inception Score over {splits} splits needs at least {splits} samples, "
                             f"got {num_samples}")
        self.num_samples = num_samples
        self.splits = splits
        self._seen = 0
        self._sum_p: Optional[np.ndarray] = None  # [splits, K]
        self._sum_p_log_p = np.zeros(splits)
        self._counts = np.zeros(splits, dtype=np.int64)
        self.error: Optional[str] = None  # set by the streaming observer when a block was refused

    def update(self, probabilities: np.ndarray) -> "InceptionScoreAccumulator":
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] < 1:
            raise ValueError(f"probabilities must be [n, K], got shape {p.shape}")
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(np.abs(p.sum(axis=1) - 1.0) > 1e-3):
            raise ValueError("probabilities must be finite, non-negative and sum to 1 per row")
        if self._sum_p is None:
            self._sum_p = np.zeros((self.splits, p.shape[1]))
        elif p.shape[1] != self._sum_p.shape[1]:
            raise ValueError(f"{p.shape[1]} classes after {self._sum_p.shape[1]}")
        if self._seen + len(p) > self.num_samples:
            raise ValueError(f"more than the announced {self.num_samples} samples")
        # The reference's split i is samples [i*N//splits, (i+1)*N//splits): sample j is in the last
        # split starting at or before it.
        split_of = ((np.arange(self._seen, self._seen + len(p)) + 1) * self.splits - 1) // self.num_samples
        np.add.at(self._sum_p, split_of, p)
        np.add.at(self._sum_p_log_p, split_of, xlogy(p, p).sum(axis=1))
        np.add.at(self._counts, split_of, 1)
        self._seen += len(p)
        return self

    def result(self) -> InceptionScore:
        if self.error is not None:
            raise ValueError(self.error)
        if self._seen != self.num_samples or self._sum_p is None:
            raise ValueError(f"{self._seen} of {self.num_samples} samples arrived")
        counts = self._counts[:, None].astype(np.float64)
        marginal = self._sum_p / counts  # p(y) per split
        mean_kl = self._sum_p_log_p / self._counts - xlogy(marginal, marginal).sum(axis=1)
        scores = np.exp(np.maximum(mean_kl, 0.0))  # >= 0 in exact arithmetic; rounding can dip below
        return InceptionScore(mean=float(scores.mean()), std=float(scores.std()), splits=self.splits,
                              num_samples=self.num_samples)


def inception_score(probabilities: np.ndarray, splits: int = DEFAULT_SPLITS) -> InceptionScore:
    """The Inception Score of class probabilities [N, K] (float, rows summing to 1).

    Raises:
      ValueError: as :class:`InceptionScoreAccumulator`.
    """
    probabilities = np.asarray(probabilities)
    return InceptionScoreAccumulator(len(probabilities), splits).update(probabilities).result()
