"""Trainer hyperparameters.

The trainer receives these as a plain dict (TFX's ``custom_config``), so this
module is the one place that knows their names, defaults and bounds. The
pipeline's config embeds :class:`TrainerConfig` as its ``train`` section, which
keeps one source of truth without the trainer importing the pipeline.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from ganpipe import settings

SUPPORTED_IMAGE_SIZES = (8, 16, 28, 32, 64, 128)
# image_size / channels: decided from the training data (the shape ingestion stored).
AUTO = 0
SUPPORTED_CHANNELS = (1, 3)
LOSSES = ("bce", "hinge", "wgan-gp")
# "auto" resolves to the architecture's usual loss: hinge for resnet (SNGAN), else bce.
LOSS_CHOICES = (*LOSSES, "auto")
# The networks (trainer/models.py, dcgan.py, resnet.py); "auto" picks one by resolution
# (resolve_architecture).
ARCHITECTURES = ("dcgan-tutorial", "dcgan", "resnet")
ARCHITECTURE_CHOICES = (*ARCHITECTURES, "auto")
# Below this side "auto" keeps the tutorial's networks: made for 28x28, measured on digits and
# Fashion-MNIST up to 32 px (the demo, bench/quality_per_compute.py). From it on, Radford et
# al.'s DCGAN, whose depth grows with the resolution (bench/quality_colour.py, emoji at 64 px).
AUTO_DCGAN_FROM_SIZE = 64
UPSAMPLES = ("transposed", "resize")
UPSAMPLE_CHOICES = (*UPSAMPLES, "auto")
AUTO_DROPOUT = -1.0  # train.discriminator_dropout: auto (0 already means "no dropout")
# train.steps: auto (resolve_steps) at 32 px and below, scaled from 32 px by the pixels per image.
# 600: the bundled demo's digits are digit-like there and the gate blesses them. At 64 px (x4 =
# 2,400) 600 steps left the emoji as checkerboard mush at 5.3x the floor's FID, and a `ganpipe run`
# with 2,400 reached 2.3x (docs/design.md, "How long"); 128 px follows the rule unmeasured.
AUTO_STEPS_AT_32 = 600
# Ranges the downstream code can honour: seeds are folded into TF's int32/int64 stateless seeds;
# the shuffle buffer and batch are held in memory (a 10^14 buffer segfaults TF); steps are int64.
UPPER_BOUNDS = {
    "seed": (0, 2**31 - 1),
    "steps": (0, 10**9),  # 0: auto (resolve_steps)
    "batch_size": (0, 65_536),
    "latent_dim": (1, 4_096),
    "shuffle_buffer": (1, 10_000_000),
    "width": (1, 512),  # the widest layer has 8-32x this many channels (dcgan at 128 px: 32x)
    "workers": (1, 1_024),
    "log_every": (1, 10**9),
    "sample_every": (1, 10**9),
    "checkpoint_every": (0, 10**9),
    "num_classes": (0, 100_000),
    "ada_interval": (1, 10**9),
    "ada_speed_images": (1, 10**12),
}
# What batch_size, discriminator_dropout and upsample at "auto" mean per (resolved) architecture.
# dcgan-tutorial and resnet: the values measured before there was a choice (the tutorial's
# dropout 0.3, batch 64: bench/quality_per_compute.py). dcgan: on the emoji set at 64 px and equal
# CPU time (bench/quality_colour.py, docs/design.md "Colour images at 64 px"): batch 64 (batch 32
# led at 8 CPU-minutes, measured before the EMA generator's BatchNorm statistics were recomputed,
# and swung late; batch 64 with them recomputed is steady); the paper's transposed convolutions
# (with the EMA fixed, they beat the hand-written loop at 20 CPU-minutes on both seeds, where
# resize upsampling, checkerboard-free but 0.7x the steps per CPU-minute, lost); and D without
# dropout (the paper has none) learns faster next to DiffAugment, which regularises D.
ARCHITECTURE_DEFAULTS = {
    "dcgan-tutorial": {"batch_size": 64, "discriminator_dropout": 0.3, "upsample": "transposed"},
    "dcgan": {"batch_size": 64, "discriminator_dropout": 0.0, "upsample": "transposed"},
    "resnet": {"batch_size": 64, "discriminator_dropout": 0.3, "upsample": "transposed"},
}
# Discriminator augmentation (trainer/augment.py): DiffAugment with a fixed p, or with p adapted
# ADA-style; "auto" turns DiffAugment on for small training sets (resolve_augment).
AUGMENTS = ("off", "diffaugment", "ada")
AUGMENT_CHOICES = (*AUGMENTS, "auto")
# PROVISIONAL, not measured on this project yet: Zhao et al. and Karras et al. 2020 show
# augmentation helping up to tens of thousands of images and hurting little above; 20,000 is a
# guess to be replaced by a bench measurement.
AUTO_AUGMENT_BELOW_IMAGES = 20_000
# "none", not "off": YAML reads a bare off as the boolean false.
MIXED_PRECISION = ("none", "float16", "bfloat16")


@dataclasses.dataclass
class TrainerConfig:
    """What the GAN is, how long it trains, and how it is distributed and kept safe.

    The networks are the TensorFlow DCGAN tutorial's (latent 100, non-saturating
    BCE, dropout 0.3 in D). Three training defaults differ from the tutorial,
    because on Fashion-MNIST they reach the tutorial's quality in a fraction of
    the steps (bench/quality_per_compute.py, figures in docs/design.md):
    generator BatchNorm momentum 0.9 (the tutorial's Keras 0.99 leaves early
    exports dark), Adam 2e-4 (the DCGAN paper's, the tutorial's 1e-4 is half)
    and an EMA of the generator (0.999, with warm-up). ``steps`` (auto: grows
    with the resolution) and ``batch_size`` are sized for the bundled demo
    finishing in minutes on two CPU cores. Every other option beyond the tutorial is off, except
    checkpoints.
    """

    image_size: int = AUTO  # one of SUPPORTED_IMAGE_SIZES, or AUTO (0): the stored images' size
    channels: int = AUTO  # 1 or 3, or AUTO (0): the stored images' channels
    latent_dim: int = 100
    steps: int = AUTO  # AUTO (0): resolve_steps, from the image size
    batch_size: int = AUTO  # the GLOBAL batch (workers and replicas split it); auto: ARCHITECTURE_DEFAULTS
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    seed: int = 0
    shuffle_buffer: int = 2048
    log_every: int = 25
    sample_every: int = 100

    # The networks: dcgan-tutorial (the TF tutorial's) | dcgan (Radford et al. 2016) |
    # resnet (SNGAN, Miyato et al. 2018) | auto (by image_size: resolve_architecture).
    architecture: str = "auto"
    # dcgan and resnet: channels of G's last (full-resolution side) feature map and of D's first;
    # they double per level towards 4x4, capped at 8 * width. The tutorial's networks ignore it.
    # 32, not the paper's 128: on 2 CPU cores a 64 px step at width 32 costs ~1/4 of width 64.
    width: int = 32
    # dcgan's generator: how it doubles the resolution. transposed: the paper's 4x4 stride-2
    # transposed convolutions; resize: nearest-neighbour x2 then a 3x3 convolution (Odena et al.
    # 2016, "Deconvolution and Checkerboard Artifacts"), which cannot leave a checkerboard;
    # auto: ARCHITECTURE_DEFAULTS (transposed for dcgan: more steps per CPU-minute, measured).
    upsample: str = "auto"

    # Losses and regularisers.
    loss: str = "auto"  # bce (non-saturating, the tutorial's) | hinge | wgan-gp | auto (hinge for resnet, else bce)
    gp_weight: float = 10.0  # WGAN-GP gradient-penalty weight (loss=wgan-gp only)
    r1_gamma: float = 0.0  # R1 penalty on real images, gamma/2 * |grad D(x)|^2; 0 = off
    spectral_norm: bool = False  # spectral normalisation of the discriminator's weights
    # Weight of the old value in the generator's BatchNorm moving statistics, which
    # the exported generator uses. Keras' 0.99 (the tutorial's) forgets its
    # (0, 1) start so slowly that exports before ~400 steps look dark; 0.9 is
    # PyTorch's (momentum=0.1 there) and DCGAN reference code's.
    batch_norm_momentum: float = 0.9
    # Dropout after each of D's convolutions; 0 = none; auto (-1): ARCHITECTURE_DEFAULTS (the
    # tutorial's 0.3 for its networks, none for dcgan).
    discriminator_dropout: float = AUTO_DROPOUT
    ema_decay: float = 0.999  # EMA of the generator's weights, exported instead of the raw one; 0 = off
    conditional: bool = False  # class-conditional G and D (needs labels on every training image)
    # Augmentation of every image D sees, real and fake (trainer/augment.py): off | diffaugment
    # (Zhao et al. 2020, colour + translation + cutout) | ada (the same ops, p adapted towards
    # ada_target, Karras et al. 2020) | auto (diffaugment below AUTO_AUGMENT_BELOW_IMAGES images).
    augment: str = "auto"
    augment_p: float = 1.0  # diffaugment: probability of each op per image (the paper's policy: 1)
    ada_target: float = 0.6  # ada: the E[sign(D(real))] that p is steered to
    ada_interval: int = 4  # ada: steps between adjustments of p
    ada_speed_images: int = 50_000  # ada: real images over which p can move by 1 (Karras: 500k)
    num_classes: int = 0  # with conditional: 0 = 1 + the largest label in the training data

    # Distribution and fault tolerance.
    workers: int = 1  # > 1: that many worker processes (local launcher, or a TFJob on a cluster)
    sync_batch_norm: bool = True  # BatchNorm statistics (G; and D in dcgan) over the global batch, not per replica
    checkpoint_every: int = 100  # steps between checkpoints (and one at the end); 0 = none
    checkpoint_dir: str = ""  # durable and shared by all workers; empty = <run_dir>/checkpoints

    # Speed levers (GPU); off by default: on this project's CPUs both are slower.
    mixed_precision: str = "none"  # none | float16 | bfloat16
    jit_compile: bool = False  # XLA for the whole step (one replica per worker only)
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism() in the training process

    def __post_init__(self) -> None:
        if self.mixed_precision == "off":  # the first name of "none" (configs and manifests written with it)
            self.mixed_precision = "none"
        if self.augment is False:  # YAML (and --set) read a bare off as the boolean false
            self.augment = "off"
        self.validate()

    @property
    def ema_decay_on(self) -> bool:
        return self.ema_decay > 0.0

    @property
    def ada_on(self) -> bool:
        return self.augment == "ada"

    def validate(self) -> None:
        """Raises ValueError naming the first field that is out of bounds."""
        if self.image_size not in (AUTO, *SUPPORTED_IMAGE_SIZES):
            raise ValueError(
                f"train.image_size={self.image_size}: must be auto or one of {SUPPORTED_IMAGE_SIZES}"
            )
        if self.channels not in (AUTO, *SUPPORTED_CHANNELS):
            raise ValueError(f"train.channels={self.channels}: must be auto, 1 or 3")
        if self.batch_size < 0:
            raise ValueError(f"train.batch_size={self.batch_size}: must be auto or >= 1")
        if self.steps < 0:
            raise ValueError(f"train.steps={self.steps}: must be auto or >= 1")
        for name, (low, high) in UPPER_BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"train.{name}={value}: must be in [{low}, {high}]")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"train.{field.name}={value}: must be a finite number")
        positive = ("latent_dim", "shuffle_buffer", "log_every", "sample_every", "workers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be >= 1")
        for name in ("generator_lr", "discriminator_lr"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be in (0, 1)")
        for name in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be in [0, 1)")
        if self.loss not in LOSS_CHOICES:
            raise ValueError(f"train.loss={self.loss!r}: must be one of {', '.join(LOSS_CHOICES)}")
        if self.architecture not in ARCHITECTURE_CHOICES:
            raise ValueError(f"train.architecture={self.architecture!r}: must be one of "
                             f"{', '.join(ARCHITECTURE_CHOICES)}")
        if self.upsample not in UPSAMPLE_CHOICES:
            raise ValueError(f"train.upsample={self.upsample!r}: must be one of {', '.join(UPSAMPLE_CHOICES)}")
        if self.width < 1:
            raise ValueError(f"train.width={self.width}: must be >= 1")
        if self.architecture in ("dcgan", "resnet") and self.image_size != AUTO and self.image_size < 32:
            raise ValueError(f"train.architecture={self.architecture}: needs train.image_size >= 32 "
                             f"(got {self.image_size}); use dcgan-tutorial or auto")
        if self.augment not in AUGMENT_CHOICES:
            raise ValueError(f"train.augment={self.augment!r}: must be one of {', '.join(AUGMENT_CHOICES)}")
        for name in ("augment_p", "ada_target"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be in [0, 1]")
        for name in ("ada_interval", "ada_speed_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be >= 1")
        for name in ("gp_weight", "r1_gamma"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"train.{name}={getattr(self, name)}: must be >= 0")
        if not 0.0 <= self.batch_norm_momentum < 1.0:
            raise ValueError(f"train.batch_norm_momentum={self.batch_norm_momentum}: must be in [0, 1)")
        if self.discriminator_dropout != AUTO_DROPOUT and not 0.0 <= self.discriminator_dropout < 1.0:
            raise ValueError(f"train.discriminator_dropout={self.discriminator_dropout}: must be auto or in [0, 1)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay={self.ema_decay}: must be in [0, 1) (0 turns the EMA off)")
        if self.num_classes < 0:
            raise ValueError(f"train.num_classes={self.num_classes}: must be >= 0 (0 = from the data)")
        if self.num_classes == 1:
            raise ValueError("train.num_classes=1: one class is not a condition; use conditional: false")
        if self.num_classes and not self.conditional:
            raise ValueError(f"train.num_classes={self.num_classes}: only meaningful with train.conditional=true")
        if self.checkpoint_every < 0:
            raise ValueError(f"train.checkpoint_every={self.checkpoint_every}: must be >= 0 (0 = no checkpoints)")
        if self.batch_size and self.batch_size % self.workers:
            raise ValueError(f"train.batch_size={self.batch_size}: the global batch must split evenly over "
                             f"train.workers={self.workers}")
        if not self.batch_size:
            architectures = ARCHITECTURES if self.architecture == "auto" else (self.architecture,)
            uneven = sorted({ARCHITECTURE_DEFAULTS[name]["batch_size"] for name in architectures} - {0}, reverse=True)
            uneven = [size for size in uneven if size % self.workers]
            if uneven:
                raise ValueError(f"train.batch_size=auto ({' or '.join(map(str, uneven))} for this architecture) "
                                 f"must split evenly over train.workers={self.workers}; set train.batch_size")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"train.mixed_precision={self.mixed_precision!r}: must be one of "
                             f"{', '.join(MIXED_PRECISION)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainerConfig":
        """Builds a config from a dict, rejecting keys the trainer does not know."""
        return settings.from_dict(cls, values, "trainer")


def resolve_architecture(architecture: str, image_size: int) -> str:
    """The network "auto" means at this resolution (any other value is returned as it is).

    dcgan-tutorial below AUTO_DCGAN_FROM_SIZE (the tutorial's 28x28 networks, which dcgan's
    4x4-start layout cannot make), dcgan from it on: at 64 px the tutorial's discriminator keeps
    two convolutions and is far too shallow, while dcgan's depth follows the resolution.
    """
    if architecture != "auto":
        return architecture
    return "dcgan-tutorial" if image_size < AUTO_DCGAN_FROM_SIZE else "dcgan"


def resolve_steps(steps: int, image_size: int) -> int:
    """"auto" (AUTO) -> AUTO_STEPS_AT_32 x the pixels per image over 32x32's, never fewer:
    600 up to 32 px, 2,400 at 64, 9,600 at 128. Any other value is returned as it is.

    Raises ValueError for auto with the image size still auto.
    """
    if steps != AUTO:
        return steps
    if image_size == AUTO:
        raise ValueError("train.steps=auto needs the image size")
    return AUTO_STEPS_AT_32 * max(1, (image_size // 32) ** 2)


def resolve_architecture_defaults(cfg: "TrainerConfig", architecture: str) -> dict[str, Any]:
    """{batch_size, discriminator_dropout, upsample}: cfg's values, "auto" ones from ARCHITECTURE_DEFAULTS."""
    defaults = ARCHITECTURE_DEFAULTS[architecture]
    return {
        "batch_size": cfg.batch_size or defaults["batch_size"],
        "discriminator_dropout": (defaults["discriminator_dropout"] if cfg.discriminator_dropout == AUTO_DROPOUT
                                  else cfg.discriminator_dropout),
        "upsample": defaults["upsample"] if cfg.upsample == "auto" else cfg.upsample,
    }


