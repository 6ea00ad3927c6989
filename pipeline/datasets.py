"""Datasets that ship with the installed packages, so `ganpipe run` needs no download.

scikit-learn's handwritten digits are always present (1,797 images, 8x8,
values 0-16). They are upscaled to 32x32 so the demo trains the tutorial's
32x32 DCGAN; the result is written once as an .npz that ImageExampleGen reads
like any user-supplied array file.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

BUNDLED_SIZE = 32


def is_bundled(name: str) -> bool:
    return name == "digits"


def materialize(name: str, directory: str) -> str:
    """Writes the bundled dataset under `directory` (once) and returns its path."""
    if name != "digits":
        raise ValueError(f"unknown bundled dataset {name!r}")
    path = os.path.join(directory, f"digits_{BUNDLED_SIZE}px.npz")
    if os.path.exists(path):
        return path
    from sklearn.datasets import load_digits  # the only place the demo data comes from

    digits = load_digits()
    images = np.stack([_upscale(image) for image in digits.images])
    os.makedirs(directory, exist_ok=True)
    partial = path + ".partial.npz"
    np.savez_compressed(partial, images=images, labels=digits.target.astype(np.int64))
    os.replace(partial, path)
    return path


def _upscale(image_0_to_16: np.ndarray) -> np.ndarray:
    pixels = np.round(image_0_to_16 * (255.0 / 16.0)).astype(np.uint8)
    return np.asarray(Image.fromarray(pixels, mode="L").resize((BUNDLED_SIZE, BUNDLED_SIZE), Image.BICUBIC))
