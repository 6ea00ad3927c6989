"""tf.Example TFRecords (as ExampleGen writes them) -> image batches.

One decode path serves training (``make_dataset``: float batches in [-1, 1])
and everything that needs real reference images (``load_images``: uint8), so
the evaluator compares the generator against exactly the pixels it was
trained on.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer import contract
from trainer.config import TrainerConfig

# ExampleGen writes GZIP-compressed TFRecords.
COMPRESSION = "GZIP"

_FEATURES = {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}


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
    return tf.data.TFRecordDataset(files, compression_type=COMPRESSION, num_parallel_reads=tf.data.AUTOTUNE)


def make_dataset(file_patterns: list[str], cfg: TrainerConfig, *, shuffle: bool = True,
                 repeat: bool = True) -> tf.data.Dataset:
    """Batches float32 [batch_size, H, W, C] in [-1, 1]; the last partial batch is dropped.

    Shuffling happens on the serialized records (cheap to buffer) with
    ``cfg.seed``, so the same config sees the same batches in the same order.
    The batch size is the GLOBAL batch: a distribution strategy splits it.
    """
    files = list_files(file_patterns)
    dataset = _records(files)
    if shuffle:
        dataset = dataset.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(
        lambda record: decode_example(record, cfg.channels, cfg.image_size) / 127.5 - 1.0,
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.batch(cfg.batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def load_images(file_patterns: list[str], channels: int, image_size: int,
                limit: int | None = None) -> np.ndarray:
    """Real images as uint8 [N, H, W, C] in a fixed order (at most ``limit``), for references and plots."""
    dataset = _records(list_files(file_patterns))
    if limit is not None:
        dataset = dataset.take(limit)
    dataset = dataset.map(
        lambda record: tf.cast(tf.round(decode_example(record, channels, image_size)), tf.uint8),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    batches = [batch.numpy() for batch in dataset.batch(256)]
    if not batches:
        return np.zeros((0, image_size, image_size, channels), dtype=np.uint8)
    return np.concatenate(batches, axis=0)
