"""The blessing decision as plain functions: sample sanity checks and threshold rules.

Kept apart from the executor so the rules can be read, and tested, without
TFX or a generator: ``SampleChecker`` looks at pixels as they stream by,
``judge`` turns numbers and problems into (blessed, reasons).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Optional

import numpy as np

# Below this, samples count as identical (uint8 pixels differ by >= 1 when they differ at all).
CONSTANT_STD_EPS = 1e-6
# Fewer distinct images than this share of the samples is mode collapse.
# Different seeds of a working generator essentially never give byte-identical
# images; a generator that ignores most of its latent space does.
MIN_DISTINCT_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When a candidate is blessed; 0 turns a limit off (see EvaluateConfig for the why of each)."""

    max_fid: float = 0.0
    max_kid: float = 0.0
    min_recall: float = 0.0
    min_coverage: float = 0.0
    min_improvement: float = 0.0  # fraction of the baseline's FID the candidate must beat it by

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


class SampleChecker:
    """Finds output that must never be blessed whatever its scores, batch by batch.

    The contract is uint8 [count, size, size, channels]. A generator that
    diverged outputs NaN (float outputs) or, once cast to uint8, one flat image
    for every seed; a collapsed one repeats a few images. FID of such samples
    can look deceptively finite, so they are refused outright. Memory is one
    image's min/max plus a digest per sample, whatever the sample count.
    """

    def __init__(self, count: int, image_size: int, channels: int):
        self.expected_shape = (image_size, image_size, channels)
        self.expected_count = count
        self.count = 0
        self.dtypes: set[str] = set()
        self.bad_shapes: set[tuple[int, ...]] = set()
        self.non_finite = 0
        self.values = 0
        self.flat_samples = 0
        self._low: Optional[np.ndarray] = None
        self._high: Optional[np.ndarray] = None
        self._digests: set[bytes] = set()

    def update(self, images: np.ndarray) -> bool:
        """Checks one batch; returns True when it is usable as uint8 images of the contract's shape."""
        images = np.asarray(images)
        self.count += images.shape[0] if images.ndim else 0
        self.values += images.size
        if np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.complexfloating):
            self.non_finite += int(images.size - np.count_nonzero(np.isfinite(images)))
        usable = True
        if images.dtype != np.uint8:
            self.dtypes.add(str(images.dtype))
            usable = False
        if images.ndim != 4 or tuple(images.shape[1:]) != self.expected_shape:
            self.bad_shapes.add(tuple(images.shape))
            usable = False
        if not usable or images.shape[0] == 0:
            return usable
        low, high = images.min(axis=0), images.max(axis=0)
        self._low = low if self._low is None else np.minimum(self._low, low)
        self._high = high if self._high is None else np.maximum(self._high, high)
        pixels = images.reshape(images.shape[0], -1)
        self.flat_samples += int((pixels.max(axis=1) == pixels.min(axis=1)).sum())
        self._digests.update(hashlib.sha1(image.tobytes()).digest() for image in images)
        return True

    def problems(self) -> list[str]:
        """Why these samples cannot be blessed (empty if none)."""
        problems = []
        if self.dtypes:
            problems.append(f"images have dtype {', '.join(sorted(self.dtypes))}; the generator contract is uint8")
        if self.non_finite:
            problems.append(f"{self.non_finite} of {self.values} output values are NaN or infinite "
                            "(the generator diverged)")
        if self.bad_shapes:
            shapes = ", ".join(str(shape) for shape in sorted(self.bad_shapes))
            problems.append(f"images have shape {shapes}, expected [N, {', '.join(map(str, self.expected_shape))}]")
        if self.count != self.expected_count:
            problems.append(f"the generator returned {self.count} images for {self.expected_count} seeds")
        if problems or self.count == 0:
            return problems or ["the generator returned no images"]
        if self.count > 1 and bool(np.all(self._low == self._high)):
            problems.append(f"all {self.count} samples are the same image: the generator ignores its seed "
                            "(collapsed or diverged)")
        elif self.flat_samples == self.count:
            problems.append("every sample is a single flat colour (collapsed or diverged)")
        elif len(self._digests) < MIN_DISTINCT_FRACTION * self.count:
            problems.append(f"mode collapse: only {len(self._digests)} distinct images among {self.count} "
                            f"samples (needs at least {MIN_DISTINCT_FRACTION:.0%})")
        return problems


def judge(candidate: Optional[dict[str, Any]], problems: list[str], baseline: Optional[dict[str, Any]],
          thresholds: Thresholds, baseline_error: Optional[str] = None,
          ignore_unusable_baseline: bool = False) -> tuple[bool, list[str]]:
    """Returns (blessed, reasons it was not; empty when blessed).

    Blessed iff the samples are sane, every absolute limit that is on holds,
    and, when there is a usable baseline, the candidate's FID is at most
    ``baseline_fid * (1 - min_improvement)``. A baseline that exists but
    could not be scored (``baseline_error``) refuses the candidate unless
    ``ignore_unusable_baseline``: nobody can then show the candidate is not
    worse than what is serving.
    """
    reasons = list(problems)
    if candidate is None or candidate.get("fid") is None:
        reasons.append("no FID: the samples could not be scored")
        return False, reasons
    fid = candidate["fid"]
    if not math.isfinite(fid):
        reasons.append(f"candidate FID is not a finite number ({fid})")
        return False, reasons
    if thresholds.max_fid > 0 and fid > thresholds.max_fid:
        reasons.append(f"candidate FID {fid:.4f} exceeds evaluate.max_fid={thresholds.max_fid:g}")
    kid = candidate.get("kid")
    if thresholds.max_kid > 0 and (kid is None or kid > thresholds.max_kid):
        reasons.append(f"candidate KID {_number(kid)} exceeds evaluate.max_kid={thresholds.max_kid:g}")
    for key, limit in (("recall", thresholds.min_recall), ("coverage", thresholds.min_coverage)):
        value = candidate.get(key)
        if limit > 0 and (value is None or value < limit):
            reasons.append(f"candidate {key} {_number(value)} is below evaluate.min_{key}={limit:g}: the samples "
                           f"cover too little of the real data (mode collapse)")
    if baseline_error is not None and not ignore_unusable_baseline:
        reasons.append(f"the blessed baseline could not be scored ({baseline_error}), so the candidate cannot be "
                       "shown to be no worse; set evaluate.ignore_unusable_baseline=true to judge it without one")
    if baseline is not None and baseline.get("fid") is not None:
        needed = baseline["fid"] * (1.0 - thresholds.min_improvement)
        if fid > needed:
            reasons.append(
                f"candidate FID {fid:.4f} is not better than the blessed baseline's {baseline['fid']:.4f} by "
                f"evaluate.min_improvement={thresholds.min_improvement:g} (needs <= {needed:.4f})")
    return not reasons, reasons


def _number(value: Optional[float]) -> str:
    return "(not computed)" if value is None else f"{value:.4f}"
