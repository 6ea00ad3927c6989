"""Pixels as an image viewer shows them, prepared once at ingestion.

Every reader after ingestion (trainer, evaluator, statistics, the run's
sample grid) decodes the small PNG written here, so there is exactly one
decoder and one resize in the project. The steps, in order:

1. EXIF orientation applied (``ImageOps.exif_transpose``), as viewers do.
2. Modes normalised: palette images with transparency, LA/La, RGBa, CMYK
   (Pillow's own conversion, which handles Adobe's inverted CMYK JPEGs) and
   16/32-bit integer images (scaled to 8 bits, not clipped) become L, LA,
   RGB or RGBA.
3. Alpha composited over ``background``: a transparent pixel becomes the
   background colour, never whatever RGB value happens to sit under it.
4. Channels: 1 (ITU-R 601-2 luma, Pillow's ``convert("L")``) or 3.
5. Aspect ratio by ``resize``: ``center-crop`` (the central square, as the
   dataset tools of StyleGAN and others do), ``pad`` (letterbox with the
   background) or ``stretch``; then Lanczos resampling to ``size`` x ``size``
   (antialiased when shrinking, smooth when enlarging).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageColor, ImageOps

RESIZE_MODES = ("center-crop", "pad", "stretch")
# White: transparent icons, emoji and logos are drawn to be shown on light pages,
# and their dark outlines vanish on black.
DEFAULT_BACKGROUND = "#ffffff"
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_HIGH_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclasses.dataclass(frozen=True)
class Preparation:
    """What every stored image becomes: uint8 [size, size, channels]."""

    size: int
    channels: int  # 1 or 3
    background: tuple[int, int, int] = (255, 255, 255)
    resize: str = "center-crop"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels={self.channels}: must be 1 or 3")
        if self.size < 1:
            raise ValueError(f"size={self.size}: must be >= 1")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize={self.resize!r}: must be one of {', '.join(RESIZE_MODES)}")


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#rrggbb', '#rgb', 'white', 'rgb(1,2,3)'... -> (r, g, b); ValueError naming the text otherwise."""
    try:
        colour = ImageColor.getrgb(text)
    except (ValueError, AttributeError):
        raise ValueError(f"{text!r} is not a colour (use #rrggbb or a name such as white)") from None
    return tuple(int(value) for value in colour[:3])  # type: ignore[return-value]


def as_viewed(image: Image.Image) -> Image.Image:
    """Orientation applied and mode normalised to L, LA, RGB or RGBA (pixels loaded).

    Raises:
      OSError, ValueError: the image cannot be oriented or converted.
    """
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in _HIGH_BIT_MODES:
        return _to_8_bit(image)
    if mode == "1":
        return image.convert("L")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "La":
        return image.convert("LA")
    if mode in ("P", "PA"):
        return image.convert("RGBA") if _has_transparency(image) else image.convert("RGB")
    # CMYK, YCbCr, LAB, HSV, RGBa, RGBX: Pillow knows how to show them as RGB(A).
    return image.convert("RGBA" if "a" in mode.lower() and mode != "LAB" else "RGB")


def shown(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """The image as a viewer shows it over ``background``: oriented, converted, alpha composited (L or RGB)."""
    return _composite(as_viewed(image), background)


def is_grey(image: Image.Image) -> bool:
    """True when the image shows no colour: a grey mode, or every pixel has R == G == B."""
    if image.mode in _GREY_MODES:
        return True
    if image.mode in ("P", "PA"):
        palette = np.asarray(image.convert("RGB"))
    elif image.mode in ("RGB", "RGBA", "RGBX"):
        palette = np.asarray(image)[..., :3]
    else:
        return False
    return bool(np.all(palette[..., 0] == palette[..., 1]) and np.all(palette[..., 1] == palette[..., 2]))


def prepare(image: Image.Image, preparation: Preparation) -> np.ndarray:
    """An opened image -> uint8 [size, size, channels], as a viewer shows it over the background.

    Raises:
      OSError, ValueError: the image cannot be oriented, composited or resized.
    """
    return prepare_shown(shown(image, preparation.background), preparation)


def prepare_shown(flat: Image.Image, preparation: Preparation) -> np.ndarray:
    """``prepare`` from what ``shown`` returned (L or RGB), for callers that already rendered it once.

    Raises:
      OSError, ValueError: the image cannot be converted or resized.
    """
    flat = flat.convert("L" if preparation.channels == 1 else "RGB")
    squared = _to_square(flat, preparation)
    resized = squared.resize((preparation.size, preparation.size), Image.LANCZOS, reducing_gap=None)
    pixels = np.asarray(resized, dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _has_transparency(image: Image.Image) -> bool:
    return image.mode == "PA" or "transparency" in image.info


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit images scaled to 0-255 by their type's range (a viewer does not clip them)."""
    values = np.asarray(image)
    if image.mode == "F":
        scaled = np.clip(values, 0.0, 1.0) * 255.0 if values.max(initial=0.0) <= 1.0 else np.clip(values, 0, 255)
    else:
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        scaled = np.clip(values.astype(np.float64), 0, top) * (255.0 / top)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def _composite(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if image.mode not in ("LA", "RGBA"):
        return image
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _to_square(image: Image.Image, preparation: Preparation) -> Image.Image:
    width, height = image.size
    if width == height or preparation.resize == "stretch":
        return image
    side = min(width, height) if preparation.resize == "center-crop" else max(width, height)
    if preparation.resize == "center-crop":
        left, top = (width - side) // 2, (height - side) // 2
        return image.crop((left, top, left + side, top + side))
    # The background as this image's mode shows it (its luma for grey images).
    fill = Image.new("RGB", (1, 1), preparation.background).convert(image.mode).getpixel((0, 0))
    padded = Image.new(image.mode, (side, side), fill)
    padded.paste(image, ((side - width) // 2, (side - height) // 2))
    return padded
