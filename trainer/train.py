"""The GAN training loop: a custom ``strategy.run`` step, written for tf.distribute.

Keras 3's ``model.fit`` cannot drive multi-worker training (keras-team/keras
#20585) and a GAN needs two optimizers anyway, so the loop is our own. It
uses whatever strategy is in scope (the default one today; Mirrored or
MultiWorkerMirrored later) without code changes: variables and optimizer
slots are created in ``strategy.scope()``, the step runs under
``strategy.run``, losses are averaged over the GLOBAL batch and the
optimizers all-reduce (sum) the gradients.

Reproducibility: weights are initialised from ``cfg.seed``, the data order is
shuffled with ``cfg.seed`` and the generator's noise comes from stateless ops
keyed by (``cfg.seed``, step, replica), so the same config on the same
hardware trains the same weights.
"""

from __future__ import annotations

import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from trainer import visualize
from trainer.config import TrainerConfig
from trainer.data import make_dataset
from trainer.losses import discriminator_loss, generator_loss
from trainer.models import build_discriminator, build_generator, latents_for_seeds, to_uint8

LOGGER = logging.getLogger(__name__)

METRICS = ("g_loss", "d_loss", "d_real", "d_fake")
NUM_SAMPLES = 64  # images per sample grid (seeds 0..63, as the exported generate_from_seeds)
LOSS_CURVE_FILE = "loss_curve.png"
SAMPLES_FILE = "samples.png"
SAMPLES_DIR = "samples"


class EmptyDatasetError(ValueError):
    """The training files exist but hold no examples."""


