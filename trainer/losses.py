"""GAN losses: the DCGAN tutorial's non-saturating binary cross-entropy on logits.

Each loss comes in two layers: a per-example function (shape [N]) and a
reduced one that averages over the GLOBAL batch with
``tf.nn.compute_average_loss``. Under a tf.distribute strategy every replica
sees only its slice of the batch; dividing by the global batch size makes the
gradients that the strategy sums across replicas equal to the gradient of the
mean over the whole batch, whatever the number of replicas.
"""

from __future__ import annotations

import tensorflow as tf


def _bce_with_logits(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example BCE: logits [N] or [N, 1] -> [N]."""
    logits = tf.reshape(logits, [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def generator_loss_per_example(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss -log D(G(z)): strong gradients while D wins early on."""
    logits = tf.reshape(fake_logits, [-1])
    return _bce_with_logits(tf.ones_like(logits), logits)


def discriminator_loss_per_example(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """-log D(x) - log(1 - D(G(z))), per example (real and fake of the same batch row summed)."""
    real_logits = tf.reshape(real_logits, [-1])
    fake_logits = tf.reshape(fake_logits, [-1])
    real = _bce_with_logits(tf.ones_like(real_logits), real_logits)
    fake = _bce_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return real + fake


def generator_loss(fake_logits: tf.Tensor, global_batch_size: int | None = None) -> tf.Tensor:
    """Scalar generator loss averaged over the global batch (the local batch when None)."""
    return tf.nn.compute_average_loss(generator_loss_per_example(fake_logits),
                                      global_batch_size=global_batch_size)


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                       global_batch_size: int | None = None) -> tf.Tensor:
    """Scalar discriminator loss averaged over the global batch (the local batch when None)."""
    return tf.nn.compute_average_loss(discriminator_loss_per_example(real_logits, fake_logits),
                                      global_batch_size=global_batch_size)
