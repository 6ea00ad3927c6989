"""The DCGAN generator and discriminator (TensorFlow DCGAN tutorial architecture).

The tutorial's networks are kept layer for layer so its published results are a
usable reference. They are generalised over image size the obvious way: the
generator starts from an s x s x 256 block and doubles the resolution with
stride-2 transposed convolutions until it reaches ``cfg.image_size``.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from trainer.config import TrainerConfig

# Largest starting resolution: beyond it the Dense projection gets huge, so
# larger images (64, 128) start at 8x8 and add upsampling blocks instead.
MAX_START_SIZE = 8
# The tutorial's bare LeakyReLU() meant alpha=0.3 in tf.keras 2; Keras 3's default
# is 0.2, so the slope is spelled out to keep the tutorial's network.
LEAKY_RELU_SLOPE = 0.3
DROPOUT_RATE = 0.3


def generator_start_size(image_size: int) -> int:
    """Side of the generator's first feature map (7 for 28 as in the tutorial; 8 for 32 and up)."""
    return min(image_size // 4, MAX_START_SIZE)


def build_generator(cfg: TrainerConfig) -> keras.Model:
    """z [N, latent_dim] -> images [N, H, W, C] in [-1, 1] (tanh)."""
    start = generator_start_size(cfg.image_size)
    doublings = int(round(math.log2(cfg.image_size / start)))
    if start * 2**doublings != cfg.image_size or doublings < 2:
        raise ValueError(f"image_size {cfg.image_size} is not start size {start} times a power of two >= 4")

    model = keras.Sequential(name="generator")
    model.add(keras.Input(shape=(cfg.latent_dim,), name="z"))
    model.add(layers.Dense(start * start * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))
    model.add(layers.Reshape((start, start, 256)))

    model.add(layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))

    # The tutorial has one hidden stride-2 block (64 filters); larger images get
    # more, widest first, so the last hidden block is always the tutorial's 64.
    hidden_blocks = doublings - 1
    for index in range(hidden_blocks):
        filters = min(256, 64 * 2 ** (hidden_blocks - 1 - index))
        model.add(layers.Conv2DTranspose(filters, 5, strides=2, padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))

    # No bias anywhere in the generator, as in the tutorial (BatchNorm supplies the shifts).
    model.add(layers.Conv2DTranspose(cfg.channels, 5, strides=2, padding="same", use_bias=False,
                                     activation="tanh"))
    return model


def build_discriminator(cfg: TrainerConfig) -> keras.Model:
    """images [N, H, W, C] in [-1, 1] -> one real/fake logit per image [N, 1]."""
    model = keras.Sequential(name="discriminator")
    model.add(keras.Input(shape=(cfg.image_size, cfg.image_size, cfg.channels), name="images"))
    model.add(layers.Conv2D(64, 5, strides=2, padding="same"))
    model.add(layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))
    model.add(layers.Dropout(DROPOUT_RATE))
    model.add(layers.Conv2D(128, 5, strides=2, padding="same"))
    model.add(layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))
    model.add(layers.Dropout(DROPOUT_RATE))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


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


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Generator output in [-1, 1] -> uint8 pixels: round((x + 1) * 127.5), clipped to [0, 255]."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)
