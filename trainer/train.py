"""The GAN training loop: a custom ``strategy.run`` step, one code path from one process to a cluster.

Keras 3's ``model.fit`` cannot drive multi-worker training (keras-team/keras
#20585) and a GAN needs two optimizers anyway, so the loop is our own. It
runs under whatever strategy it is given (trainer/distributed.py picks one
from the environment): variables and optimizer slots are created in
``strategy.scope()``, the step runs under ``strategy.run``, losses are
averaged over the GLOBAL batch and the optimizers all-reduce (sum) the
gradients.

Reproducibility: weights are initialised from ``cfg.seed``; the data order,
the generator's noise, the dropout masks, the augmentation parameters
(trainer/augment.py) and the WGAN-GP mixing weights are functions of
(``cfg.seed``, step) alone, drawn for the global batch and
sliced per replica. So the same config trains the same weights on the same
hardware, a run resumed from a checkpoint continues exactly as if it had not
stopped, and N workers with B/N rows each agree with one worker of B rows up
to float summation order (docs/design.md, "Distributed training").
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Iterator

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ganpipe.trainer import visualize
from ganpipe.trainer.augment import AdaptiveProbability, diff_augment
from ganpipe.trainer.checkpoints import CheckpointKeeper, checkpoint_directory, run_identity
from ganpipe.trainer.config import (
    AUTO, AUTO_AUGMENT_BELOW_IMAGES, NetworkSpec, TrainerConfig, network_spec, resolve_architecture,
    resolve_architecture_defaults, resolve_augment, resolve_loss, resolve_steps,
)
from ganpipe.trainer.data import (count_records, input_spec, list_files, make_dataset, read_ingest_report, read_labels,
                                  stored_shape)
from ganpipe.trainer.distributed import is_chief, replica_rows, same_on_all_replicas, task_of
from ganpipe.trainer.losses import gan_loss, gradient_penalty_per_example, r1_penalty_per_example
from ganpipe.trainer.models import (
    build_discriminator, build_generator, latents_for_seeds, recompute_batch_norm_statistics, to_uint8,
)

LOGGER = logging.getLogger(__name__)

METRICS = ("g_loss", "d_loss", "d_real", "d_fake")
NUM_SAMPLES = 64  # images per sample grid (seeds 0..63, as the exported generate_from_seeds)
SAMPLE_COLUMNS = 8  # a conditional grid shows one class per row
LOSS_CURVE_FILE = "loss_curve.png"
SAMPLES_FILE = "samples.png"
SAMPLES_DIR = "samples"

# Tags folded into the per-step key (seed, step): one independent stream per use.
_NOISE, _DROPOUT_REAL, _DROPOUT_FAKE, _MIX, _DROPOUT_MIX, _AUGMENT_REAL, _AUGMENT_FAKE, _AUGMENT_MIX = range(8)
# EMA warm-up (as tf.train.ExponentialMovingAverage's num_updates): early on the
# average follows the weights closely instead of dragging the random init along.
_EMA_WARMUP = 10.0


class TrainingDataError(ValueError):
    """The training data cannot train this config (a message for the user, not a bug)."""


class EmptyDatasetError(TrainingDataError):
    """The training files exist but hold no examples."""


def resolve_config(cfg: TrainerConfig, num_images: int | None = None) -> TrainerConfig:
    """cfg with every "auto" (architecture, loss, augment, steps once the image size is known, and the
    architecture's batch size, D dropout and upsampling) replaced by what it means for this run.

    ``num_images`` (the training set's size, or a count capped at
    AUTO_AUGMENT_BELOW_IMAGES) is needed only when train.augment is auto.
    The resolved values are what checkpoints record and compare.
    """
    architecture = resolve_architecture(cfg.architecture, cfg.image_size)
    steps = cfg.steps if cfg.image_size == AUTO else resolve_steps(cfg.steps, cfg.image_size)
    return dataclasses.replace(cfg, architecture=architecture, loss=resolve_loss(cfg.loss, architecture), steps=steps,
                               augment=resolve_augment(cfg.augment, num_images),
                               **resolve_architecture_defaults(cfg, architecture))


class GanTrainer:
    """Both networks, their optimizers, the EMA generator and the compiled distributed step."""

    def __init__(self, cfg: TrainerConfig, strategy: tf.distribute.Strategy):
        cfg = resolve_config(cfg)  # train_run resolved it already; direct users may pass "auto" too
        self.cfg = cfg
        self.strategy = strategy
        self.spec = network_spec(cfg)
        self.num_classes = self.spec.num_classes
        self.loss = gan_loss(cfg.loss)
        with strategy.scope():
            self.generator = build_generator(self.spec)
            self.discriminator = build_discriminator(self.spec)
            self.generator_optimizer = self._optimizer(cfg.generator_lr)
            self.discriminator_optimizer = self._optimizer(cfg.discriminator_lr)
            # Built here, in scope, rather than lazily inside the tf.function.
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.ema_generator = None
            if cfg.ema_decay > 0:
                self.ema_generator = build_generator(self.float32_spec)  # never trained
                self.ema_generator.set_weights(self.generator.get_weights())
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.ada = None
            if cfg.augment == "ada":
                self.ada = AdaptiveProbability(cfg.ada_target, cfg.ada_interval, cfg.batch_size,
                                               cfg.ada_speed_images)
        jit = cfg.jit_compile and strategy.num_replicas_in_sync == 1
        if cfg.jit_compile and not jit:
            LOGGER.warning("train.jit_compile ignored: XLA compiles the step only with one replica per worker")
        self.train_step = tf.function(self._train_step, jit_compile=True if jit else None)
        self._sample_inputs: dict[int, Any] = {}
        self._infer = tf.function(lambda inputs: to_uint8(self.exported_generator(inputs, training=False)))

    @property
    def float32_spec(self) -> NetworkSpec:
        """The network spec without mixed precision: the EMA and exported generators."""
        return dataclasses.replace(self.spec, mixed_precision="none")

    def _optimizer(self, learning_rate: float) -> keras.optimizers.Optimizer:
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=self.cfg.beta_1, beta_2=self.cfg.beta_2)
        if self.cfg.mixed_precision == "float16":  # bfloat16 has float32's range: no loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def checkpointables(self) -> dict[str, Any]:
        """What a checkpoint holds (see trainer/checkpoints.py)."""
        objects = dict(step=self.step, generator=self.generator, discriminator=self.discriminator,
                       generator_optimizer=self.generator_optimizer,
                       discriminator_optimizer=self.discriminator_optimizer)
        if self.ema_generator is not None:
            objects["ema_generator"] = self.ema_generator
        if self.ada is not None:
            objects["ada"] = self.ada
        return objects

    def _augment(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """What D sees of an image batch: DiffAugment with this step's p, or the images (augment off)."""
        if self.cfg.augment == "off":
            return images
        p = self.ada.p if self.ada is not None else self.cfg.augment_p
        return diff_augment(images, seed, p)

    def _replica_step(self, batch, step: tf.Tensor) -> dict[str, tf.Tensor]:
        cfg = self.cfg
        images, labels = batch if self.num_classes else (batch, None)
        rows = tf.shape(images)[0]
        key = tf.stack([tf.constant(cfg.seed, tf.int64), step])

        def seed(tag: int) -> tf.Tensor:
            return tf.random.experimental.stateless_fold_in(key, tag)

        # Distinct noise per replica: its rows of one global draw keyed by (seed, step).
        z = replica_rows(lambda n: tf.random.stateless_normal([n, cfg.latent_dim], seed=seed(_NOISE)), rows)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator([z, labels] if self.num_classes else z, training=True)
            with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
                r1_tape.watch(images)
                # R1 differentiates through the augmentation, to the images themselves (as ADA does).
                real_logits = tf.reshape(self.discriminator(self._augment(images, seed(_AUGMENT_REAL)), labels=labels,
                                                            training=True, noise_seed=seed(_DROPOUT_REAL)), [-1])
            fake_logits = tf.reshape(self.discriminator(self._augment(fake, seed(_AUGMENT_FAKE)), labels=labels,
                                                        training=True, noise_seed=seed(_DROPOUT_FAKE)), [-1])
            g_per_example = self.loss.generator(fake_logits)
            d_per_example = self.loss.discriminator(real_logits, fake_logits)
            if self.loss.gradient_penalty:
                d_per_example += cfg.gp_weight * self._gradient_penalty(images, fake, labels, seed)
            if cfg.r1_gamma > 0:
                # With a row-wise D (no BatchNorm in D: dcgan-tutorial, resnet) this is each row's own
                # gradient; dcgan's BatchNorm adds the batch statistics' share.
                d_per_example += r1_penalty_per_example(r1_tape.gradient(real_logits, images), cfg.r1_gamma)
            g_loss = tf.nn.compute_average_loss(g_per_example, global_batch_size=cfg.batch_size)
            d_loss = tf.nn.compute_average_loss(d_per_example, global_batch_size=cfg.batch_size)
            g_scaled = self.generator_optimizer.scale_loss(g_loss)
            d_scaled = self.discriminator_optimizer.scale_loss(d_loss)

        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_grads = g_tape.gradient(g_scaled, g_vars)
        d_grads = d_tape.gradient(d_scaled, d_vars)
        self.generator_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.discriminator_optimizer.apply_gradients(zip(d_grads, d_vars))
        if self.ema_generator is not None:
            self._update_ema(step)

        # Each replica's share of the global mean; the cross-replica SUM is the mean.
        def share(values: tf.Tensor) -> tf.Tensor:
            return tf.nn.compute_average_loss(tf.reshape(values, [-1]), global_batch_size=cfg.batch_size)

        metrics = {"g_loss": g_loss, "d_loss": d_loss,
                   "d_real": share(tf.sigmoid(real_logits)), "d_fake": share(tf.sigmoid(fake_logits))}
        if self.ada is not None:
            metrics["real_sign"] = share(tf.sign(real_logits))  # ADA's overfitting heuristic r_t
        return metrics

    def _gradient_penalty(self, images, fake, labels, seed) -> tf.Tensor:
        """WGAN-GP's penalty per row, on random mixes of each real image with its row's fake."""
        rows = tf.shape(images)[0]
        mix = replica_rows(lambda n: tf.random.stateless_uniform([n, 1, 1, 1], seed=seed(_MIX)), rows)
        mixed = mix * images + (1.0 - mix) * tf.stop_gradient(fake)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(mixed)
            logits = self.discriminator(self._augment(mixed, seed(_AUGMENT_MIX)), labels=labels, training=True,
                                        noise_seed=seed(_DROPOUT_MIX))
        return gradient_penalty_per_example(tape.gradient(logits, mixed))

    def _update_ema(self, step: tf.Tensor) -> None:
        """EMA of the trainable weights; BatchNorm's moving statistics are copied (a starting point only:
        export_copy recomputes them for the averaged weights)."""
        count = tf.cast(step, tf.float32)
        decay = tf.minimum(self.cfg.ema_decay, (1.0 + count) / (_EMA_WARMUP + count))
        for average, weight in zip(self.ema_generator.trainable_variables, self.generator.trainable_variables):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight, average.dtype))
        for average, weight in zip(self.ema_generator.non_trainable_variables,
                                   self.generator.non_trainable_variables):
            average.assign(tf.cast(weight, average.dtype))

    def _train_step(self, batch, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """One update of both networks on one global batch (a distributed value)."""
        per_replica = self.strategy.run(self._replica_step, args=(batch, step))
        metrics = {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }
        if self.ada is not None:  # p moves in cross-replica context, from the global r_t: the same everywhere
            self.ada.observe(metrics.pop("real_sign"), step)
            metrics["augment_p"] = tf.identity(self.ada.p)
        return metrics

    @property
    def exported_generator(self) -> keras.Model:
        """The generator a person gets: the EMA copy when on, else the trained one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def export_copy(self) -> keras.Model:
        """A float32 copy of the exported generator, outside any strategy (plain variables to save).

        With the EMA on, its BatchNorm statistics are recomputed from its own
        activations (``recompute_batch_norm_statistics``): the trained
        network's moving statistics do not fit the averaged weights.
        """
        copy = build_generator(self.float32_spec)
        copy.set_weights(self.exported_generator.get_weights())
        if self.ema_generator is not None:
            recompute_batch_norm_statistics(copy, self.cfg.latent_dim, self.num_classes, seed=self.cfg.seed)
        return copy

    def samples(self, count: int = NUM_SAMPLES) -> np.ndarray:
        """uint8 images for seeds 0..count-1 in inference mode (one class per grid row when conditional)."""
        if count not in self._sample_inputs:  # the per-seed latents are fixed: draw them once
            z = latents_for_seeds(tf.range(count, dtype=tf.int64), self.cfg.latent_dim)
            inputs: Any = [z, (tf.range(count) // SAMPLE_COLUMNS) % self.num_classes] if self.num_classes else z
            self._sample_inputs[count] = inputs
        if self.ema_generator is not None:  # what will be exported, statistics recomputed
            return to_uint8(self.export_copy()(self._sample_inputs[count], training=False)).numpy()
        return self._infer(self._sample_inputs[count]).numpy()


@dataclasses.dataclass(frozen=True)
class LogSchedule:
    """When RunLog reads, logs and draws: the run's length and its two intervals, in steps."""

    steps: int
    log_every: int
    sample_every: int

    @classmethod
    def of(cls, cfg: TrainerConfig) -> "LogSchedule":
        return cls(steps=cfg.steps, log_every=cfg.log_every, sample_every=cfg.sample_every)


class RunLog:
    """Everything a person watches during training: progress bar, TensorBoard, log lines, sample grids.

    Only the chief writes (``chief=False``: no bar, a no-op summary writer,
    no files); every worker still reads the metrics, identical on all of them
    after the all-reduce, so a diverged run stops on every worker at once
    (the check is in :func:`run_steps`).
    Per-step metric tensors are only read (``.numpy()``) every ``log_every``
    steps, so the host does not stall the device on every step; all of them
    still reach TensorBoard and the loss curve, one point per step.
    """

    def __init__(self, schedule: LogSchedule, run_dir: str, trainer: GanTrainer, chief: bool = True,
                 start_step: int = 0, history: dict[str, list] | None = None, progress: bool = True):
        self.schedule = schedule
        self.run_dir = run_dir
        self.trainer = trainer
        self.chief = chief
        self.writer = tf.summary.create_file_writer(run_dir) if chief else tf.summary.create_noop_writer()
        self.progress = tqdm(total=schedule.steps, initial=min(start_step, schedule.steps), desc="train", unit="step",
                             dynamic_ncols=True, mininterval=1.0, disable=not (chief and progress))
        history = history or {}
        self.steps: list[int] = list(history.get("steps", []))
        self.history: dict[str, list[float]] = {name: list(history.get(name, [])) for name in METRICS}
        self.pending: list[tuple[int, dict[str, tf.Tensor]]] = []
        self.latest: dict[str, float] = {}
        self.latest_step: int | None = None  # the step ``latest`` was read at
        self.last_samples: np.ndarray | None = None
        self._interval_start = time.perf_counter()
        self._interval_steps = 0

    def record(self, step: int, metrics: dict[str, tf.Tensor]) -> None:
        self.pending.append((step, metrics))
        self._interval_steps += 1
        self.progress.update(1)
        last = step == self.schedule.steps
        with self.writer.as_default(step=step):
            if step % self.schedule.log_every == 0 or last:
                self._log(step)
            if self.chief and (step % self.schedule.sample_every == 0 or last):
                self._sample(step)

    def flush(self) -> None:
        """Reads the pending metrics into the history and TensorBoard (extras, e.g. augment_p: TensorBoard only)."""
        with self.writer.as_default():
            for pending_step, metrics in self.pending:
                self.latest = {name: float(metrics[name].numpy()) for name in METRICS}
                self.latest_step = pending_step
                self.steps.append(pending_step)
                for name, value in self.latest.items():
                    self.history[name].append(value)
                    tf.summary.scalar(name, value, step=pending_step)
                for name in metrics.keys() - set(METRICS):
                    tf.summary.scalar(name, metrics[name], step=pending_step)
        self.pending.clear()

    def not_finite(self) -> list[str]:
        """The metrics of the last flushed step that are NaN or infinite."""
        return [name for name, value in self.latest.items() if not np.isfinite(value)]

    def history_dict(self) -> dict[str, list]:
        return {"steps": list(self.steps), **{name: list(values) for name, values in self.history.items()}}

    def _log(self, step: int) -> None:
        steps_per_sec = self._interval_steps / max(time.perf_counter() - self._interval_start, 1e-9)
        self.flush()
        tf.summary.scalar("steps_per_sec", steps_per_sec)
        self.progress.set_postfix({name: f"{value:.3f}" for name, value in self.latest.items()}, refresh=False)
        if self.chief:
            LOGGER.info("step %d/%d %s %.2f steps/s", step, self.schedule.steps,
                        " ".join(f"{name}={value:.4f}" for name, value in self.latest.items()), steps_per_sec)
        self._interval_start = time.perf_counter()
        self._interval_steps = 0

    def _sample(self, step: int) -> None:
        self.last_samples = self.trainer.samples()
        tf.summary.image("samples", visualize.image_grid(self.last_samples, SAMPLE_COLUMNS)[None])
        path = os.path.join(self.run_dir, SAMPLES_DIR, f"step_{step:06d}.png")
        visualize.save_image_grid(self.last_samples, path, title=f"step {step}", columns=SAMPLE_COLUMNS)

    def close(self) -> None:
        self.progress.close()
        self.writer.close()

    def write_plots(self) -> None:
        """run_dir/loss_curve.png (every step of the run, resumes included) and run_dir/samples.png."""
        if not self.chief:
            return
        visualize.save_loss_curve(self.steps, self.history, os.path.join(self.run_dir, LOSS_CURVE_FILE))
        if self.last_samples is None:
            self.last_samples = self.trainer.samples()
        visualize.save_image_grid(self.last_samples, os.path.join(self.run_dir, SAMPLES_FILE),
                                  title=f"generated after {self.schedule.steps} steps", columns=SAMPLE_COLUMNS)


@dataclasses.dataclass
class TrainResult:
    generator: keras.Model  # float32, outside any strategy: what to export (the EMA copy when on)
    cfg: TrainerConfig  # as trained: num_classes resolved from the data when it was 0
    chief: bool  # whether this process is the one that exports
    start_step: int  # the checkpoint step this run resumed from; 0 for a fresh start
    checkpoint_dir: str = ""  # where this run identity's checkpoints are; empty when checkpoints are off
    class_names: tuple[str, ...] = ()  # conditional: the name of each label, in label order


def train_run(cfg: TrainerConfig, train_files: list[str], run_dir: str,
              strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    """Trains (or resumes) to ``cfg.steps``; logs, plots, samples and checkpoints go under run_dir.

    Sets Keras' global random seed (Python, NumPy, TF) to ``cfg.seed`` so
    weight initialisation is reproducible. ``strategy`` defaults to the one
    in scope (the default strategy); ganpipe.trainer.task picks it from the
    environment.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(cfg.seed)
    cfg, class_names = _with_classes(_with_shape(cfg, train_files), train_files)
    steps_from = f" (train.steps: auto at {cfg.image_size} px)" if cfg.steps == AUTO else ""
    cfg = resolve_config(cfg, _count_for_augment(cfg, train_files))
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ValueError(f"train.batch_size={cfg.batch_size}: must split evenly over {replicas} replicas")
    chief = is_chief(strategy)
    if chief:
        tf.io.gfile.makedirs(run_dir)

    trainer = GanTrainer(cfg, strategy)
    keeper = None
    start, history = 0, {}
    if cfg.checkpoint_every:
        task = "{}-{}".format(*task_of(strategy))
        identity = run_identity(cfg, list_files(train_files))
        keeper = CheckpointKeeper(cfg, checkpoint_directory(cfg, run_dir, identity), chief, task, identity,
                                  **trainer.checkpointables())
        start, history = keeper.restore()
    if replicas > 1 and not same_on_all_replicas(strategy, start):
        raise RuntimeError(f"this worker restored step {start} but others did not: train.checkpoint_dir "
                           "must be storage every worker sees")
    if start > cfg.steps:
        LOGGER.warning("the checkpoint is at step %d, past train.steps=%d%s: exporting it as it is", start, cfg.steps,
                       steps_from)

    batches = iter(strategy.distribute_datasets_from_function(
        lambda context: make_dataset(train_files, input_spec(cfg), with_labels=bool(trainer.num_classes),
                                     input_context=context, skip_batches=start)))
    if chief:
        LOGGER.info("training steps %d..%d%s, global batch %d, %dx%dx%d, %d replica(s), %s networks, loss %s, "
                    "augment %s", start + 1, cfg.steps, steps_from, cfg.batch_size, cfg.image_size, cfg.image_size,
                    cfg.channels, replicas, cfg.architecture, cfg.loss, cfg.augment)
    log = RunLog(LogSchedule.of(cfg), run_dir, trainer, chief, start, history)
    try:
        with logging_redirect_tqdm(tqdm_class=tqdm):  # log lines print above the bar, not glued to it
            run_steps(trainer, batches, log, keeper, start + 1, cfg.steps)
    finally:
        log.close()
        if keeper is not None:
            keeper.close()
    log.write_plots()
    return TrainResult(trainer.export_copy(), cfg, chief, start, keeper.directory if keeper else "", class_names)


def run_steps(trainer: GanTrainer, batches: Iterator, log: RunLog, keeper: CheckpointKeeper | None,
              first: int, last: int) -> None:
    """Steps first..last: train, record, checkpoint when due, stop on divergence. The whole per-step
    work of a run.

    Divergence: whenever metrics have been read (every log_every steps, and
    before each checkpoint, so a diverged state is never saved) a non-finite
    one raises FloatingPointError, on every worker alike.
    """
    for step in range(first, last + 1):
        log.record(step, trainer.train_step(_next_batch(batches), tf.constant(step, tf.int64)))
        if keeper is not None and keeper.due(step):
            log.flush()
        bad = log.not_finite()
        if bad:
            raise FloatingPointError(f"training diverged at step {log.latest_step}: {', '.join(bad)} not finite")
        if keeper is not None and keeper.due(step):
            keeper.save(step, log.history_dict())


def _with_shape(cfg: TrainerConfig, train_files: list[str]) -> TrainerConfig:
    """`image_size`/`channels` at auto take the stored images' shape (ingestion stored them at it)."""
    if AUTO not in (cfg.image_size, cfg.channels):
        return cfg
    size, channels = stored_shape(train_files)
    return dataclasses.replace(cfg, image_size=cfg.image_size or size, channels=cfg.channels or channels)


def _with_classes(cfg: TrainerConfig, train_files: list[str]) -> tuple[TrainerConfig, tuple[str, ...]]:
    """For a conditional run: checks every image has a label; fills in num_classes when 0; names classes.

    The class set is the one ingestion recorded (``label_names`` in the ingest
    report beside the splits), so a class whose only images landed in the eval
    split is still a class of the generator; without one (arrays, TFRecords
    from elsewhere) it is 1 + the largest label of all splits, named by number.
    """
    if not cfg.conditional:
        return cfg, ()
    labels = read_labels(train_files)
    if labels.size == 0:
        raise EmptyDatasetError("the training data holds no examples (its TFRecord files are empty)")
    unknown = int(np.sum(labels < 0))
    if unknown:
        raise TrainingDataError(f"train.conditional=true needs a label on every training image: {unknown} of "
                         f"{labels.size} have none (label -1)")
    names = recorded_label_names(train_files)
    largest = int(labels.max())
    if not names:  # arrays, TFRecords: the top class may have landed in the eval split only
        siblings = _sibling_splits(train_files)
        others = read_labels(siblings) if siblings else np.zeros([0], np.int64)
        largest_anywhere = max(largest, int(others.max()) if others.size else largest)
    classes = cfg.num_classes or (len(names) if names else largest_anywhere + 1)
    if largest >= classes:
        raise TrainingDataError(f"train.num_classes={classes}: the training data has label {largest}")
    if classes < 2:
        raise TrainingDataError("train.conditional=true: the training data has only one class")
    missing = sorted(set(range(classes)) - set(np.unique(labels).tolist()))
    if missing:
        LOGGER.warning("class(es) %s have no training image: the generator has them but never learned them",
                       ", ".join(str(names[i]) if i < len(names) else str(i) for i in missing))
    if len(names) != classes:
        names = [str(index) for index in range(classes)]
    return dataclasses.replace(cfg, num_classes=classes), tuple(names)


def _sibling_splits(train_files: list[str]) -> list[str]:
    """The other splits' file patterns next to ``<examples>/Split-train/*`` (ExampleGen's layout)."""
    patterns = []
    for pattern in train_files:
        split_dir = os.path.dirname(pattern)
        if os.path.basename(split_dir).startswith("Split-"):
            for sibling in tf.io.gfile.glob(os.path.join(os.path.dirname(split_dir), "Split-*")):
                if sibling.rstrip("/") != split_dir.rstrip("/") and tf.io.gfile.glob(
                        os.path.join(sibling, os.path.basename(pattern))):
                    patterns.append(os.path.join(sibling, os.path.basename(pattern)))
    return patterns


def recorded_label_names(train_files: list[str]) -> list[str]:
    """The label names ImageExampleGen wrote in its ingest report next to the split of ``train_files``.

    [] when there is no report (or it names no labels): the Examples came from elsewhere.
    """
    for pattern in train_files:
        report = read_ingest_report(os.path.dirname(os.path.dirname(pattern)))
        if report is not None:
            return [str(name) for name in report.get("label_names") or []]
    return []


def _count_for_augment(cfg: TrainerConfig, train_files: list[str]) -> int | None:
    """The number of training images when train.augment=auto needs it (else None).

    Counts records without decoding them and stops at the threshold: all
    resolve_augment needs is whether the set is smaller.
    """
    if cfg.augment != "auto":
        return None
    return count_records(train_files, limit=AUTO_AUGMENT_BELOW_IMAGES)


def _next_batch(batches):
    try:
        return next(batches)
    except (StopIteration, tf.errors.OutOfRangeError):
        # The dataset repeats, so it only runs dry when the files hold no records at all.
        raise EmptyDatasetError("the training data holds no examples (its TFRecord files are empty)") \
            from None
