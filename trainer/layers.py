"""Pieces every architecture shares: global-batch BatchNorm, row-sliced dropout, the dtype policy,
and the discriminator's conditional head.

Each exists so that N replicas of B/N rows compute what one replica of B rows
computes (trainer/distributed.py ``replica_rows``), and so that the networks
in trainer/models.py, dcgan.py and resnet.py read the same way.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras
import tensorflow as tf
from keras import layers

from ganpipe.trainer.config import NetworkSpec
from ganpipe.trainer.distributed import replica_rows

# Keras dtype policy per train.mixed_precision value.
DTYPE_POLICIES = {"none": None, "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


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


def batch_norm(spec: NetworkSpec, **kwargs) -> layers.Layer:
    """The BatchNorm every architecture uses: global-batch statistics unless spec.sync_batch_norm is off."""
    norm_layer = SyncBatchNormalization if spec.sync_batch_norm else layers.BatchNormalization
    return norm_layer(momentum=spec.batch_norm_momentum, **kwargs)


def generator_inputs(spec: NetworkSpec) -> tuple[list, tf.Tensor]:
    """G's Keras inputs and what the first layer sees: z float32 [N, latent], and for a conditional
    network also labels int32 [N], one-hot and concatenated to z (every architecture conditions so)."""
    z = keras.Input(shape=(spec.latent_dim,), name="z")
    if not spec.num_classes:
        return [z], z
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    return [z, labels], layers.Concatenate()([z, keras.ops.one_hot(labels, spec.num_classes)])


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


@contextlib.contextmanager
def dtype_policy(mixed_precision: str) -> Iterator[None]:
    """Keras' global dtype policy for the layers built inside (train.mixed_precision), restored after."""
    name = DTYPE_POLICIES[mixed_precision]
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_output(x):
    """Under mixed precision, a float32 last layer: losses and exports see float32 images."""
    if x.dtype != "float32":
        x = layers.Activation("linear", dtype="float32", name="to_float32")(x)
    return x


def spectral_norm_if(enabled: bool):
    """A wrapper for D's weight layers: keras' SpectralNormalization when enabled, else identity."""
    return layers.SpectralNormalization if enabled else (lambda layer: layer)


class ProjectionDiscriminator(keras.Model):
    """Base of every discriminator: images [N, H, W, C] in [-1, 1] (and labels int [N]) -> logits [N, 1].

    A subclass computes per-image features [N, F] (``features``); this class adds
    the linear head and, when conditional, the projection term
    <embed(y), features> (Miyato & Koyama 2018). Logits are float32 under mixed
    precision. In training mode ``noise_seed`` (shape [2]) keys the dropout masks.
    """

    def __init__(self, spec: NetworkSpec, name: str = "discriminator"):
        super().__init__(name=name)
        self.spec = spec
        self.image_shape = spec.image_shape
        self.num_classes = spec.num_classes

    def features(self, images, training: bool, noise_seed) -> tf.Tensor:
        raise NotImplementedError

    def call(self, images, labels=None, training=False, noise_seed=None):
        features = self.features(images, training, noise_seed)
        logits = self.head(features)
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            projection = tf.reduce_sum(self.embedding(labels) * features, axis=1, keepdims=True)
            logits = logits + projection
        return tf.cast(logits, tf.float32)

    def dropout(self, x, index: int, training: bool, noise_seed):
        """Row dropout after block ``index`` in training mode (spec.dropout; 0 = none)."""
        if not training or self.spec.dropout <= 0:
            return x
        if noise_seed is None:
            raise ValueError("the discriminator needs noise_seed in training mode (dropout masks)")
        return row_dropout(x, self.spec.dropout, tf.random.experimental.stateless_fold_in(noise_seed, index))

    def build_for_inputs(self) -> "ProjectionDiscriminator":
        """Creates the variables (call it inside the strategy scope) by one inference call."""
        images = tf.zeros((1, *self.image_shape))
        labels = tf.zeros((1,), tf.int32) if self.num_classes else None
        self(images, labels=labels, training=False)
        return self
