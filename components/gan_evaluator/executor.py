"""GanEvaluator executor: sample the generators, score them, write blessing and report.

The decision rules are plain functions (``sample_problems``, ``judge``) so
they can be read and tested on their own; ``Executor.Do`` only gathers the
numbers and writes the artifacts.
"""

from __future__ import annotations

import html
import json
import math
import os
from typing import Any, Optional

import numpy as np
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils

from trainer import contract, data, metrics, visualize
from trainer.feature_extractors import FeatureExtractor, get_extractor

EXTRACTOR_KEY = "extractor"
NUM_SAMPLES_KEY = "num_samples"
SEED_KEY = "seed"
MAX_FID_KEY = "max_fid"
MIN_IMPROVEMENT_KEY = "min_improvement"
IMAGE_SIZE_KEY = "image_size"
CHANNELS_KEY = "channels"

METRICS_FILE = "metrics.json"
INDEX_FILE = "index.html"
CANDIDATE_PNG = "candidate_samples.png"
BASELINE_PNG = "baseline_samples.png"
REAL_PNG = "real_samples.png"

# Below this, samples count as identical (uint8 pixels differ by >= 1 when they differ at all).
CONSTANT_STD_EPS = 1e-6
GENERATE_BATCH = 256
GRID_IMAGES = 64


class GeneratorLoadError(RuntimeError):
    """The generator SavedModel cannot be loaded or does not honour the signature contract."""


def sample_problems(images: np.ndarray, count: int, image_size: int, channels: int) -> list[str]:
    """Why these generated samples cannot be blessed, whatever their FID (empty if none).

    The contract is uint8 [count, size, size, channels]. A generator that
    diverged typically outputs NaN (float outputs) or, once cast to uint8, one
    flat image for every seed; FID of such samples can look deceptively
    finite, so they are refused outright.
    """
    problems = []
    expected = (count, image_size, image_size, channels)
    if images.dtype != np.uint8:
        problems.append(f"images have dtype {images.dtype}; the generator contract is uint8")
        if np.issubdtype(images.dtype, np.number):
            bad = int(np.size(images) - np.count_nonzero(np.isfinite(images)))
            if bad:
                problems.append(f"{bad} of {images.size} output values are NaN or infinite")
    if tuple(images.shape) != expected:
        problems.append(f"images have shape {tuple(images.shape)}, expected {expected}")
    if problems:
        return problems
    pixels = images.astype(np.float64).reshape(count, -1)
    if count > 1 and float(pixels.std(axis=0).max()) <= CONSTANT_STD_EPS:
        problems.append(f"all {count} samples are the same image: the generator ignores its seed "
                        "(collapsed or diverged)")
    if float(pixels.std(axis=1).max()) <= CONSTANT_STD_EPS:
        problems.append("every sample is a single flat colour (collapsed or diverged)")
    return problems


def judge(candidate_fid: Optional[float], problems: list[str], baseline_fid: Optional[float],
          max_fid: float, min_improvement: float) -> tuple[bool, list[str]]:
    """Blessed iff the samples are sane, the FID is finite, under ``max_fid`` (0 = no limit),
    and better than ``baseline_fid * (1 - min_improvement)`` when there is a baseline.

    Returns (blessed, reasons it was not; empty when blessed).
    """
    reasons = list(problems)
    if candidate_fid is None:
        reasons.append("no FID: the samples could not be scored")
        return False, reasons
    if not math.isfinite(candidate_fid):
        reasons.append(f"candidate FID is not a finite number ({candidate_fid})")
        return False, reasons
    if max_fid > 0 and candidate_fid > max_fid:
        reasons.append(f"candidate FID {candidate_fid:.4f} exceeds evaluate.max_fid={max_fid:g}")
    if baseline_fid is not None:
        needed = baseline_fid * (1.0 - min_improvement)
        if candidate_fid > needed:
            reasons.append(
                f"candidate FID {candidate_fid:.4f} is not better than the blessed baseline's "
                f"{baseline_fid:.4f} by evaluate.min_improvement={min_improvement:g} "
                f"(needs <= {needed:.4f})")
    return not reasons, reasons


def load_generator(model_uri: str, is_old_artifact: bool = False) -> Any:
    """Loads the serving SavedModel under a Model artifact (layout as the Trainer writes it)."""
    path = path_utils.serving_model_path(model_uri, is_old_artifact)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # OSError, ValueError, parse errors: all mean "not loadable"
        raise GeneratorLoadError(f"cannot load a SavedModel from {path}: {error}") from error
    if contract.SEEDS_SIGNATURE not in loaded.signatures:
        raise GeneratorLoadError(
            f"SavedModel at {path} has no '{contract.SEEDS_SIGNATURE}' signature "
            f"(has: {', '.join(sorted(loaded.signatures.keys())) or 'none'})")
    return loaded


