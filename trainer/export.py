"""Generator -> SavedModel that TF Serving (and plain TensorFlow) loads without our code.

The model is wrapped in a ``tf.Module`` whose ``tf.function`` signatures hold
the whole serving path (noise from seeds, inference-mode generator, uint8
conversion, PNG encoding) as TensorFlow ops. The SavedModel therefore needs
neither Keras nor this package to load: ``tf.saved_model.load(dir)`` and
``signatures[...]`` are all a client uses.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from trainer import contract
from trainer.config import TrainerConfig
from trainer.models import latents_for_seeds, to_uint8


class GeneratorModule(tf.Module):
    """The exported object: a generator plus its serving signatures."""

    def __init__(self, generator: keras.Model, cfg: TrainerConfig):
        super().__init__(name="gan_generator")
        self.generator = generator
        self.latent_dim = cfg.latent_dim
        # Plain attributes a client can read after tf.saved_model.load().
        self.image_size = tf.Variable(cfg.image_size, trainable=False, dtype=tf.int64, name="image_size")
        self.channels = tf.Variable(cfg.channels, trainable=False, dtype=tf.int64, name="channels")

        self.serving = tf.function(
            self._from_latents,
            input_signature=[tf.TensorSpec([None, cfg.latent_dim], tf.float32, name=contract.LATENT_INPUT)],
        )
        self.from_seeds = tf.function(
            self._from_seeds,
            input_signature=[tf.TensorSpec([None], tf.int64, name=contract.SEEDS_INPUT)],
        )

    def _from_latents(self, z: tf.Tensor) -> dict[str, tf.Tensor]:
        images = to_uint8(self.generator(z, training=False))
        return {contract.IMAGES_OUTPUT: images}

    def _from_seeds(self, seeds: tf.Tensor) -> dict[str, tf.Tensor]:
        """Each seed -> the same image whatever the batch around it.

        The generator runs once per seed (a batch of one) inside ``map_fn``:
        batched matmuls and convolutions may pick other kernels with other
        rounding for other batch sizes, and a pixel on a .5 boundary would then
        flip. Seeds are for reproducible pictures, not throughput; the batched
        path is ``serving_default``.
        """
        z = latents_for_seeds(seeds, self.latent_dim)
        images = tf.map_fn(
            lambda row: to_uint8(self.generator(row[None], training=False))[0],
            z,
            fn_output_signature=tf.uint8,
        )
        pngs = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        return {contract.IMAGES_OUTPUT: images, contract.PNG_OUTPUT: pngs}


def export_generator(generator: keras.Model, cfg: TrainerConfig, export_dir: str) -> None:
    """Writes the SavedModel with ``serving_default`` (z) and ``generate_from_seeds`` (seeds)."""
    module = GeneratorModule(generator, cfg)
    tf.saved_model.save(
        module,
        export_dir,
        signatures={
            contract.SERVING_SIGNATURE: module.serving.get_concrete_function(),
            contract.SEEDS_SIGNATURE: module.from_seeds.get_concrete_function(),
        },
    )
