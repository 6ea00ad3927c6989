"""Named datasets resolve from installed packages, or say how to install them."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ganpipe.pipeline import datasets, inputs
from ganpipe.pipeline.config import load_config


def test_digits_are_materialised_once_as_upscaled_npz(tmp_path):
    path, data_format = datasets.materialize("digits", str(tmp_path))
    assert data_format == "npz"
    with np.load(path) as arrays:
        assert arrays["images"].shape == (1797, 32, 32) and arrays["images"].dtype == np.uint8
        assert arrays["images"].max() == 255 and set(np.unique(arrays["labels"])) == set(range(10))
    mtime = os.path.getmtime(path)
    assert datasets.materialize("digits", str(tmp_path)) == (path, "npz") and os.path.getmtime(path) == mtime


@pytest.mark.skipif(not os.path.isdir(datasets.FASHION_MNIST_DIR),
                    reason="Debian package dataset-fashion-mnist not installed (make venv installs it as root)")
def test_fashion_mnist_resolves_to_the_debian_idx_files(tmp_path):
    config = load_config(None, {"data.path": "fashion-mnist", "output_dir": str(tmp_path / "out")})
    resolved = inputs.resolve(config)
    assert (resolved.path, resolved.format) == (datasets.FASHION_MNIST_DIR, "idx")


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(datasets.DatasetNotInstalled, match="apt-get install dataset-fashion-mnist"):
        datasets.materialize("fashion-mnist", str(tmp_path), fashion_mnist_dir=str(tmp_path / "absent"))
