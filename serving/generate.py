"""`ganpipe generate`: a picture of any pushed generator's samples, or a synthetic data set.

Loads the SavedModel with plain TensorFlow (as TF Serving would), calls its
``generate_from_seeds`` signature, which is deterministic per seed, and
writes the grid as a PNG without metadata: the same model, seeds and size
give the same bytes every time. ``export`` writes many samples instead, as
tf.Example TFRecords or class folders (components/synthetic_example_gen),
streaming them batch by batch.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any, Optional

import numpy as np

from ganpipe import contract
from ganpipe.atomic import write_atomically
from ganpipe.trainer.visualize import image_grid

SAVED_MODEL_FILE = "saved_model.pb"
# Small samples (16x16) are scaled up so the grid is at least this wide.
MIN_GRID_PIXELS = 512
# One picture: a grid of more samples than this is unreadable, and 10^7 of them ran for hours while
# memory grew (many samples are a data set: `ganpipe generate --format tfrecord|folder`, ``export`` below).
MAX_SAMPLES = 4096
MAX_GRID_PIXELS = 16384  # per side, after scaling: what image viewers and Pillow handle comfortably
SEED_LIMIT = 2**63 - 1  # seeds are int64
BATCH = 256  # samples per signature call: memory stays flat whatever --n is


class ModelNotFoundError(FileNotFoundError):
    """The path holds no generator SavedModel (nor numbered versions of one)."""


def resolve_model_dir(path: str, version: Optional[int] = None) -> str:
    """A version directory, or the newest (or ``version``) under a TF Serving model base."""
    if not os.path.isdir(path):
        raise ModelNotFoundError(f"{path} is not a directory")
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        if version is not None:
            raise ModelNotFoundError(f"{path} is a single model, not a model base with versions; "
                                     "drop --version or give the base directory")
        return path
    try:
        names = os.listdir(path)
    except OSError as error:
        raise ModelNotFoundError(f"cannot list {path}: {error.strerror}") from None
    versions = sorted(int(name) for name in names
                      if name.isdigit() and os.path.isfile(os.path.join(path, name, SAVED_MODEL_FILE)))
    if not versions:
        raise ModelNotFoundError(f"{path} holds neither {SAVED_MODEL_FILE} nor numbered version directories")
    if version is None:
        return os.path.join(path, str(versions[-1]))
    if version not in versions:
        raise ModelNotFoundError(f"version {version} not found under {path} (have: "
                                 f"{', '.join(map(str, versions))})")
    return os.path.join(path, str(version))


def load_generator(model_dir: str) -> Any:
    """The SavedModel at ``model_dir``, loaded with plain TensorFlow, with the seeds signature checked.

    Raises:
      ModelNotFoundError: the SavedModel cannot be loaded (corrupt, truncated) or is not a generator.
    """
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(model_dir)
    except Exception as error:  # parse and op errors of a damaged file: one line for the user
        detail = " ".join(str(error).split())[:300]
        raise ModelNotFoundError(f"{model_dir}: cannot load the SavedModel ({type(error).__name__}: {detail})") \
            from None
    if contract.SEEDS_SIGNATURE not in loaded.signatures:
        raise ModelNotFoundError(f"{model_dir} has no '{contract.SEEDS_SIGNATURE}' signature: not a ganpipe "
                                 "generator")
    return loaded


def generate_images(model_dir: str, count: int, seed: int) -> np.ndarray:
    """uint8 [count, H, W, C] for seeds seed .. seed + count - 1, in batches of BATCH.

    Raises:
      ModelNotFoundError: the SavedModel cannot be loaded (corrupt, truncated) or is not a generator.
    """
    import tensorflow as tf

    loaded = load_generator(model_dir)
    signature = loaded.signatures[contract.SEEDS_SIGNATURE]
    batches = [signature(**{contract.SEEDS_INPUT: tf.range(start, min(start + BATCH, seed + count), dtype=tf.int64)})
               [contract.IMAGES_OUTPUT].numpy() for start in range(seed, seed + count, BATCH)]
    return np.concatenate(batches)


def grid_png(images: np.ndarray, scale: Optional[int] = None) -> bytes:
    """PNG bytes of the image grid, scaled up by an integer factor (nearest neighbour)."""
    from PIL import Image

    grid = image_grid(images)
    if scale is None:
        scale = max(1, math.ceil(MIN_GRID_PIXELS / max(grid.shape[:2])))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")  # no text chunks, no timestamps
    return buffer.getvalue()


def generate(model: str, out: str, count: int = 64, seed: int = 0, version: Optional[int] = None,
             scale: Optional[int] = None) -> str:
    """Writes the grid PNG to ``out``; returns the model directory used.

    Raises:
      ValueError: --n, --seed, --scale or --out unusable (checked before the model loads).
      ModelNotFoundError: no loadable generator at ``model``.
    """
    if not 1 <= count <= MAX_SAMPLES:
        raise ValueError(f"--n={count}: must be in [1, {MAX_SAMPLES}] (one picture)")
    if not 0 <= seed <= SEED_LIMIT - count + 1:
        raise ValueError(f"--seed={seed}: must be in [0, {SEED_LIMIT - count + 1}] (seeds are int64, and "
                         f"--n={count} of them follow it)")
    if scale is not None and not 1 <= scale <= MAX_GRID_PIXELS // 8:
        raise ValueError(f"--scale={scale}: must be an integer in [1, {MAX_GRID_PIXELS // 8}]")
    out = os.path.abspath(out)
    if os.path.isdir(out):
        raise ValueError(f"--out={out} is a folder; give a file name, e.g. {os.path.join(out, 'grid.png')}")
    if os.path.lexists(out) and not (os.path.isfile(out) and not os.path.islink(out)):
        # A device, FIFO or link: the grid is renamed into place, which would replace it, not write through it.
        raise ValueError(f"--out={out}: exists and is not a regular file; give another name")
    directory = os.path.dirname(out)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out={out}: cannot create {error.filename or directory}: {error.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise ValueError(f"--out={out}: {directory} is not writable")
    model_dir = resolve_model_dir(model, version)
    images = generate_images(model_dir, count, seed)
    columns = math.ceil(math.sqrt(count))
    side = max(images.shape[1:3]) * columns * (scale or 1)
    if side > MAX_GRID_PIXELS:
        raise ValueError(f"--scale={scale}: the grid would be {side} px wide, over {MAX_GRID_PIXELS}")
    data = grid_png(images, scale)
    try:
        write_atomically(out, data)  # a viewer refreshing the file never shows half a grid
    except OSError as error:  # a full disk, /proc, a looping link, a read-only file
        raise ValueError(f"--out={out}: cannot write it: {error.strerror}") from None
    return model_dir


def export(model: str, out: Optional[str], data_format: str, count: Optional[int] = None,
           per_class: Optional[int] = None, seed: int = 0, version: Optional[int] = None):
    """Writes ``count`` samples (or ``per_class`` of each class) to the folder ``out``; returns the
    ``ExportSummary`` (components/synthetic_example_gen/export.py has the layout).

    Every check that needs no model runs first, so a bad request is refused in milliseconds.

    Raises:
      ValueError: a bad --format, --n, --per-class, --seed or --out; --per-class from an unconditional
        generator; class names that cannot be folders (``request.ExportError``, a ValueError).
      ModelNotFoundError: no loadable generator at ``model``.
    """
    from ganpipe.components.synthetic_example_gen import request

    if data_format not in request.FORMATS:
        raise ValueError(f"--format={data_format!r}: must be grid or one of {', '.join(request.FORMATS)}")
    request.check_counts(count, per_class)
    if count is not None:
        request.check_seeds(seed, count)
    else:
        request.check_seeds(seed, 1)  # the class count, and so the last seed, is known once the model loads
    out = request.check_out(out)
    model_dir = resolve_model_dir(model, version)
    loaded = load_generator(model_dir)
    from ganpipe.components.synthetic_example_gen import export as synthetic, samples

    path, model_version = synthetic.model_identity(os.path.abspath(model_dir))
    return synthetic.export_samples(loaded, samples.describe(loaded, model_dir), out, data_format, count=count,
                                    per_class=per_class, first_seed=seed, model=path, version=model_version,
                                    batch=BATCH)
