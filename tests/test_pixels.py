"""Pixels as a viewer shows them: each tricky kind of file against an independent rendering.

Each reference is computed with NumPy from the known source pixels (rotation,
alpha blending, bit-depth scaling, cropping), not with the code under test;
"within one grey level" allows for JPEG and rounding.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ganpipe.components.image_example_gen import pixels, shape, sources, validation
from ganpipe.components.image_example_gen.config import IngestConfig

WHITE = (255, 255, 255)


def _smooth_rgb(height: int, width: int) -> np.ndarray:
    """A gradient: JPEG keeps it within a grey level or two, unlike noise."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([yy * 255 // max(1, height - 1), xx * 255 // max(1, width - 1),
                     np.full_like(yy, 128)], axis=-1).astype(np.uint8)


def _prepared(data: bytes, size: int, channels: int = 3, resize: str = "center-crop",
              background=WHITE) -> np.ndarray:
    check, png = validation.validate_image(data, pixels.Preparation(size, channels, background, resize), True)
    assert check.ok, check
    return np.asarray(Image.open(io.BytesIO(png)))


def _close(actual: np.ndarray, expected: np.ndarray, levels: int = 1) -> None:
    actual = actual.reshape(expected.shape).astype(int)
    assert np.abs(actual - expected.astype(int)).max() <= levels


def test_exif_orientation_is_applied_like_a_viewer():
    source = _smooth_rgb(24, 24)
    source[:4, :8] = (255, 0, 0)  # a marker in the top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    Image.fromarray(source).save(buffer, format="JPEG", quality=100, exif=exif)
    shown = _prepared(buffer.getvalue(), 24)
    stored = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))  # orientation not applied
    _close(shown, np.rot90(stored, k=-1))
    assert shown[:8, -4:, 0].mean() > 200 and shown[:8, -4:, 1].mean() < 60  # marker now top-right


def test_palette_png_with_transparency_is_composited_over_the_background():
    palette_pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) % 4
    colours = np.array([[200, 10, 10], [10, 200, 10], [10, 10, 200], [0, 0, 0]], dtype=np.uint8)
    image = Image.fromarray(palette_pixels, mode="P")
    image.putpalette(colours.flatten().tolist() + [0] * (768 - colours.size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=3)  # index 3 is fully transparent (black underneath)
    expected = colours[palette_pixels].astype(float)
    expected[palette_pixels == 3] = WHITE
    _close(_prepared(buffer.getvalue(), 8), expected)
    on_grey = _prepared(buffer.getvalue(), 8, background=(128, 128, 128))
    assert (on_grey[palette_pixels == 3] == 128).all()


def test_la_png_blends_grey_with_its_alpha():
    rng = np.random.default_rng(0)
    grey, alpha = rng.integers(0, 256, (8, 8)), rng.integers(0, 256, (8, 8))
    buffer = io.BytesIO()
    Image.fromarray(np.stack([grey, alpha], -1).astype(np.uint8), mode="LA").save(buffer, format="PNG")
    expected = (grey * alpha + 255 * (255 - alpha)) / 255.0
    _close(_prepared(buffer.getvalue(), 8, channels=1), np.rint(expected))


def test_cmyk_jpeg_renders_as_pillow_shows_it():
    source = _smooth_rgb(16, 16)
    cmyk = Image.fromarray(source).convert("CMYK")
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG", quality=100)
    shown_by_pillow = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    _close(_prepared(buffer.getvalue(), 16), shown_by_pillow)
    _close(_prepared(buffer.getvalue(), 16), source, levels=4)  # and close to what was saved


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")  # mode I;16
    assert Image.open(io.BytesIO(buffer.getvalue())).mode.startswith("I")
    _close(_prepared(buffer.getvalue(), 8, channels=1), np.rint(values / 257.0))


@pytest.mark.parametrize("resize", ["center-crop", "pad", "stretch"])
def test_non_square_images_are_cropped_padded_or_stretched(resize):
    source = _smooth_rgb(20, 40)  # wide
    buffer = io.BytesIO()
    Image.fromarray(source).save(buffer, format="PNG")
    data = buffer.getvalue()
    if resize == "center-crop":
        _close(_prepared(data, 20, resize=resize), source[:, 10:30])  # the central square, not squashed
    elif resize == "pad":
        shown = _prepared(data, 40, resize=resize)
        assert (shown[:10] == 255).all() and (shown[30:] == 255).all()  # background bands above and below
        _close(shown[10:30], source)
    else:
        shown = _prepared(data, 20, resize=resize)
        assert shown.shape == (20, 20, 3)
        expected = np.asarray(Image.fromarray(source).resize((20, 20), Image.LANCZOS))
        _close(shown, expected)


def test_tiny_elongated_and_bomb_images_get_one_line_reasons():
    def reason(width: int, height: int) -> str:
        buffer = io.BytesIO()
        Image.new("L", (width, height)).save(buffer, format="PNG")
        check, _ = validation.validate_image(buffer.getvalue(), pixels.Preparation(32, 1), True)
        assert "\n" not in check.detail
        return check.reason

    assert reason(1, 1) == validation.TOO_SMALL
    assert reason(400, 10) == validation.EXTREME_ASPECT_RATIO
    assert reason(64, 16) is None  # 4:1 is kept (center-cropped)
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 1000  # the warning zone is (limit, 2 x limit]
        assert reason(40, 40) == validation.TOO_LARGE  # 1,600 pixels: Pillow only warns
        assert reason(60, 60) == validation.TOO_LARGE  # 3,600: Pillow refuses
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def test_auto_shape_from_the_images(tmp_path):
    def folder(name: str, images: list[Image.Image]):
        root = tmp_path / name
        root.mkdir()
        for index, image in enumerate(images):
            image.save(root / f"{index}.png")
        return sources.plan_inputs(str(root), sources.FOLDER)

    grey_palette = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10), mode="P")
    grey_palette.putpalette([value for level in range(256) for value in (level, level, level)])
    emoji_like = [Image.new("RGBA", (72, 72), (255, 200, 0, 128)) for _ in range(3)]
    photos = [Image.new("RGB", (300, 200), (10, 20, 30)) for _ in range(3)]
    grey_rgb = [Image.new("RGB", (40, 40), (90, 90, 90))]

    decided = shape.decide(folder("emoji", emoji_like), IngestConfig())
    assert (decided.image_size, decided.channels) == (64, 3)
    decided = shape.decide(folder("photos", photos), IngestConfig())
    assert (decided.image_size, decided.channels) == (128, 3)
    decided = shape.decide(folder("grey", [grey_palette.convert("RGB").resize((40, 40)), *grey_rgb]),
                           IngestConfig())
    assert (decided.image_size, decided.channels) == (32, 1)  # R == G == B everywhere counts as grey
    decided = shape.decide(folder("mixed", [*grey_rgb, *photos]), IngestConfig(image_size=64))
    assert (decided.image_size, decided.channels) == (64, 3)  # an explicit size wins; colour decides 3


