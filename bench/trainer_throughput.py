"""Trainer throughput: our full training loop versus the TensorFlow DCGAN tutorial's bare loop.

Both sides train the same networks (the tutorial's layers; ``build_generator``
for the generator, the tutorial's Sequential discriminator with Keras
Dropout on the reference side) with the same batch, optimizer settings and
images, in the same process, in short interleaved windows (rotating order),
reported as the median of per-window ratios to the tutorial and as the ratio
of total throughputs:

- tutorial: written the way the tutorial writes it -- decoded images held in
  memory, ``from_tensor_slices(...).shuffle(...).batch(...)``, a
  ``@tf.function`` step with ``tf.random.normal`` noise, Keras
  ``BinaryCrossentropy``, two tapes, two Adam optimizers, nothing else.
- ours: ``ganpipe.trainer.train.run_steps`` as ``train_run`` runs it -- under the
  strategy, global-batch losses, stateless per-step noise and dropout masks,
  sync-BN-ready generator, D(real)/D(fake) metrics, every step's metrics to
  TensorBoard, sample grids and checkpoints at the default intervals, and the
  input pipeline reading PNG tf.Examples from GZIP TFRecords as ExampleGen
  writes them (decoded once and cached, as the set fits in memory; the
  tutorial side gets its images pre-decoded).
- ours + EMA: the same with ``train.ema_decay=0.999``, the shipped default.
- our step only: ``GanTrainer.train_step`` fed the tutorial's in-memory
  batches, nothing around it: separates the step's cost from the loop's.

Then the input pipeline alone (``ganpipe.trainer.data.make_dataset``) decoding every
image every epoch (what sets too big to cache get) against what the trainer
consumes, and from its cache; plus the share of training time spent waiting
for the next batch.

    .venv/bin/python -m bench.trainer_throughput [--steps 20] [--repeats 10] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from bench.common import summarize, write_result

FASHION_MNIST_IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def real_images(count: int) -> tuple[np.ndarray, str]:
    """uint8 [N, H, W, 1]: Fashion-MNIST train images (Debian package), else scikit-learn's digits."""
    if os.path.exists(FASHION_MNIST_IMAGES):
        from ganpipe.components.image_example_gen.arrays import inspect_idx, load_array_file

        images = load_array_file(inspect_idx(FASHION_MNIST_IMAGES)).images[:count]
        return images.reshape(len(images), 28, 28, 1), f"fashion-mnist train[:{len(images)}] (28x28)"
    from sklearn.datasets import load_digits

    digits = (load_digits().images * (255.0 / 16.0)).round().astype(np.uint8)
    return digits[:count, :, :, None], f"sklearn digits[:{min(count, len(digits))}] (8x8)"


def write_tfrecords(images: np.ndarray, directory: str, files: int = 4) -> str:
    """GZIP tf.Example TFRecords with the contract's features, as ImageExampleGen writes them."""
    import hashlib

    import tensorflow as tf

    from ganpipe import contract

    def feature(value) -> tf.train.Feature:
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    os.makedirs(directory, exist_ok=True)
    writers = [tf.io.TFRecordWriter(os.path.join(directory, f"data_tfrecord-{i:05d}-of-{files:05d}.gz"), "GZIP")
               for i in range(files)]
    for index, image in enumerate(images):
        encoded = tf.io.encode_png(image).numpy()
        example = {contract.IMAGE_KEY: encoded, contract.HEIGHT_KEY: image.shape[0],
                   contract.WIDTH_KEY: image.shape[1], contract.CHANNELS_KEY: image.shape[2],
                   contract.LABEL_KEY: contract.UNKNOWN_LABEL, contract.SOURCE_KEY: f"bench#{index}".encode(),
                   contract.SHA256_KEY: hashlib.sha256(encoded).hexdigest().encode()}
        proto = tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in example.items()}))
        writers[index % files].write(proto.SerializeToString())
    for writer in writers:
        writer.close()
    return os.path.join(directory, "*")


