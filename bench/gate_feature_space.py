"""Which feature space tells emoji-like blobs from emoji: random-conv-v1 against the domain classifier.

The gate's floor-relative limits (candidate FID <= 8x the real floor's,
coverage >= 0.25x) were measured in random-conv-v1, where a 20 CPU-minute
emoji generator that draws blobs sits at 1.2x the floor and passes. This
re-scores the generators that `bench.quality_colour` runs left in bench/.work
(their newest checkpoint; the EMA copy with recomputed BatchNorm statistics
when the run had an EMA, as export does) in both spaces, against the same
real eval images, with the same real floor, and reports the ratios the gate
would see. The domain classifier (`domain-classifier-v1`) is trained once on
the emoji train split's 10 category labels (1000 steps, seed 0) and cached
in bench/.work/domain_classifiers, without the train images the floor uses.
The floor is a sample spread over the class-sorted train split, as the
evaluator now takes it: the head of the file (5 of 10 classes) had put the
floor's in-domain FID at 15.8 and every generator at 0.3-0.6x "the floor".

    python -m bench.gate_feature_space [--samples 1000] [--tag TAG] [RUN ...]

RUN is bench/.work/colour-RUN (e.g. dcgan-tutorial-0); default: every such
folder with a checkpoint. Writes <results>/gate_feature_space.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os

from bench.common import write_result
from bench.quality_colour import WORK_DIR
from bench.quality_per_compute import generated_images


def _runs() -> list[str]:
    found = glob.glob(os.path.join(WORK_DIR, "colour-*", "ckpt", "*", "*.index"))
    return sorted({path.split(os.sep)[-4][len("colour-"):] for path in found})


def _generator(run: str):
    """(generator with the run's final weights as exported, its TrainerConfig, checkpoint name)."""
    import tensorflow as tf

    from ganpipe.trainer.config import TrainerConfig, network_spec
    from ganpipe.trainer.models import build_generator, recompute_batch_norm_statistics

    (folder,) = {os.path.dirname(index) for index in glob.glob(os.path.join(WORK_DIR, f"colour-{run}", "ckpt", "*",
                                                                             "*.index"))}
    latest = tf.train.latest_checkpoint(folder)
    with open(os.path.join(folder, "trainer_config.json"), encoding="utf-8") as handle:
        cfg = TrainerConfig.from_dict(json.load(handle))
    generator = build_generator(dataclasses.replace(network_spec(cfg), mixed_precision="none"))
    if cfg.ema_decay > 0:
        tf.train.Checkpoint(ema_generator=generator).restore(latest).expect_partial()
        recompute_batch_norm_statistics(generator, cfg.latent_dim, seed=cfg.seed)
    else:
        tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return generator, cfg, os.path.basename(latest)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--tag", default="", help="suffix of the result's name (gate_feature_space_<tag>.json)")
    args = parser.parse_args(argv)

    import numpy as np

    from ganpipe.components.gan_evaluator import classifiers
    from ganpipe.evaluation import domain_classifier, metrics
    from ganpipe.evaluation.feature_extractors import get_extractor
    from ganpipe.trainer.data import load_images, read_labels

    examples = os.path.join(WORK_DIR, "emoji_examples")
    train_pattern, eval_pattern = [os.path.join(examples, "Split-train", "*")], [os.path.join(examples, "Split-eval",
                                                                                              "*")]
    real_eval = load_images(eval_pattern, channels=3, image_size=64)
    real_train = load_images(train_pattern, channels=3, image_size=64)
    labels = read_labels(train_pattern)
    eval_labels = read_labels(eval_pattern)
    # As the evaluator does (sampling.real_batches, classifiers.floor_holdout): the floor is a sample spread
    # over the class-sorted split, and the classifier does not train on it.
    floor_mask = classifiers._floor_mask(len(real_train), args.samples)
    classifier, _ = domain_classifier.load_or_train(
        lambda: (real_train[~floor_mask], labels[~floor_mask]), int(labels.max()) + 1, steps=1000, seed=0,
        key=f"emoji-twitter-64-strided-holdout{args.samples}", cache_dir=os.path.join(WORK_DIR, "domain_classifiers"))
    spaces = {"random-conv-v1": get_extractor("random-conv"), "domain-classifier-v1": classifier}
    references = {name: metrics.FeatureSummary.from_features(extract(real_eval)) for name, extract in spaces.items()}
    floor_images = real_train[floor_mask]

    def scores(images: np.ndarray) -> dict:
        return {name: metrics.score(metrics.FeatureSummary.from_features(extract(images)), references[name]).to_dict()
                for name, extract in spaces.items()}

    floor = scores(floor_images)
    rows = []
    for run in args.runs or _runs():
        generator, cfg, checkpoint = _generator(run)
        measured = scores(generated_images(generator, cfg.latent_dim, args.samples))
        row = {"run": run, "checkpoint": checkpoint, "scores": measured}
        for name in spaces:
            row[f"{name}_fid_over_floor"] = measured[name]["fid"] / floor[name]["fid"]
            row[f"{name}_coverage_of_floor"] = measured[name]["coverage"] / floor[name]["coverage"]
        rows.append(row)
        print(f"{run:40s} {checkpoint:10s} " + "  ".join(
            f"{name}: FID/floor {row[f'{name}_fid_over_floor']:6.2f} coverage/floor "
            f"{row[f'{name}_coverage_of_floor']:.2f}" for name in spaces), flush=True)
    result = {"benchmark": "gate_feature_space", "samples": args.samples, "floor": floor,
              "classifier_eval_accuracy": classifier.accuracy(real_eval, eval_labels), "runs": rows}
    print(f"domain classifier eval accuracy {result['classifier_eval_accuracy']:.3f}; floor FID: "
          + ", ".join(f"{name} {floor[name]['fid']:.3f}" for name in spaces))
    print("wrote", write_result("gate_feature_space" + (f"_{args.tag}" if args.tag else ""), result))
    return result


if __name__ == "__main__":
    main()
