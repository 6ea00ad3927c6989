"""The networks: the TF DCGAN tutorial's (here), dcgan (trainer/dcgan.py) and resnet (trainer/resnet.py).

``build_generator`` / ``build_discriminator`` take a :class:`NetworkSpec`
(``config.network_spec(cfg)``) and dispatch on ``spec.architecture``; the
serving helpers (latents per seed, labels per latent, uint8) live here too.

The tutorial's networks (``architecture: dcgan-tutorial``) are kept layer for layer so its published results are a
usable reference. They are generalised over image size the obvious way: the
generator starts from an s x s x 256 block and doubles the resolution with
stride-2 transposed convolutions until it reaches ``spec.image_size``.

Three departures, each invisible with one replica and the default config:

- The generator's BatchNorm layers can take their statistics over the GLOBAL
  batch (:class:`SyncBatchNormalization`), so N replicas of B/N rows normalise
  exactly as one replica of B rows does.
- The discriminator's dropout masks are stateless draws for the whole global
  batch, keyed by (seed, step, call), of which each replica keeps its own rows
  (:func:`row_dropout`). Keras' ``Dropout`` would give every replica the SAME
  mask (one seed state, mirrored), and a different one than a single replica.
- Options from the config: spectral normalisation in D, class conditioning
  (one-hot labels concatenated to z in G; a projection term in D, Miyato &
  Koyama 2018), and a float32 output under mixed precision.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
import tensorflow as tf
from keras import layers

from ganpipe.trainer import dcgan, resnet
from ganpipe.trainer.config import NetworkSpec
# Re-exported: the names these helpers had before trainer/layers.py held them.
from ganpipe.trainer.layers import (  # noqa: F401
    ProjectionDiscriminator, SyncBatchNormalization, batch_norm, dtype_policy, float32_output, generator_inputs,
    row_dropout,
    spectral_norm_if,
)

# Largest starting resolution: beyond it the Dense projection gets huge, so
# larger images (64, 128) start at 8x8 and add upsampling blocks instead.
MAX_START_SIZE = 8
# The tutorial's bare LeakyReLU() meant alpha=0.3 in tf.keras 2; Keras 3's default
# is 0.2, so the slope is spelled out to keep the tutorial's network.
LEAKY_RELU_SLOPE = 0.3


def generator_start_size(image_size: int) -> int:
    """Side of the generator's first feature map (7 for 28 as in the tutorial; 8 for 32 and up)."""
    return min(image_size // 4, MAX_START_SIZE)


def tutorial_generator(spec: NetworkSpec) -> keras.Model:
    """z [N, latent_dim] (and labels int [N] when conditional) -> images [N, H, W, C] in [-1, 1]."""
    start = generator_start_size(spec.image_size)
    doublings = int(round(math.log2(spec.image_size / start)))
    if start * 2**doublings != spec.image_size or doublings < 2:
        raise ValueError(f"image_size {spec.image_size} is not start size {start} times a power of two >= 4")

    inputs, x = generator_inputs(spec)

    x = layers.Dense(start * start * 256, use_bias=False)(x)
    x = batch_norm(spec)(x)
    x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)
    x = layers.Reshape((start, start, 256))(x)

    x = layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False)(x)
    x = batch_norm(spec)(x)
    x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)

    # The tutorial has one hidden stride-2 block (64 filters); larger images get
    # more, widest first, so the last hidden block is always the tutorial's 64.
    hidden_blocks = doublings - 1
    for index in range(hidden_blocks):
        filters = min(256, 64 * 2 ** (hidden_blocks - 1 - index))
        x = layers.Conv2DTranspose(filters, 5, strides=2, padding="same", use_bias=False)(x)
        x = batch_norm(spec)(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)

    # No bias anywhere in the generator, as in the tutorial (BatchNorm supplies the shifts).
    x = layers.Conv2DTranspose(spec.channels, 5, strides=2, padding="same", use_bias=False,
                               activation="tanh")(x)
    return keras.Model(inputs if spec.num_classes else inputs[0], float32_output(x), name="generator")


