"""The contract's tf.Example and shard names, shared by every writer of image Examples.

ImageExampleGen (ingest.py) and SyntheticExampleGen (components/synthetic_example_gen)
write the same records under the same file names, so whatever reads one reads the
other. No Beam here: `ganpipe generate` imports it without loading a Beam runner.
"""

from __future__ import annotations

import tensorflow as tf

from ganpipe import contract

TFRECORD_PREFIX = "data_tfrecord"  # what stock ExampleGen names its shards
TFRECORD_SUFFIX = ".gz"  # GZIP: readers (ImportExampleGen, tf.data with compression "auto") go by it
TFRECORD_COMPRESSION = "GZIP"


def shard_name(index: int, count: int) -> str:
    """``data_tfrecord-00003-of-00012.gz``: Beam's default shard template, as ExampleGen writes it."""
    return f"{TFRECORD_PREFIX}-{index:05d}-of-{count:05d}{TFRECORD_SUFFIX}"


def encode_example(image: bytes, height: int, width: int, channels: int, label: int, source: str,
                   sha256_hex: str) -> bytes:
    """A serialized tf.Example with exactly the features in ganpipe/contract.py.

    Args:
      image: encoded image bytes (PNG as ganpipe writes them).
      height, width, channels: of the stored image.
      label: the class, or contract.UNKNOWN_LABEL (-1).
      source: where the image came from; may hold surrogate-escaped bytes of a file name.
      sha256_hex: 64 lower-case hex digits (ingestion: of the original file's bytes).
    """
    def ints(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def raw(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        contract.IMAGE_KEY: raw(image),
        contract.HEIGHT_KEY: ints(height),
        contract.WIDTH_KEY: ints(width),
        contract.CHANNELS_KEY: ints(channels),
        contract.LABEL_KEY: ints(label),
        contract.SOURCE_KEY: raw(source.encode("utf-8", "surrogateescape")),
        contract.SHA256_KEY: raw(sha256_hex.encode("ascii")),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
