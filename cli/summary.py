"""The end of a run: what was pushed, how it scored, and a picture of its samples."""

from __future__ import annotations

import os

from ganpipe import contract
from ganpipe.pipeline.config import PipelineConfig
from ganpipe.cli.outcome import read_outcome

SAMPLES_FILE = "samples.png"
NUM_SAMPLES = 64


def summarize(config: PipelineConfig, started_ms: int, seconds: float) -> str:
    """Writes <output>/samples.png (real next to generated) and returns the closing text."""
    outcome = read_outcome(config.metadata_path, started_ms)
    lines = [f"ganpipe: pipeline finished in {seconds:.0f}s"]
    if outcome.evaluation:
        lines.append("ganpipe: evaluation: " + _scores(outcome.evaluation))
    if outcome.evaluation_uri:
        lines.append(f"ganpipe: evaluation page: {os.path.join(outcome.evaluation_uri, 'index.html')}")
    if outcome.pushed:
        lines.append(f"ganpipe: pushed generator: {outcome.pushed_destination}")
    else:
        reasons = "; ".join((outcome.evaluation or {}).get("reasons", [])) or "see the evaluation page"
        lines.append(f"ganpipe: NOT pushed (not blessed): {reasons}")
        hint = train_longer_hint(config, outcome.evaluation, outcome.examples_uri)
        if hint:
            lines.append(hint)
    model_dir = outcome.pushed_destination if outcome.pushed else _serving_model_path(outcome.model_uri)
    if model_dir and outcome.examples_uri:
        path = os.path.join(config.output_dir, SAMPLES_FILE)
        write_samples(model_dir, outcome.examples_uri, config, path)
        kind = "pushed" if outcome.pushed else "candidate (not pushed)"
        lines.append(f"ganpipe: samples of the {kind} generator next to real images: {os.path.abspath(path)}")
    if outcome.synthetic_uri:
        lines.append(f"ganpipe: synthetic examples: {outcome.synthetic_count} samples of the pushed generator: "
                     f"{outcome.synthetic_uri}")
    return "\n".join(lines)


def train_longer_hint(config: PipelineConfig, evaluation: dict | None, examples_uri: str | None) -> str | None:
    """What to do when the gate found the candidate far from the real data (its floor-relative limits);
    None for any other refusal. On a first run the usual cause is too few steps for the data: the
    600 steps `train.steps: auto` gives at 32 px are, at batch 64, 0.6 passes over Fashion-MNIST's
    63,000 training images."""
    if not any("the real floor's" in reason for reason in (evaluation or {}).get("reasons", [])):
        return None
    from ganpipe.trainer.config import resolve_architecture, resolve_architecture_defaults

    train = config.train
    batch = resolve_architecture_defaults(train, resolve_architecture(train.architecture, train.image_size))[
        "batch_size"]
    seen = f"{train.steps:,} steps of {batch} images"
    from ganpipe.trainer.data import read_ingest_report

    report = read_ingest_report(examples_uri) if examples_uri else None
    if report is not None:
        count = report.get("splits", {}).get(contract.TRAIN_SPLIT)
        if count:
            seen += f", {train.steps * batch / count:.1f} passes over {count:,} training images"
    return (f"ganpipe: the candidate is still far from the real images ({seen}): train longer with --steps, "
            "or loosen evaluate.max_fid_over_floor / min_coverage_of_floor if this data needs it")


def write_samples(model_dir: str, examples_uri: str, config: PipelineConfig, path: str) -> None:
    import tensorflow as tf

    from ganpipe.trainer.data import load_images
    from ganpipe.trainer.visualize import save_comparison

    generator = tf.saved_model.load(model_dir)
    seeds = tf.range(NUM_SAMPLES, dtype=tf.int64)
    generated = generator.signatures[contract.SEEDS_SIGNATURE](**{contract.SEEDS_INPUT: seeds})
    # Spread over the split: one ingested from class folders is in class order, and its head is a few classes.
    real = load_images([os.path.join(examples_uri, f"Split-{contract.EVAL_SPLIT}", "*")],
                       config.train.channels, config.train.image_size, limit=NUM_SAMPLES, spread=True)
    save_comparison(real, generated[contract.IMAGES_OUTPUT].numpy(), path)


def _serving_model_path(model_uri: str | None) -> str | None:
    if not model_uri:
        return None
    from tfx.utils import path_utils

    return path_utils.serving_model_path(model_uri)


def _scores(evaluation: dict) -> str:
    parts = [f"extractor {evaluation.get('extractor')}"]
    for role in ("candidate", "baseline", "real_floor"):
        block = evaluation.get(role)
        if block and block.get("fid") is not None:
            parts.append(f"{role} FID {block['fid']:.2f}")
    candidate = evaluation.get("candidate") or {}
    if candidate.get("coverage") is not None:  # mode collapse shows here, not in FID
        parts.append(f"candidate recall {candidate['recall']:.2f} coverage {candidate['coverage']:.2f}")
    if candidate.get("inception_score") is not None:
        floor = (evaluation.get("real_floor") or {}).get("inception_score")
        parts.append(f"IS {candidate['inception_score']:.2f}" + (f" (real {floor:.2f})" if floor else ""))
    cas = evaluation.get("cas") or {}
    if cas.get("cas_ratio") is not None:
        parts.append(f"CAS {cas['cas']:.2f} ({cas['cas_ratio']:.2f}x real)")
    parts.append("blessed" if evaluation.get("blessed") else "not blessed")
    return ", ".join(parts)
