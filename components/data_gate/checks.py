"""The gate's rules, as plain functions over plain data (easy to test, no TFX)."""

from __future__ import annotations

from typing import Mapping

from tensorflow_metadata.proto.v0 import anomalies_pb2


def anomaly_problems(split: str, anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One line per TFDV anomaly, naming the split and the feature."""
    problems = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(reason.description or reason.short_description for reason in info.reason)
        problems.append(f"{split} split, feature '{feature}': {reasons or info.description}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        reasons = "; ".join(reason.description or reason.short_description for reason in info.reason)
        problems.append(f"{split} split, whole dataset: {reasons or info.description}")
    return problems


def ingest_problems(report: Mapping, max_bad_fraction: float) -> list[str]:
    """Rejected files above the configured share stop the run; the reasons are counted.

    ``report`` is ImageExampleGen's ingest report, which already holds the
    totals and the share (``rejected_total``, ``total_files``, ``bad_fraction``).
    """
    total, bad = int(report.get("total_files", 0)), int(report.get("rejected_total", 0))
    if total == 0 or float(report.get("bad_fraction", 0.0)) <= max_bad_fraction:
        return []
    rejected = report.get("rejected", {}) or {}
    by_reason = ", ".join(f"{reason}={count}" for reason, count in sorted(rejected.items()) if count)
    return [
        f"{bad} of {total} input files ({bad / total:.1%}) were rejected, above the limit of "
        f"{max_bad_fraction:.1%} (data.max_bad_fraction): {by_reason}"
    ]


# The evaluator's FID needs a covariance: at least two real eval images.
MIN_EVAL_IMAGES = 2


def size_problems(examples_per_split: Mapping[str, int], min_images: int,
                  ingest_report: Mapping | None = None, min_eval_images: int = MIN_EVAL_IMAGES) -> list[str]:
    """Too little data to train on, or nothing to evaluate against, is a stop too.

    With ImageExampleGen's report, a stop on a small split says how many of
    the images are distinct: copies share a digest, and so a split.
    ``min_eval_images``: what the evaluator's limits need (FID 2; a k-NN limit
    more than k), found here rather than after training.
    """
    problems = []
    for split, count in sorted(examples_per_split.items()):
        if count == 0:
            problems.append(f"{split} split is empty")
        elif split == "train" and count < min_images:
            problems.append(f"train split has {count} images, fewer than data.min_images={min_images}")
        elif split == "eval" and count < max(min_eval_images, MIN_EVAL_IMAGES):
            # Found here, before training, not by the evaluator after it.
            needed = max(min_eval_images, MIN_EVAL_IMAGES)
            what = ("FID needs" if needed == MIN_EVAL_IMAGES
                    else "the gate's limits (FID: 2; evaluate.min_recall: 4; evaluate.min_coverage: 6) need")
            problems.append(f"eval split has {count} image{'s' if count != 1 else ''}: {what} at least {needed} "
                            "real images to compare with; raise data.eval_fraction or add images")
    accepted = int((ingest_report or {}).get("accepted", 0))
    distinct = int((ingest_report or {}).get("distinct", accepted))
    if problems and distinct < accepted:
        problems.append(f"{accepted} images, {distinct} distinct: copies of one image have one sha256 and land "
                        "in one split; add different images")
    return problems
