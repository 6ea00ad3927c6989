"""Quality per compute on Fashion-MNIST: FID against training steps, tutorial settings vs ganpipe defaults.

Both configurations train on the same ingested Fashion-MNIST TFRecords
(28x28, ImageExampleGen's train split) and are scored at the same steps with
the same extractor (the offline default, random-conv-v1: NOT Inception FID)
against the same real eval images. Training resumes from its own checkpoint
between evaluation points, so each curve is one continuous run.

"tutorial" is the TensorFlow DCGAN tutorial: BCE, Adam(1e-4, beta_1=0.5) for
both networks, batch 256, Keras' BatchNorm momentum (0.99), no EMA.
"ganpipe" is TrainerConfig's defaults at 28x28 (same networks; batch 64,
Adam 2e-4, BatchNorm momentum 0.9, EMA 0.999: docs/design.md says why).
A step of each costs what its batch costs, so the table also gives wall
seconds and images seen: steps are the budget the issue asks about, not the
only one that matters.

    .venv/bin/python -m bench.quality_per_compute [--steps 2000] [--points 8] [--repeats 3] [--samples 5000]
"""

from __future__ import annotations

import argparse
import json
import dataclasses
import os
import shutil
import statistics
import time

import numpy as np

from bench.common import summarize, write_result

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
WORK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".work")


def configurations(image_size: int = 28):
    from ganpipe.trainer.config import TrainerConfig

    return {
        "tutorial": TrainerConfig(image_size=image_size, channels=1, architecture="dcgan-tutorial", augment="off",
                                  batch_size=256, generator_lr=1e-4,
                                  discriminator_lr=1e-4, beta_1=0.5, loss="bce", ema_decay=0.0,
                                  spectral_norm=False, batch_norm_momentum=0.99, discriminator_dropout=0.3),
        "ganpipe": TrainerConfig(image_size=image_size, channels=1),
    }


def ingest_fashion_mnist(work_dir: str) -> str:
    """Fashion-MNIST through ImageExampleGen once; returns the Examples directory."""
    from tfx.types import standard_artifacts

    from ganpipe.components.image_example_gen.config import IngestConfig
    from ganpipe.components.image_example_gen.executor import Executor

    examples_dir = os.path.join(work_dir, "fashion_mnist_examples")
    if os.path.exists(os.path.join(examples_dir, "ingest_report.json")):
        return examples_dir
    shutil.rmtree(examples_dir, ignore_errors=True)
    examples = standard_artifacts.Examples()
    examples.uri = examples_dir
    ingest = IngestConfig(eval_fraction=0.1, image_size=28, channels=1, labels_from_subfolders=False)
    properties = {"input_base": FASHION_MNIST_DIR, "data_format": "idx", "config": json.dumps(ingest.to_dict())}
    Executor(Executor.Context(beam_pipeline_args=[])).Do({}, {"examples": [examples]}, properties)
    return examples_dir


def generated_images(generator, latent_dim: int, count: int, batch: int = 500,
                     labels: np.ndarray | None = None) -> np.ndarray:
    """uint8 [count, H, W, C] for fixed seeds; ``labels`` int [count] for a conditional generator."""
    import tensorflow as tf

    from ganpipe.trainer.models import latents_for_seeds, to_uint8

    chunks = []
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        z = latents_for_seeds(tf.range(start, stop, dtype=tf.int64) + 1_000_000, latent_dim)
        inputs = z if labels is None else [z, tf.constant(labels[start:stop], tf.int32)]
        chunks.append(to_uint8(generator(inputs, training=False)).numpy())
    return np.concatenate(chunks)


