"""Images in, feature summaries out, one batch at a time.

Real images come from the Examples artifact's TFRecords, generated ones from
the generator SavedModel's seeds signature; both flow through the same
extractor into a ``metrics.FeatureSummary``. Nothing holds more than one
batch of images (plus the few kept for the sample grids), so the evaluation's
memory does not grow with ``num_samples``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.utils import path_utils

from ganpipe.components.gan_evaluator.rules import SampleChecker
from ganpipe import contract
from ganpipe.trainer import data
from ganpipe.evaluation import metrics
from ganpipe.evaluation.feature_extractors import FeatureExtractor

BATCH = 256
GRID_IMAGES = 64
# Images per extractor call, whatever batches the caller streams: BLAS picks
# its kernels (and so its float rounding) by matrix shape, and FID's matrix
# square root amplifies last-bit differences to ~1e-3. Fixed blocks make every
# number independent of how the images were batched.
EXTRACT_BLOCK = 128


class GeneratorLoadError(RuntimeError):
    """The generator SavedModel cannot be loaded or does not honour the signature contract."""


@dataclasses.dataclass
class Sampled:
    """One image set after streaming: its feature summary (None when unusable) and grid images."""

    summary: Optional[metrics.FeatureSummary]
    grid: np.ndarray  # the first GRID_IMAGES images, as produced (any dtype)
    count: int
    digest: str = ""  # sha256 of every image's dtype, shape and bytes: equal digests, the same images


def real_batches(examples: Any, split: str, channels: int, image_size: int, limit: int,
                 batch: int = BATCH) -> Iterator[np.ndarray]:
    """uint8 [<=batch, size, size, channels] from one split, at most ``limit`` images.

    The images are the records at ``data.spread_indices`` in file order (all of
    them when the split holds no more than ``limit``): splits from class folders
    are in class order. Records left out are not decoded.
    """
    patterns = [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]
    dataset = tf.data.TFRecordDataset(data.list_files(patterns), compression_type=data.COMPRESSION)
    dataset = data.take_spread(dataset, data.count_records(patterns), limit).map(
        lambda record: tf.cast(tf.round(data.decode_example(record, channels, image_size)), tf.uint8),
        num_parallel_calls=tf.data.AUTOTUNE)
    for images in dataset.batch(batch).prefetch(1):
        yield images.numpy()


def load_generator(model_uri: str, is_old_artifact: bool = False) -> Any:
    """Loads the serving SavedModel under a Model artifact (layout as the Trainer writes it)."""
    return load_saved_model(path_utils.serving_model_path(model_uri, is_old_artifact))


def load_saved_model(path: str) -> Any:
    """Loads a generator SavedModel directory (a serving version) and checks its seeds signature.

    Raises:
      GeneratorLoadError: not loadable, or no generate_from_seeds signature.
    """
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # OSError, ValueError, parse errors: all mean "not loadable"
        raise GeneratorLoadError(f"cannot load a SavedModel from {path}: {error}") from error
    if contract.SEEDS_SIGNATURE not in loaded.signatures:
        raise GeneratorLoadError(
            f"SavedModel at {path} has no '{contract.SEEDS_SIGNATURE}' signature "
            f"(has: {', '.join(sorted(loaded.signatures.keys())) or 'none'})")
    return loaded


def generated_batches(loaded: Any, seeds: np.ndarray, batch: int = BATCH) -> Iterator[np.ndarray]:
    """Calls the seeds signature batch by batch; yields its images output as NumPy, untouched."""
    signature = loaded.signatures[contract.SEEDS_SIGNATURE]
    for start in range(0, len(seeds), batch):
        chunk = tf.constant(seeds[start:start + batch], dtype=tf.int64)
        outputs = signature(**{contract.SEEDS_INPUT: chunk})
        if contract.IMAGES_OUTPUT not in outputs:
            raise GeneratorLoadError(f"'{contract.SEEDS_SIGNATURE}' returned {sorted(outputs)}, "
                                     f"not '{contract.IMAGES_OUTPUT}'")
        yield outputs[contract.IMAGES_OUTPUT].numpy()


def summarize(batches: Iterable[np.ndarray], extractor: FeatureExtractor,
              checker: Optional[SampleChecker] = None,
              observers: Sequence[Callable[[np.ndarray], Any]] = ()) -> Sampled:
    """Streams batches through the checker (if any) and the extractor.

    Features are extracted in blocks of ``EXTRACT_BLOCK`` images regardless of
    the incoming batch sizes, so the summary is bit-for-bit the same however
    the caller batched. Once a batch fails the checker's contract (wrong dtype
    or shape), feature extraction stops for the set (summary None) but
    checking goes on, so the report counts every NaN. ``observers`` get the
    same blocks as the extractor (the Inception Score's classifier), and stop
    with it.
    """
    summary: Optional[metrics.FeatureSummary] = metrics.FeatureSummary(extractor.feature_dim)
    grid: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    kept = count = pending_count = 0
    digest = hashlib.sha256()
    for images in batches:
        count += len(images)
        digest.update(f"{images.dtype.str}{images.shape[1:]}".encode())
        digest.update(np.ascontiguousarray(images).tobytes())
        if kept < GRID_IMAGES:
            grid.append(images[: GRID_IMAGES - kept])
            kept += len(grid[-1])
        usable = checker.update(images) if checker is not None else True
        if not usable:
            summary, pending = None, []
        if summary is not None and len(images):
            pending.append(images)
            pending_count += len(images)
            while pending_count >= EXTRACT_BLOCK:
                block, pending = _split_block(pending, EXTRACT_BLOCK)
                pending_count -= EXTRACT_BLOCK
                _extract(block, summary, extractor, observers)
    if summary is not None and pending:
        _extract(np.concatenate(pending, axis=0), summary, extractor, observers)
    if summary is not None and summary.count < 2:
        summary = None
    try:
        grid_images = np.concatenate(grid, axis=0) if grid else np.zeros((0,), dtype=np.uint8)
    except ValueError:  # batches of different shapes: a broken generator; the first batch shows it
        grid_images = grid[0]
    return Sampled(summary=summary, grid=grid_images, count=count, digest=digest.hexdigest())


def _extract(block: np.ndarray, summary: metrics.FeatureSummary, extractor: FeatureExtractor,
             observers: Sequence[Callable[[np.ndarray], Any]]) -> None:
    summary.update(extractor(block))
    for observe in observers:
        observe(block)


def _split_block(pending: list[np.ndarray], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The first ``size`` images of ``pending`` as one array, and what is left."""
    joined = np.concatenate(pending, axis=0)
    return joined[:size], [joined[size:]] if len(joined) > size else []
