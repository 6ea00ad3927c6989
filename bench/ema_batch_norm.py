"""The EMA generator's BatchNorm statistics: copied from the trained network, or recomputed for its own weights.

Re-scores the final checkpoints a `bench.quality_colour` run left in
bench/.work (same extractor, reference and 1,000 samples as that run) twice:
with the moving statistics the EMA copy inherits from the trained generator,
and after `recompute_batch_norm_statistics` (BigGAN's standing statistics).
No training happens: the newest checkpoint is restored.

    python -m bench.ema_batch_norm dcgan+diffaugment+batch64:0 dcgan+diffaugment+batch64:1

Each argument names a finished run's folder, bench/.work/colour-VARIANT-SEED
(its newest checkpoint and its own trainer_config.json are used; runs
without an EMA have nothing to compare). Writes <results>/ema_batch_norm.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os

from bench.common import write_result
from bench.quality_colour import WORK_DIR, _references
from bench.quality_per_compute import generated_images


def rescore(name: str, seed: int, samples: int = 1000) -> dict:
    """FID/KID/coverage of a run's last EMA generator, with the inherited and with recomputed statistics."""
    import tensorflow as tf

    from ganpipe.evaluation import metrics
    from ganpipe.trainer.config import TrainerConfig, network_spec
    from ganpipe.trainer.models import build_generator, recompute_batch_norm_statistics

    examples = os.path.join(WORK_DIR, "emoji_examples")
    extractor, reference, _, _ = _references(examples, samples)
    (folder,) = {os.path.dirname(index)
                 for index in glob.glob(os.path.join(WORK_DIR, f"colour-{name}-{seed}", "ckpt", "*", "*.index"))}
    latest = tf.train.latest_checkpoint(folder)
    with open(os.path.join(folder, "trainer_config.json"), encoding="utf-8") as handle:
        cfg = TrainerConfig.from_dict(json.load(handle))  # the run's own settings, whatever the variant is now
    spec = dataclasses.replace(network_spec(cfg), mixed_precision="none")
    generator = build_generator(spec)
    # Saved by the training loop: the EMA weights, and BatchNorm statistics copied from the trained network.
    tf.train.Checkpoint(ema_generator=generator).restore(latest).expect_partial()

    def score() -> dict:
        images = generated_images(generator, cfg.latent_dim, samples)
        return metrics.score(metrics.FeatureSummary.from_features(extractor(images)), reference).to_dict()

    inherited = score()
    recompute_batch_norm_statistics(generator, cfg.latent_dim, seed=seed)  # as export_copy does
    return {"run": f"{name}-{seed}", "checkpoint": os.path.basename(latest),
            "inherited_statistics": inherited, "recomputed_statistics": score()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="VARIANT:SEED")
    args = parser.parse_args()
    results = []
    for item in args.runs:
        name, seed = item.rsplit(":", 1)
        results.append(rescore(name, int(seed)))
        print(results[-1], flush=True)
    print(write_result("ema_batch_norm", {"runs": results}))


if __name__ == "__main__":
    main()
