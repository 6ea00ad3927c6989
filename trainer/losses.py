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

import dataclasses
from typing import Callable

import tensorflow as tf

from ganpipe.trainer.config import LOSSES

# A |grad| of exactly zero would make sqrt's gradient NaN.
_NORM_EPSILON = 1e-12


def _bce_with_logits(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example BCE: logits [N] or [N, 1] -> [N]."""
    logits = tf.reshape(logits, [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def _non_saturating_generator(fake_logits: tf.Tensor) -> tf.Tensor:
    return _bce_with_logits(tf.ones_like(fake_logits), fake_logits)


def _critic_generator(fake_logits: tf.Tensor) -> tf.Tensor:
    return -fake_logits


def _bce_discriminator(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    real = _bce_with_logits(tf.ones_like(real_logits), real_logits)
    fake = _bce_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return real + fake


def _hinge_discriminator(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)


def _wasserstein_critic(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    return fake_logits - real_logits


@dataclasses.dataclass(frozen=True)
class GanLoss:
    """One loss: per-example functions of logits [N] -> [N], and whether D adds WGAN-GP's penalty."""

    generator: Callable[[tf.Tensor], tf.Tensor]
    discriminator: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    gradient_penalty: bool = False


# The one table from train.loss to its functions (config.LOSSES names the same keys).
# bce: the tutorial's non-saturating -log D(G(z)) for G (strong gradients while D wins early on),
#   -log D(x) - log(1 - D(G(z))) for D;
# hinge (Lim & Ye 2017; SNGAN): -D(G(z)) for G, relu(1 - D(x)) + relu(1 + D(G(z))) for D;
# wgan-gp (Gulrajani et al. 2017): -D(G(z)) for G, D(G(z)) - D(x) plus the gradient penalty for D.
LOSS_FUNCTIONS: dict[str, GanLoss] = {
    "bce": GanLoss(_non_saturating_generator, _bce_discriminator),
    "hinge": GanLoss(_critic_generator, _hinge_discriminator),
    "wgan-gp": GanLoss(_critic_generator, _wasserstein_critic, gradient_penalty=True),
}
assert tuple(LOSS_FUNCTIONS) == LOSSES, "trainer/config.py LOSSES and LOSS_FUNCTIONS disagree"


def gan_loss(name: str) -> GanLoss:
    """The table entry of a resolved loss name (not "auto"); ValueError for an unknown one."""
    try:
        return LOSS_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}") from None


def generator_loss_per_example(fake_logits: tf.Tensor, loss: str = "bce") -> tf.Tensor:
    """The generator's loss per fake image: logits [N] or [N, 1] -> [N] (see LOSS_FUNCTIONS)."""
    return gan_loss(loss).generator(tf.reshape(fake_logits, [-1]))


def discriminator_loss_per_example(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                                   loss: str = "bce") -> tf.Tensor:
    """The discriminator's loss per batch row, its real and its fake image summed: [N] (see LOSS_FUNCTIONS).

    For wgan-gp the gradient penalty is added by the caller.
    """
    return gan_loss(loss).discriminator(tf.reshape(real_logits, [-1]), tf.reshape(fake_logits, [-1]))


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