class Discriminator(ProjectionDiscriminator):
    """The tutorial's discriminator: Conv 64 / LeakyReLU / Dropout, Conv 128 / LeakyReLU / Dropout, Dense 1.

    A subclass so a call can take the dropout seed and the labels (see
    :class:`~ganpipe.trainer.layers.ProjectionDiscriminator`).
    """

    def __init__(self, spec: NetworkSpec):
        super().__init__(spec)
        wrap = spectral_norm_if(spec.spectral_norm)
        self.dropout_rate = spec.dropout
        self.convs = [wrap(layers.Conv2D(filters, 5, strides=2, padding="same")) for filters in (64, 128)]
        self.activations = [layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE) for _ in self.convs]
        self.flatten = layers.Flatten()
        self.head = wrap(layers.Dense(1))
        if spec.num_classes:
            features = (spec.image_size // 4) ** 2 * 128
            self.embedding = layers.Embedding(spec.num_classes, features, name="class_projection")

    def features(self, images, training, noise_seed):
        x = images
        for index, (conv, activation) in enumerate(zip(self.convs, self.activations)):
            x = self.dropout(activation(conv(x)), index, training, noise_seed)
        return self.flatten(x)


_GENERATORS: dict[str, Callable[[NetworkSpec], keras.Model]] = {
    "dcgan-tutorial": tutorial_generator,
    "dcgan": dcgan.generator,
    "resnet": resnet.generator,
}
_DISCRIMINATORS: dict[str, Callable[[NetworkSpec], ProjectionDiscriminator]] = {
    "dcgan-tutorial": Discriminator,
    "dcgan": dcgan.Discriminator,
    "resnet": resnet.Discriminator,
}


def build_generator(spec: NetworkSpec) -> keras.Model:
    """spec.architecture's generator, built under spec.mixed_precision's dtype policy.

    z float32 [N, latent_dim] (and labels int32 [N] when spec.num_classes) -> images float32
    [N, H, W, C] in [-1, 1].
    """
    with dtype_policy(spec.mixed_precision):
        return _GENERATORS[spec.architecture](spec)


def build_discriminator(spec: NetworkSpec) -> ProjectionDiscriminator:
    """spec.architecture's discriminator with its variables created: images float32 [N, H, W, C]
    (and labels int32 [N]) -> logits float32 [N, 1]."""
    with dtype_policy(spec.mixed_precision):
        return _DISCRIMINATORS[spec.architecture](spec).build_for_inputs()


def latents_for_seeds(seeds: tf.Tensor, latent_dim: int) -> tf.Tensor:
    """int seeds [N] -> z [N, latent_dim], one fixed draw per seed.

    Each row depends only on its own seed (``stateless_normal`` with seed
    [seed, 0]), never on the batch it sits in: seed 7 is the same picture in
    every request, every process and every replica.
    """
    seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)
    zero = tf.constant(0, tf.int64)
    return tf.map_fn(
        lambda seed: tf.random.stateless_normal([latent_dim], seed=tf.stack([seed, zero])),
        seeds,
        fn_output_signature=tf.TensorSpec([latent_dim], tf.float32),
    )


def labels_for_latents(z: tf.Tensor, num_classes: int) -> tf.Tensor:
    """z [N, latent] -> a class per row from the row's bytes (fingerprint mod num_classes).

    What a conditional generator's class-free signatures use: deterministic,
    independent of the batch, uniform over classes, and -- unlike any rule
    based on z's values (e.g. argmax) -- it does not skew the z a class gets.
    """
    fingerprint = tf.bitcast(tf.fingerprint(z)[:, :4], tf.int32)
    return tf.math.floormod(fingerprint, num_classes)


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Generator output in [-1, 1] -> uint8 pixels: round((x + 1) * 127.5), clipped to [0, 255]."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def recompute_batch_norm_statistics(generator: keras.Model, latent_dim: int, num_classes: int = 0,
                                    batches: int = 8, batch_size: int = 64, seed: int = 0) -> None:
    """Sets every BatchNorm layer's moving mean and variance to this generator's own activation statistics.

    Needed after an EMA of the weights: averaged weights produce activations
    whose statistics are not those of the trained network, whose moving
    statistics the EMA copy would otherwise inherit; in inference mode the
    mismatch shifts every feature map (measured: docs/design.md, "EMA and
    BatchNorm"). This is BigGAN's "standing statistics" (Brock et al. 2019,
    appendix C.1): the mean over ``batches`` batches of z ~ N(0, 1) (fixed
    draws from ``seed``, so it is deterministic) of each layer's batch mean
    and variance. A generator without BatchNorm is left unchanged.
    """
    # Keras' own walk over every tracked sublayer: the public `layers` misses those inside custom layers
    # (resnet's blocks).
    norms = [layer for layer in generator._flatten_layers() if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    try:
        for index in range(batches):
            # moving <- momentum * moving + (1 - momentum) * batch: with momentum i/(i+1) it is the running mean.
            for layer in norms:
                layer.momentum = index / (index + 1.0)
            z = tf.random.stateless_normal([batch_size, latent_dim], seed=[seed, index])
            inputs = [z, labels_for_latents(z, num_classes)] if num_classes else z
            generator(inputs, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
