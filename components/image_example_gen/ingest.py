"""The Beam side of ImageExampleGen: inputs -> validated tf.Examples in two splits.

    Create(items) -> Reshuffle -> ParDo(decode + validate; rejections tagged)
        accepted -> Partition(train, eval by sha256) -> WriteToTFRecord (GZIP) per split
        accepted + rejected -> CombineGlobally(summary) -> ingest_report.json

Items are files, or chunks of an array file (see sources.plan_inputs), so a
runner can spread a 60,000-image IDX file over workers after the Reshuffle.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from typing import Iterator

import apache_beam as beam

from ganpipe.components.image_example_gen import arrays, example, pixels, report, sources, validation
from ganpipe import contract
from ganpipe.atomic import write_atomically

REJECTED = "rejected"
TFRECORD_PREFIX = example.TFRECORD_PREFIX
SPLITS = (contract.TRAIN_SPLIT, contract.EVAL_SPLIT)


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


class DecodeAndValidate(beam.DoFn):
    """Emits (split, serialized tf.Example, channels, sha256 of the stored PNG); rejections go to REJECTED."""

    def __init__(self, preparation: pixels.Preparation, convert_channels: bool, eval_fraction: float):
        self._preparation = preparation
        self._convert_channels = convert_channels
        self._eval_fraction = eval_fraction
        self._arrays = None

    def setup(self) -> None:
        self._arrays = _ArrayCache()

    def process(self, item: sources.InputItem) -> Iterator:
        if isinstance(item, sources.FileItem):
            data, check, prepared = validation.validate_file(item.path, self._preparation, self._convert_channels)
            yield self._emit(data, check, prepared, item.path, item.label)
            return
        loaded = self._arrays.get(item.array_file)
        for index in range(item.start, item.stop):
            label = contract.UNKNOWN_LABEL if loaded.labels is None else int(loaded.labels[index])
            data = arrays.encode_png(loaded.images[index])
            check, prepared = validation.validate_image(data, self._preparation, self._convert_channels)
            yield self._emit(data, check, prepared, f"{item.array_file.path}#{index}", label)

    def _emit(self, data: bytes, check: validation.ImageCheck, prepared: bytes, source: str, label: int):
        if not check.ok:
            return beam.pvalue.TaggedOutput(REJECTED, (sources.display_name(source), check.reason,
                                                       sources.display_name(check.detail), check.channels))
        digest = hashlib.sha256(data).hexdigest()
        record = make_example(prepared, self._preparation, label, source, digest)
        # Distinct by what is stored: copies that differ only in metadata (a PNG tIME chunk, the same
        # picture saved as .png and .jpg) prepare to the same pixels.
        return (split_for(digest, self._eval_fraction), record, check.channels,
                hashlib.sha256(prepared).hexdigest())


class SummaryFn(beam.CombineFn):
    """Folds outcomes into a report summary; the rejected list stays capped while combining."""

    def create_accumulator(self) -> dict:
        return report.empty_summary()

    def add_input(self, summary: dict, outcome: tuple) -> dict:
        if outcome[0] == "accepted":
            return report.add_accepted(summary, outcome[1], outcome[2])
        _, source, reason, detail, channels = outcome
        return report.add_rejected(summary, source, reason, detail, channels)

    def merge_accumulators(self, summaries) -> dict:
        return report.merge_summaries(summaries)

    def extract_output(self, summary: dict) -> dict:
        return summary


def with_distinct(summary: dict, distinct: int) -> dict:
    return dict(summary, distinct=int(distinct))


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
        | "CreateInputs" >> beam.Create(items, reshuffle=False)
        | "Reshuffle" >> beam.Reshuffle()
        | "DecodeAndValidate" >> beam.ParDo(DecodeAndValidate(preparation, convert_channels, eval_fraction))
        .with_outputs(REJECTED, main="accepted")
    )
    accepted, rejected = outcomes.accepted, outcomes[REJECTED]
    # Identical files share a digest and so a split: 64 copies of one image leave the eval split empty.
    # Counted over the stored pixels, so copies that differ only in metadata count once too.
    distinct = (accepted
                | "Digests" >> beam.Map(lambda record: record[3])
                | "DistinctDigests" >> beam.Distinct()
                | "CountDistinct[n]" >> beam.combiners.Count.Globally())
    by_split = accepted | "PartitionBySplit" >> beam.Partition(lambda record, _: SPLITS.index(record[0]), len(SPLITS))
    for split, records in zip(SPLITS, by_split):
        _ = (
            records
            | f"Serialized[{split}]" >> beam.Map(lambda record: record[1])
            | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                os.path.join(split_uris[split], TFRECORD_PREFIX), file_name_suffix=example.TFRECORD_SUFFIX)
        )
    _ = (
        (
            accepted | "AcceptedOutcome" >> beam.Map(lambda record: ("accepted", record[0], record[2])),
            rejected | "RejectedOutcome" >> beam.Map(lambda rejection: ("rejected", *rejection)),
        )
        | "AllOutcomes" >> beam.Flatten()
        | "Summarize" >> beam.CombineGlobally(SummaryFn())
        | "CountDistinct" >> beam.Map(with_distinct, distinct=beam.pvalue.AsSingleton(distinct))
        | "WriteSummary" >> beam.Map(write_json, summary_path)
    )
