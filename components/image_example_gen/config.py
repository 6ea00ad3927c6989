"""What ImageExampleGen makes of the images: one dataclass, passed to the component as one JSON object.

``ganpipe.pipeline.config`` builds it from its ``data`` and ``train``
sections (``PipelineConfig.ingest_config``); the executor reads it back with
``from_dict``. Adding a setting touches this class and the code that reads it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from ganpipe import settings
from ganpipe.components.image_example_gen import pixels
from ganpipe.trainer import config as trainer_config

AUTO = trainer_config.AUTO  # image_size / channels decided from the images (shape.decide)
TRAINING_SIZES = (32, 64, 128)  # what `auto` picks from; the networks are built for these


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Split, shape and pixel preparation of the stored images."""

    eval_fraction: float = 0.1
    image_size: int = AUTO  # the stored (= training) resolution; 0: from the images
    channels: int = AUTO  # 1 or 3; 0: 1 when every image is grey, else 3
    # With explicit channels: False rejects images of the other channel class
    # (grey/colour), True converts them. With channels auto, images always convert.
    convert_channels: bool = False
    labels_from_subfolders: bool = True
    background: str = pixels.DEFAULT_BACKGROUND  # what transparent pixels become
    resize: str = "center-crop"  # center-crop | pad | stretch

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eval_fraction) and 0.0 < self.eval_fraction < 1.0):
            raise ValueError(f"eval_fraction={self.eval_fraction}: must be in (0, 1)")
        if self.channels not in (AUTO, 1, 3):
            raise ValueError(f"channels={self.channels}: must be 1, 3 or auto")
        if self.image_size != AUTO and not 8 <= self.image_size <= 1024:
            raise ValueError(f"image_size={self.image_size}: must be in [8, 1024] or auto")
        pixels.parse_colour(self.background)
        if self.resize not in pixels.RESIZE_MODES:
            raise ValueError(f"resize={self.resize!r}: must be one of {', '.join(pixels.RESIZE_MODES)}")

    @property
    def converts(self) -> bool:
        """Whether images of the other channel class are converted (always, when channels are auto)."""
        return self.convert_channels or self.channels == AUTO

    def preparation(self, image_size: int, channels: int) -> pixels.Preparation:
        return pixels.Preparation(size=image_size, channels=channels,
                                  background=pixels.parse_colour(self.background), resize=self.resize)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "IngestConfig":
        """Builds the settings from a dict, refusing unknown keys."""
        return settings.from_dict(cls, values, "ingest")
