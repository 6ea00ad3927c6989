"""tf.Example TFRecords (as ExampleGen writes them) -> image batches.

One decode path (``decode_example``) serves training (``make_dataset``: float
batches in [-1, 1]), the run summary's real images (``load_images``: uint8)
and the evaluator component's real reference, so the generator is compared
against exactly the pixels it was trained on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf

from ganpipe import contract
from ganpipe.trainer.config import TrainerConfig, resolve_architecture, resolve_architecture_defaults

# ExampleGen writes GZIP-compressed TFRecords.
COMPRESSION = "GZIP"
PARALLEL_READS = 8
# Decoded training sets up to this size are decoded once and kept in memory (per worker).
CACHE_BYTES = 512 * 2**20

_FEATURES = {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
_LABEL_FEATURES = {contract.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=contract.UNKNOWN_LABEL)}


class NoDataError(FileNotFoundError):
    """The given file patterns match no files (a wrong split name or an empty artifact)."""


def list_files(file_patterns: list[str]) -> list[str]:
    """Expands glob patterns (any filesystem tf.io.gfile knows) to a sorted file list."""
    if isinstance(file_patterns, str):
        file_patterns = [file_patterns]
    files: list[str] = []
    for pattern in file_patterns:
        files.extend(tf.io.gfile.glob(pattern))
    files = sorted(set(files))
    if not files:
        raise NoDataError(f"no TFRecord files match {list(file_patterns)}")
    return files


def decode_as(encoded: tf.Tensor, channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF (first frame) -> uint8 [H, W, channels].

    Decodes at the stored channel count and converts afterwards, instead of
    asking ``decode_image`` for ``channels``: TF's BMP and GIF decoders refuse
    ``channels=1`` outright, even for a grey BMP. Alpha is dropped, grey and
    colour are converted as needed. Ingestion validates with this same
    function, so whatever it accepts decodes here.
    """
    image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
    found = tf.shape(image)[-1]
    image = image[..., : found - (1 - found % 2)]  # 2 (grey+alpha) -> 1, 4 (RGBA) -> 3
    image.set_shape([None, None, None])
    has_colour = tf.equal(tf.shape(image)[-1], 3)
    if channels == 1:
        image = tf.cond(has_colour, lambda: tf.image.rgb_to_grayscale(image), lambda: image[..., :1])
    else:
        image = tf.cond(has_colour, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1]))
    image.set_shape([None, None, channels])
    return image


def decode_example(serialized: tf.Tensor, channels: int, image_size: int) -> tf.Tensor:
    """Serialized tf.Example -> float32 [size, size, channels] with values in [0, 255].

    Images of another size are resized with antialiasing, so downscaling
    does not alias.
    """
    encoded = tf.io.parse_single_example(serialized, _FEATURES)[contract.IMAGE_KEY]
    image = decode_as(encoded, channels)
    same_size = tf.reduce_all(tf.equal(tf.shape(image)[:2], [image_size, image_size]))
    image = tf.cond(
        same_size,
        lambda: tf.cast(image, tf.float32),
        lambda: tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True),
    )
    image = tf.clip_by_value(image, 0.0, 255.0)
    image.set_shape([image_size, image_size, channels])
    return image


def _records(files: list[str]) -> tf.data.Dataset:
    """Records interleaved from a FIXED number of files at a time (not AUTOTUNE, which follows the
    CPU count): the order must be the same on every worker, whatever machine it runs on."""
    return tf.data.TFRecordDataset(files, compression_type=COMPRESSION,
                                   num_parallel_reads=min(len(files), PARALLEL_READS))


def _decode_label(serialized: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.io.parse_single_example(serialized, _LABEL_FEATURES)[contract.LABEL_KEY], tf.int32)


