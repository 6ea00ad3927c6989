"""One synthetic export, start to finish: plan, sample in batches, write, publish atomically.

Used by `ganpipe generate --format tfrecord|folder` (serving/generate.py) and by
the pipeline's SyntheticExampleGen executor, so both write the same layout:

- ``tfrecord``: ``<out>/Split-train/data_tfrecord-SSSSS-of-NNNNN.gz`` (GZIP
  tf.Examples with the contract's features, SHARD_IMAGES per shard) and
  ``<out>/export.json``; ``<out>`` is laid out as an Examples artifact with
  one split, ``train``.
- ``folder``: ``<out>/<class name>/<seed>.png`` for a conditional generator,
  ``<out>/<seed>.png`` otherwise, and ``<out>/.export.json`` (hidden, so
  ingesting the folder does not count it as a rejected image).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Optional

import tensorflow as tf

from ganpipe import contract
from ganpipe.components.synthetic_example_gen import request, samples, writers

MANIFEST_FILE = "export.json"
SPLIT_DIR = f"Split-{contract.TRAIN_SPLIT}"


@dataclasses.dataclass
class ExportSummary:
    """What was written; ``to_dict`` is the manifest."""

    out: str
    format: str
    model: str  # the model path sources name (a serving base when the model is a numbered version)
    version: Optional[str]
    first_seed: int
    count: int
    per_class: Optional[int]
    class_names: list[str]
    labels: dict[str, int]  # label (as text: JSON keys) -> images
    image_shape: list[int]  # [height, width, channels]
    files: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def model_identity(model_dir: str) -> tuple[str, Optional[str]]:
    """(model path, version) for sources: ``<base>/<N>`` -> (``<base>``, ``"N"``); any other folder -> (it, None)."""
    path = model_dir.rstrip("/")
    name = os.path.basename(path)
    return (os.path.dirname(path), name) if name.isdigit() else (path, None)


def plan_total(info: samples.GeneratorInfo, count: Optional[int], per_class: Optional[int]) -> int:
    """How many images the request makes for this generator.

    Raises:
      request.ExportError: --per-class from an unconditional generator, or too many images in all.
    """
    if per_class is None:
        return int(count)
    if not info.conditional:
        raise request.ExportError(f"--per-class: the generator is unconditional (no '{contract.CONDITIONAL_SIGNATURE}' "
                                  "signature), so it has no classes; use --n")
    total = per_class * info.num_classes
    request.check_total(total, per_class, info.num_classes)
    return total


def export_samples(loaded: Any, info: samples.GeneratorInfo, out: str, data_format: str, *,
                   count: Optional[int] = None, per_class: Optional[int] = None, first_seed: int = 0,
                   model: str, version: Optional[str] = None, batch: int = samples.BATCH) -> ExportSummary:
    """Samples ``loaded`` and writes the export to ``out`` (missing or empty; see the module docstring).

    Args:
      loaded: a generator SavedModel loaded with ``tf.saved_model.load``; ``info`` = ``samples.describe`` of it.
      count / per_class: exactly one (``request.check_counts``).
      model, version: what each record's ``source`` names (``model_identity``).

    Raises:
      request.ExportError: the request does not fit the generator, or the output cannot be written.
      samples.GeneratorError: the generator breaks the signature contract.
    """
    if data_format not in request.FORMATS:
        raise request.ExportError(f"--format={data_format!r}: must be one of {', '.join(request.FORMATS)}")
    request.check_counts(count, per_class)
    total = plan_total(info, count, per_class)
    request.check_seeds(first_seed, total)
    if data_format == request.FOLDER:
        if "://" in out:
            raise request.ExportError(f"{out}: the folder format writes local folders only")
        request.check_class_folder_names(info.class_names)
    started = time.monotonic()
    batches = samples.sample_batches(loaded, info, first_seed, total, per_class=per_class is not None, batch=batch)
    source = lambda seed, label: writers.source_name(model, version, seed, label)  # noqa: E731
    try:
        with writers.staged(out) as folder:
            if data_format == request.TFRECORD:
                written = writers.write_tfrecords(batches, os.path.join(folder, SPLIT_DIR), total, source)
                manifest = os.path.join(folder, MANIFEST_FILE)
            else:
                written = writers.write_folders(batches, folder, total, first_seed, info.class_names)
                manifest = os.path.join(folder, "." + MANIFEST_FILE)
                missing = [name for label, name in enumerate(info.class_names) if not written.labels.get(label)]
                if missing:  # an empty class has no folder, and ingestion would renumber the ones after it
                    raise request.ExportError(
                        f"{len(missing)} class(es) drew no image among {written.count} (first: {missing[0]!r}), "
                        "so ingesting the folders would renumber the classes; use --per-class or --format tfrecord")
            summary = ExportSummary(
                out=out, format=data_format, model=model, version=version, first_seed=first_seed, count=written.count,
                per_class=per_class, class_names=list(info.class_names),
                labels={str(label): number for label, number in sorted(written.labels.items())},
                image_shape=list(written.shape or ()), files=written.files, seconds=time.monotonic() - started)
            with tf.io.gfile.GFile(manifest, "w") as handle:
                handle.write(json.dumps(summary.to_dict(), indent=1, sort_keys=True))
    except OSError as error:  # a full disk, a folder someone filled meanwhile (rename onto it fails)
        raise request.ExportError(f"{out}: cannot write the export: {error.strerror or error}") from None
    return summary