class GanTrainer:
    """Both networks, their optimizers and the compiled distributed step."""

    def __init__(self, cfg: TrainerConfig, strategy: tf.distribute.Strategy):
        self.cfg = cfg
        self.strategy = strategy
        with strategy.scope():
            self.generator = build_generator(cfg)
            self.discriminator = build_discriminator(cfg)
            self.generator_optimizer = keras.optimizers.Adam(cfg.generator_lr, beta_1=cfg.beta_1)
            self.discriminator_optimizer = keras.optimizers.Adam(cfg.discriminator_lr, beta_1=cfg.beta_1)
            # Built here, in scope, rather than lazily inside the tf.function.
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def _replica_step(self, real: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
        cfg = self.cfg
        context = tf.distribute.get_replica_context()
        replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
        # Distinct noise per (step, replica), identical across reruns.
        noise_index = step * context.num_replicas_in_sync + replica
        noise_seed = tf.stack([tf.constant(cfg.seed, tf.int64), noise_index])
        z = tf.random.stateless_normal([tf.shape(real)[0], cfg.latent_dim], seed=noise_seed)

        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            g_loss = generator_loss(fake_logits, cfg.batch_size)
            d_loss = discriminator_loss(real_logits, fake_logits, cfg.batch_size)

        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        self.discriminator_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
        # Each replica's share of the global mean; the cross-replica SUM is the mean.
        return {
            "g_loss": g_loss,
            "d_loss": d_loss,
            "d_real": tf.nn.compute_average_loss(tf.sigmoid(tf.reshape(real_logits, [-1])),
                                              global_batch_size=cfg.batch_size),
            "d_fake": tf.nn.compute_average_loss(tf.sigmoid(tf.reshape(fake_logits, [-1])),
                                              global_batch_size=cfg.batch_size),
        }

    @tf.function
    def train_step(self, batch, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """One update of both networks on one global batch (a distributed value)."""
        per_replica = self.strategy.run(self._replica_step, args=(batch, step))
        return {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }

    def samples(self, count: int = NUM_SAMPLES) -> np.ndarray:
        """uint8 images for seeds 0..count-1 in inference mode: what the export's seeds signature shows."""
        z = latents_for_seeds(tf.range(count, dtype=tf.int64), self.cfg.latent_dim)
        return to_uint8(self.generator(z, training=False)).numpy()


class RunLog:
    """Everything a person watches during training: progress bar, TensorBoard, log lines, sample grids.

    Per-step metric tensors are only read (``.numpy()``) every ``log_every``
    steps, so the host does not stall the device on every step; all of them
    still reach TensorBoard and the loss curve, one point per step.
    """

    def __init__(self, cfg: TrainerConfig, run_dir: str, trainer: GanTrainer):
        self.cfg = cfg
        self.run_dir = run_dir
        self.trainer = trainer
        self.writer = tf.summary.create_file_writer(run_dir)
        self.progress = tqdm(total=cfg.steps, desc="train", unit="step", dynamic_ncols=True, mininterval=1.0)
        self.steps: list[int] = []
        self.history: dict[str, list[float]] = {name: [] for name in METRICS}
        self.pending: list[tuple[int, dict[str, tf.Tensor]]] = []
        self.last_samples: np.ndarray | None = None
        self._interval_start = time.perf_counter()
        self._interval_steps = 0

    def record(self, step: int, metrics: dict[str, tf.Tensor]) -> None:
        self.pending.append((step, metrics))
        self._interval_steps += 1
        self.progress.update(1)
        last = step == self.cfg.steps
        with self.writer.as_default(step=step):
            if step % self.cfg.log_every == 0 or last:
                self._log(step)
            if step % self.cfg.sample_every == 0 or last:
                self._sample(step)

    def _log(self, step: int) -> None:
        steps_per_sec = self._interval_steps / max(time.perf_counter() - self._interval_start, 1e-9)
        latest: dict[str, float] = {}
        for pending_step, metrics in self.pending:
            latest = {name: float(metrics[name].numpy()) for name in METRICS}
            self.steps.append(pending_step)
            for name, value in latest.items():
                self.history[name].append(value)
                tf.summary.scalar(name, value, step=pending_step)
        self.pending.clear()
        tf.summary.scalar("steps_per_sec", steps_per_sec)
        self.progress.set_postfix({name: f"{value:.3f}" for name, value in latest.items()}, refresh=False)
        LOGGER.info("step %d/%d %s %.2f steps/s", step, self.cfg.steps,
                    " ".join(f"{name}={value:.4f}" for name, value in latest.items()), steps_per_sec)
        bad = [name for name, value in latest.items() if not np.isfinite(value)]
        if bad:
            raise FloatingPointError(f"training diverged at step {step}: {', '.join(bad)} not finite")
        self._interval_start = time.perf_counter()
        self._interval_steps = 0

    def _sample(self, step: int) -> None:
        self.last_samples = self.trainer.samples()
        tf.summary.image("samples", visualize.image_grid(self.last_samples)[None])
        path = os.path.join(self.run_dir, SAMPLES_DIR, f"step_{step:06d}.png")
        visualize.save_image_grid(self.last_samples, path, title=f"step {step}")

    def close(self) -> None:
        self.progress.close()
        self.writer.close()

    def write_plots(self) -> None:
        """run_dir/loss_curve.png (every step) and run_dir/samples.png (the final generator)."""
        visualize.save_loss_curve(self.steps, self.history, os.path.join(self.run_dir, LOSS_CURVE_FILE))
        if self.last_samples is not None:
            visualize.save_image_grid(self.last_samples, os.path.join(self.run_dir, SAMPLES_FILE),
                                      title=f"generated after {self.cfg.steps} steps")


def train(cfg: TrainerConfig, train_files: list[str], run_dir: str) -> keras.Model:
    """Trains for ``cfg.steps`` steps and returns the generator; logs, plots and samples go to run_dir.

    Sets Keras' global random seed (Python, NumPy, TF) to ``cfg.seed`` so
    weight initialisation and dropout are reproducible.
    """
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(cfg.seed)
    tf.io.gfile.makedirs(run_dir)
    batches = iter(strategy.experimental_distribute_dataset(make_dataset(train_files, cfg)))
    trainer = GanTrainer(cfg, strategy)

    LOGGER.info("training %d steps, batch %d, %dx%dx%d, %d replica(s)", cfg.steps, cfg.batch_size,
                cfg.image_size, cfg.image_size, cfg.channels, strategy.num_replicas_in_sync)
    log = RunLog(cfg, run_dir, trainer)
    try:
        for step in range(1, cfg.steps + 1):
            log.record(step, trainer.train_step(_next_batch(batches), tf.constant(step, tf.int64)))
    finally:
        log.close()
    log.write_plots()
    return trainer.generator


def _next_batch(batches):
    try:
        return next(batches)
    except (StopIteration, tf.errors.OutOfRangeError):
        # The dataset repeats, so it only runs dry when the files hold no records at all.
        raise EmptyDatasetError("the training data holds no examples (its TFRecord files are empty)") \
            from None