def train_until(cfg, step: int, train_files: list[str], run_dir: str):
    """Trains (resuming from run_dir's checkpoint) up to ``step``; (the train_run result, wall seconds)."""
    from ganpipe.trainer.train import train_run

    staged = dataclasses.replace(cfg, steps=step, checkpoint_every=step, log_every=max(1, step // 4),
                                 sample_every=step, checkpoint_dir=os.path.join(run_dir, "checkpoints"))
    start = time.perf_counter()
    result = train_run(staged, train_files, run_dir)
    return result, time.perf_counter() - start


def curve(cfg, train_files: list[str], real_features: np.ndarray, extractor, points: list[int],
          samples: int, run_dir: str) -> list[dict]:
    """Trains one run to each of `points` in turn (resuming) and scores it there."""
    from ganpipe.evaluation.metrics import fid
    from ganpipe.trainer.data import input_spec

    shutil.rmtree(run_dir, ignore_errors=True)
    measured, trained_seconds = [], 0.0
    for step in points:
        result, seconds = train_until(cfg, step, train_files, run_dir)
        trained_seconds += seconds
        images = generated_images(result.generator, cfg.latent_dim, samples)
        measured.append({"step": step, "fid": fid(real_features, extractor(images)),
                         "train_seconds": trained_seconds, "images_seen": step * input_spec(cfg).batch_size})
        print(f"    step {step:6d}  FID {measured[-1]['fid']:8.3f}  ({trained_seconds:.0f}s of training)", flush=True)
    return measured


def steps_to_reach(points: list[dict], target: float) -> int | None:
    return next((p["step"] for p in points if p["fid"] <= target), None)


def run(steps: int, points: int, repeats: int, samples: int) -> dict:
    from ganpipe.trainer.data import load_images
    from ganpipe.evaluation.feature_extractors import get_extractor

    os.makedirs(WORK_DIR, exist_ok=True)
    examples_dir = ingest_fashion_mnist(WORK_DIR)
    train_files = [os.path.join(examples_dir, "Split-train", "*")]
    extractor = get_extractor("random-conv")
    real = load_images([os.path.join(examples_dir, "Split-eval", "*")], channels=1, image_size=28, limit=samples)
    real_features = extractor(real)
    schedule = sorted({max(1, round(steps * (i + 1) / points)) for i in range(points)})

    curves: dict[str, list[list[dict]]] = {}
    for name, cfg in configurations().items():
        curves[name] = []
        for repeat in range(repeats):
            print(f"  {name} (seed {repeat}):", flush=True)
            seeded = dataclasses.replace(cfg, seed=repeat)
            curves[name].append(curve(seeded, train_files, real_features, extractor, schedule, samples,
                                      os.path.join(WORK_DIR, f"quality-{name}-{repeat}")))

    medians = {
        name: [{"step": step,
                "fid": summarize([run_[i]["fid"] for run_ in runs]),
                "train_seconds": statistics.median(run_[i]["train_seconds"] for run_ in runs),
                "images_seen": runs[0][i]["images_seen"]}
               for i, step in enumerate(schedule)]
        for name, runs in curves.items()
    }
    tutorial_final = medians["tutorial"][-1]["fid"]["median"]
    reach = steps_to_reach([{"step": p["step"], "fid": p["fid"]["median"]} for p in medians["ganpipe"]],
                           tutorial_final)
    return {
        "extractor": extractor.name,
        "steps": steps, "schedule": schedule, "repeats": repeats, "samples": samples,
        "configs": {name: cfg.to_dict() for name, cfg in configurations().items()},
        "curves": medians,
        "tutorial_final_fid": tutorial_final,
        "ganpipe_steps_to_reach_tutorial_final": reach,
        "ratio_steps_to_reach": None if reach is None else reach / schedule[-1],
        "target_ratio": 0.5,
    }


def plot(result: dict, path: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    for name, points in result["curves"].items():
        steps = [p["step"] for p in points]
        axes.plot(steps, [p["fid"]["median"] for p in points], marker="o", label=name)
        axes.fill_between(steps, [p["fid"]["min"] for p in points], [p["fid"]["max"] for p in points], alpha=0.2)
    axes.axhline(result["tutorial_final_fid"], color="grey", linestyle=":", label="tutorial's final FID")
    axes.set_xlabel("training steps")
    axes.set_ylabel(f"FID ({result['extractor']}, not Inception)")
    axes.set_yscale("log")
    axes.set_title(f"Fashion-MNIST 28x28, median of {result['repeats']} seed(s), band = min-max")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5000)
    args = parser.parse_args(argv)
    result = run(args.steps, args.points, args.repeats, args.samples)
    print(f"quality per compute ({result['extractor']}), median FID by step:")
    print("  step   " + "  ".join(f"{name:>22s}" for name in result["curves"]))
    for i, step in enumerate(result["schedule"]):
        cells = [f"{c[i]['fid']['median']:8.3f} [{c[i]['fid']['min']:.2f}-{c[i]['fid']['max']:.2f}]"
                 for c in result["curves"].values()]
        print(f"  {step:6d} " + "  ".join(f"{cell:>22s}" for cell in cells))
    print(f"  ganpipe reaches the tutorial's final FID {result['tutorial_final_fid']:.3f} at step "
          f"{result['ganpipe_steps_to_reach_tutorial_final']} (ratio {result['ratio_steps_to_reach']}, target <= 0.5)")
    path = write_result("quality_per_compute", result)
    plot(result, path.replace(".json", ".png"))
    print("wrote", path, "and", path.replace(".json", ".png"))
    return result


if __name__ == "__main__":
    main()
