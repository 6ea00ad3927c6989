"""The per-image check: one function, called by preflight and by the Beam DoFn.

Why two decoders. Pillow reads the header first (so a 100,000-pixel-wide
"image" is refused before anything is allocated) and says *why* a file is bad.
TensorFlow is what the trainer decodes with, and it is the stricter of the two
on PNG (Pillow happily loads a PNG whose IEND chunk is cut off). An image is
accepted only when TF decodes it and, when its channel count differs from the
trainer's C, ``ganpipe.trainer.data.decode_as(data, C)`` (the trainer's own decode)
converts it; what TF cannot read that way is rejected as
``unsupported_encoding`` instead of crashing the trainer later.

Why Pillow runs first: a truncated JPEG handed to TF makes libjpeg print an
error line to stderr for every such file; Pillow catches those quietly.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from typing import Optional

from PIL import Image

EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"
CORRUPT_OR_TRUNCATED = "corrupt_or_truncated"
UNSUPPORTED_ENCODING = "unsupported_encoding"  # valid file TF cannot decode (as the trainer would)
CHANNEL_MISMATCH = "channel_mismatch"
TOO_LARGE = "too_large"
UNREADABLE_FILE = "unreadable_file"  # I/O error (permissions, vanished file)

# Same bound as the curated schema's height/width domain (pipeline/schema.py).
MAX_IMAGE_SIDE = 16384
# A file this big is not read at all: no sane training image is, and reading
# a stray video or disk image into a Beam worker's memory is how workers die.
MAX_FILE_BYTES = 256 * 1024 * 1024
_MAX_DETAIL = 240

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


def validate_image(data: bytes, channels: int, convert_channels: bool) -> ImageCheck:
    """Accepts `data` only if the trainer's TF decode will read it as `channels` channels.

    Without `convert_channels`, an image whose channel class (grey/colour)
    differs from `channels` is rejected; with it, the image is kept as is and
    the trainer converts at decode time.
    """
    if not data:
        return ImageCheck(EMPTY_FILE, "the file has 0 bytes")
    image_format = sniff_format(data)
    if image_format is None:
        return ImageCheck(NOT_AN_IMAGE, f"starts with {data[:8]!r}, which is not PNG, JPEG, GIF or BMP")

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max(width, height) > MAX_IMAGE_SIDE:
                return ImageCheck(TOO_LARGE, f"{width}x{height} exceeds {MAX_IMAGE_SIDE} pixels a side",
                                  image_format)
            image.load()  # decodes the pixels: truncation shows up here, not in open()
    except Image.DecompressionBombError as error:
        return ImageCheck(TOO_LARGE, _short(str(error)), image_format)
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        return ImageCheck(CORRUPT_OR_TRUNCATED, _short(f"{image_format}: {error}"), image_format)

    tf = _tensorflow()
    try:
        stored = tf.io.decode_image(data, channels=0, expand_animations=False)
    except Exception as error:
        # Pillow read it; TF's PNG/JPEG decoders are complete, so for those the
        # file is damaged (e.g. a cut-off IEND). BMP/GIF: a variant TF lacks.
        reason = CORRUPT_OR_TRUNCATED if image_format in ("PNG", "JPEG") else UNSUPPORTED_ENCODING
        return ImageCheck(reason, _short(f"TensorFlow cannot decode this {image_format}: {_tf_message(error)}"),
                          image_format)
    height, width, found = (int(size) for size in stored.shape)
    shape = dict(image_format=image_format, height=height, width=width, channels=found)
    if channel_class(found) != channel_class(channels) and not convert_channels:
        kind = "grey" if channel_class(found) == 1 else "colour"
        return ImageCheck(
            CHANNEL_MISMATCH,
            f"{found} channel(s) ({kind}), expected {channels}: set data.convert_channels=true to convert",
            **shape,
        )
    # The trainer decodes with ganpipe.trainer.data.decode_as; run it once here so an
    # accepted image is one the trainer can read.
    if found != channels:
        from ganpipe.trainer.data import decode_as  # imports TF; see _tensorflow()

        try:
            decode_as(tf.constant(data), channels)
        except Exception as error:
            return ImageCheck(
                UNSUPPORTED_ENCODING,
                _short(f"TensorFlow cannot decode this {image_format} as {channels} channel(s) "
                       f"(the trainer's decode): {_tf_message(error)}; re-save it as PNG"),
                **shape,
            )
    return ImageCheck(None, "", **shape)


def validate_file(path: str, channels: int, convert_channels: bool) -> tuple[bytes, ImageCheck]:
    """Reads and validates one input file: (its bytes, or b"" when not read; the verdict)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            return b"", ImageCheck(TOO_LARGE, f"{size} bytes, over the {MAX_FILE_BYTES}-byte limit")
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return b"", ImageCheck(UNREADABLE_FILE, _short(error.strerror or str(error)))
    return data, validate_image(data, channels, convert_channels)


def _tensorflow():
    """TF is imported on first decode so that preflight on junk folders stays fast."""
    import tensorflow as tf

    return tf


def _tf_message(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:\w+\]\s*$", "", message).strip()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
