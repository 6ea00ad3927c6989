"""GAN losses: the tutorial's non-saturating BCE, hinge and WGAN-GP, and gradient penalties.

Each loss comes in two layers: a per-example function (shape [N]) and a
reduced one that averages over the GLOBAL batch with
``tf.nn.compute_average_loss``. Under a tf.distribute strategy every replica
sees only its slice of the batch; dividing by the global batch size makes the
gradients that the strategy sums across replicas equal to the gradient of the
mean over the whole batch, whatever the number of replicas. Penalties are
per example too, so they reduce the same way.
"""

from __future__ import annotations

import tensorflow as tf

# A |grad| of exactly zero would make sqrt's gradient NaN.
_NORM_EPSILON = 1e-12


def _bce_with_logits(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example BCE: logits [N] or [N, 1] -> [N]."""
    logits = tf.reshape(logits, [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def generator_loss_per_example(fake_logits: tf.Tensor, loss: str = "bce") -> tf.Tensor:
    """The generator's loss per fake image.

    bce: non-saturating -log D(G(z)) (strong gradients while D wins early on);
    hinge and wgan-gp: -D(G(z)), the critic's score to raise.
    """
    logits = tf.reshape(fake_logits, [-1])
    if loss == "bce":
        return _bce_with_logits(tf.ones_like(logits), logits)
    if loss in ("hinge", "wgan-gp"):
        return -logits
    raise ValueError(f"unknown loss {loss!r}")


def discriminator_loss_per_example(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                                   loss: str = "bce") -> tf.Tensor:
    """The discriminator's loss per batch row (its real and its fake image summed).

    bce: -log D(x) - log(1 - D(G(z))); hinge: relu(1 - D(x)) + relu(1 + D(G(z)));
    wgan-gp: D(G(z)) - D(x) (the gradient penalty is added by the caller).
    """
    real_logits = tf.reshape(real_logits, [-1])
    fake_logits = tf.reshape(fake_logits, [-1])
    if loss == "bce":
        real = _bce_with_logits(tf.ones_like(real_logits), real_logits)
        fake = _bce_with_logits(tf.zeros_like(fake_logits), fake_logits)
        return real + fake
    if loss == "hinge":
        return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
    if loss == "wgan-gp":
        return fake_logits - real_logits
    raise ValueError(f"unknown loss {loss!r}")


def generator_loss(fake_logits: tf.Tensor, global_batch_size: int | None = None,
                   loss: str = "bce") -> tf.Tensor:
    """Scalar generator loss averaged over the global batch (the local batch when None)."""
    return tf.nn.compute_average_loss(generator_loss_per_example(fake_logits, loss),
                                      global_batch_size=global_batch_size)


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                       global_batch_size: int | None = None, loss: str = "bce") -> tf.Tensor:
    """Scalar discriminator loss averaged over the global batch (the local batch when None)."""
    return tf.nn.compute_average_loss(discriminator_loss_per_example(real_logits, fake_logits, loss),
                                      global_batch_size=global_batch_size)


def squared_gradient_norm(gradients: tf.Tensor) -> tf.Tensor:
    """|grad|^2 per example: [N, ...] -> [N]."""
    gradients = tf.cast(gradients, tf.float32)
    return tf.reduce_sum(tf.square(tf.reshape(gradients, [tf.shape(gradients)[0], -1])), axis=1)


def gradient_penalty_per_example(gradients: tf.Tensor) -> tf.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (|grad D(x_hat)| - 1)^2 per interpolated image."""
    return tf.square(tf.sqrt(squared_gradient_norm(gradients) + _NORM_EPSILON) - 1.0)


def r1_penalty_per_example(gradients: tf.Tensor, gamma: float) -> tf.Tensor:
    """R1 (Mescheder et al. 2018): gamma / 2 * |grad D(x)|^2 per real image."""
    return 0.5 * gamma * squared_gradient_norm(gradients)
