"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with DCGANs").

Generator: z -> 4x4xC projection, then stride-2 4x4 transposed convolutions
with BatchNorm and ReLU, doubling the resolution and halving the channels,
and a last transposed convolution to the image channels with tanh.
Discriminator, its mirror image: stride-2 4x4 convolutions with BatchNorm
(not after the first) and LeakyReLU(0.2), doubling the channels down to 4x4,
then a linear head. Weights start from N(0, 0.02), BatchNorm scales from
N(1, 0.02), as in the paper.

The depth follows the resolution: one level per doubling from 4x4, so 32 px
has 3 levels, 64 px 4 (the paper's network) and 128 px 5. ``spec.width`` is
the channel count of the level next to the image (the paper's 64-px network
is width 128: 1024-512-256-128; 64 gives PyTorch's reference ngf=ndf=64);
channels double per level away from the image, capped at 8 * width.

Departures: BatchNorm is global-batch (trainer/layers.py), D may use row
dropout (spec.dropout; the paper has none: set train.discriminator_dropout=0)
and spectral normalisation (spec.spectral_norm), and conditioning is one-hot
labels concatenated to z plus D's projection term.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from ganpipe.trainer.config import NetworkSpec
from ganpipe.trainer.layers import (
    ProjectionDiscriminator, batch_norm, float32_output, generator_inputs, spectral_norm_if,
)

START_SIZE = 4
MAX_WIDTH_MULTIPLE = 8
LEAKY_RELU_SLOPE = 0.2  # the paper's
KERNEL = 4


def _weights() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.02)


def _gamma() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(1.0, 0.02)


def levels(image_size: int) -> int:
    """Stride-2 layers between 4x4 and image_size (32 -> 3, 64 -> 4, 128 -> 5)."""
    count = int(round(math.log2(image_size / START_SIZE)))
    if START_SIZE * 2**count != image_size or count < 2:
        raise ValueError(f"image_size {image_size} is not 4 times a power of two >= 4")
    return count


def channels(width: int, level: int) -> int:
    """Channels of the feature map ``level`` steps away from the image (level 0: width)."""
    return width * min(2**level, MAX_WIDTH_MULTIPLE)


def _upsample(spec: NetworkSpec, filters: int, **options) -> keras.layers.Layer:
    """Doubles the side: a 4x4 stride-2 transposed convolution, or nearest x2 and a 3x3 convolution."""
    if spec.upsample == "resize":
        return keras.Sequential([layers.UpSampling2D(2, interpolation="nearest"),
                                 layers.Conv2D(filters, 3, padding="same", kernel_initializer=_weights(),
                                               **options)])
    return layers.Conv2DTranspose(filters, KERNEL, strides=2, padding="same", kernel_initializer=_weights(),
                                  **options)


def generator(spec: NetworkSpec) -> keras.Model:
    """z float32 [N, latent_dim] (and labels int32 [N]) -> images float32 [N, H, W, C] in [-1, 1]."""
    depth = levels(spec.image_size)
    inputs, x = generator_inputs(spec)

    # The paper's "project and reshape" (a 4x4 transposed convolution of a 1x1 input, as a Dense).
    top = channels(spec.width, depth - 1)
    x = layers.Dense(START_SIZE * START_SIZE * top, use_bias=False, kernel_initializer=_weights())(x)
    x = layers.Reshape((START_SIZE, START_SIZE, top))(x)
    x = layers.ReLU()(batch_norm(spec, gamma_initializer=_gamma())(x))
    for level in reversed(range(depth - 1)):
        # No bias before BatchNorm: its shift replaces it.
        x = _upsample(spec, channels(spec.width, level), use_bias=False)(x)
        x = layers.ReLU()(batch_norm(spec, gamma_initializer=_gamma())(x))
    x = _upsample(spec, spec.channels, activation="tanh")(x)
    return keras.Model(inputs if spec.num_classes else inputs[0], float32_output(x), name="generator")


class Discriminator(ProjectionDiscriminator):
    """images float32 [N, H, W, C] in [-1, 1] (and labels int32 [N]) -> logits float32 [N, 1]."""

    def __init__(self, spec: NetworkSpec):
        super().__init__(spec)
        depth = levels(spec.image_size)
        wrap = spectral_norm_if(spec.spectral_norm)
        # The first layer has no BatchNorm (the paper: it would normalise the input images) and so a bias.
        self.convs = [wrap(layers.Conv2D(channels(spec.width, level), KERNEL, strides=2, padding="same",
                                         use_bias=level == 0, kernel_initializer=_weights()))
                      for level in range(depth)]
        self.norms = [batch_norm(spec, gamma_initializer=_gamma()) for _ in range(depth - 1)]
        self.activations = [layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE) for _ in range(depth)]
        self.flatten = layers.Flatten()
        self.head = wrap(layers.Dense(1, kernel_initializer=_weights()))
        if spec.num_classes:
            features = START_SIZE * START_SIZE * channels(spec.width, depth - 1)
            self.embedding = layers.Embedding(spec.num_classes, features, name="class_projection")

    def features(self, images, training, noise_seed):
        x = images
        for index, (conv, activation) in enumerate(zip(self.convs, self.activations)):
            x = conv(x, training=training)
            if index:
                x = self.norms[index - 1](x, training=training)
            x = self.dropout(activation(x), index, training, noise_seed)
        return self.flatten(x)