@pytest.mark.parametrize("container", ["PNG", "GIF"])
def test_grey_palette_images_with_transparency_are_grey_under_one_channel(container):
    """TF decodes a palette image as RGB(A); R == G == B content is grey, whatever the container says."""
    image = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10), mode="P")
    image.putpalette([value for level in range(256) for value in (level, level, level)])
    buffer = io.BytesIO()
    image.save(buffer, format=container, transparency=3)
    check, prepared = validation.validate_image(buffer.getvalue(), pixels.Preparation(16, 1), convert_channels=False)
    assert check.ok, check
    assert prepared and np.asarray(Image.open(io.BytesIO(prepared))).ndim == 2  # stored as one channel
    coloured = Image.new("P", (10, 10))
    coloured.putpalette([200, 10, 10] * 256)
    buffer = io.BytesIO()
    coloured.save(buffer, format=container, transparency=3)
    check, _ = validation.validate_image(buffer.getvalue(), pixels.Preparation(16, 1), convert_channels=False)
    assert not check.ok and check.reason == "channel_mismatch", check


def test_the_shape_sampler_names_no_bomb_warning_and_skips_such_images(tmp_path):
    """Pillow only warns (naming no file) between its pixel limit and twice it; ingestion calls such an
    image too_large, and the shape decision must neither print that warning nor count the image."""
    import warnings

    (tmp_path / "data").mkdir()
    Image.new("L", (40, 40)).save(tmp_path / "data" / "big.png")  # in the warning zone below
    Image.new("L", (20, 20)).save(tmp_path / "data" / "small.png")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 1000
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            decided = shape.decide(sources.plan_inputs(str(tmp_path / "data"), sources.FOLDER), IngestConfig())
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert "of 1 sampled images" in decided.reason  # only small.png was looked at


@pytest.mark.parametrize("container", ["PNG", "GIF"])
def test_a_colour_key_under_transparency_does_not_make_a_grey_image_colour(container):
    """Grey content whose transparent palette entry is magenta (a common colour key) is grey once
    composited, as shape.decide already judged it: not a channel mismatch under train.channels=1."""
    image = Image.fromarray((np.arange(100, dtype=np.uint8) % 200).reshape(10, 10), mode="P")
    palette = [value for level in range(256) for value in (level, level, level)]
    palette[3 * 255: 3 * 256] = [255, 0, 255]
    image.putpalette(palette)
    image.putpixel((0, 0), 255)
    buffer = io.BytesIO()
    image.save(buffer, format=container, transparency=255)
    check, _ = validation.validate_image(buffer.getvalue(), pixels.Preparation(16, 1), convert_channels=False)
    assert check.ok, check
