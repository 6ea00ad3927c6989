"""A small CNN trained on the real images' class labels: in-domain features, p(y|x) and CAS.

ImageNet InceptionV3 says little about 28 px digits or 64 px emoji, and its
weights cannot be had offline. A classifier trained on the data's own classes
can: its penultimate layer is the feature space of "FID with a domain
classifier" (the practice for MNIST-like data, e.g. Binkowski et al. 2018
use a LeNet for MNIST KID), its softmax gives an in-domain Inception Score,
and trained on generated images it gives the Classification Accuracy Score
(Ravuri & Vinyals 2019).

Architecture ``domain-classifier-v1`` (change anything and bump the version):
uint8 [N, H, W, C] -> antialiased bilinear resize to 32x32, grey replicated
to RGB, scaled to [-1, 1] -> three 3x3 conv + ReLU (32, 64, 128 channels),
2x2 max pooling after the first two -> global average -> dense 128 + ReLU
(the features) -> dropout 0.3 -> dense K (logits). One conv per level keeps a
training step at about a third of a two-conv VGG block's cost on CPU.
Trained with Adam 1e-3, batch 64, cross-entropy, for a fixed number of steps
over a seeded shuffle, so the same data, steps and seed give the same weights
on one machine.

Numbers from a domain classifier are comparable only with numbers from the
same classifier (its name carries the fingerprint of its training data).
"""

from __future__ import annotations

import io
import uuid
from typing import Optional

import numpy as np

ARCHITECTURE = "domain-classifier-v1"
INPUT_SIZE = 32
WIDTHS = (32, 64, 128)
FEATURE_DIM = 128
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
DROPOUT = 0.3
PREDICT_BATCH = 256


def build_network(num_classes: int):
    """keras.Model: float32 [N, 32, 32, 3] in [-1, 1] -> (features [N, 128], logits [N, num_classes])."""
    import keras
    from keras import layers

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3))
    x = inputs
    for level, width in enumerate(WIDTHS):
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        if level < len(WIDTHS) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    features = layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(DROPOUT)(features))
    return keras.Model(inputs, [features, logits], name=ARCHITECTURE.replace("-", "_"))


def prepare(images: np.ndarray):
    """uint8 [N, H, W, 1 or 3] -> float32 tf.Tensor [N, 32, 32, 3] in [-1, 1].

    Raises:
      ValueError: not uint8 [N, H, W, 1 or 3].
    """
    import tensorflow as tf

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 [N, H, W, 1 or 3], got {images.dtype} {images.shape}")
    blocks = []
    for start in range(0, max(len(images), 1), PREDICT_BATCH):  # float32 at full size only a block at a time
        x = tf.image.resize(tf.cast(images[start:start + PREDICT_BATCH], tf.float32), (INPUT_SIZE, INPUT_SIZE),
                            antialias=True)
        if images.shape[-1] == 1:
            x = tf.image.grayscale_to_rgb(x)
        blocks.append(tf.clip_by_value(x, 0.0, 255.0) / 127.5 - 1.0)
    return tf.concat(blocks, axis=0)