def record_shapes(file_patterns: list[str], limit: int, compression: str = COMPRESSION
                  ) -> list[tuple[int, int, int]]:
    """(height, width, channels) of the first ``limit`` records, from their shape features.

    ``compression`` is ExampleGen's GZIP by default; "" reads plain
    TFRecords; "auto" decides by the files' names (.gz), as Beam does.

    Raises:
      NoDataError: no files, or no record in them.
      ValueError: a record is not a readable tf.Example with those features.
    """
    features = {key: tf.io.FixedLenFeature([], tf.int64)
                for key in (contract.HEIGHT_KEY, contract.WIDTH_KEY, contract.CHANNELS_KEY)}
    # The rest of the contract must be there too: splits hash sha256, training decodes image.
    features.update({key: tf.io.FixedLenFeature([], tf.string) for key in (contract.IMAGE_KEY, contract.SHA256_KEY)})
    shapes = []
    files = list_files(file_patterns)
    if compression == "auto":
        compression = compression_of(files)
    try:
        for record in tf.data.TFRecordDataset(files, compression_type=compression).take(limit):
            parsed = tf.io.parse_single_example(record, features)
            shapes.append(tuple(int(parsed[key]) for key in (contract.HEIGHT_KEY, contract.WIDTH_KEY,
                                                            contract.CHANNELS_KEY)))
    except tf.errors.OpError as error:  # not TFRecords, or a record without a contract feature
        detail = re.sub(r"\s*\[Op:\w+\].*$", "", error.message.splitlines()[0]).strip()
        raise ValueError(f"record {len(shapes)} of {files[0]}: {detail}") from None
    if not shapes:
        raise NoDataError(f"no records in {list(file_patterns)}")
    return shapes


def compression_of(files: list[str]) -> str:
    """TFRecordDataset's compression_type for files named as Beam names them: GZIP when all end in .gz."""
    return COMPRESSION if files and all(name.endswith(".gz") for name in files) else ""