def generate(loaded: Any, seeds: np.ndarray) -> np.ndarray:
    """Calls the seeds signature batch by batch; returns its images output as NumPy, untouched."""
    signature = loaded.signatures[contract.SEEDS_SIGNATURE]
    batches = []
    for start in range(0, len(seeds), GENERATE_BATCH):
        chunk = tf.constant(seeds[start:start + GENERATE_BATCH], dtype=tf.int64)
        outputs = signature(**{contract.SEEDS_INPUT: chunk})
        if contract.IMAGES_OUTPUT not in outputs:
            raise GeneratorLoadError(f"'{contract.SEEDS_SIGNATURE}' returned {sorted(outputs)}, "
                                     f"not '{contract.IMAGES_OUTPUT}'")
        batches.append(outputs[contract.IMAGES_OUTPUT].numpy())
    return np.concatenate(batches, axis=0)


class _Scorer:
    """FID against one fixed real reference, extracted once."""

    def __init__(self, extractor: FeatureExtractor, real_images: np.ndarray):
        self.extractor = extractor
        self.real_features = extractor(real_images)
        self.real_stats = metrics.FeatureStats.from_features(self.real_features)

    def scores(self, images: np.ndarray) -> dict[str, float]:
        features = self.extractor(images)
        result = {"fid": metrics.fid_from_stats(metrics.FeatureStats.from_features(features), self.real_stats)}
        # Secondary numbers, for people: they do not decide the blessing.
        subset = max(2, min(len(features), len(self.real_features)) // 2)
        kid = metrics.kid(features, self.real_features, num_subsets=50, subset_size=subset, seed=0)
        result.update(kid=kid.mean, kid_std=kid.std)
        if min(len(features), len(self.real_features)) > 3:
            pr = metrics.precision_recall(self.real_features, features, k=3)
            result.update(precision=pr.precision, recall=pr.recall)
        return result


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        if len(baselines) > 1:
            raise ValueError(f"expected at most one baseline model, got {len(baselines)}")
        baseline = baselines[0] if baselines else None
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])

        num_samples = int(exec_properties[NUM_SAMPLES_KEY])
        seed = int(exec_properties[SEED_KEY])
        image_size = int(exec_properties[IMAGE_SIZE_KEY])
        channels = int(exec_properties[CHANNELS_KEY])
        max_fid = float(exec_properties.get(MAX_FID_KEY) or 0.0)
        min_improvement = float(exec_properties.get(MIN_IMPROVEMENT_KEY) or 0.0)
        if num_samples < 2:
            raise ValueError(f"num_samples={num_samples}: FID needs at least 2 samples")
        extractor = get_extractor(exec_properties.get(EXTRACTOR_KEY) or "random-conv")
        notes: list[str] = []

        # Real reference (eval split) and the "as good as real" floor (train vs eval).
        def split_images(split: str) -> np.ndarray:
            pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
            return data.load_images([pattern], channels=channels, image_size=image_size, limit=num_samples)

        real_eval = split_images(contract.EVAL_SPLIT)
        if len(real_eval) < 2:
            raise ValueError(f"the eval split has {len(real_eval)} image(s); FID needs at least 2")
        if len(real_eval) < num_samples:
            notes.append(f"the eval split has only {len(real_eval)} images: the real reference uses all "
                         f"of them against {num_samples} generated samples")
        scorer = _Scorer(extractor, real_eval)
        real_train = split_images(contract.TRAIN_SPLIT)
        real_floor = scorer.scores(real_train) if len(real_train) >= 2 else None

        seeds = np.arange(seed, seed + num_samples, dtype=np.int64)
        candidate_images = generate(load_generator(model.uri, path_utils.is_old_model_artifact(model)), seeds)
        problems = sample_problems(candidate_images, num_samples, image_size, channels)
        candidate = None
        if candidate_images.dtype == np.uint8 and candidate_images.shape[1:] == real_eval.shape[1:]:
            candidate = scorer.scores(candidate_images)

        baseline_scores, baseline_images = None, None
        if baseline is not None:
            try:
                baseline_images = generate(
                    load_generator(baseline.uri, path_utils.is_old_model_artifact(baseline)), seeds)
                baseline_problems = sample_problems(baseline_images, num_samples, image_size, channels)
                if baseline_problems:
                    raise GeneratorLoadError("; ".join(baseline_problems))
                baseline_scores = scorer.scores(baseline_images)
            except Exception as error:  # any failure of the OLD model must not block a new one
                notes.append(f"baseline model {baseline.uri} (id {baseline.id}) could not be scored, so the "
                             f"candidate is judged as if there were no baseline: {error}")
                baseline_images = None

        blessed, reasons = judge(
            candidate["fid"] if candidate else None, problems,
            baseline_scores["fid"] if baseline_scores else None, max_fid, min_improvement)

        report = {
            "extractor": extractor.name,
            "num_samples": num_samples,
            "seed": seed,
            "num_real_eval": int(len(real_eval)),
            "candidate": candidate,
            "baseline": baseline_scores,
            "real_floor": real_floor,
            "blessed": blessed,
            "reasons": reasons,
            "notes": notes,
            "thresholds": {"max_fid": max_fid, "min_improvement": min_improvement},
            "candidate_model": model.uri,
            "baseline_model": baseline.uri if baseline is not None else None,
        }
        for note in notes:
            logging.warning("GanEvaluator: %s", note)
        logging.info("GanEvaluator report: %s", json.dumps(report))
        _write_evaluation(evaluation, report, candidate_images, baseline_images, real_eval)
        _write_blessing(blessing, model, baseline, blessed)


