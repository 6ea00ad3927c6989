"""ResNet GAN as in SNGAN (Miyato et al. 2018, "Spectral Normalization for GANs"; the layout of
StudioGAN's SNGAN baselines and of Gulrajani et al. 2017's ResNet).

Generator: z -> Dense to 4x4xC, residual up-blocks
(BN-ReLU-Upsample(nearest)-Conv3x3-BN-ReLU-Conv3x3, plus an upsampled 1x1
convolution as the shortcut) doubling the resolution up to the image size,
then BN-ReLU-Conv3x3-tanh.
Discriminator: residual down-blocks (ReLU-Conv3x3-ReLU-Conv3x3-AvgPool, with a
1x1 convolution + AvgPool shortcut) down to 4x4, the first one "optimized"
(no activation before its first convolution, which would cut the image's
negative half), then ReLU, a global SUM pool and a linear head. Every
convolution and dense layer of D is spectrally normalised (keras'
SpectralNormalization), whatever train.spectral_norm says: that is the model.

Widths: ``spec.width`` channels next to the image, doubling per level towards
4x4, capped at 8 * width (the same rule as trainer/dcgan.py). Departures:
BatchNorm is global-batch (trainer/layers.py); G's layers before BatchNorm
have no bias (see ``_up_block``); conditioning is one-hot labels
concatenated to z (SNGAN uses conditional BatchNorm) and D's projection term
(its embedding is not spectrally normalised); D may use row dropout after each
block (spec.dropout; SNGAN has none).
"""

from __future__ import annotations

import keras
from keras import layers

from ganpipe.trainer.config import NetworkSpec
from ganpipe.trainer.dcgan import START_SIZE, channels, levels
from ganpipe.trainer.layers import ProjectionDiscriminator, batch_norm, float32_output, generator_inputs


def _up_block(x, filters: int, spec: NetworkSpec):
    """[N, s, s, c] -> [N, 2s, 2s, filters]: pre-activation residual block with nearest upsampling.

    No biases: every convolution here feeds a BatchNorm (this block's, the
    next block's or the final one), which removes any per-channel constant, so
    a bias has a gradient of exactly zero in theory and of float noise in
    practice -- which Adam, dividing by its root mean square, turns into
    lr-sized random steps (and 1 replica and N would walk differently).
    """
    shortcut = layers.Conv2D(filters, 1, use_bias=False)(layers.UpSampling2D(2, interpolation="nearest")(x))
    h = layers.ReLU()(batch_norm(spec)(x))
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(layers.UpSampling2D(2, interpolation="nearest")(h))
    h = layers.ReLU()(batch_norm(spec)(h))
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    return layers.Add()([shortcut, h])


def generator(spec: NetworkSpec) -> keras.Model:
    """z float32 [N, latent_dim] (and labels int32 [N]) -> images float32 [N, H, W, C] in [-1, 1]."""
    depth = levels(spec.image_size)
    inputs, x = generator_inputs(spec)
    top = channels(spec.width, depth)
    # No bias: the first block's BatchNorm (and, through its shortcut, the next one's) absorbs it.
    x = layers.Reshape((START_SIZE, START_SIZE, top))(layers.Dense(START_SIZE * START_SIZE * top, use_bias=False)(x))
    for level in reversed(range(depth)):
        x = _up_block(x, channels(spec.width, level), spec)
    x = layers.ReLU()(batch_norm(spec)(x))
    x = layers.Conv2D(spec.channels, 3, padding="same", activation="tanh")(x)
    return keras.Model(inputs if spec.num_classes else inputs[0], float32_output(x), name="generator")


def _sn(layer: layers.Layer) -> layers.Layer:
    return layers.SpectralNormalization(layer)


class DownBlock(layers.Layer):
    """[N, s, s, c] -> [N, s/2, s/2, filters], every weight spectrally normalised.

    ``optimized``: the first block of D (Miyato et al.'s "OptBlock"): no ReLU
    before the first convolution, and the shortcut pools before its 1x1
    convolution.
    """

    def __init__(self, filters: int, optimized: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.optimized = optimized
        self.conv1 = _sn(layers.Conv2D(filters, 3, padding="same"))
        self.conv2 = _sn(layers.Conv2D(filters, 3, padding="same"))
        self.shortcut_conv = _sn(layers.Conv2D(filters, 1))
        self.pool = layers.AveragePooling2D(2)
        self.shortcut_pool = layers.AveragePooling2D(2)

    def call(self, x, training=False):
        h = x if self.optimized else keras.ops.relu(x)
        h = self.conv1(h, training=training)
        h = self.pool(self.conv2(keras.ops.relu(h), training=training))
        if self.optimized:
            shortcut = self.shortcut_conv(self.shortcut_pool(x), training=training)
        else:
            shortcut = self.shortcut_pool(self.shortcut_conv(x, training=training))
        return h + shortcut


class Discriminator(ProjectionDiscriminator):
    """images float32 [N, H, W, C] in [-1, 1] (and labels int32 [N]) -> logits float32 [N, 1]."""

    def __init__(self, spec: NetworkSpec):
        super().__init__(spec)
        depth = levels(spec.image_size)
        self.blocks = [DownBlock(channels(spec.width, level), optimized=level == 0) for level in range(depth)]
        self.head = _sn(layers.Dense(1))
        if spec.num_classes:
            self.embedding = layers.Embedding(spec.num_classes, channels(spec.width, depth - 1),
                                              name="class_projection")

    def features(self, images, training, noise_seed):
        x = images
        for index, block in enumerate(self.blocks):
            x = self.dropout(block(x, training=training), index, training, noise_seed)
        # Global SUM pooling (SNGAN), not mean: the head sees the evidence of every location.
        return keras.ops.sum(keras.ops.relu(x), axis=(1, 2))
