"""Classifier scores on Fashion-MNIST with a conditional GAN: IS and FID-DC against steps, CAS, augmentation gain.

One domain classifier (``domain-classifier-v1``, evaluation/domain_classifier.py)
is trained once on the real train split's labels (ImageExampleGen's train
split of the ingested Fashion-MNIST, at most 50,000 images) and gives every
score here: the Inception Score from its p(y|x) and FID in its 128-d feature
space ("FID-DC"), both NOT comparable with Inception numbers. Its accuracy on
the real eval split is reported next to them.

A class-conditional GAN (TrainerConfig defaults at 28x28 grey, conditional=True)
is trained for `--seeds` seeds; each run is one continuous run that resumes
from its own checkpoint between the `--points` evaluation steps. At each point
`--samples` images are generated with labels 0, 1, ..., 9, 0, ... and scored
against the real eval split; the real floor is a train-split sample of the
same size against the same eval split. Also at each point: how often the
domain classifier's top-1 agrees with the label the generator was given.

At the last point, with `--cas-samples` N generated labelled images and the
classifier's architecture, steps (`--classifier-steps`) and seed (0) fixed:
CAS (trained on the N generated, tested on the real eval split) against the
same classifier trained on N real train images, and their ratio; the
augmentation gain at 1% and 10% of the real train images: the fraction alone
against the fraction plus the N generated. The real-only trainings depend on
the data alone, so they are trained once and shared by every seed.

    .venv/bin/python -m bench.classifier_scores [--steps 1200] [--points 4] [--seeds 2] [--samples 2000]
        [--classifier-steps 1000] [--cas-samples 5000]

The defaults are the committed run: 30 minutes of wall time (26 CPU-minutes) on
the 2-core machine while another benchmark shared it (GAN ~2.5 steps/s).

Writes bench/results/full/classifier_scores.json and .md (or under $GANPIPE_BENCH_RESULTS).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time

import numpy as np

from bench.common import summarize, write_result
from bench.quality_per_compute import WORK_DIR, ingest_fashion_mnist, train_until

NUM_CLASSES = 10
CLASSIFIER_SEED = 0
FRACTIONS = (0.01, 0.1)
SAMPLE_SEED_OFFSET = 1_000_000  # IS / FID samples: seeds 1,000,000 + i (as quality_per_compute)
CAS_SEED_OFFSET = 7_000_000  # CAS training images: other seeds than the scored samples
RESULTS_DIR = os.environ.get("GANPIPE_BENCH_RESULTS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "full")


def examples_artifact(examples_dir: str):
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = examples_dir
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    return examples


def conditional_images(generator, latent_dim: int, count: int, seed_offset: int,
                       batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 images from a conditional generator, labels 0, 1, ..., 9, 0, ...; and the labels."""
    import tensorflow as tf

    from ganpipe.trainer.models import latents_for_seeds, to_uint8

    labels = np.arange(count, dtype=np.int64) % NUM_CLASSES
    chunks = []
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        z = latents_for_seeds(tf.range(start, stop, dtype=tf.int64) + seed_offset, latent_dim)
        chunks.append(to_uint8(generator([z, tf.constant(labels[start:stop], tf.int32)], training=False)).numpy())
    return np.concatenate(chunks), labels


def scores(classifier, images: np.ndarray, real_eval_features: np.ndarray,
           labels: np.ndarray | None = None) -> dict:
    """IS (mean, std over 10 splits) and FID-DC against the real eval split; label agreement when given labels."""
    from ganpipe.evaluation.inception_score import inception_score
    from ganpipe.evaluation.metrics import fid

    probabilities = classifier.probabilities(images)
    features = classifier(images)
    score = inception_score(probabilities)
    result = {"is": score.mean, "is_std": score.std, "fid_dc": fid(features, real_eval_features)}
    if labels is not None:
        result["label_agreement"] = float(np.mean(probabilities.argmax(axis=1) == labels))
    return result


