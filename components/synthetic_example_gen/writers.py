"""Streaming writers of synthetic samples: GZIP TFRecord shards of contract tf.Examples, or class folders.

Each writer consumes an iterator of ``samples.SampleBatch`` and lets go of a
batch before asking for the next, so memory is one batch (plus one open
shard's buffer) whatever the count. Output appears whole or not at all:
``staged`` gives a hidden folder beside the target and renames it into place
once everything is written (local paths); a killed export leaves only that
hidden ``.<name>.partial-*`` folder, which nothing reads and anyone may delete.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import tempfile
from typing import Callable, Iterable, Iterator, Optional

import tensorflow as tf

from ganpipe import contract
from ganpipe.components.image_example_gen import example
from ganpipe.components.synthetic_example_gen.samples import SampleBatch

# Records per shard. 4,096 images are 2-8 MB of PNGs at 32x32 grey and ~150 MB at 128x128 RGB, near
# the 100-200 MB shards TensorFlow's input guide suggests for the largest images ganpipe trains on;
# 1,000,000 images make 245 shards, enough for a reader to interleave and a runner to spread.
SHARD_IMAGES = 4096

# source = "<model path>#version=<v>&seed=<s>[&label=<k>]"; version only when the model is a numbered one.
Source = Callable[[int, int], str]


@dataclasses.dataclass
class Written:
    """What a writer wrote: image count, images per label, the image shape and the files."""

    count: int = 0
    labels: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    shape: Optional[tuple[int, int, int]] = None  # (height, width, channels)
    files: int = 0

    def add(self, batch: SampleBatch) -> None:
        self.count += len(batch.seeds)
        self.labels.update(int(label) for label in batch.labels)
        height, width, channels = batch.images.shape[1:]
        shape = (int(height), int(width), int(channels))
        if self.shape is not None and shape != self.shape:  # a broken generator; readers expect one shape
            raise ValueError(f"the generator changed its image shape from {self.shape} to {shape}")
        self.shape = shape


def source_name(model: str, version: Optional[str], seed: int, label: Optional[int]) -> str:
    """The ``source`` feature of a synthetic image: which model (path and version) and seed made it.

    ``label`` is given for conditional generators, whose image depends on (seed, label).
    """
    fields = ([f"version={version}"] if version else []) + [f"seed={seed}"]
    if label is not None and label != contract.UNKNOWN_LABEL:
        fields.append(f"label={label}")
    return f"{model}#{'&'.join(fields)}"


def write_tfrecords(batches: Iterable[SampleBatch], split_dir: str, total: int, source: Source,
                    shard_images: int = SHARD_IMAGES) -> Written:
    """Writes ``total`` samples as ``<split_dir>/data_tfrecord-SSSSS-of-NNNNN.gz`` (``shard_images`` each).

    Each record is the contract's tf.Example (example.encode_example): ``image`` the PNG, ``sha256``
    the hex digest of those PNG bytes, ``source`` from ``source(seed, label)``.

    Raises:
      ValueError: the batches hold more or fewer than ``total`` samples (the shard names would lie).
    """
    shards = max(1, math.ceil(total / shard_images))
    tf.io.gfile.makedirs(split_dir)
    written = Written()
    writer: Optional[tf.io.TFRecordWriter] = None
    try:
        for batch in batches:
            if written.count + len(batch.seeds) > total:
                raise ValueError(f"the generator yielded more than the {total} samples planned")
            height, width, channels = batch.images.shape[1:]
            for index, (seed, label, png) in enumerate(zip(batch.seeds, batch.labels, batch.pngs)):
                position = written.count + index
                if position % shard_images == 0:
                    _close(writer)
                    written.files += 1
                    writer = tf.io.TFRecordWriter(
                        os.path.join(split_dir, example.shard_name(position // shard_images, shards)),
                        options=example.TFRECORD_COMPRESSION)
                writer.write(example.encode_example(png, height, width, channels, int(label),
                                                    source(int(seed), int(label)), hashlib.sha256(png).hexdigest()))
            written.add(batch)
            del batch  # the only reference: the source builds the next batch with this one gone
    finally:
        _close(writer)
    if written.count != total:
        raise ValueError(f"the generator yielded {written.count} of the {total} samples planned")
    return written


def _close(writer: Optional[tf.io.TFRecordWriter]) -> None:
    if writer is not None:
        writer.close()


def write_folders(batches: Iterable[SampleBatch], folder: str, total: int, first_seed: int,
                  class_names: tuple[str, ...] = ()) -> Written:
    """Writes each sample as ``<folder>/<class name>/<seed>.png`` (conditional) or ``<folder>/<seed>.png``.

    Seeds are zero-padded to one width, so names sort in seed order. A local folder only.

    Raises:
      ValueError: a label outside ``class_names``, or more or fewer samples than ``total``.
    """
    width = len(str(first_seed + max(total, 1) - 1))
    written = Written()
    made: set[str] = set()
    for batch in batches:
        if written.count + len(batch.seeds) > total:
            raise ValueError(f"the generator yielded more than the {total} samples planned")
        for seed, label, png in zip(batch.seeds, batch.labels, batch.pngs):
            if class_names:
                if not 0 <= label < len(class_names):
                    raise ValueError(f"label {label} has no class name (the generator has {len(class_names)})")
                target = os.path.join(folder, class_names[label])
            else:
                target = folder
            if target not in made:
                os.makedirs(target, exist_ok=True)
                made.add(target)
            with open(os.path.join(target, f"{int(seed):0{width}d}.png"), "wb") as handle:
                handle.write(png)
        written.add(batch)
        written.files += len(batch.seeds)
        del batch
    if written.count != total:
        raise ValueError(f"the generator yielded {written.count} of the {total} samples planned")
    return written


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged(out: str) -> Iterator[str]:
    """Yields the folder to write into; when the block ends without error, that folder becomes ``out``.

    Local: a hidden temp folder beside ``out``, renamed onto ``out`` (which must be missing or an empty
    folder: rename(2) replaces an empty directory atomically); on any error it is removed. Object
    stores (``gs://``, ``s3://``) have no folder rename: the block writes ``out`` directly, and each
    shard object appears whole when closed (the pipeline publishes the Examples artifact in MLMD only
    after its executor succeeds).
    """
    if "://" in out:
        tf.io.gfile.makedirs(out)
        yield out
        return
    out = os.path.abspath(out)
    temp = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=f".{os.path.basename(out)}.partial-")
    try:
        os.chmod(temp, 0o777 & ~_umask())  # mkdtemp makes it 0700; others read what we publish
        yield temp
        # Written data reaches the disk before the name appears, so not even a power cut can show a
        # complete-looking folder of empty files. One sync, not one fsync per file (a million PNGs).
        os.sync()
        os.rename(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
