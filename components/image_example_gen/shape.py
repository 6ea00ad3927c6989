"""The training shape from the images themselves: `train.image_size` and `train.channels` at auto.

Run by the local preflight (so the decision is printed before TFX starts)
and by the executor (so a Kubeflow run, which has no preflight, decides the
same way from the same images); recorded in the ingest report and on the
Examples artifact.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import statistics
import warnings
from typing import Iterable, Iterator, Union

import numpy as np
from PIL import Image

from ganpipe.components.image_example_gen import arrays, filesystem, pixels, validation
from ganpipe.components.image_example_gen.config import AUTO, TRAINING_SIZES, IngestConfig

# Images looked at to decide: spread evenly over the listing, so a folder of
# class subfolders is sampled across classes. Opening and rendering 2,000
# small images takes about a second.
MAX_SAMPLED = 2000
# Objects on a store are fetched this many at a time: one by one, 2,000 objects (a few requests each)
# take minutes on a real bucket; TensorFlow's file calls release the GIL, so threads overlap the waiting.
URL_READERS = 16


@dataclasses.dataclass(frozen=True)
class ShapeDecision:
    image_size: int
    channels: int
    reason: str  # one line a person reads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def decide(plan, config: IngestConfig) -> ShapeDecision:
    """Explicit values win; `auto` ones come from up to MAX_SAMPLED of the plan's images (see decide_from)."""
    if config.image_size != AUTO and config.channels != AUTO:
        return ShapeDecision(config.image_size, config.channels, "as configured")
    background = pixels.parse_colour(config.background)
    short_sides, grey = [], []
    for image in _sampled_images(plan):
        short_sides.append(min(image.size))
        # What the stored image will show: transparent pixels become the background, whatever lies under them.
        grey.append(pixels.is_grey(pixels.shown(image, background)))
    return decide_from(short_sides, grey, config)


def decide_from(short_sides: list[int], grey: list[bool], config: IngestConfig) -> ShapeDecision:
    """The rule, over sampled images' short sides (px) and whether each shows no colour.

    Channels: 1 when every sampled image shows no colour (grey modes, or
    R == G == B everywhere, as in grey palette PNGs), else 3. Size: the
    largest of TRAINING_SIZES that the median short side reaches without
    upscaling; smaller images are upscaled to the smallest (Lanczos).
    """
    if not short_sides:  # nothing decodable: ingestion will say so; any shape does
        return ShapeDecision(config.image_size or TRAINING_SIZES[0], config.channels or 3, "no readable image")
    median_side = int(statistics.median(short_sides))
    reasons = []
    channels = config.channels
    if channels == AUTO:
        channels = 1 if all(grey) else 3
        reasons.append(f"channels {channels}: " + ("every image is grey" if channels == 1 else
                                                    f"{len(grey) - sum(grey)} of {len(grey)} sampled images "
                                                    "are in colour"))
    size = config.image_size
    if size == AUTO:
        fitting = [candidate for candidate in TRAINING_SIZES if candidate <= median_side]
        size = fitting[-1] if fitting else TRAINING_SIZES[0]
        how = "" if fitting else ", upscaled with Lanczos (the smallest size the networks are built for)"
        reasons.append(f"size {size}: median short side {median_side} px of {len(short_sides)} sampled images{how}")
    return ShapeDecision(size, channels, "; ".join(reasons))


def _sampled_images(plan) -> Iterator[Image.Image]:
    if plan.array_files:
        for array_file in plan.array_files[:1]:
            if array_file.count:
                first = arrays.load_array_file(array_file).images[0]
                yield Image.fromarray(np.squeeze(first, axis=-1) if first.ndim == 3 and first.shape[-1] == 1
                                      else first)
        return
    items = plan.items
    picked = sorted(set(np.linspace(0, len(items) - 1, min(len(items), MAX_SAMPLED)).round().astype(int)))
    for source in _openable([items[index].path for index in picked]):
        if source is None:
            continue
        try:
            with warnings.catch_warnings():
                # Between Pillow's pixel limit and twice it Pillow only warns, naming no file: such an
                # image is too_large for ingestion (validation.py), so skip it here too.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(source) as image:
                    image.load()
                    yield image
        except Exception:  # unreadable files are ingestion's to count and report, not ours
            continue


def _openable(paths: list[str]) -> Iterable[Union[str, io.BytesIO, None]]:
    """What Image.open takes, in order: local paths as they are; URLs' bytes, fetched a few at a time.

    None stands for an object that could not be read, or one too big to be ingested (it is not read).
    """
    if not paths or not filesystem.is_url(paths[0]):
        yield from paths
        return
    with concurrent.futures.ThreadPoolExecutor(URL_READERS) as pool:
        for start in range(0, len(paths), 4 * URL_READERS):  # bounded: a few dozen images in memory
            yield from pool.map(_fetch, paths[start:start + 4 * URL_READERS])


def _fetch(path: str) -> Union[io.BytesIO, None]:
    try:
        if filesystem.size(path) > validation.MAX_FILE_BYTES:
            return None
        return io.BytesIO(filesystem.read_bytes(path))
    except OSError:
        return None
