"""The Beam side of ImageExampleGen: inputs -> validated tf.Examples in two splits.

    Create(batches of items) -> Reshuffle -> ParDo(decode + validate + prepare + summarise a batch)
        train, eval records -> WriteToTFRecord (GZIP) per split
        per-batch summaries -> CombineGlobally -> ingest_report.json

Items are files, or chunks of an array file (see sources.plan_inputs), so a
runner can spread a 60,000-image IDX file over workers after the Reshuffle.
Files travel in batches of FILES_PER_BATCH, and each batch folds its own
outcomes into a summary: per-element work in Beam (coding, shuffling, a
Distinct over every digest) had cost as much as preparing the images
(docs/design.md, "Ingest throughput").
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from typing import Iterable, Iterator

import apache_beam as beam
import numpy as np

from ganpipe.components.image_example_gen import arrays, example, pixels, report, sources, validation
from ganpipe import contract
from ganpipe.atomic import write_atomically

SUMMARY = "summary"
TFRECORD_PREFIX = example.TFRECORD_PREFIX
SPLITS = (contract.TRAIN_SPLIT, contract.EVAL_SPLIT)
# Enough files per element that Beam's per-element cost vanishes next to decoding them, few enough
# that 3,786 files still make 30 elements to spread over workers.
FILES_PER_BATCH = 128


def split_for(sha256_hex: str, eval_fraction: float) -> str:
    """Deterministic by content: identical images always land in the same split."""
    return contract.EVAL_SPLIT if int(sha256_hex[:8], 16) % 10000 < eval_fraction * 10000 else contract.TRAIN_SPLIT


def make_example(image: bytes, preparation: pixels.Preparation, label: int, source: str, sha256_hex: str) -> bytes:
    """The contract's tf.Example: ``image`` is the PNG of the prepared pixels, ``sha256`` the original's digest."""
    return example.encode_example(image, preparation.size, preparation.size, preparation.channels, label, source,
                                  sha256_hex)


class _ArrayCache:
    """The last few array files a worker loaded: chunks of one file arrive one after another."""

    def __init__(self, capacity: int = 2):
        self._capacity = capacity
        self._loaded: collections.OrderedDict = collections.OrderedDict()

    def get(self, array_file: arrays.ArrayFile) -> arrays.LoadedArrays:
        if array_file.path in self._loaded:
            self._loaded.move_to_end(array_file.path)
        else:
            self._loaded[array_file.path] = arrays.load_array_file(array_file)
            while len(self._loaded) > self._capacity:
                self._loaded.popitem(last=False)
        return self._loaded[array_file.path]


FILES = "files"
CHUNK = "chunk"


def batches(items: list) -> list[tuple]:
    """Items grouped for Beam: ``(FILES, paths as bytes, labels)`` for FILES_PER_BATCH consecutive files, or
    ``(CHUNK, ArrayChunk)`` for an array chunk alone (it holds up to sources.ARRAY_CHUNK images already).

    Plain tuples of text and ints, which Beam's coders write natively: lists of FileItem dataclasses
    cost Beam's Create a type inference and pickling pass per file (3 s of 60,000 files).
    """
    grouped: list[tuple] = []
    files: list = []

    def flush() -> None:
        if files:
            # Paths as bytes: a file name that is not UTF-8 (surrogate-escaped in str) cannot be coded as text.
            grouped.append((FILES, tuple(os.fsencode(item.path) for item in files),
                            tuple(item.label for item in files)))
            files.clear()

    for item in items:
        if isinstance(item, sources.FileItem):
            files.append(item)
            if len(files) == FILES_PER_BATCH:
                flush()
        else:
            flush()
            grouped.append((CHUNK, item))
    flush()
    return grouped


def _digest_key(prepared: bytes) -> int:
    """64 bits of the stored PNG's sha256: enough to count distinct images (a false match is ~1e-8 likely
    at 10^6 images), and 8 bytes each where the combine holds them all."""
    return int.from_bytes(hashlib.sha256(prepared).digest()[:8], "little")


class IngestBatch(beam.DoFn):
    """One batch of items -> serialized tf.Examples tagged by split, then one SUMMARY of the batch.

    The summary is (report summary, sorted unique uint64 digest keys of the stored pixels), merged by
    SummaryFn.
    """

    def __init__(self, preparation: pixels.Preparation, convert_channels: bool, eval_fraction: float):
        self._preparation = preparation
        self._convert_channels = convert_channels
        self._eval_fraction = eval_fraction
        self._arrays = None

    def setup(self) -> None:
        self._arrays = _ArrayCache()

    def process(self, batch: tuple) -> Iterator:
        summary = report.empty_summary()
        digests = []
        for source, label, data, check, prepared in self._validated(batch):
            if not check.ok:
                report.add_rejected(summary, sources.display_name(source), check.reason,
                                    sources.display_name(check.detail), check.channels)
                continue
            digest = hashlib.sha256(data).hexdigest()
            split = split_for(digest, self._eval_fraction)
            report.add_accepted(summary, split, check.channels)
            # Distinct by what is stored: copies that differ only in metadata (a PNG tIME chunk, the same
            # picture saved as .png and .jpg) prepare to the same pixels.
            digests.append(_digest_key(prepared))
            yield beam.pvalue.TaggedOutput(split, make_example(prepared, self._preparation, label, source, digest))
        yield beam.pvalue.TaggedOutput(SUMMARY, (summary, np.unique(np.asarray(digests, dtype=np.uint64))))

    def _validated(self, batch: tuple) -> Iterator[tuple]:
        """(source, label, original bytes, verdict, prepared PNG) per image of the batch, in order."""
        if batch[0] == FILES:
            for path, label in zip(map(os.fsdecode, batch[1]), batch[2]):
                data, check, prepared = validation.validate_file(path, self._preparation, self._convert_channels)
                yield path, label, data, check, prepared
            return
        chunk = batch[1]
        loaded = self._arrays.get(chunk.array_file)
        for index in range(chunk.start, chunk.stop):
            label = contract.UNKNOWN_LABEL if loaded.labels is None else int(loaded.labels[index])
            data = arrays.encode_png(loaded.images[index])
            check, prepared = validation.validate_image(data, self._preparation, self._convert_channels)
            yield f"{chunk.array_file.path}#{index}", label, data, check, prepared


class SummaryFn(beam.CombineFn):
    """Merges batch summaries; the rejected list stays capped, digests are made unique once per merge."""

    def create_accumulator(self) -> tuple:
        return report.empty_summary(), []

    def add_input(self, accumulator: tuple, batch_summary: tuple) -> tuple:
        summary, digests = accumulator
        digests.append(batch_summary[1])
        return report.merge_summaries([summary, batch_summary[0]]), digests

    def merge_accumulators(self, accumulators: Iterable[tuple]) -> tuple:
        accumulators = list(accumulators)
        if not accumulators:
            return self.create_accumulator()
        summaries, digests = zip(*accumulators)
        return report.merge_summaries(summaries), [_unique(sum(digests, []))]

    def extract_output(self, accumulator: tuple) -> dict:
        summary, digests = accumulator
        return dict(summary, distinct=int(_unique(digests).size))


def _unique(arrays_of_keys: list) -> np.ndarray:
    return np.unique(np.concatenate(arrays_of_keys)) if arrays_of_keys else np.zeros([0], np.uint64)


def write_json(document: dict, path: str) -> None:
    write_atomically(path, json.dumps(document, indent=1))


@beam.ptransform_fn
def IngestImages(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline,
    items: list,
    split_uris: dict,
    summary_path: str,
    preparation: pixels.Preparation,
    convert_channels: bool,
    eval_fraction: float,
) -> None:
    """Writes `<split_uri>/data_tfrecord-*.gz` per split and the summary JSON to `summary_path`."""
    outcomes = (
        pipeline
        | "CreateInputs" >> beam.Create(batches(items), reshuffle=False)
        | "Reshuffle" >> beam.Reshuffle()
        | "IngestBatch" >> beam.ParDo(IngestBatch(preparation, convert_channels, eval_fraction))
        .with_outputs(*SPLITS, SUMMARY)
    )
    for split in SPLITS:
        _ = outcomes[split] | f"Write[{split}]" >> beam.io.WriteToTFRecord(
            os.path.join(split_uris[split], TFRECORD_PREFIX), file_name_suffix=example.TFRECORD_SUFFIX)
    _ = (
        outcomes[SUMMARY]
        | "Summarize" >> beam.CombineGlobally(SummaryFn())
        | "WriteSummary" >> beam.Map(write_json, summary_path)
    )
