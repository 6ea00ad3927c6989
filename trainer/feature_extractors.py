"""Image feature extractors for the sample-quality metrics, chosen by name.

FID is only as meaningful as the feature space it is computed in, so every
result records the extractor's ``name`` and numbers are only ever compared
between results with the same name. Standard FID uses ImageNet InceptionV3
features, whose weights cannot be downloaded on an offline machine; the
default here therefore needs no download at all (see
:class:`RandomConvExtractor`). Another extractor (e.g. Inception from weights
a user provides) plugs in through :func:`register_extractor`.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Protocol, runtime_checkable

import numpy as np

DEFAULT_EXTRACTOR = "random-conv"


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps uint8 images [N, H, W, C] to float64 features [N, feature_dim]."""

    name: str  # recorded with every number; includes a version
    feature_dim: int

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


class RandomConvExtractor:
    """``random-conv-v1``: a fixed, seeded, randomly initialised conv net in NumPy.

    Its FID numbers are NOT Inception FID and must not be compared with
    published FIDs or with numbers from any other extractor: they are
    comparable only with numbers computed by an extractor of the same name
    (``random-conv-v1``). It is the default because it runs on a fresh
    offline machine with nothing to download, the same on every machine:
    weights come from NumPy's legacy ``RandomState`` (whose stream NumPy
    guarantees never to change) with a fixed seed, and the arithmetic is
    float64. Random conv features still capture local structure (edges,
    blobs, contrast) well enough to rank generators and to tell images from
    noise, which is what a release gate needs.

    Architecture: any input size -> antialiased bilinear resize to 32x32,
    grey replicated to RGB, scaled to [-1, 1]; then three 3x3 conv + ReLU
    layers (32, 64, 128 channels) with 2x2 average pooling after the first
    two; features are the global average and global max of the last layer
    (256 dims). Changing any of this, or the seed, means a new name
    (``random-conv-v2``), because old numbers would silently stop being
    comparable.
    """

    name = "random-conv-v1"
    input_size = 32
    widths = (32, 64, 128)
    seed = 20161205  # fixed forever for v1

    def __init__(self, batch_size: int = 128):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.feature_dim = 2 * self.widths[-1]
        rng = np.random.RandomState(self.seed)
        self.kernels: list[np.ndarray] = []
        in_channels = 3
        for width in self.widths:
            # He-normal, so activations keep their scale through the ReLUs.
            std = np.sqrt(2.0 / (9 * in_channels))
            self.kernels.append(rng.standard_normal((3, 3, in_channels, width)) * std)
            in_channels = width

    def weights_fingerprint(self) -> str:
        """SHA-256 of the weights: identical on every machine, or the numbers are not comparable."""
        digest = hashlib.sha256()
        for kernel in self.kernels:
            digest.update(np.ascontiguousarray(kernel, dtype="<f8").tobytes())
        return digest.hexdigest()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images)
        if images.shape[0] == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float64)
        height_matrix = _resize_matrix(images.shape[1], self.input_size)
        width_matrix = _resize_matrix(images.shape[2], self.input_size)
        features = [self._features(images[start:start + self.batch_size], height_matrix, width_matrix)
                    for start in range(0, images.shape[0], self.batch_size)]
        return np.concatenate(features, axis=0)

    def _features(self, batch: np.ndarray, height_matrix: np.ndarray, width_matrix: np.ndarray) -> np.ndarray:
        x = batch.astype(np.float64) / 127.5 - 1.0
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        x = np.einsum("ah,nhwc,bw->nabc", height_matrix, x, width_matrix, optimize=True)
        for index, kernel in enumerate(self.kernels):
            x = np.maximum(_conv3x3_same(x, kernel), 0.0)
            if index < len(self.kernels) - 1:
                x = _avg_pool2(x)
        return np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=1)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, C], got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W, 1 or 3], got shape {images.shape}")
    return images


def _resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of a triangle (bilinear) filter, widened when shrinking so it antialiases."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    centres = (np.arange(out_size) + 0.5) * scale - 0.5
    taps = np.arange(in_size)
    weights = np.maximum(0.0, 1.0 - np.abs(taps[None, :] - centres[:, None]) / support)
    empty = weights.sum(axis=1) == 0.0  # can only happen at the borders when enlarging
    weights[empty, np.clip(np.rint(centres[empty]).astype(int), 0, in_size - 1)] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def _conv3x3_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Zero-padded 3x3 convolution as one matrix product over 3x3 patches (im2col)."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # [n, h, w, c, 3, 3]
    columns = patches.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, 9 * c)  # (dy, dx, c) order
    return (columns @ kernel.reshape(9 * c, -1)).reshape(n, h, w, kernel.shape[-1])


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x[:, : h - h % 2, : w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


_REGISTRY: dict[str, Callable[[], FeatureExtractor]] = {
    RandomConvExtractor.name: RandomConvExtractor,
    # The unversioned name is what configs say; results record the versioned one.
    DEFAULT_EXTRACTOR: RandomConvExtractor,
}


def register_extractor(name: str, factory: Callable[[], FeatureExtractor]) -> None:
    """Makes ``get_extractor(name)`` build ``factory()``; refuses to shadow a name."""
    if name in _REGISTRY:
        raise ValueError(f"feature extractor {name!r} is already registered")
    _REGISTRY[name] = factory


def available_extractors() -> list[str]:
    return sorted(_REGISTRY)


def get_extractor(name: str = DEFAULT_EXTRACTOR) -> FeatureExtractor:
    """Builds the extractor registered under ``name``; its ``.name`` is the versioned name to record."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(available_extractors())
        raise ValueError(f"unknown feature extractor {name!r}; available: {known}") from None
    return factory()
