"""`ganpipe generate`: a picture of any pushed generator's samples.

Loads the SavedModel with plain TensorFlow (as TF Serving would), calls its
``generate_from_seeds`` signature, which is deterministic per seed, and
writes the grid as a PNG without metadata: the same model, seeds and size
give the same bytes every time.
"""

from __future__ import annotations

import io
import math
import os
from typing import Optional

import numpy as np

from ganpipe import contract
from ganpipe.trainer.visualize import image_grid

SAVED_MODEL_FILE = "saved_model.pb"
# Small samples (16x16) are scaled up so the grid is at least this wide.
MIN_GRID_PIXELS = 512


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
    versions = sorted(int(name) for name in os.listdir(path)
                      if name.isdigit() and os.path.isfile(os.path.join(path, name, SAVED_MODEL_FILE)))
    if not versions:
        raise ModelNotFoundError(f"{path} holds neither {SAVED_MODEL_FILE} nor numbered version directories")
    if version is None:
        return os.path.join(path, str(versions[-1]))
    if version not in versions:
        raise ModelNotFoundError(f"version {version} not found under {path} (have: "
                                 f"{', '.join(map(str, versions))})")
    return os.path.join(path, str(version))


def generate_images(model_dir: str, count: int, seed: int) -> np.ndarray:
    """uint8 [count, H, W, C] for seeds seed .. seed + count - 1."""
    import tensorflow as tf

    loaded = tf.saved_model.load(model_dir)
    if contract.SEEDS_SIGNATURE not in loaded.signatures:
        raise ModelNotFoundError(f"{model_dir} has no '{contract.SEEDS_SIGNATURE}' signature: not a ganpipe "
                                 "generator")
    seeds = tf.range(seed, seed + count, dtype=tf.int64)
    outputs = loaded.signatures[contract.SEEDS_SIGNATURE](**{contract.SEEDS_INPUT: seeds})
    return outputs[contract.IMAGES_OUTPUT].numpy()


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
    """Writes the grid PNG to ``out``; returns the model directory used."""
    if count < 1:
        raise ValueError(f"--n={count}: must be >= 1")
    model_dir = resolve_model_dir(model, version)
    data = grid_png(generate_images(model_dir, count, seed), scale)
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    with open(out, "wb") as handle:
        handle.write(data)
    return model_dir