class DomainClassifier:
    """A trained ``domain-classifier-v1``; a FeatureExtractor (``name``, ``feature_dim``, ``__call__``).

    ``key`` identifies what it was trained on (see ``components/gan_evaluator/classifiers.py``):
    the name ``domain-classifier-v1:<key[:12]>`` keeps numbers from different
    training sets apart.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, network, num_classes: int, key: str):
        self.network = network
        self.num_classes = num_classes
        self.key = key
        self.name = f"{ARCHITECTURE}:{key[:12]}"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features float64 [N, 128] of uint8 images [N, H, W, C]."""
        return self._outputs(images)[0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """p(y|x), float64 [N, num_classes], rows summing to 1."""
        logits = self._outputs(images)[1]
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Top-1 accuracy in [0, 1] on uint8 images [N, H, W, C] with int labels [N]."""
        if len(images) == 0:
            raise ValueError("accuracy of no images")
        predicted = self._outputs(images)[1].argmax(axis=1)
        return float(np.mean(predicted == np.asarray(labels)))

    def _outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, logits = [], []
        for start in range(0, len(images), PREDICT_BATCH):
            f, l = self.network(prepare(images[start:start + PREDICT_BATCH]), training=False)
            features.append(f.numpy())
            logits.append(l.numpy())
        if not features:
            return np.zeros((0, FEATURE_DIM)), np.zeros((0, self.num_classes))
        return (np.concatenate(features).astype(np.float64), np.concatenate(logits).astype(np.float64))

    def to_bytes(self) -> bytes:
        """The weights as an .npz (arr_0 .. arr_n in ``network.weights`` order)."""
        buffer = io.BytesIO()
        np.savez(buffer, *[w.numpy() for w in self.network.weights])
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, num_classes: int, key: str) -> "DomainClassifier":
        """Rebuilds the network and loads weights written by ``to_bytes``.

        Raises:
          ValueError: the weights do not fit this architecture and class count.
        """
        network = build_network(num_classes)
        with np.load(io.BytesIO(data)) as stored:
            arrays = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        if [a.shape for a in arrays] != [tuple(w.shape) for w in network.weights]:
            raise ValueError(f"stored weights do not fit {ARCHITECTURE} with {num_classes} classes")
        network.set_weights(arrays)
        return cls(network, num_classes, key)


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, *, steps: int, seed: int, key: str,
          batch_size: int = BATCH_SIZE) -> DomainClassifier:
    """Trains ``domain-classifier-v1`` for ``steps`` Adam steps on uint8 images [N, H, W, C], labels [N].

    Batches are drawn from a shuffle seeded by ``seed`` (epoch after epoch), the
    weights and dropout are seeded by it too.

    Raises:
      ValueError: no images, labels outside [0, num_classes), mismatched lengths, steps < 1.
    """
    import keras
    import tensorflow as tf

    labels = np.asarray(labels, dtype=np.int64)
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"{len(images)} images with {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    keras.utils.set_random_seed(seed)
    network = build_network(num_classes)
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True, autograph=False)  # straight-line code: nothing to convert
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, network(x, training=True)[1])
        optimizer.apply_gradients(zip(tape.gradient(loss, network.trainable_weights), network.trainable_weights))
        return loss

    prepared = prepare(images)  # small: 32x32x3 float32 is 12 KiB per image
    order = _batches(len(images), batch_size, steps, seed)
    for indices in order:
        step(tf.gather(prepared, indices), tf.constant(labels[indices]))
    return DomainClassifier(network, num_classes, key)


def _batches(count: int, batch_size: int, steps: int, seed: int):
    """``steps`` index arrays of min(batch_size, count), walking seeded permutations epoch after epoch."""
    rng = np.random.RandomState(seed)
    size = min(batch_size, count)
    permutation, position = rng.permutation(count), 0
    for _ in range(steps):
        if position + size > count:
            permutation, position = rng.permutation(count), 0
        yield permutation[position:position + size]
        position += size


def load_or_train(images_and_labels, num_classes: int, *, steps: int, seed: int, key: str,
                  cache_dir: Optional[str]) -> tuple[DomainClassifier, bool]:
    """The classifier for ``key`` from ``cache_dir`` (any tf.io.gfile path) or trained and stored there.

    ``images_and_labels`` is a callable returning (uint8 images, int labels); it
    is only called on a cache miss, so a nightly run on unchanged data never
    reads the images for this. Returns (classifier, whether it came from the cache).
    A damaged cache entry is retrained and replaced, never trusted.
    """
    import tensorflow as tf

    path = f"{cache_dir.rstrip('/')}/{ARCHITECTURE}-{key}.npz" if cache_dir else None
    if path and tf.io.gfile.exists(path):
        try:
            with tf.io.gfile.GFile(path, "rb") as handle:
                return DomainClassifier.from_bytes(handle.read(), num_classes, key), True
        except Exception:  # noqa: BLE001 - truncated zip, wrong shapes, unreadable: retrain and overwrite
            pass
    images, labels = images_and_labels()
    classifier = train(images, labels, num_classes, steps=steps, seed=seed, key=key)
    if path:
        tf.io.gfile.makedirs(cache_dir)
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"  # not NumPy's generator: train() just seeded it
        with tf.io.gfile.GFile(temporary, "wb") as handle:
            handle.write(classifier.to_bytes())
        tf.io.gfile.rename(temporary, path, overwrite=True)  # readers never see half a file
    return classifier, False
