"""The generator side of a synthetic export: what a SavedModel offers, and its samples batch by batch.

Only the contract's signatures are used (ganpipe/contract.py), so any
generator ganpipe pushed works, loaded with plain TensorFlow. Image i of an
export uses seed ``first_seed + i``:

- unconditional: ``generate_from_seeds(seed)``, label -1;
- conditional, the generator's own class: ``generate_with_labels(z(seed),
  c(z))`` with ``c`` the class the seeds signature picks for that z
  (``labels_for_latents``), so each image is byte for byte the grid's image
  for that seed, now with its label;
- conditional, a chosen class (``--per-class``): ``generate_with_labels(z(seed), label)``.

The conditional calls run one row at a time inside one ``tf.function``, as
the seeds signature does, so an image depends on its seed and label only,
never on the batch around it (batched kernels may round differently).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterator

import numpy as np
import tensorflow as tf

from ganpipe import contract
from ganpipe.trainer.models import labels_for_latents, latents_for_seeds

BATCH = 256  # images per signature call: memory stays one batch whatever the count


class GeneratorError(ValueError):
    """The SavedModel is not a usable ganpipe generator; the message is one line naming it."""


@dataclasses.dataclass(frozen=True)
class GeneratorInfo:
    """What an export needs to know about a loaded generator."""

    num_classes: int  # 0: unconditional
    class_names: tuple[str, ...]  # one per class in label order; () when unconditional
    latent_dim: int  # z width of the conditional signature; 0 when unconditional

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


@dataclasses.dataclass(frozen=True)
class SampleBatch:
    """One batch of samples; every field has the same length B."""

    seeds: np.ndarray  # int64 [B]
    labels: np.ndarray  # int64 [B]; contract.UNKNOWN_LABEL (-1) from an unconditional generator
    images: np.ndarray  # uint8 [B, H, W, C]
    pngs: list[bytes]  # PNG of each image, as the seeds signature's png_bytes encodes it (tf.io.encode_png)


def describe(loaded: Any, model_dir: str) -> GeneratorInfo:
    """Signatures, class count and class names of a loaded generator.

    Class names come from ``assets/class_names.txt`` (contract.CLASS_NAMES_ASSET),
    else the ``class_names`` variable, else the label numbers.

    Raises:
      GeneratorError: no seeds signature; a conditional signature without a fixed z width or a class count.
    """
    signatures = loaded.signatures
    if contract.SEEDS_SIGNATURE not in signatures:
        raise GeneratorError(f"{model_dir} has no '{contract.SEEDS_SIGNATURE}' signature: not a ganpipe generator")
    if contract.CONDITIONAL_SIGNATURE not in signatures:
        return GeneratorInfo(num_classes=0, class_names=(), latent_dim=0)
    _, inputs = signatures[contract.CONDITIONAL_SIGNATURE].structured_input_signature
    latent = inputs.get(contract.LATENT_INPUT)
    latent_dim = latent.shape[-1] if latent is not None and latent.shape.rank == 2 else None
    if not latent_dim:
        raise GeneratorError(f"{model_dir}: '{contract.CONDITIONAL_SIGNATURE}' has no z input of a fixed width")
    names = _class_names(loaded, model_dir)
    count = int(loaded.num_classes.numpy()) if hasattr(loaded, "num_classes") else len(names)
    if count < 1:
        raise GeneratorError(f"{model_dir}: a conditional generator that does not say how many classes it has "
                             "(no num_classes variable, no class names)")
    if names and len(names) != count:
        raise GeneratorError(f"{model_dir}: {len(names)} class names for {count} classes")
    return GeneratorInfo(num_classes=count, class_names=names or tuple(str(index) for index in range(count)),
                         latent_dim=int(latent_dim))


def _class_names(loaded: Any, model_dir: str) -> tuple[str, ...]:
    asset = os.path.join(model_dir, "assets", contract.CLASS_NAMES_ASSET)
    if tf.io.gfile.exists(asset):
        with tf.io.gfile.GFile(asset, "rb") as handle:
            return tuple(handle.read().decode("utf-8", "surrogateescape").splitlines())
    if hasattr(loaded, "class_names"):
        return tuple(name.decode("utf-8", "surrogateescape") for name in loaded.class_names.numpy())
    return ()


def labels_of(info: GeneratorInfo, start: int, stop: int, per_class: bool) -> np.ndarray:
    """int64 [stop - start]: the label image i asks for; -1 means "the generator's own choice"
    (unconditional: no label; conditional: the class its seeds signature would pick).

    With ``per_class``, image i is of class i mod num_classes: the classes interleave, so every
    shard and every prefix of the export is balanced.
    """
    if per_class:
        if not info.conditional:
            raise GeneratorError("per-class samples need a conditional generator")
        return np.arange(start, stop, dtype=np.int64) % info.num_classes
    return np.full(stop - start, contract.UNKNOWN_LABEL, dtype=np.int64)


def sample_batches(loaded: Any, info: GeneratorInfo, first_seed: int, count: int, per_class: bool = False,
                   batch: int = BATCH) -> Iterator[SampleBatch]:
    """Yields ``count`` samples (seeds first_seed .. first_seed + count - 1) in batches of at most ``batch``.

    Nothing is kept between batches: the caller holds at most the batch it was given.

    Raises:
      GeneratorError: the generator returns something other than uint8 [B, H, W, C] images.
    """
    render = _conditional_renderer(loaded, info) if info.conditional else _unconditional_renderer(loaded)
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        seeds = np.arange(first_seed + start, first_seed + stop, dtype=np.int64)
        # Built in the yield itself, so this frame keeps nothing of a batch once the caller moves on.
        yield _batch(seeds, *render(tf.constant(seeds), tf.constant(labels_of(info, start, stop, per_class))))


def _batch(seeds: np.ndarray, images: tf.Tensor, labels: tf.Tensor, pngs: tf.Tensor) -> SampleBatch:
    pixels = images.numpy()
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(pixels) != len(seeds):
        raise GeneratorError(f"the generator returned {pixels.dtype} {list(pixels.shape)} for {len(seeds)} "
                             "seeds, not uint8 [N, H, W, C] images")
    return SampleBatch(seeds=seeds, labels=labels.numpy().astype(np.int64), images=pixels,
                       pngs=[bytes(png) for png in pngs.numpy()])


# (seeds int64 [B], labels int64 [B]: -1 = the generator's own) -> (images uint8 [B,H,W,C], labels int64 [B], PNGs [B])
Renderer = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


def _unconditional_renderer(loaded: Any) -> Renderer:
    signature = loaded.signatures[contract.SEEDS_SIGNATURE]

    def render(seeds: tf.Tensor, labels: tf.Tensor):
        outputs = signature(**{contract.SEEDS_INPUT: seeds})
        if contract.IMAGES_OUTPUT not in outputs or contract.PNG_OUTPUT not in outputs:
            raise GeneratorError(f"'{contract.SEEDS_SIGNATURE}' returned {sorted(outputs)}, not "
                                 f"'{contract.IMAGES_OUTPUT}' and '{contract.PNG_OUTPUT}'")
        return outputs[contract.IMAGES_OUTPUT], labels, outputs[contract.PNG_OUTPUT]

    return render


def _conditional_renderer(loaded: Any, info: GeneratorInfo) -> Renderer:
    signature = loaded.signatures[contract.CONDITIONAL_SIGNATURE]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)])
    def render(seeds: tf.Tensor, labels: tf.Tensor):
        z = latents_for_seeds(seeds, info.latent_dim)
        own = tf.cast(labels_for_latents(z, info.num_classes), tf.int64)
        labels = tf.where(labels < 0, own, labels)

        def one(row):  # a batch of one, as generate_from_seeds does: the image never depends on its neighbours
            latent, label = row
            return signature(**{contract.LATENT_INPUT: latent[None], contract.LABELS_INPUT: label[None]}
                             )[contract.IMAGES_OUTPUT][0]

        images = tf.map_fn(one, (z, labels), fn_output_signature=tf.uint8)
        pngs = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        return images, labels, pngs

    return render
