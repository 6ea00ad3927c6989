"""Training steps per second of each train.architecture (and DiffAugment's cost) on this machine.

Times ``GanTrainer.train_step`` alone on a fixed random batch (no input
pipeline, no logging), after warm-up steps that trace the step, so the
figures are the networks' compute. Usage:

    python bench/architecture_throughput.py --image-size 64 --batch-size 64 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from ganpipe.trainer.config import TrainerConfig  # noqa: E402
from ganpipe.trainer.train import GanTrainer  # noqa: E402

CASES = {
    "dcgan-tutorial": dict(architecture="dcgan-tutorial", augment="off"),
    "dcgan": dict(architecture="dcgan", augment="off"),
    "dcgan+diffaugment": dict(architecture="dcgan", augment="diffaugment"),
    "resnet": dict(architecture="resnet", loss="hinge", augment="off"),
}


def steps_per_second(cfg: TrainerConfig, steps: int, warmup: int = 2) -> float:
    tf.keras.utils.set_random_seed(cfg.seed)
    trainer = GanTrainer(cfg, tf.distribute.get_strategy())
    shape = (cfg.batch_size, cfg.image_size, cfg.image_size, cfg.channels)
    batch = tf.random.stateless_uniform(shape, seed=(0, 0), minval=-1.0, maxval=1.0)
    for step in range(1, warmup + 1):
        trainer.train_step(batch, tf.constant(step, tf.int64))["g_loss"].numpy()
    start = time.perf_counter()
    for step in range(warmup + 1, warmup + steps + 1):
        metrics = trainer.train_step(batch, tf.constant(step, tf.int64))
    metrics["g_loss"].numpy()  # wait for the last step
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    results = {}
    for name in args.cases:
        cfg = TrainerConfig(image_size=args.image_size, channels=3, batch_size=args.batch_size, width=args.width,
                            ema_decay=0.999, **CASES[name])
        results[name] = round(steps_per_second(cfg, args.steps), 4)
        print(json.dumps({"case": name, "image_size": args.image_size, "batch_size": args.batch_size,
                          "width": args.width, "steps_per_sec": results[name]}), flush=True)


if __name__ == "__main__":
    main()
