"""Trainer hyperparameters.

The trainer receives these as a plain dict (TFX's ``custom_config``), so this
module is the one place that knows their names, defaults and bounds. The
pipeline's config embeds :class:`TrainerConfig` as its ``train`` section, which
keeps one source of truth without the trainer importing the pipeline.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

SUPPORTED_IMAGE_SIZES = (8, 16, 28, 32, 64, 128)
SUPPORTED_CHANNELS = (1, 3)


@dataclasses.dataclass
class TrainerConfig:
    """What the GAN is and how long it trains.

    Defaults follow the TensorFlow DCGAN tutorial (latent 100, Adam 1e-4,
    beta_1 0.5 for both networks, batch 256) except ``steps``, which is sized
    for the bundled demo finishing in minutes on two CPU cores.
    """

    image_size: int = 32
    channels: int = 1
    latent_dim: int = 100
    steps: int = 600
    batch_size: int = 64
    generator_lr: float = 1e-4
    discriminator_lr: float = 1e-4
    beta_1: float = 0.5
    seed: int = 0
    shuffle_buffer: int = 2048
    log_every: int = 25
    sample_every: int = 100

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the first field that is out of bounds."""
        if self.image_size not in SUPPORTED_IMAGE_SIZES:
            raise ValueError(
                f"train.image_size={self.image_size}: must be one of {SUPPORTED_IMAGE_SIZES}"
            )
        if self.channels not in SUPPORTED_CHANNELS:
            raise ValueError(f"train.channels={self.channels}: must be 1 or 3")
        positive = ("latent_dim", "steps", "batch_size", "shuffle_buffer", "log_every", "sample_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be >= 1")
        for name in ("generator_lr", "discriminator_lr"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be in (0, 1)")
        if not 0.0 <= self.beta_1 < 1.0:
            raise ValueError(f"train.beta_1={self.beta_1}: must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainerConfig":
        """Builds a config from a dict, rejecting keys the trainer does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown trainer setting(s): {', '.join(unknown)}")
        return cls(**dict(values))
