"""Pictures a person looks at: sample grids, real-vs-generated panels, loss curves.

Figures are built with ``matplotlib.figure.Figure`` directly rather than
pyplot, so nothing here touches matplotlib's global backend or figure registry
(safe inside TFX executors, threads and notebooks alike) and rendering is
always Agg. Paths may be local or any filesystem ``tf.io.gfile`` knows.
"""

from __future__ import annotations

import io
import math
import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ganpipe.atomic import write_atomically

DPI = 100


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Tiles uint8 [N, H, W, C] into one uint8 [rows*H, columns*W, C] image (square-ish by default)."""
    images = _as_uint8_images(images)
    count, height, width, channels = images.shape
    if count == 0:
        raise ValueError("no images to tile")
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), 255, np.uint8
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_image_grid(images: np.ndarray, path: str, title: str | None = None,
                    columns: int | None = None) -> None:
    """Writes uint8 [N, H, W, C] (C 1 or 3) as one PNG grid, optionally titled."""
    grid = image_grid(images, columns)
    figure = _figure_for([grid], title_rows=1 if title else 0)
    axes = figure.add_subplot(1, 1, 1)
    _show(axes, grid, title)
    _save(figure, path)


def save_comparison(real: np.ndarray, generated: np.ndarray, path: str) -> None:
    """Writes two labelled panels side by side: "real" and "generated" (same grid layout)."""
    count = max(len(real), len(generated), 1)
    columns = math.ceil(math.sqrt(count))
    grids = [image_grid(real, columns), image_grid(generated, columns)]
    figure = _figure_for(grids, title_rows=1)
    for index, (grid, label) in enumerate(zip(grids, ("real", "generated"))):
        _show(figure.add_subplot(1, 2, index + 1), grid, label)
    _save(figure, path)


def save_loss_curve(steps: Sequence[int], series: Mapping[str, Sequence[float]], path: str,
                    probability_keys: Sequence[str] = ("d_real", "d_fake")) -> None:
    """Plots losses (left) and the discriminator's mean outputs on real/fake images (right).

    D(real) near 1 with D(fake) near 0 for long means the discriminator wins
    and the generator stops learning; both near 0.5 is the balance a GAN seeks.
    """
    figure = Figure(figsize=(10, 4), dpi=DPI)
    losses = figure.add_subplot(1, 2, 1)
    outputs = figure.add_subplot(1, 2, 2)
    for name, values in series.items():
        target = outputs if name in probability_keys else losses
        target.plot(list(steps), list(values), label=name)
    losses.set_title("losses")
    losses.set_xlabel("step")
    outputs.set_title("discriminator output (mean sigmoid)")
    outputs.set_xlabel("step")
    outputs.set_ylim(0.0, 1.0)
    outputs.axhline(0.5, color="grey", linewidth=0.5, linestyle="--")
    for axes in (losses, outputs):
        if axes.lines:
            axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)


def _as_uint8_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:  # [N, H, W] grey
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected images [N, H, W, C] with C 1 or 3, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images


def _figure_for(grids: list[np.ndarray], title_rows: int) -> Figure:
    """A figure big enough that small images stay crisp (at least 4 screen pixels per image pixel)."""
    height = max(grid.shape[0] for grid in grids)
    width = sum(grid.shape[1] for grid in grids)
    scale = max(1.0, 480.0 / max(height, width / len(grids)))
    size_w = max(3.0, width * scale / DPI + 0.3 * len(grids))
    size_h = max(3.0, height * scale / DPI + 0.4 * title_rows)
    return Figure(figsize=(size_w, size_h), dpi=DPI)


def _show(axes, grid: np.ndarray, title: str | None) -> None:
    if grid.shape[-1] == 1:
        axes.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(grid, interpolation="nearest")
    axes.set_axis_off()
    if title:
        axes.set_title(title)


def _save(figure: Figure, path: str) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    data = buffer.getvalue()
    if "://" in path:  # gs://, s3://, ...: go through TensorFlow's filesystems
        import tensorflow as tf

        tf.io.gfile.makedirs(os.path.dirname(path))
    elif os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, data)  # a viewer or a second run never reads half a PNG