class TutorialLoop:
    """The TensorFlow DCGAN tutorial's training step, as the tutorial writes it."""

    def __init__(self, cfg, images: np.ndarray):
        import keras
        import tensorflow as tf
        from keras import layers

        from ganpipe.trainer.config import network_spec
        from ganpipe.trainer.models import LEAKY_RELU_SLOPE, build_generator

        self.batch_size, self.noise_dim = cfg.batch_size, cfg.latent_dim
        keras.utils.set_random_seed(cfg.seed)
        self.generator = build_generator(dataclasses.replace(network_spec(cfg), sync_batch_norm=False))  # plain BatchNorm
        self.discriminator = keras.Sequential([
            keras.Input(shape=(cfg.image_size, cfg.image_size, cfg.channels)),
            layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE),
            layers.Dropout(cfg.discriminator_dropout),
            layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE),
            layers.Dropout(cfg.discriminator_dropout),
            layers.Flatten(),
            layers.Dense(1),
        ])
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_optimizer = keras.optimizers.Adam(cfg.generator_lr, beta_1=cfg.beta_1)
        self.discriminator_optimizer = keras.optimizers.Adam(cfg.discriminator_lr, beta_1=cfg.beta_1)
        train_images = (images.astype("float32") - 127.5) / 127.5
        dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(len(train_images)).batch(self.batch_size)
        self.batches = iter(dataset.repeat())
        self.train_step = tf.function(self._train_step)

    def _train_step(self, images):
        import tensorflow as tf

        noise = tf.random.normal([self.batch_size, self.noise_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = self.generator(noise, training=True)
            real_output = self.discriminator(images, training=True)
            fake_output = self.discriminator(generated_images, training=True)
            gen_loss = self.cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (self.cross_entropy(tf.ones_like(real_output), real_output)
                         + self.cross_entropy(tf.zeros_like(fake_output), fake_output))
        gradients_of_generator = gen_tape.gradient(gen_loss, self.generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, self.discriminator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(gradients_of_generator, self.generator.trainable_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(gradients_of_discriminator, self.discriminator.trainable_variables))

    def run(self, steps: int) -> dict:
        start = time.perf_counter()
        for _ in range(steps):
            self.train_step(next(self.batches))
        return {"seconds": time.perf_counter() - start, "input_wait": 0.0}


class OurStep:
    """Our compiled step alone (``GanTrainer.train_step``), fed the tutorial's in-memory batches:
    the step's own cost, without our input pipeline, logging, samples and checkpoints."""

    def __init__(self, cfg, images: np.ndarray):
        import keras
        import tensorflow as tf

        from ganpipe.trainer.train import GanTrainer

        keras.utils.set_random_seed(cfg.seed)
        self.trainer = GanTrainer(cfg, tf.distribute.get_strategy())
        train_images = (images.astype("float32") - 127.5) / 127.5
        dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(len(train_images)).batch(cfg.batch_size)
        self.batches = iter(dataset.repeat())
        self.step = 0

    def run(self, steps: int) -> dict:
        import tensorflow as tf

        start = time.perf_counter()
        for _ in range(steps):
            self.step += 1
            self.trainer.train_step(next(self.batches), tf.constant(self.step, tf.int64))
        return {"seconds": time.perf_counter() - start, "input_wait": 0.0}


class TimedBatches:
    """Wraps an iterator and adds up the time spent waiting in next()."""

    def __init__(self, batches):
        self.batches, self.waited = batches, 0.0

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self.batches)
        finally:
            self.waited += time.perf_counter() - start


class OurLoop:
    """ganpipe.trainer.train.run_steps with everything train_run sets up around it (chief, default strategy)."""

    def __init__(self, cfg, pattern: str, work_dir: str):
        import keras
        import tensorflow as tf

        from ganpipe.trainer.checkpoints import CheckpointKeeper, checkpoint_directory, run_identity
        from ganpipe.trainer.data import input_spec, list_files, make_dataset
        from ganpipe.trainer.train import GanTrainer, LogSchedule, RunLog

        strategy = tf.distribute.get_strategy()
        keras.utils.set_random_seed(cfg.seed)
        self.trainer = GanTrainer(cfg, strategy)
        identity = run_identity(cfg, list_files([pattern]))
        self.keeper = CheckpointKeeper(cfg, checkpoint_directory(cfg, work_dir, identity), True, "worker-0", identity,
                                       **self.trainer.checkpointables())
        self.batches = TimedBatches(iter(strategy.distribute_datasets_from_function(
            lambda context: make_dataset([pattern], input_spec(cfg), input_context=context))))
        self.log = RunLog(LogSchedule.of(cfg), work_dir, self.trainer, chief=True, progress=False)
        self.step = 0

    def run(self, steps: int) -> dict:
        from ganpipe.trainer.train import run_steps

        waited = self.batches.waited
        start = time.perf_counter()
        run_steps(self.trainer, self.batches, self.log, self.keeper, self.step + 1, self.step + steps)
        seconds = time.perf_counter() - start
        self.step += steps
        return {"seconds": seconds, "input_wait": self.batches.waited - waited}


def input_pipeline_rate(cfg, pattern: str, batches: int, cache: bool) -> float:
    """Images/s that make_dataset delivers alone: read, parse, PNG decode, resize, batch (cache=False:
    every epoch decoded, the path for sets too big to cache); cache=True: from the decoded cache."""
    from ganpipe.trainer.data import input_spec, make_dataset

    iterator = iter(make_dataset([pattern], input_spec(cfg), cache=cache))
    for _ in range(5 if not cache else 1000):  # warm-up: buffers fill, autotune settles, the cache fills
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * cfg.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat and side")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="10 steps x 3 repeats on 2,000 images")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.images = 10, 3, 2000

    from ganpipe.trainer.config import TrainerConfig

    # The demo's (32x32x1, batch 64, BCE, checkpoints/samples every 100 steps) with the EMA off, as the
    # tutorial has none; "ours + EMA" is the default as shipped.
    cfg = TrainerConfig(image_size=32, channels=1, ema_decay=0.0, augment="off", batch_size=64,
                        discriminator_dropout=0.3)  # as the tutorial: no augmentation
    work = tempfile.mkdtemp(prefix="ganpipe-bench-trainer-")
    try:
        images, source = real_images(args.images)
        pattern = write_tfrecords(images, os.path.join(work, "Split-train"))
        import tensorflow as tf

        resized = tf.cast(tf.round(tf.image.resize(images, [cfg.image_size] * 2, antialias=True)), tf.uint8).numpy()
        sides = {
            "tutorial loop": TutorialLoop(cfg, resized),
            "our step only": OurStep(cfg, resized),
            "ours": OurLoop(cfg, pattern, os.path.join(work, "ours")),
            "ours + EMA": OurLoop(dataclasses.replace(cfg, ema_decay=TrainerConfig.ema_decay), pattern, os.path.join(work, "ema")),
        }
        for side in sides.values():  # trace and warm up outside the timing
            side.run(3)
        names = list(sides)
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        for repeat in range(args.repeats):
            # Short windows, interleaved, in a rotating order: load that drifts hits every side alike.
            for name in names[repeat % len(names):] + names[:repeat % len(names)]:
                runs[name].append(sides[name].run(args.steps))
        pipeline = [input_pipeline_rate(cfg, pattern, 40, cache=False) for _ in range(5)]
        cached = [input_pipeline_rate(cfg, pattern, 200, cache=True) for _ in range(3)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    per_window = args.steps * cfg.batch_size
    rates = {name: [per_window / run["seconds"] for run in values] for name, values in runs.items()}
    # Paired: each repeat's rate over the tutorial's rate in the same repeat.
    paired = {name: [rate / base for rate, base in zip(values, rates["tutorial loop"])]
              for name, values in rates.items()}
    totals = {name: per_window * len(values) / sum(run["seconds"] for run in values) for name, values in runs.items()}
    waits = {name: sum(run["input_wait"] for run in values) / sum(run["seconds"] for run in values)
             for name, values in runs.items() if name.startswith("ours")}
    document = {
        "command": " ".join([".venv/bin/python -m bench.trainer_throughput",
                             *(argv if argv is not None else sys.argv[1:])]),
        "data": source,
        "config": {"image_size": cfg.image_size, "channels": cfg.channels, "batch_size": cfg.batch_size,
                   "checkpoint_every": cfg.checkpoint_every, "sample_every": cfg.sample_every,
                   "log_every": cfg.log_every},
        "steps_per_repeat": args.steps,
        "repeats": args.repeats,
        "images_per_second": {name: summarize(values) for name, values in rates.items()},
        "ratio_to_tutorial_paired": {name: summarize(values) for name, values in paired.items()},
        "ratio_to_tutorial_of_totals": {name: total / totals["tutorial loop"] for name, total in totals.items()},
        "input_wait_share": waits,
        "input_pipeline_images_per_second": summarize(pipeline),
        "input_pipeline_cached_images_per_second": summarize(cached),
        "input_headroom": statistics.median(pipeline) / totals["ours"],
    }
    path = write_result("trainer_throughput", document)

    print(f"data: {source}, resized to {cfg.image_size}x{cfg.image_size}; global batch {cfg.batch_size}; "
          f"{args.repeats} interleaved repeats x {args.steps} steps per side")
    print(f"{'side':<15}{'images/s median':>16}{'min-max':>15}{'vs tutorial':>13}{'(min-max)':>14}"
          f"{'of totals':>11}{'input wait':>12}")
    for name, values in rates.items():
        stats, ratio = summarize(values), summarize(paired[name])
        waiting = f"{waits[name]:.1%}" if name in waits else "in memory"
        print(f"{name:<15}{stats['median']:>16.1f}{stats['min']:>8.1f}-{stats['max']:<6.1f}"
              f"{ratio['median']:>12.3f}x{ratio['min']:>7.3f}-{ratio['max']:<6.3f}"
              f"{document['ratio_to_tutorial_of_totals'][name]:>10.3f}x{waiting:>12}")
    stats = summarize(pipeline)
    print(f"input pipeline, decoding every image: {stats['median']:.0f} images/s ({stats['min']:.0f}-"
          f"{stats['max']:.0f}) = {document['input_headroom']:.1f}x what 'ours' consumes; "
          f"from the decoded cache: {statistics.median(cached):.0f} images/s")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
