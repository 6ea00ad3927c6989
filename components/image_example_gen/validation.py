"""The per-image check and preparation: one function, called by preflight and by the Beam DoFn.

Pillow is the one decoder: it reads the header first (so a 100,000-pixel-wide
"image" is refused before anything is allocated), says *why* a file is bad,
and renders what it accepts as a viewer shows it (``pixels.prepare``). The
accepted image is stored as a PNG of those prepared pixels, so nothing after
ingestion decodes the original file again.

PNG and JPEG files are also decoded once by TensorFlow, the stricter of the
two (Pillow happily loads a PNG whose IEND chunk is cut off): such a file is
damaged, and is rejected rather than trusted.
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
from typing import Optional

from PIL import Image

from ganpipe.components.image_example_gen import arrays, filesystem, pixels

EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"
CORRUPT_OR_TRUNCATED = "corrupt_or_truncated"
CHANNEL_MISMATCH = "channel_mismatch"
TOO_LARGE = "too_large"
TOO_SMALL = "too_small"
EXTREME_ASPECT_RATIO = "extreme_aspect_ratio"
CANNOT_PREPARE = "cannot_prepare"  # EXIF orientation, palette or alpha that Pillow cannot render
UNREADABLE_FILE = "unreadable_file"  # I/O error (permissions, vanished file)

# Same bound as the curated schema's height/width domain (pipeline/schema.py).
MAX_IMAGE_SIDE = 16384
# A file this big is not read at all: no sane training image is, and reading
# a stray video or disk image into a Beam worker's memory is how workers die.
MAX_FILE_BYTES = 256 * 1024 * 1024
_MAX_DETAIL = 240
# 1x1 pixels, or a 2000x20 banner, hold no picture a square crop can use.
MIN_IMAGE_SIDE = 8
MAX_ASPECT_RATIO = 8

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


@dataclasses.dataclass(frozen=True)
class ImageCheck:
    """The verdict on one encoded image; shape fields are 0 when it did not decode."""

    reason: Optional[str]  # None when accepted
    detail: str = ""
    image_format: str = ""
    height: int = 0
    width: int = 0
    channels: int = 0  # as stored, i.e. what tf.io.decode_image(channels=0) returns

    @property
    def ok(self) -> bool:
        return self.reason is None


def sniff_format(data: bytes) -> Optional[str]:
    """PNG / JPEG / GIF / BMP from the magic bytes, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return None


def channel_class(channels: int) -> int:
    """1 for grey (with or without alpha), 3 for colour (with or without alpha)."""
    return 1 if channels <= 2 else 3


