"""Generator -> SavedModel that TF Serving (and plain TensorFlow) loads without our code.

The model is wrapped in a ``tf.Module`` whose ``tf.function`` signatures hold
the whole serving path (noise from seeds, inference-mode generator, uint8
conversion, PNG encoding) as TensorFlow ops. The SavedModel therefore needs
neither Keras nor this package to load: ``tf.saved_model.load(dir)`` and
``signatures[...]`` are all a client uses.

A class-conditional generator keeps the two signatures and their inputs
unchanged: each row's class is then a fixed function of its latent vector
(``labels_for_latents``), so ``serving_default`` and ``generate_from_seeds``
still give one image per z / seed whatever the batch. A third signature,
``generate_with_labels`` (z, labels), chooses the class, and the class
names travel with it: ``assets/class_names.txt`` (line i names label i) and
the string variable ``class_names``, so a client can ask for "class X".
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

import keras
import tensorflow as tf

from ganpipe import contract
from ganpipe.trainer.config import TrainerConfig
from ganpipe.trainer.models import labels_for_latents, latents_for_seeds, to_uint8


class GeneratorModule(tf.Module):
    """The exported object: a generator plus its serving signatures."""

    def __init__(self, generator: keras.Model, cfg: TrainerConfig, class_names: Sequence[str] = ()):
        super().__init__(name="gan_generator")
        self.generator = generator
        self.latent_dim = cfg.latent_dim
        self.classes = cfg.num_classes if cfg.conditional else 0
        if cfg.conditional and self.classes < 2:
            raise ValueError("a conditional generator is exported with its num_classes resolved (>= 2)")
        # Plain attributes a client can read after tf.saved_model.load().
        self.image_size = tf.Variable(cfg.image_size, trainable=False, dtype=tf.int64, name="image_size")
        self.channels = tf.Variable(cfg.channels, trainable=False, dtype=tf.int64, name="channels")
        self.num_classes = tf.Variable(self.classes, trainable=False, dtype=tf.int64, name="num_classes")
        if self.classes:
            names = list(class_names) or [str(index) for index in range(self.classes)]
            if len(names) != self.classes:
                raise ValueError(f"{len(names)} class names for {self.classes} classes")
            self.class_names = tf.Variable(names, trainable=False, dtype=tf.string, name="class_names")

        latent_spec = tf.TensorSpec([None, cfg.latent_dim], tf.float32, name=contract.LATENT_INPUT)
        self.serving = tf.function(self._from_latents, input_signature=[latent_spec])
        self.from_seeds = tf.function(
            self._from_seeds,
            input_signature=[tf.TensorSpec([None], tf.int64, name=contract.SEEDS_INPUT)],
        )
        if self.classes:
            self.with_labels = tf.function(
                self._with_labels,
                input_signature=[latent_spec, tf.TensorSpec([None], tf.int64, name=contract.LABELS_INPUT)],
            )

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        functions = {
            contract.SERVING_SIGNATURE: self.serving.get_concrete_function(),
            contract.SEEDS_SIGNATURE: self.from_seeds.get_concrete_function(),
        }
        if self.classes:
            functions[contract.CONDITIONAL_SIGNATURE] = self.with_labels.get_concrete_function()
        return functions

    def _generate(self, z: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        inputs = [z, tf.cast(labels, tf.int32)] if self.classes else z
        return to_uint8(self.generator(inputs, training=False))

    def _labels(self, z: tf.Tensor) -> tf.Tensor | None:
        return labels_for_latents(z, self.classes) if self.classes else None

    def _from_latents(self, z: tf.Tensor) -> dict[str, tf.Tensor]:
        z = _finite(z)
        return {contract.IMAGES_OUTPUT: self._generate(z, self._labels(z))}

    def _with_labels(self, z: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        z = _finite(z)
        tf.debugging.assert_less(labels, tf.constant(self.classes, tf.int64),
                                 message="labels must be < num_classes")
        tf.debugging.assert_non_negative(labels, message="labels must be >= 0")
        return {contract.IMAGES_OUTPUT: self._generate(z, labels)}

    def _from_seeds(self, seeds: tf.Tensor) -> dict[str, tf.Tensor]:
        """Each seed -> the same image whatever the batch around it.

        The generator runs once per seed (a batch of one) inside ``map_fn``:
        batched matmuls and convolutions may pick other kernels with other
        rounding for other batch sizes, and a pixel on a .5 boundary would then
        flip. Seeds are for reproducible pictures, not throughput; the batched
        path is ``serving_default``.
        """
        z = latents_for_seeds(seeds, self.latent_dim)
        if self.classes:
            labels = self._labels(z)
            images = tf.map_fn(lambda row: self._generate(row[0][None], row[1][None])[0], (z, labels),
                               fn_output_signature=tf.uint8)
        else:
            images = tf.map_fn(lambda row: self._generate(row[None], None)[0], z, fn_output_signature=tf.uint8)
        pngs = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        return {contract.IMAGES_OUTPUT: images, contract.PNG_OUTPUT: pngs}


def _finite(z: tf.Tensor) -> tf.Tensor:
    """z, or an InvalidArgument error (TF Serving: HTTP 400) when it holds NaN or Inf, which would
    otherwise come back as a silently black image."""
    return tf.debugging.check_numerics(z, "z must hold finite numbers; it holds NaN or Inf")


def export_generator(generator: keras.Model, cfg: TrainerConfig, export_dir: str,
                     class_names: Sequence[str] = ()) -> None:
    """Writes the SavedModel: ``serving_default`` (z), ``generate_from_seeds`` (seeds), and for a
    conditional generator ``generate_with_labels`` (z, labels) and the class names asset.

    ``class_names``: conditional only, one per class in label order (default: the numbers).
    """
    module = GeneratorModule(generator, cfg, class_names)
    with tempfile.TemporaryDirectory() as scratch:
        if module.classes:
            path = os.path.join(scratch, contract.CLASS_NAMES_ASSET)
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write("".join(f"{name}\n" for name in module.class_names.numpy().astype(str)))
            module.class_names_file = tf.saved_model.Asset(path)  # copied into assets/ by save
        tf.saved_model.save(module, export_dir, signatures=module.signatures())
