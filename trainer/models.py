"""The DCGAN generator and discriminator (TensorFlow DCGAN tutorial architecture).

The tutorial's networks are kept layer for layer so its published results are a
usable reference. They are generalised over image size the obvious way: the
generator starts from an s x s x 256 block and doubles the resolution with
stride-2 transposed convolutions until it reaches ``cfg.image_size``.

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

import keras
import tensorflow as tf
from keras import layers

from ganpipe.trainer.config import TrainerConfig
from ganpipe.trainer.distributed import replica_rows

# Largest starting resolution: beyond it the Dense projection gets huge, so
# larger images (64, 128) start at 8x8 and add upsampling blocks instead.
MAX_START_SIZE = 8
# The tutorial's bare LeakyReLU() meant alpha=0.3 in tf.keras 2; Keras 3's default
# is 0.2, so the slope is spelled out to keep the tutorial's network.
LEAKY_RELU_SLOPE = 0.3


class SyncBatchNormalization(layers.BatchNormalization):
    """BatchNorm whose training statistics cover the global batch across all replicas.

    With one replica it IS ``BatchNormalization`` (``tf.nn.moments``). With
    several, the mean and then the centred sum of squares are all-reduced: two
    passes, like ``tf.nn.moments``, rather than Keras' ``synchronized=True``
    (E[x^2] - E[x]^2 in float32, and three collectives where this needs two).
    """

    def _moments(self, inputs, mask):
        context = tf.distribute.get_replica_context()
        if mask is not None or context is None or context.num_replicas_in_sync == 1:
            return super()._moments(inputs, mask)
        axes = self._reduction_axes
        count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
        total, total_count = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [tf.reduce_sum(inputs, axis=axes), count])
        mean = total / total_count
        squares = tf.reduce_sum(tf.math.squared_difference(inputs, tf.stop_gradient(mean)), axis=axes)
        variance = context.all_reduce(tf.distribute.ReduceOp.SUM, squares) / total_count
        return mean, variance


def row_dropout(inputs: tf.Tensor, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """Inverted dropout whose mask is this replica's rows of one global-batch draw.

    ``seed`` (shape [2]) fixes the draw; rows are sliced by replica id, so the
    mask a row gets does not depend on how many replicas share the batch.
    """
    row_shape = tf.shape(inputs)[1:]
    keep = replica_rows(
        lambda rows: tf.random.stateless_uniform(tf.concat([[rows], row_shape], 0), seed=seed),
        tf.shape(inputs)[0],
    ) >= rate
    return inputs * tf.cast(keep, inputs.dtype) * tf.cast(1.0 / (1.0 - rate), inputs.dtype)


def generator_start_size(image_size: int) -> int:
    """Side of the generator's first feature map (7 for 28 as in the tutorial; 8 for 32 and up)."""
    return min(image_size // 4, MAX_START_SIZE)


def build_generator(cfg: TrainerConfig, num_classes: int = 0) -> keras.Model:
    """z [N, latent_dim] (and labels int [N] when num_classes > 0) -> images [N, H, W, C] in [-1, 1]."""
    start = generator_start_size(cfg.image_size)
    doublings = int(round(math.log2(cfg.image_size / start)))
    if start * 2**doublings != cfg.image_size or doublings < 2:
        raise ValueError(f"image_size {cfg.image_size} is not start size {start} times a power of two >= 4")
    norm_layer = SyncBatchNormalization if cfg.sync_batch_norm else layers.BatchNormalization

    def norm() -> layers.Layer:
        return norm_layer(momentum=cfg.batch_norm_momentum)

    z = keras.Input(shape=(cfg.latent_dim,), name="z")
    inputs = [z]
    x = z
    if num_classes:
        labels = keras.Input(shape=(), dtype="int32", name="labels")
        inputs.append(labels)
        x = layers.Concatenate()([z, keras.ops.one_hot(labels, num_classes)])

    x = layers.Dense(start * start * 256, use_bias=False)(x)
    x = norm()(x)
    x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)
    x = layers.Reshape((start, start, 256))(x)

    x = layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False)(x)
    x = norm()(x)
    x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)

    # The tutorial has one hidden stride-2 block (64 filters); larger images get
    # more, widest first, so the last hidden block is always the tutorial's 64.
    hidden_blocks = doublings - 1
    for index in range(hidden_blocks):
        filters = min(256, 64 * 2 ** (hidden_blocks - 1 - index))
        x = layers.Conv2DTranspose(filters, 5, strides=2, padding="same", use_bias=False)(x)
        x = norm()(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)

    # No bias anywhere in the generator, as in the tutorial (BatchNorm supplies the shifts).
    x = layers.Conv2DTranspose(cfg.channels, 5, strides=2, padding="same", use_bias=False,
                               activation="tanh")(x)
    if x.dtype != "float32":  # mixed precision: losses and exports see float32 images
        x = layers.Activation("linear", dtype="float32", name="to_float32")(x)
    return keras.Model(inputs if num_classes else z, x, name="generator")


class Discriminator(keras.Model):
    """images [N, H, W, C] in [-1, 1] (and labels int [N]) -> one real/fake logit per image [N, 1].

    The tutorial's layers (Conv 64 / LeakyReLU / Dropout, Conv 128 / LeakyReLU /
    Dropout, Dense 1), written as a subclass so a call can take the dropout
    seed and the labels. In training mode ``noise_seed`` is required: the
    dropout masks come from it (see :func:`row_dropout`).
    """

    def __init__(self, cfg: TrainerConfig, num_classes: int = 0):
        super().__init__(name="discriminator")
        wrap = layers.SpectralNormalization if cfg.spectral_norm else (lambda layer: layer)
        self.image_shape = (cfg.image_size, cfg.image_size, cfg.channels)
        self.num_classes = num_classes
        self.dropout_rate = cfg.discriminator_dropout
        self.convs = [wrap(layers.Conv2D(filters, 5, strides=2, padding="same")) for filters in (64, 128)]
        self.activations = [layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE) for _ in self.convs]
        self.flatten = layers.Flatten()
        self.head = wrap(layers.Dense(1))
        if num_classes:
            features = (cfg.image_size // 4) ** 2 * 128
            self.embedding = layers.Embedding(num_classes, features, name="class_projection")

    def call(self, images, labels=None, training=False, noise_seed=None):
        x = images
        for index, (conv, activation) in enumerate(zip(self.convs, self.activations)):
            x = activation(conv(x))
            if training and self.dropout_rate > 0:
                if noise_seed is None:
                    raise ValueError("the discriminator needs noise_seed in training mode (dropout masks)")
                x = row_dropout(x, self.dropout_rate, tf.random.experimental.stateless_fold_in(noise_seed, index))
        features = self.flatten(x)
        logits = self.head(features)
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            projection = tf.reduce_sum(self.embedding(labels) * features, axis=1, keepdims=True)
            logits = logits + projection
        return tf.cast(logits, tf.float32)

    def build_for_inputs(self) -> "Discriminator":
        """Creates the variables (call it inside the strategy scope) by one inference call."""
        images = tf.zeros((1, *self.image_shape))
        labels = tf.zeros((1,), tf.int32) if self.num_classes else None
        self(images, labels=labels, training=False)
        return self


def build_discriminator(cfg: TrainerConfig, num_classes: int = 0) -> Discriminator:
    """The discriminator with its variables created."""
    return Discriminator(cfg, num_classes).build_for_inputs()


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