def train_classifier(images, labels, steps: int, name: str) -> tuple[object, float]:
    from ganpipe.evaluation import domain_classifier

    start = time.perf_counter()
    model = domain_classifier.train(images, labels, NUM_CLASSES, steps=steps, seed=CLASSIFIER_SEED, key=name)
    return model, time.perf_counter() - start


def run(steps: int, points: int, seeds: int, samples: int, classifier_steps: int, cas_samples: int) -> dict:
    from ganpipe.components.gan_evaluator.classifiers import labelled
    from ganpipe.trainer.config import TrainerConfig

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    os.makedirs(WORK_DIR, exist_ok=True)
    examples_dir = ingest_fashion_mnist(WORK_DIR)
    examples = examples_artifact(examples_dir)
    train_files = [os.path.join(examples_dir, "Split-train", "*")]
    train = labelled(examples, "train", channels=1, image_size=28)
    real_eval = labelled(examples, "eval", channels=1, image_size=28)
    print(f"  {len(train.labels)} labelled train images, {len(real_eval.labels)} eval images", flush=True)

    classifier, seconds = train_classifier(train.images, train.labels, classifier_steps, "fashion-mnist-train")
    classifier_accuracy = classifier.accuracy(real_eval.images, real_eval.labels)
    print(f"  domain classifier: eval accuracy {classifier_accuracy:.4f} ({seconds:.0f}s)", flush=True)
    real_eval_features = classifier(real_eval.images)
    rng = np.random.RandomState(CLASSIFIER_SEED)
    floor_index = rng.permutation(len(train.labels))[:samples]
    floor = scores(classifier, train.images[floor_index], real_eval_features, train.labels[floor_index])
    eval_is = scores(classifier, real_eval.images, real_eval_features)["is"]
    print(f"  real floor (train sample vs eval): IS {floor['is']:.3f}  FID-DC {floor['fid_dc']:.3f}", flush=True)

    # Real-only trainings: the data and the seed alone decide them, so once for every seed.
    real_index = rng.permutation(len(train.labels))[:cas_samples]
    real_model, _ = train_classifier(train.images[real_index], train.labels[real_index], classifier_steps,
                                     f"real{cas_samples}")
    real_accuracy = real_model.accuracy(real_eval.images, real_eval.labels)
    fractions = {}
    for fraction in FRACTIONS:
        index = rng.permutation(len(train.labels))[:max(1, int(round(fraction * len(train.labels))))]
        model, _ = train_classifier(train.images[index], train.labels[index], classifier_steps,
                                    f"fraction{len(index)}")
        fractions[fraction] = (index, model.accuracy(real_eval.images, real_eval.labels))
        print(f"  real {fraction:.0%} ({len(index)} images) alone: accuracy {fractions[fraction][1]:.4f}", flush=True)
    print(f"  real {cas_samples} images: accuracy {real_accuracy:.4f}", flush=True)

    schedule = sorted({max(1, round(steps * (i + 1) / points)) for i in range(points)})
    base = TrainerConfig(conditional=True, image_size=28, channels=1)
    runs = []
    for seed in range(seeds):
        print(f"  conditional GAN, seed {seed}:", flush=True)
        cfg = dataclasses.replace(base, seed=seed)
        run_dir = os.path.join(WORK_DIR, f"classifier-scores-{seed}")
        shutil.rmtree(run_dir, ignore_errors=True)
        curve, trained_seconds, result = [], 0.0, None
        for step in schedule:
            result, seconds = train_until(cfg, step, train_files, run_dir)
            trained_seconds += seconds
            images, labels = conditional_images(result.generator, cfg.latent_dim, samples, SAMPLE_SEED_OFFSET)
            curve.append({"step": step, **scores(classifier, images, real_eval_features, labels),
                          "train_seconds": trained_seconds})
            p = curve[-1]
            print(f"    step {step:6d}  IS {p['is']:6.3f}  FID-DC {p['fid_dc']:8.3f}  "
                  f"label agreement {p['label_agreement']:.3f}  ({trained_seconds:.0f}s of training)", flush=True)

        generated, generated_labels = conditional_images(result.generator, cfg.latent_dim, cas_samples,
                                                         CAS_SEED_OFFSET)
        cas_model, _ = train_classifier(generated, generated_labels, classifier_steps, f"generated-seed{seed}")
        cas = cas_model.accuracy(real_eval.images, real_eval.labels)
        augmentation = {}
        for fraction, (index, alone) in fractions.items():
            model, _ = train_classifier(np.concatenate([train.images[index], generated]),
                                        np.concatenate([train.labels[index], generated_labels]),
                                        classifier_steps, f"fraction{len(index)}+generated-seed{seed}")
            plus = model.accuracy(real_eval.images, real_eval.labels)
            augmentation[f"{fraction:g}"] = {"fraction": fraction, "real_images": int(len(index)),
                                             "real_only_accuracy": alone, "real_plus_generated_accuracy": plus,
                                             "gain": plus - alone}
        cas_result = {"cas": cas, "real_accuracy": real_accuracy, "cas_ratio": cas / real_accuracy,
                      "augmentation": augmentation}
        print(f"    CAS {cas:.4f}  real {real_accuracy:.4f}  ratio {cas / real_accuracy:.3f}  " + "  ".join(
            f"gain@{a['fraction']:.0%} {a['gain']:+.4f}" for a in augmentation.values()), flush=True)
        runs.append({"seed": seed, "curve": curve, "final": cas_result})

    def med(values):
        return summarize(list(values))

    medians = {
        "curve": [{"step": step,
                   **{key: med(r["curve"][i][key] for r in runs)
                      for key in ("is", "is_std", "fid_dc", "label_agreement", "train_seconds")}}
                  for i, step in enumerate(schedule)],
        "cas": med(r["final"]["cas"] for r in runs),
        "real_accuracy": real_accuracy,
        "cas_ratio": med(r["final"]["cas_ratio"] for r in runs),
        "augmentation": {key: {"real_only_accuracy": value["real_only_accuracy"],
                               "real_plus_generated_accuracy": med(
                                   r["final"]["augmentation"][key]["real_plus_generated_accuracy"] for r in runs),
                               "gain": med(r["final"]["augmentation"][key]["gain"] for r in runs)}
                         for key, value in runs[0]["final"]["augmentation"].items()},
    }
    return {
        "dataset": "fashion-mnist (ImageExampleGen train/eval splits, 28x28 grey)",
        "classifier": {"name": classifier.name, "steps": classifier_steps, "seed": CLASSIFIER_SEED,
                       "train_images": int(len(train.labels)), "eval_images": int(len(real_eval.labels)),
                       "eval_accuracy": classifier_accuracy},
        "gan_config": base.to_dict(),
        "steps": steps, "schedule": schedule, "seeds": seeds, "samples": samples, "cas_samples": cas_samples,
        "real_floor": {**floor, "eval_split_is": eval_is},
        "runs": runs,
        "medians": medians,
        "wall_seconds": time.perf_counter() - wall_start,
        "cpu_seconds": time.process_time() - cpu_start,
    }


