"""Differentiable augmentation of everything the discriminator sees (DiffAugment), with fixed or adaptive p.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
GAN Training"), policy "color,translation,cutout", as their TensorFlow code
does it on images in [-1, 1]:

- colour: brightness + U[-0.5, 0.5]; saturation (x - mean over channels) *
  U[0, 2]; contrast (x - mean over the image) * U[0.5, 1.5];
- translation by up to 1/8 of the side in each direction, zero padded;
- cutout: a square of half the side, zeroed, anywhere (it may leave the image).

The SAME function transforms real and generated images before D (and the
WGAN-GP mixes, and the reals R1 differentiates through), so D cannot tell real
from fake by the augmentation, and G learns through it: every op is
differentiable with respect to the images (gathers and products).

Each op is applied to each image with probability p (Karras et al. 2020's
gating; p = 1 is DiffAugment's). ``ada`` adapts p every ``ada_interval``
steps from r_t = E[sign(D(real))] towards ``ada_target`` (Karras et al.
2020, "Training GANs with Limited Data"), keeping p and the running sum in
checkpointed variables (:class:`AdaptiveProbability`), so a resumed run
continues exactly.

Randomness: every parameter is a stateless draw for the GLOBAL batch keyed by
``seed`` (a function of (train.seed, step, call) in trainer/train.py), of which
each replica keeps its own rows (``replica_rows``): N replicas augment their
rows exactly as one replica augments the whole batch.
"""

from __future__ import annotations

import tensorflow as tf

from ganpipe.trainer.distributed import replica_rows

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
# Tags folded into the call's seed: one independent stream per kind of parameter.
_GATES, _COLOR, _TRANSLATION, _CUTOUT = range(4)


def _uniform(seed: tf.Tensor, tag: int, rows: tf.Tensor, columns: int) -> tf.Tensor:
    """This replica's rows of a U[0, 1) draw of [global rows, columns] keyed by (seed, tag)."""
    key = tf.random.experimental.stateless_fold_in(seed, tag)
    return replica_rows(lambda n: tf.random.stateless_uniform([n, columns], seed=key), rows)


def _color(images: tf.Tensor, params: tf.Tensor, gate: tf.Tensor) -> tf.Tensor:
    """params U[0,1) [N, 3] -> brightness, saturation, contrast; gate float [N] (0: the image, exactly)."""
    brightness = params[:, 0, None, None, None] - 0.5
    saturation = params[:, 1, None, None, None] * 2.0
    contrast = params[:, 2, None, None, None] + 0.5
    x = images + brightness
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * saturation + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * contrast + mean
    # A select, not factors of 1 and offsets of 0: those would still round the untouched images.
    return tf.where(gate[:, None, None, None] > 0, x, images)


def _shift_axis(images: tf.Tensor, shift: tf.Tensor, axis: int) -> tf.Tensor:
    """out[.., i, ..] = images[.., i + shift, ..] along ``axis`` (1 or 2), zero where that is outside."""
    size = images.shape[axis]
    padding = [[0, 0]] * 4
    padding[axis] = [1, 1]
    padded = tf.pad(images, padding)
    # Indices past either edge land on the zero padding (index 0 or size + 1).
    index = tf.clip_by_value(tf.range(size)[None, :] + shift[:, None] + 1, 0, size + 1)
    return tf.gather(padded, index, axis=axis, batch_dims=1)


def _translation(images: tf.Tensor, params: tf.Tensor, gate: tf.Tensor) -> tf.Tensor:
    """params U[0,1) [N, 2] -> integer shifts in [-side/8, side/8] along y and x (0 where gate is 0)."""
    height, width = images.shape[1], images.shape[2]
    limits = tf.constant([int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)])
    shifts = tf.cast(tf.floor(params * tf.cast(2 * limits + 1, params.dtype)), tf.int32) - limits
    shifts = shifts * tf.cast(gate[:, None], tf.int32)
    return _shift_axis(_shift_axis(images, shifts[:, 0], 1), shifts[:, 1], 2)


def _cutout(images: tf.Tensor, params: tf.Tensor, gate: tf.Tensor) -> tf.Tensor:
    """params U[0,1) [N, 2] -> centre of a zeroed square of half the side (nothing where gate is 0)."""
    height, width = images.shape[1], images.shape[2]
    size_y, size_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    # The reference's offsets: [0, side + (1 - size % 2)), the square [offset - size // 2, + size).
    centre_y = tf.cast(tf.floor(params[:, 0] * (height + 1 - size_y % 2)), tf.int32) - size_y // 2
    centre_x = tf.cast(tf.floor(params[:, 1] * (width + 1 - size_x % 2)), tf.int32) - size_x // 2
    ys = tf.range(height)[None, :]
    xs = tf.range(width)[None, :]
    inside_y = (ys >= centre_y[:, None]) & (ys < centre_y[:, None] + size_y)  # [N, H]
    inside_x = (xs >= centre_x[:, None]) & (xs < centre_x[:, None] + size_x)  # [N, W]
    cut = inside_y[:, :, None] & inside_x[:, None, :] & (gate[:, None, None] > 0)
    return images * tf.cast(~cut, images.dtype)[..., None]


def diff_augment(images: tf.Tensor, seed: tf.Tensor, p: tf.Tensor | float = 1.0) -> tf.Tensor:
    """DiffAugment "color,translation,cutout": images float32 [N, H, W, C] in [-1, 1] -> same shape.

    ``seed`` int64 [2] keys every draw (same seed: same augmentation, bit for
    bit); ``p`` (scalar) is the probability of each of the three ops per image.
    Differentiable with respect to ``images``.
    """
    images = tf.convert_to_tensor(images)
    rows = tf.shape(images)[0]
    gates = tf.cast(_uniform(seed, _GATES, rows, 3) < tf.cast(p, tf.float32), images.dtype)
    x = _color(images, tf.cast(_uniform(seed, _COLOR, rows, 3), images.dtype), gates[:, 0])
    x = _translation(x, _uniform(seed, _TRANSLATION, rows, 2), gates[:, 1])
    return _cutout(x, _uniform(seed, _CUTOUT, rows, 2), gates[:, 2])


class AdaptiveProbability(tf.Module):
    """ADA's p (Karras et al. 2020): raised while D is overconfident on reals, lowered otherwise.

    Every ``interval`` steps, r_t = mean over those steps of E[sign(D(real))];
    p += sign(r_t - target) * batch_size * interval / speed_images, clipped to
    [0, 1]. Both p and the running sum are variables (create this in the
    strategy scope and checkpoint it), so resuming mid-interval is exact.
    """

    def __init__(self, target: float, interval: int, batch_size: int, speed_images: int):
        super().__init__(name="ada")
        self.target = target
        self.interval = interval
        self.adjustment = batch_size * interval / speed_images
        self.p = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="p")
        self.sign_sum = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="sign_sum")

    def observe(self, mean_real_sign: tf.Tensor, step: tf.Tensor) -> None:
        """Adds one step's global E[sign(D(real))]; adjusts p at the end of an interval.

        Call in cross-replica context (after ``strategy.run``) with the all-reduced value.
        """
        self.sign_sum.assign_add(tf.cast(mean_real_sign, tf.float32))

        def adjust() -> tf.Tensor:
            rate = self.sign_sum / float(self.interval)
            self.p.assign(tf.clip_by_value(self.p + tf.sign(rate - self.target) * self.adjustment, 0.0, 1.0))
            self.sign_sum.assign(0.0)
            return tf.constant(True)

        tf.cond(tf.equal(tf.math.floormod(step, self.interval), 0), adjust, lambda: tf.constant(False))