def validate_image(data: bytes, preparation: pixels.Preparation, convert_channels: bool) -> tuple[ImageCheck, bytes]:
    """Checks one encoded image and prepares its pixels: (verdict, PNG of the prepared pixels or b"").

    The verdict's shape fields are the ORIGINAL image's (what the report
    counts); the PNG is uint8 [size, size, channels] per ``preparation``.
    Without ``convert_channels`` an image whose channel class (grey/colour)
    differs from ``preparation.channels`` is rejected; with it, it is converted.
    """
    if not data:
        return ImageCheck(EMPTY_FILE, "the file has 0 bytes"), b""
    image_format = sniff_format(data)
    if image_format is None:
        # Never any of the file's content in the report: it may be any file on the system.
        return ImageCheck(NOT_AN_IMAGE, "its first bytes are not those of a PNG, JPEG, GIF or BMP"), b""

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice that: treat both as too large.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if max(width, height) > MAX_IMAGE_SIDE:
                    return ImageCheck(TOO_LARGE, f"{width}x{height} exceeds {MAX_IMAGE_SIDE} pixels a side",
                                      image_format), b""
                image.load()  # decodes the pixels: truncation shows up here, not in open()
                found = len(image.getbands()) if image.mode not in ("P", "PA") else (
                    2 if image.mode == "PA" or "transparency" in image.info else 1)
                problem = _shape_problem(width, height)
                try:
                    # Rendered once, for the colour verdict and for the stored pixels alike.
                    flat = pixels.shown(image, preparation.background)
                except Exception as error:  # EXIF, palette or mode conversions Pillow cannot do
                    return ImageCheck(CANNOT_PREPARE, _short(f"{image_format}: cannot orient or composite: "
                                                             f"{error}"), image_format, height, width), b""
                # What the stored image will show (as shape.decide judges it): colour hidden under
                # transparent pixels, or a colour-keyed transparent palette entry, does not count.
                grey = pixels.is_grey(flat)
                shape = dict(image_format=image_format, height=height, width=width,
                             channels=(1 if grey else 3) + (1 if found in (2, 4) else 0))
                if problem:
                    return ImageCheck(problem[0], problem[1], **shape), b""
                if (1 if grey else 3) != channel_class(preparation.channels) and not convert_channels:
                    kind = "grey" if grey else "colour"
                    return ImageCheck(
                        CHANNEL_MISMATCH,
                        f"{kind} image, expected {preparation.channels} channel(s): leave train.channels at auto, "
                        "or set data.convert_channels=true to convert", **shape), b""
                try:
                    prepared = pixels.prepare_shown(flat, preparation)
                except Exception as error:  # a conversion or resampling Pillow cannot do
                    return ImageCheck(CANNOT_PREPARE, _short(f"{image_format}: cannot resize: {error}"),
                                      **shape), b""
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return ImageCheck(TOO_LARGE, _short(str(error)), image_format), b""
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        return ImageCheck(CORRUPT_OR_TRUNCATED, _short(f"{image_format}: {error}"), image_format), b""

    if image_format in _TENSORFLOW_DECODERS and not _tensorflow_decodes(data, image_format):
        return ImageCheck(CORRUPT_OR_TRUNCATED, f"{image_format}: damaged (TensorFlow's stricter decoder "
                                                "refuses it, e.g. a cut-off end)", image_format), b""
    return ImageCheck(None, "", **shape), arrays.encode_png(prepared)


def validate_file(path: str, preparation: pixels.Preparation, convert_channels: bool
                  ) -> tuple[bytes, ImageCheck, bytes]:
    """Reads, validates and prepares one file: (its bytes or b"" when not read, the verdict, prepared PNG).

    ``path`` may be a URL (gs://...); its read errors are counted as unreadable_file like a local file's.
    """
    try:
        size = filesystem.size(path)
        if size > MAX_FILE_BYTES:
            return b"", ImageCheck(TOO_LARGE, f"{size} bytes, over the {MAX_FILE_BYTES}-byte limit"), b""
        data = filesystem.read_bytes(path)
    except OSError as error:
        return b"", ImageCheck(UNREADABLE_FILE, _short(error.strerror or str(error))), b""
    check, prepared = validate_image(data, preparation, convert_channels)
    return data, check, prepared


def _shape_problem(width: int, height: int) -> Optional[tuple[str, str]]:
    if min(width, height) < MIN_IMAGE_SIDE:
        return TOO_SMALL, f"{width}x{height}: under {MIN_IMAGE_SIDE} pixels a side holds no picture to learn"
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        return EXTREME_ASPECT_RATIO, (f"{width}x{height}: more than {MAX_ASPECT_RATIO}:1, so a square crop or "
                                     "pad would keep almost nothing of it")
    return None


# One op per format, called directly: tf.io.decode_image dispatches on the format with a few ops of
# its own, which cost as much as decoding a small image (bench/ingest_throughput.py profiles it).
_TENSORFLOW_DECODERS = {"PNG": "decode_png", "JPEG": "decode_jpeg"}


def _tensorflow_decodes(data: bytes, image_format: str) -> bool:
    tf = _tensorflow()
    decode = getattr(tf.io, _TENSORFLOW_DECODERS[image_format])
    try:
        decode(tf.constant(data))
    except Exception:
        return False
    return True


def _tensorflow():
    """TF is imported on first decode so that preflight on junk folders stays fast."""
    import tensorflow as tf

    return tf


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