def _write_blessing(blessing: types.Artifact, model: types.Artifact, baseline: Optional[types.Artifact],
                    blessed: bool) -> None:
    """The properties and marker file the stock Evaluator writes, which Pusher and
    LatestBlessedModelStrategy read (tfx/components/evaluator/executor.py)."""
    blessing.set_string_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                            baseline.uri)
        blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                         baseline.id)
    marker = evaluator_constants.BLESSED_FILE_NAME if blessed else evaluator_constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        evaluator_constants.BLESSED_VALUE if blessed else evaluator_constants.NOT_BLESSED_VALUE)


def _write_evaluation(evaluation: types.Artifact, report: dict[str, Any], candidate_images: np.ndarray,
                      baseline_images: Optional[np.ndarray], real_images: np.ndarray) -> None:
    folder = evaluation.uri
    tf.io.gfile.makedirs(folder)
    io_utils.write_string_file(os.path.join(folder, METRICS_FILE), json.dumps(report, indent=2))
    pictures = []
    if _is_picture(candidate_images):
        visualize.save_image_grid(candidate_images[:GRID_IMAGES], os.path.join(folder, CANDIDATE_PNG),
                                  title="candidate")
        pictures.append((CANDIDATE_PNG, "candidate generator"))
    if baseline_images is not None and _is_picture(baseline_images):
        visualize.save_image_grid(baseline_images[:GRID_IMAGES], os.path.join(folder, BASELINE_PNG),
                                  title="baseline (last blessed)")
        pictures.append((BASELINE_PNG, "baseline generator (same seeds)"))
    visualize.save_image_grid(real_images[:GRID_IMAGES], os.path.join(folder, REAL_PNG), title="real (eval)")
    pictures.append((REAL_PNG, "real images (eval split)"))
    io_utils.write_string_file(os.path.join(folder, INDEX_FILE), _index_html(report, pictures))
    # Headline numbers on the artifact too, so MLMD queries and UIs see them without opening files.
    evaluation.set_string_custom_property("extractor", report["extractor"])
    evaluation.set_int_custom_property("blessed", int(report["blessed"]))
    for key in ("candidate", "baseline", "real_floor"):
        if report[key] is not None:
            evaluation.set_float_custom_property(f"{key}_fid", float(report[key]["fid"]))


def _is_picture(images: np.ndarray) -> bool:
    return images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] in (1, 3) and len(images) > 0


def _index_html(report: dict[str, Any], pictures: list[tuple[str, str]]) -> str:
    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))

    columns = ("fid", "kid", "kid_std", "precision", "recall")
    rows = []
    for key, label in (("candidate", "candidate"), ("baseline", "baseline (last blessed)"),
                       ("real_floor", "real floor (train vs eval)")):
        scores = report[key] or {}
        cells = "".join(f"<td>{number(scores.get(column))}</td>" for column in columns)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    verdict = "BLESSED" if report["blessed"] else "NOT BLESSED"
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in report["reasons"]) or "<li>none</li>"
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report["notes"]) or "<li>none</li>"
    thresholds = ", ".join(f"{key}={value:g}" + (" (off)" if key == "max_fid" and not value else "")
                           for key, value in report["thresholds"].items())
    images = "".join(
        f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for path, caption in pictures)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>GanEvaluator: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em .8em;text-align:right}}
th{{text-align:left}} table{{border-collapse:collapse}} tr{{border-bottom:1px solid #ddd}}
figure{{display:inline-block;margin:1em}} img{{max-width:480px;image-rendering:pixelated}}</style></head>
<body>
<h1>{verdict}</h1>
<p>Feature extractor <b>{html.escape(report["extractor"])}</b>, {report["num_samples"]} generated samples
(seeds {report["seed"]}..{report["seed"] + report["num_samples"] - 1}) vs {report["num_real_eval"]} real eval
images. Lower is better. These numbers are comparable only with numbers from the same extractor; they are not
Inception FID. The real floor is what real images score against the eval split in this feature space.</p>
<table><tr><th></th>{"".join(f"<th>{column}</th>" for column in columns)}</tr>
{"".join(rows)}</table>
<p>Thresholds: {html.escape(thresholds)}</p>
<h2>Why not blessed</h2><ul>{reasons}</ul>
<h2>Notes</h2><ul>{notes}</ul>
{images}
</body></html>
"""
