"""Datasets that ship with installed packages, so a run needs no download.

- ``digits``: scikit-learn's handwritten digits, always present (1,797
  images, 8x8, values 0-16). Upscaled to 32x32 so the demo trains the
  tutorial's 32x32 DCGAN, and written once as an .npz that ImageExampleGen
  reads like any user-supplied array file.
- ``fashion-mnist``: Debian's ``dataset-fashion-mnist`` package (70,000
  28x28 images as IDX files), which `make venv` installs where apt-get is
  available. Read in place.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from ganpipe.atomic import write_atomically

BUNDLED_SIZE = 32


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
NAMES = ("digits", "fashion-mnist")


class DatasetNotInstalled(ValueError):
    """A named dataset's package is missing; the message says how to install it."""


def is_bundled(name: str) -> bool:
    return name in NAMES


def materialize(name: str, directory: str, fashion_mnist_dir: str = FASHION_MNIST_DIR) -> tuple[str, str]:
    """Returns (path, format) of a named dataset, writing it under `directory` first when needed."""
    if name == "fashion-mnist":
        if not os.path.isdir(fashion_mnist_dir):
            raise DatasetNotInstalled(
                f"fashion-mnist is not installed ({fashion_mnist_dir} is missing): "
                "run `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or pass --data PATH to IDX files"
            )
        return fashion_mnist_dir, "idx"
    if name != "digits":
        raise ValueError(f"unknown bundled dataset {name!r}")
    return _digits(directory), "npz"


def _digits(directory: str) -> str:
    path = os.path.join(directory, f"digits_{BUNDLED_SIZE}px.npz")
    if os.path.exists(path):
        return path
    from sklearn.datasets import load_digits  # the only place the demo data comes from

    digits = load_digits()
    images = np.stack([_upscale(image) for image in digits.images])
    os.makedirs(directory, exist_ok=True)
    # Two runs materialising at once never share a partial file, and a reader sees no file or the whole one.
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=digits.target.astype(np.int64))
    write_atomically(path, buffer.getvalue())
    return path


def _upscale(image_0_to_16: np.ndarray) -> np.ndarray:
    pixels = np.round(image_0_to_16 * (255.0 / 16.0)).astype(np.uint8)
    return np.asarray(Image.fromarray(pixels).resize((BUNDLED_SIZE, BUNDLED_SIZE), Image.BICUBIC))