def resolve_loss(loss: str, architecture: str) -> str:
    """"auto" -> hinge for resnet (SNGAN's loss), bce otherwise; ``architecture`` already resolved."""
    if loss != "auto":
        return loss
    return "hinge" if architecture == "resnet" else "bce"


def resolve_augment(augment: str, num_images: int | None) -> str:
    """"auto" -> diffaugment when the training set has fewer than AUTO_AUGMENT_BELOW_IMAGES images.

    ``num_images`` may be a lower bound capped at the threshold (trainer.data.count_records).
    """
    if augment != "auto":
        return augment
    if num_images is None:
        raise ValueError("train.augment=auto needs the number of training images")
    return "diffaugment" if num_images < AUTO_AUGMENT_BELOW_IMAGES else "off"


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """What the networks are built from: the slice of TrainerConfig that shapes G and D.

    ``architecture`` is resolved (never "auto"); ``num_classes`` is 0 for an
    unconditional network. ``mixed_precision`` is the Keras dtype policy the
    layers are built under (none | float16 | bfloat16); outputs stay float32.
    """

    architecture: str
    image_size: int
    channels: int
    latent_dim: int
    width: int = 64
    upsample: str = "transposed"  # dcgan's generator: transposed | resize
    num_classes: int = 0
    spectral_norm: bool = False  # dcgan-tutorial and dcgan; resnet's D is always spectrally normalised
    batch_norm_momentum: float = 0.9
    dropout: float = 0.0  # D's row dropout after each block (trainer.layers.row_dropout)
    sync_batch_norm: bool = True  # BatchNorm statistics over the global batch
    mixed_precision: str = "none"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)


def network_spec(cfg: TrainerConfig) -> NetworkSpec:
    """The one place a TrainerConfig becomes a NetworkSpec ("auto" architecture and its defaults resolved here too)."""
    architecture = resolve_architecture(cfg.architecture, cfg.image_size)
    defaults = resolve_architecture_defaults(cfg, architecture)
    return NetworkSpec(
        architecture=architecture,
        image_size=cfg.image_size,
        channels=cfg.channels,
        latent_dim=cfg.latent_dim,
        width=cfg.width,
        upsample=defaults["upsample"],
        num_classes=cfg.num_classes if cfg.conditional else 0,
        spectral_norm=cfg.spectral_norm,
        batch_norm_momentum=cfg.batch_norm_momentum,
        dropout=defaults["discriminator_dropout"],
        sync_batch_norm=cfg.sync_batch_norm,
        mixed_precision=cfg.mixed_precision,
    )