def _cell(summary: dict, digits: int = 3) -> str:
    if summary["min"] == summary["max"]:
        return f"{summary['median']:.{digits}f}"
    return f"{summary['median']:.{digits}f} [{summary['min']:.{digits}f}-{summary['max']:.{digits}f}]"


def table(result: dict) -> str:
    m, floor, c = result["medians"], result["real_floor"], result["classifier"]
    lines = [
        f"Fashion-MNIST, conditional GAN (TrainerConfig defaults, 28x28), median [min-max] of {result['seeds']} "
        f"seed(s); {result['samples']} generated images (labels 0-9 in turn) vs the {c['eval_images']} real eval "
        f"images. Domain classifier `{c['name']}` ({c['steps']} steps on {c['train_images']} train images): "
        f"eval accuracy {c['eval_accuracy']:.4f}. IS and FID-DC use it (not Inception).",
        "",
        "| | " + " | ".join(f"step {p['step']}" for p in m["curve"]) + " | real floor |",
        "|---" * (len(m["curve"]) + 2) + "|",
        "| IS (GAN) | " + " | ".join(_cell(p["is"]) for p in m["curve"]) + f" | {floor['is']:.3f} |",
        "| FID-DC (GAN) | " + " | ".join(_cell(p["fid_dc"]) for p in m["curve"]) + f" | {floor['fid_dc']:.3f} |",
        "| classifier agrees with label | " + " | ".join(_cell(p["label_agreement"]) for p in m["curve"])
        + f" | {floor['label_agreement']:.3f} |",
        "| training seconds | " + " | ".join(f"{p['train_seconds']['median']:.0f}" for p in m["curve"]) + " | |",
        "",
        f"CAS at step {result['schedule'][-1]}: the classifier ({c['steps']} steps, seed {c['seed']}) trained on "
        f"{result['cas_samples']} generated vs {result['cas_samples']} real train images, tested on the real eval "
        "split; gain = accuracy(fraction + generated) - accuracy(fraction alone).",
        "",
        "| seed | CAS | real accuracy | CAS / real | 1% alone | 1% + gen | gain 1% | 10% alone | 10% + gen | gain 10% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(str(r["seed"]), r["final"]) for r in result["runs"]]
    for name, f in rows:
        a1, a10 = f["augmentation"]["0.01"], f["augmentation"]["0.1"]
        lines.append(f"| {name} | {f['cas']:.4f} | {f['real_accuracy']:.4f} | {f['cas_ratio']:.3f} | "
                     f"{a1['real_only_accuracy']:.4f} | {a1['real_plus_generated_accuracy']:.4f} | {a1['gain']:+.4f} | "
                     f"{a10['real_only_accuracy']:.4f} | {a10['real_plus_generated_accuracy']:.4f} | "
                     f"{a10['gain']:+.4f} |")
    a1, a10 = m["augmentation"]["0.01"], m["augmentation"]["0.1"]
    lines.append(f"| median | {m['cas']['median']:.4f} | {m['real_accuracy']:.4f} | {m['cas_ratio']['median']:.3f} | "
                 f"{a1['real_only_accuracy']:.4f} | {a1['real_plus_generated_accuracy']['median']:.4f} | "
                 f"{a1['gain']['median']:+.4f} | {a10['real_only_accuracy']:.4f} | "
                 f"{a10['real_plus_generated_accuracy']['median']:.4f} | {a10['gain']['median']:+.4f} |")
    lines += ["", f"Wall {result['wall_seconds'] / 60:.1f} min, CPU {result['cpu_seconds'] / 60:.1f} min "
                  f"(this process), commit {result.get('machine', {}).get('commit', '?')}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--classifier-steps", type=int, default=1000)
    parser.add_argument("--cas-samples", type=int, default=5000)
    args = parser.parse_args(argv)
    if min(args.steps, args.points, args.seeds, args.classifier_steps) < 1 or args.samples < 10 or args.cas_samples < 1:
        parser.error("--steps, --points, --seeds, --classifier-steps must be >= 1, --samples >= 10, --cas-samples >= 1")
    result = run(args.steps, args.points, args.seeds, args.samples, args.classifier_steps, args.cas_samples)
    path = write_result("classifier_scores", result, RESULTS_DIR)
    import json

    with open(path, encoding="utf-8") as handle:
        result["machine"] = json.load(handle)["machine"]
    text = table(result)
    print(text)
    with open(path.replace(".json", ".md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    print("wrote", path, "and", path.replace(".json", ".md"))
    return result


if __name__ == "__main__":
    main()
