"""The ingest report: what came in, what was kept, what was rejected and why.

The Beam pipeline folds per-image outcomes into a *summary* (plain dicts, so
it combines on any runner and serialises as JSON); the executor adds what only
it knows (input, timing, hidden files) and writes `ingest_report.json`. The
DataGate reads `total_files` and `rejected` from it to decide whether the run
may go on.
"""

from __future__ import annotations

import collections
from typing import Iterable, Optional

from ganpipe import contract

REPORT_FILE = contract.INGEST_REPORT_FILE
# The report lists at most this many rejected files (first by source path);
# `rejected_files_left_off` says how many more there were.
MAX_REJECTED_LISTED = 1000


def empty_summary() -> dict:
    return {
        "accepted": 0,
        "splits": {contract.TRAIN_SPLIT: 0, contract.EVAL_SPLIT: 0},
        "rejected": {},
        "channels_found": {},
        "rejected_files": [],
        "rejected_files_left_off": 0,
    }


def add_accepted(summary: dict, split: str, channels: int) -> dict:
    summary["accepted"] += 1
    summary["splits"][split] = summary["splits"].get(split, 0) + 1
    _count(summary["channels_found"], str(channels))
    return summary


def add_rejected(summary: dict, source: str, reason: str, detail: str, channels: int = 0) -> dict:
    """`channels` is the decoded channel count when the image decoded (e.g. a channel mismatch), else 0."""
    _count(summary["rejected"], reason)
    if channels:
        _count(summary["channels_found"], str(channels))
    summary["rejected_files"].append({"source": source, "reason": reason, "detail": detail})
    if len(summary["rejected_files"]) > 2 * MAX_REJECTED_LISTED:  # amortised: sort once per 1000 adds
        _cap(summary)
    return summary


def merge_summaries(summaries: Iterable[dict]) -> dict:
    merged = empty_summary()
    for summary in summaries:
        merged["accepted"] += summary["accepted"]
        for key in ("splits", "rejected", "channels_found"):
            for name, count in summary[key].items():
                merged[key][name] = merged[key].get(name, 0) + count
        merged["rejected_files"].extend(summary["rejected_files"])
        merged["rejected_files_left_off"] += summary["rejected_files_left_off"]
        _cap(merged)
    return merged


def build_report(
    summary: dict,
    *,
    input_base: str,
    data_format: str,
    total_files: int,
    label_names: list,
    hidden_files: int,
    hidden_dirs: int,
    seconds: float,
    broken_links: int = 0,
    outside_links: int = 0,
    settings: Optional[dict] = None,
    shape: Optional[dict] = None,
) -> dict:
    """The JSON document written next to the examples (key order is the reading order)."""
    rejected_total = sum(summary["rejected"].values())
    summary = dict(summary, rejected_files=list(summary["rejected_files"]))
    _cap(summary)
    return {
        "input_base": input_base,
        "format": data_format,
        "total_files": total_files,
        "accepted": summary["accepted"],
        "distinct": summary.get("distinct", summary["accepted"]),  # accepted images with different stored pixels
        "rejected": dict(sorted(summary["rejected"].items())),
        "rejected_total": rejected_total,
        "bad_fraction": round(rejected_total / total_files, 6) if total_files else 0.0,
        "splits": dict(summary["splits"]),
        "stored_shape": shape,
        "label_names": list(label_names),
        "channels_found": dict(sorted(summary["channels_found"].items())),
        "hidden_files": hidden_files,
        "hidden_dirs": hidden_dirs,
        "broken_links": broken_links,  # links that loop or point nowhere, skipped
        "outside_links": outside_links,  # files reached through links that leave the folder, read
        "seconds": round(seconds, 3),
        "images_per_second": round(total_files / seconds, 1) if seconds > 0 else None,
        "settings": dict(settings or {}),
        "rejected_files": summary["rejected_files"],
        "rejected_files_left_off": summary["rejected_files_left_off"],
    }


def _count(counter: dict, key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _order(entry: dict) -> tuple:
    return entry["source"], entry["reason"]


def _cap(summary: dict) -> None:
    """Keeps the first MAX_REJECTED_LISTED by source, so the listed set does not depend on bundling."""
    listed = summary["rejected_files"]
    listed.sort(key=_order)
    if len(listed) > MAX_REJECTED_LISTED:
        summary["rejected_files_left_off"] += len(listed) - MAX_REJECTED_LISTED
        del listed[MAX_REJECTED_LISTED:]


def reasons_line(rejected: dict) -> str:
    """`corrupt_or_truncated=2, empty_file=1` for messages."""
    return ", ".join(f"{reason}={count}" for reason, count in sorted(collections.Counter(rejected).items()))
