"""Shared fixtures: small real inputs and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]

# Small enough for a 2-core CI box, big enough that every component does real work.
TINY_RUN_FLAGS = [
    "--steps", "8",
    "--set", "train.image_size=16",
    "--set", "train.batch_size=16",
    "--set", "train.log_every=4",
    "--set", "train.sample_every=4",
    "--set", "evaluate.num_samples=32",
    "--set", "evaluate.classifier_steps=20",  # the domain classifier on labelled data: plumbing, not accuracy
    # 8 steps reach no real neighbourhood: the floor-relative gate (tested on its own) would refuse every
    # tiny run, and these runs test the plumbing around the gate.
    "--set", "evaluate.max_fid_over_floor=0",
    "--set", "evaluate.min_coverage_of_floor=0",
]


def run_cli(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs `ganpipe` exactly as a user would (console script from the venv)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    script = Path(sys.executable).with_name("ganpipe")
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_png_folder(folder: Path, count: int, size: int = 16, seed: int = 0) -> list[Path]:
    """Writes `count` distinct grey PNG blobs; returns their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size]
    for index in range(count):
        cy, cx = rng.uniform(3, size - 3, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0) * 255
        noise = rng.integers(0, 20, size=(size, size))
        pixels = np.clip(blob + noise, 0, 255).astype(np.uint8)
        path = folder / f"img_{index:04d}.png"
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(path)
    return paths


@pytest.fixture
def png_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    write_png_folder(folder, 48)
    return folder


def identity_checkpoints(base: Path) -> Path:
    """The one run-identity subdirectory of a checkpoint directory (trainer/checkpoints.py layout)."""
    (directory,) = [path for path in Path(base).iterdir() if path.is_dir()]
    return directory


@pytest.fixture
def corrupt_model(tmp_path: Path) -> Path:
    """A serving version folder whose saved_model.pb is not a SavedModel (`generate` must refuse it)."""
    model = tmp_path / "generator" / "1"
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"\x08\x01\x12garbage that is not a SavedModel proto")
    return model
