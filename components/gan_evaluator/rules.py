"""The blessing decision as plain functions: sample sanity checks and threshold rules.

Kept apart from the executor so the rules can be read, and tested, without
TFX or a generator: ``SampleChecker`` looks at pixels as they stream by,
``judge`` turns numbers and problems into (blessed, reasons).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Optional

import numpy as np

from ganpipe.evaluation.config import EvaluateConfig

# Fewer distinct images than this share of the samples is mode collapse.
# Different seeds of a working generator essentially never give byte-identical
# images; a generator that ignores most of its latent space does.
MIN_DISTINCT_FRACTION = 0.5


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
          limits: EvaluateConfig, real_floor: Optional[dict[str, Any]] = None,
          baseline_error: Optional[str] = None, same_as_baseline: int = 0,
          cas: Optional[dict[str, Any]] = None, conditional: bool = False) -> tuple[bool, list[str]]:
    """Returns (blessed, reasons it was not; empty when blessed).

    Blessed iff the samples are sane, every absolute limit that is on holds,
    every floor-relative limit that is on holds against ``real_floor`` (the
    scores of real train images against the same reference), and, when there
    is a usable baseline, the candidate's FID is at most
    ``baseline_fid * (1 - min_improvement)``. A baseline that exists but
    could not be scored (``baseline_error``) refuses the candidate unless
    ``limits.ignore_unusable_baseline``: nobody can then show the candidate is
    not worse than what is serving. ``same_as_baseline`` (the serving
    version, 0 when not) refuses a candidate that draws exactly the baseline's
    images for the same seeds: it is that generator (say, a finished checkpoint
    restored and trained 0 steps), and pushing it again would change nothing
    but the version number. ``evaluate.min_cas_ratio``, when on, holds for a
    ``conditional`` candidate only: its CAS (``cas``, from
    classifiers.classification_accuracy_score) must reach that share of the
    real-data accuracy, and a CAS that could not be computed refuses it.
    """
    reasons = list(problems)
    if same_as_baseline:
        reasons.append(f"the candidate draws exactly the images of serving version {same_as_baseline} for the "
                       "same seeds: it is that generator, not a new one")
    if candidate is None or candidate.get("fid") is None:
        reasons.append("no FID: the samples could not be scored")
        return False, reasons
    fid = candidate["fid"]
    if not math.isfinite(fid):
        reasons.append(f"candidate FID is not a finite number ({fid})")
        return False, reasons
    if limits.max_fid > 0 and fid > limits.max_fid:
        reasons.append(f"candidate FID {fid:.4f} exceeds evaluate.max_fid={limits.max_fid:g}")
    kid = candidate.get("kid")
    if limits.max_kid > 0 and (kid is None or kid > limits.max_kid):
        reasons.append(f"candidate KID {_number(kid)} exceeds evaluate.max_kid={limits.max_kid:g}")
    for key, limit in (("recall", limits.min_recall), ("coverage", limits.min_coverage)):
        value = candidate.get(key)
        if limit > 0 and (value is None or value < limit):
            reasons.append(f"candidate {key} {_number(value)} is below evaluate.min_{key}={limit:g}: the samples "
                           f"cover too little of the real data (mode collapse)")
    reasons += _floor_reasons(candidate, real_floor, limits)
    if limits.min_cas_ratio > 0 and conditional:
        ratio = (cas or {}).get("cas_ratio")
        if ratio is None:
            reasons.append(f"evaluate.min_cas_ratio={limits.min_cas_ratio:g} is on but no CAS could be computed "
                           f"({(cas or {}).get('error', 'no domain classifier')})")
        elif ratio < limits.min_cas_ratio:
            reasons.append(f"candidate CAS {cas['cas']:.4f} is {ratio:.2f}x the accuracy of the same classifier "
                           f"trained on {cas['real_images']} real images ({cas['real_accuracy']:.4f}); "
                           f"evaluate.min_cas_ratio={limits.min_cas_ratio:g}: its classes are not drawn "
                           "recognisably")
    if baseline_error is not None and not limits.ignore_unusable_baseline:
        reasons.append(f"the serving baseline could not be scored ({baseline_error}), so the candidate cannot be "
                       "shown to be no worse; set evaluate.ignore_unusable_baseline=true to judge it without one")
    if baseline is not None and baseline.get("fid") is not None:
        needed = baseline["fid"] * (1.0 - limits.min_improvement)
        if fid > needed:
            reasons.append(
                f"candidate FID {fid:.4f} is not better than the serving baseline's {baseline['fid']:.4f} by "
                f"evaluate.min_improvement={limits.min_improvement:g} (needs <= {needed:.4f})")
    return not reasons, reasons


def _floor_reasons(candidate: dict[str, Any], real_floor: Optional[dict[str, Any]],
                   limits: EvaluateConfig) -> list[str]:
    """The floor-relative limits; a floor that could not be measured switches them off (said in the notes)."""
    if not real_floor:
        return []
    reasons = []
    floor_fid = real_floor.get("fid")
    if limits.max_fid_over_floor > 0 and floor_fid is not None and floor_fid > 0:
        allowed = limits.max_fid_over_floor * floor_fid
        if candidate["fid"] > allowed:
            reasons.append(f"candidate FID {candidate['fid']:.4f} is {candidate['fid'] / floor_fid:.1f}x the real "
                           f"floor's {floor_fid:.4f}; evaluate.max_fid_over_floor={limits.max_fid_over_floor:g} "
                           f"allows <= {allowed:.4f}")
    floor_coverage, coverage = real_floor.get("coverage"), candidate.get("coverage")
    if limits.min_coverage_of_floor > 0 and floor_coverage:
        needed = limits.min_coverage_of_floor * floor_coverage
        if coverage is None or coverage < needed:
            reasons.append(f"candidate coverage {_number(coverage)} is below "
                           f"evaluate.min_coverage_of_floor={limits.min_coverage_of_floor:g} x the real floor's "
                           f"{floor_coverage:.4f} (needs >= {needed:.4f}): the samples reach too little of the "
                           "real data")
    return reasons


def _number(value: Optional[float]) -> str:
    return "(not computed)" if value is None else f"{value:.4f}"