def stored_shape(file_patterns: list[str]) -> tuple[int, int]:
    """(size, channels) of the first stored image.

    ImageExampleGen stores every image at the training shape, so the first
    record speaks for all; this is how `train.image_size`/`channels` at auto
    are resolved where no preflight ran (a Kubeflow run).

    Raises:
      NoDataError: no files, or no record in them.
      ValueError: the first image is not square.
    """
    ((height, width, channels),) = record_shapes(file_patterns, limit=1)
    if height != width:
        raise ValueError(f"stored images are {width}x{height}, not square: set train.image_size and "
                         "train.channels explicitly")
    return height, channels


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the input pipeline reads of the config: the stored shape, the GLOBAL batch and the order."""

    image_size: int
    channels: int
    batch_size: int
    seed: int
    shuffle_buffer: int


def input_spec(cfg: TrainerConfig) -> InputSpec:
    """The one place a TrainerConfig becomes an InputSpec (image_size/channels must be resolved; an
    auto batch_size is the architecture's)."""
    architecture = resolve_architecture(cfg.architecture, cfg.image_size)
    batch_size = resolve_architecture_defaults(cfg, architecture)["batch_size"]
    return InputSpec(image_size=cfg.image_size, channels=cfg.channels, batch_size=batch_size, seed=cfg.seed,
                     shuffle_buffer=cfg.shuffle_buffer)


def make_dataset(file_patterns: list[str], cfg: InputSpec, *, shuffle: bool = True,
                 repeat: bool = True, with_labels: bool = False,
                 input_context: tf.distribute.InputContext | None = None,
                 skip_batches: int = 0, cache: bool | None = None) -> tf.data.Dataset:
    """Batches float32 [batch, H, W, C] in [-1, 1] (with int32 labels [batch] when asked).

    The element order is a function of ``cfg.seed`` alone: records are
    shuffled with the seed, so the same config sees the same batches in the
    same order, on every worker.

    ``cfg.batch_size`` is the GLOBAL batch. Under a strategy (``input_context``
    from ``distribute_datasets_from_function``), every input pipeline reads the
    same global batches and keeps its own contiguous rows, in per-replica
    batches: replica r of n trains on rows [r*B/n, (r+1)*B/n) of the very
    batch one replica would train on whole.

    Decoding: when the decoded training set fits in ``CACHE_BYTES``
    (``cache=None`` decides; True/False force it), every image is decoded and
    resized once and kept in memory, as the tutorial keeps its arrays;
    otherwise serialized records are shuffled (cheap to buffer) and each
    pipeline decodes only its own rows, every epoch. Both give the same
    elements in the same order (shuffling depends on positions, not contents).

    ``skip_batches`` resumes the stream after that many global batches, so a
    restarted run continues the data order exactly where the checkpoint left
    it (skipped records are not decoded unless the set is cached). The last
    partial batch is dropped.
    """
    files = list_files(file_patterns)
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    per_replica = input_context.get_per_replica_batch_size(cfg.batch_size) if input_context else cfg.batch_size

    def decode(record: tf.Tensor):
        image = decode_example(record, cfg.channels, cfg.image_size) / 127.5 - 1.0
        return (image, _decode_label(record)) if with_labels else image

    cached = _fits_in_memory(files, cfg) if cache is None else cache
    elements = _records(files)
    if cached:
        elements = elements.map(decode, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        elements = elements.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)
    if repeat:
        elements = elements.repeat()
    if skip_batches:
        elements = elements.skip(skip_batches * cfg.batch_size)
    if pipelines > 1:
        share = cfg.batch_size // pipelines
        first = pipeline_id * share
        elements = elements.batch(cfg.batch_size, drop_remainder=True).map(
            lambda *rows: tuple(row[first:first + share] for row in rows) if len(rows) > 1
            else rows[0][first:first + share])
        elements = elements.unbatch()
    if not cached:
        elements = elements.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = elements.batch(per_replica, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _fits_in_memory(files: list[str], cfg: InputSpec) -> bool:
    """Whether all training images, decoded to float32 at the training size, fit in CACHE_BYTES.

    Counting needs one pass over the records (not decoding them), so it is
    only made when the files themselves are smaller than the budget.
    """
    if sum(tf.io.gfile.stat(path).length for path in files) > CACHE_BYTES:
        return False
    count = int(_records(files).reduce(np.int64(0), lambda total, _: total + 1).numpy())
    return count * cfg.image_size * cfg.image_size * cfg.channels * 4 <= CACHE_BYTES


def count_records(file_patterns: list[str], limit: int | None = None) -> int:
    """The number of records (training images), reading no more than ``limit`` of them (then: limit)."""
    records = _records(list_files(file_patterns))
    if limit is not None:
        records = records.take(limit)
    return int(records.reduce(np.int64(0), lambda total, _: total + 1).numpy())


def read_labels(file_patterns: list[str]) -> np.ndarray:
    """Every record's label (int64, -1 when unknown), in file order; images are not decoded."""
    dataset = _records(list_files(file_patterns)).map(_decode_label, num_parallel_calls=tf.data.AUTOTUNE)
    batches = [batch.numpy() for batch in dataset.batch(4096)]
    return np.concatenate(batches).astype(np.int64) if batches else np.zeros([0], np.int64)


def read_ingest_report(examples_uri: str) -> dict | None:
    """ImageExampleGen's ingest_report.json beside its splits (local or a URL); None when there is none
    (Examples from ImportExampleGen or elsewhere)."""
    path = os.path.join(examples_uri, contract.INGEST_REPORT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())


def spread_indices(count: int, limit: int) -> np.ndarray:
    """int64 [min(count, limit)]: ascending record positions, evenly spaced from the first to the last.

    Splits written from class folders are in folder order, so the first 512
    of 3,405 emoji held 5 of the 10 classes: a "real floor", reference or
    picture taken from the head of the file is not the data's distribution.
    Evenly spaced over the whole split, not every k-th record from the start:
    with k = count // limit, a split of 900 records and a sample of 512 would
    take the first 512 (k = 1), the head again. Positions are distinct: they
    are at least (count - 1) / (limit - 1) > 1 apart before rounding.
    """
    if count <= limit:
        return np.arange(count, dtype=np.int64)
    return np.round(np.linspace(0, count - 1, limit)).astype(np.int64)


def spread_mask(count: int, limit: int) -> np.ndarray:
    """bool [count]: True at spread_indices(count, limit)."""
    mask = np.zeros(count, dtype=bool)
    mask[spread_indices(count, limit)] = True
    return mask


def take_spread(records: tf.data.Dataset, count: int, limit: int) -> tf.data.Dataset:
    """The records (of ``count``) at spread_indices(count, limit), in order; those left out are not decoded."""
    if count > limit:
        keep = tf.constant(spread_mask(count, limit))
        records = records.enumerate().filter(lambda index, _: keep[index]).map(lambda _, record: record)
    return records.take(limit)


def load_images(file_patterns: list[str], channels: int, image_size: int,
                limit: int | None = None, spread: bool = False) -> np.ndarray:
    """Real images as uint8 [N, H, W, C] in a fixed order (at most ``limit``), for references and plots.

    ``spread``: the ``limit`` images at spread_indices over all records, not the first ``limit``.
    """
    dataset = _records(list_files(file_patterns))
    if limit is not None:
        dataset = take_spread(dataset, count_records(file_patterns), limit) if spread else dataset.take(limit)
    dataset = dataset.map(
        lambda record: tf.cast(tf.round(decode_example(record, channels, image_size)), tf.uint8),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    batches = [batch.numpy() for batch in dataset.batch(256)]
    if not batches:
        return np.zeros((0, image_size, image_size, channels), dtype=np.uint8)
    return np.concatenate(batches, axis=0)
