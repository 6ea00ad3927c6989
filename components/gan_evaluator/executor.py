"""GanEvaluator executor: sample the generators, score them, write blessing and report.

``Executor.Do`` only gathers numbers and writes artifacts; the decision rules
live in ``rules``, the streaming in ``sampling``, the page in ``report``.
Every image set (real eval reference, real train floor, candidate, baseline)
goes through the same extractor in the same evaluation, so the numbers being
compared always share one feature space.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Optional

import numpy as np
from absl import logging
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils

from ganpipe.components.gan_evaluator import classifiers
from ganpipe.components.gan_evaluator import report as report_writer
from ganpipe.components.gan_evaluator.rules import SampleChecker, judge
from ganpipe.components.serving_pusher import layout
from ganpipe.components.gan_evaluator.sampling import (GeneratorLoadError, Sampled, generated_batches, load_generator,
                                               load_saved_model, real_batches, summarize)
from ganpipe import contract
from ganpipe.trainer import data
from ganpipe.evaluation import metrics
from ganpipe.evaluation.config import GATE_LIMITS, INCEPTION_CLASSIFIER, EvaluateConfig
from ganpipe.evaluation.domain_classifier import DomainClassifier
from ganpipe.evaluation.feature_extractors import DOMAIN_CLASSIFIER, get_extractor, inception_v3_classifier
from ganpipe.evaluation.inception_score import DEFAULT_SPLITS, InceptionScoreAccumulator

CONFIG_KEY = "config"  # EvaluateConfig.to_dict() as JSON
SERVING_BASE_KEY = "serving_base"
IMAGE_SIZE_KEY = "image_size"
CHANNELS_KEY = "channels"
# Where domain classifiers are cached by dataset key (any tf.io.gfile path; "" = not cached).
CLASSIFIER_CACHE_KEY = "classifier_cache"

__all__ = ["Executor", "GeneratorLoadError"]


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        baseline = serving_baseline(str(exec_properties[SERVING_BASE_KEY]))
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])

        limits = EvaluateConfig.from_dict(json.loads(exec_properties[CONFIG_KEY])).with_limits(
            {name: exec_properties.get(name) for name in GATE_LIMITS})
        num_samples, seed = limits.num_samples, limits.seed
        image_size = int(exec_properties[IMAGE_SIZE_KEY])
        channels = int(exec_properties[CHANNELS_KEY])
        if not image_size or not channels:  # auto: the shape ingestion stored (a Kubeflow run has no preflight)
            stored_size, stored_channels = data.stored_shape(
                [os.path.join(artifact_utils.get_split_uri([examples], contract.EVAL_SPLIT), "*")])
            image_size, channels = image_size or stored_size, channels or stored_channels
        notes: list[str] = []
        classifier = _classifier(examples, limits, image_size, channels,
                                 str(exec_properties.get(CLASSIFIER_CACHE_KEY) or "") or None, notes)
        extractor = (classifier.domain if limits.extractor == DOMAIN_CLASSIFIER
                     else get_extractor(limits.extractor))

        # Real reference (eval split) and the "as good as real" floor (train sample vs eval).
        real_eval = summarize(real_batches(examples, contract.EVAL_SPLIT, channels, image_size, num_samples),
                              extractor)
        if real_eval.summary is None:
            raise ValueError(f"the eval split has {real_eval.count} image(s); FID needs at least 2")
        reference = real_eval.summary
        if real_eval.count < num_samples:
            notes.append(f"the eval split has only {real_eval.count} images: the real reference uses all "
                         f"of them against {num_samples} generated samples")
        floor_count = data.count_records(classifiers.split_pattern(examples, contract.TRAIN_SPLIT), num_samples)
        floor_is, observers = classifier.observe(floor_count)
        real_train = summarize(real_batches(examples, contract.TRAIN_SPLIT, channels, image_size, num_samples),
                               extractor, observers=observers)
        real_floor = _scores(real_train.summary, reference, floor_is)

        seeds = np.arange(seed, seed + num_samples, dtype=np.int64)
        candidate_checker = SampleChecker(num_samples, image_size, channels)
        candidate_is, observers = classifier.observe(num_samples)
        candidate_loaded = load_generator(model.uri, path_utils.is_old_model_artifact(model))
        candidate_sampled = summarize(generated_batches(candidate_loaded, seeds), extractor, candidate_checker,
                                      observers=observers)
        problems = candidate_checker.problems()
        candidate = _scores(candidate_sampled.summary, reference, candidate_is)
        cas = _cas(candidate_loaded, examples, limits, image_size, channels, classifier, notes)

        baseline_scores: Optional[dict[str, Any]] = None
        baseline_images: Optional[np.ndarray] = None
        baseline_error: Optional[str] = None
        same_as_baseline = False
        if baseline.version:
            notes.append(f"baseline: serving version {baseline.version} ({baseline.path}), {baseline.origin}")
            try:
                checker = SampleChecker(num_samples, image_size, channels)
                loaded = load_saved_model(baseline.path)
                baseline_is, observers = classifier.observe(num_samples)
                baseline_sampled = summarize(generated_batches(loaded, seeds), extractor, checker,
                                             observers=observers)
                baseline_images = baseline_sampled.grid
                if checker.problems():
                    raise GeneratorLoadError("; ".join(checker.problems()))
                baseline_scores = _scores(baseline_sampled.summary, reference, baseline_is)
                same_as_baseline = baseline_sampled.digest == candidate_sampled.digest
            except Exception as error:  # any failure of the OLD model is reported, never a crash
                baseline_error = f"serving version {baseline.version} ({baseline.path}): {error}"
                notes.append(f"the serving baseline could not be scored: {baseline_error}" + (
                    "; judged as if there were no baseline (evaluate.ignore_unusable_baseline)"
                    if limits.ignore_unusable_baseline else ""))
                baseline_scores = None

        blessed, reasons = judge(candidate, problems, baseline_scores, limits, real_floor=real_floor,
                                 baseline_error=baseline_error,
                                 same_as_baseline=baseline.version if same_as_baseline else 0,
                                 cas=cas, conditional=_is_conditional(candidate_loaded))

        report = {
            "extractor": extractor.name,
            "num_samples": num_samples,
            "seed": seed,
            "num_real_eval": int(real_eval.count),
            "candidate": candidate,
            "baseline": baseline_scores,
            "real_floor": real_floor,
            "classifier": classifier.info,
            "cas": cas,
            "blessed": blessed,
            "reasons": reasons,
            "notes": notes,
            "settings": limits.to_dict(),
            "candidate_model": model.uri,
            "baseline_model": baseline.path,
            "baseline_version": baseline.version,
            "baseline_origin": baseline.origin if baseline.version else None,
        }
        for note in notes:
            logging.warning("GanEvaluator: %s", note)
        logging.info("GanEvaluator report: %s", json.dumps(report))
        report_writer.write_evaluation(evaluation, report, candidate_sampled.grid, baseline_images, real_eval.grid)
        _write_blessing(blessing, model, baseline, blessed)


@dataclasses.dataclass(frozen=True)
class ServingBaseline:
    """What serves now: the newest version under the serving base (version 0 and path None: nothing)."""

    version: int
    path: Optional[str]
    origin: str  # who put it there, from its push record, for the evaluation page
    model_id: Optional[int] = None  # the MLMD id of the Model a ganpipe push copied, when recorded


def serving_baseline(serving_base: str) -> ServingBaseline:
    version = layout.newest(serving_base)
    if not version:
        return ServingBaseline(0, None, "nothing is serving")
    path = os.path.join(serving_base, str(version))
    record = layout.read_push_record(path)
    if record is None:
        return ServingBaseline(version, path, "no ganpipe push record: placed by hand or by another tool, "
                                              "not seen by any ganpipe MLMD")
    model_id = record.get("model_id")
    origin = (f"pushed by ganpipe at {record.get('pushed_at', '?')} from model artifact {model_id} "
              f"({record.get('model_uri', '?')}); that artifact is in the MLMD of the run that pushed it, "
              "which need not be this one")
    return ServingBaseline(version, path, origin, model_id if isinstance(model_id, int) else None)


@dataclasses.dataclass
class _Classifier:
    """What gives p(y|x) for the Inception Score (None: no IS), the domain classifier when one was
    trained or loaded, and what the report says about them."""

    probabilities: Optional[Callable[[np.ndarray], np.ndarray]] = None
    domain: Optional[DomainClassifier] = None
    key: str = ""
    info: Optional[dict[str, Any]] = None
    cache_dir: Optional[str] = None

    def observe(self, count: int) -> tuple[Optional[InceptionScoreAccumulator], list[Callable]]:
        """An IS accumulator for ``count`` images and the observers that feed it (none without a classifier)."""
        if self.probabilities is None or count < DEFAULT_SPLITS:
            return None, []
        accumulator, observer = classifiers.inception_score_observer(self.probabilities, count)
        return accumulator, [observer]


def _classifier(examples: types.Artifact, limits: EvaluateConfig, image_size: int, channels: int,
                cache_dir: Optional[str], notes: list[str]) -> _Classifier:
    """evaluate.classifier resolved: an ImageNet InceptionV3 the user gave, or the domain classifier.

    Raises:
      classifiers.UnlabelledDataError: a domain classifier asked for by name (or as the extractor) on
        data without two labelled classes; ``auto`` then only notes that there is no IS.
    """
    kind, _, path = limits.classifier.partition(":")
    if kind == INCEPTION_CLASSIFIER:
        imagenet = inception_v3_classifier(path)
        return _Classifier(probabilities=imagenet, info={"name": imagenet.name})
    if limits.classifier == "none" and limits.extractor != DOMAIN_CLASSIFIER:
        return _Classifier()
    try:
        domain, info = classifiers.domain_classifier_for(examples, limits, image_size, channels, cache_dir)
    except classifiers.UnlabelledDataError as error:
        if limits.classifier == "domain" or limits.extractor == DOMAIN_CLASSIFIER:
            raise
        notes.append(f"no Inception Score or CAS: {error}")
        return _Classifier()
    accuracy = "-" if info["eval_accuracy"] is None else f"{info['eval_accuracy']:.4f}"
    notes.append(f"domain classifier {info['name']}: eval accuracy {accuracy}, "
                 + ("loaded from the cache" if info["cached"] else f"trained for {info['steps']} steps"))
    if not info["floor_holdout"] and limits.extractor == DOMAIN_CLASSIFIER:
        notes.append("the train split is too small to keep the real floor's images out of the domain classifier's "
                     "training: the floor's in-domain FID is inflated, and so the floor-relative limits are lax")
    return _Classifier(probabilities=domain.probabilities if limits.classifier != "none" else None,
                       domain=domain, key=domain.key, info=info, cache_dir=cache_dir)


def _is_conditional(loaded: Any) -> bool:
    return contract.CONDITIONAL_SIGNATURE in loaded.signatures


def _cas(loaded: Any, examples: types.Artifact, limits: EvaluateConfig, image_size: int, channels: int,
         classifier: _Classifier, notes: list[str]) -> Optional[dict[str, Any]]:
    """CAS for a conditional candidate with a domain classifier; None (with a note why) otherwise."""
    if not limits.cas_samples or classifier.domain is None or not _is_conditional(loaded):
        if limits.min_cas_ratio > 0 and not _is_conditional(loaded):
            notes.append("evaluate.min_cas_ratio applies only to conditional generators; this one is not")
        elif limits.cas_samples and _is_conditional(loaded) and classifier.probabilities is not None:
            notes.append("no CAS: it trains the domain classifier's architecture, and evaluate.classifier is "
                         f"{limits.classifier!r}")
        return None
    try:
        return classifiers.classification_accuracy_score(
            loaded, examples, limits, image_size, channels, classifier.domain.num_classes, classifier.key,
            classifier.cache_dir)
    except Exception as error:  # CAS is a report figure: its failure is said, the gate decides on it
        notes.append(f"CAS could not be computed: {type(error).__name__}: {error}")
        return {"error": f"{type(error).__name__}: {error}"}


def _scores(summary: Optional[metrics.FeatureSummary], reference: metrics.FeatureSummary,
            inception: Optional[InceptionScoreAccumulator] = None) -> Optional[dict[str, Any]]:
    """The sample-quality scores, with the Inception Score's mean and std when a classifier gave p(y|x)."""
    if summary is None:
        return None
    scores = metrics.score(summary, reference).to_dict()
    if inception is not None:
        try:
            result = inception.result()
        except ValueError:  # not every image arrived (a broken generator): no IS, the checker says why
            result = None
        scores["inception_score"] = None if result is None else result.mean
        scores["inception_score_std"] = None if result is None else result.std
    return scores


def _write_blessing(blessing: types.Artifact, model: types.Artifact, baseline: ServingBaseline,
                    blessed: bool) -> None:
    """The properties and marker file the stock Evaluator writes, which Pusher and
    LatestBlessedModelStrategy read (tfx/components/evaluator/executor.py), plus the
    serving version judged against, which ServingPusher re-checks before it pushes."""
    blessing.set_string_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_int_custom_property(contract.BASELINE_VERSION_PROPERTY, baseline.version)
    if baseline.version:
        blessing.set_string_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                            baseline.path)
        if baseline.model_id is not None:
            blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                             baseline.model_id)
    marker = evaluator_constants.BLESSED_FILE_NAME if blessed else evaluator_constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        evaluator_constants.BLESSED_VALUE if blessed else evaluator_constants.NOT_BLESSED_VALUE)
