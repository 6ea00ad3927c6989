"""How a candidate generator is measured and when it is blessed.

The evaluator component receives these values as one dict (like the
Trainer's ``custom_config``), so this dataclass is the one place that knows
their names, defaults and bounds; ``ganpipe.pipeline.config`` embeds it as the
``evaluate`` section. Adding a limit touches this class and the rule that
reads it (``ganpipe.components.gan_evaluator.rules.judge``), nothing else.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

from ganpipe import settings
from ganpipe.evaluation.feature_extractors import (DEFAULT_EXTRACTOR, DOMAIN_CLASSIFIER, INCEPTION, INCEPTION_GRAPH,
                                                  parse_spec)


# The gate's limits: the settings a scheduled run or the Kubeflow UI may change without recompiling
# (runtime parameters, kubeflow/runner.py), and GanEvaluator's per-limit execution properties.
GATE_LIMITS = ("max_fid", "max_kid", "min_recall", "min_coverage", "max_fid_over_floor",
               "min_coverage_of_floor", "min_improvement", "min_cas_ratio")
# evaluate.classifier: what gives p(y|x) for the Inception Score (and, "domain", trains for CAS).
CLASSIFIERS = ("auto", "none", "domain")
INCEPTION_CLASSIFIER = "inception-v3"  # inception-v3:<ImageNet weights .h5 with the top>


@dataclasses.dataclass
class EvaluateConfig:
    """The gate's settings. Every absolute limit set to 0 is off.

    The floor-relative limits compare the candidate with the real floor the
    evaluator measures on the same data in the same feature space (real train
    images against the eval split: "as good as it gets"), so one default
    works across datasets and feature extractors where an absolute FID
    cannot. Their defaults and the measurements behind them: docs/design.md
    ("The gate's default limits").
    """

    # random-conv (offline default, NOT Inception FID), inception-v3 (Keras'
    # cached ImageNet weights), inception-v3:<weights.h5>,
    # inception-2015-12-05:<classify_image_graph_def.pb> (the graph published
    # FIDs use: the choice for comparing with papers), keras:<model.keras>,
    # savedmodel:<dir> (ganpipe/evaluation/feature_extractors.py).
    extractor: str = DEFAULT_EXTRACTOR
    num_samples: int = 512
    seed: int = 1234
    # Absolute limits: a candidate above them is never blessed.
    max_fid: float = 0.0
    max_kid: float = 0.0
    # Mode-collapse limits: the share of real samples the candidate's samples
    # reach (k-NN recall, k=3; coverage, k=5). Real-vs-real scores ~0.8-0.95.
    min_recall: float = 0.0
    min_coverage: float = 0.0
    # Floor-relative limits (on by default): candidate FID at most this many
    # times the real floor's FID, and candidate coverage at least this share
    # of the real floor's coverage.
    max_fid_over_floor: float = 8.0
    min_coverage_of_floor: float = 0.25
    # Relative rule: the candidate must beat the blessed baseline's FID by at
    # least this fraction (0.0 = not worse).
    min_improvement: float = 0.0
    # Conditional generators only: the candidate's CAS at least this share of the same
    # classifier's accuracy when trained on as many real images (0 = off; needs cas_samples > 0).
    min_cas_ratio: float = 0.0
    # The classifier behind the Inception Score: auto (a domain classifier when the train split has
    # >= 2 labelled classes, else none) | domain | none | inception-v3:<ImageNet weights with top .h5>.
    classifier: str = "auto"
    # Adam steps (batch 64) of every domain-classifier training; cached per dataset, so a nightly run
    # on unchanged data trains none of the real-data ones again.
    classifier_steps: int = 1000
    # CAS (conditional generators with a domain classifier): generated labelled images it trains on
    # (0 = off), and the real fraction of the train split for the augmentation gain.
    cas_samples: int = 2048
    cas_real_fraction: float = 0.1
    # A blessed baseline exists but cannot be loaded or scored: false refuses
    # the candidate (nobody can show it is not worse); true judges it as if
    # there were no baseline. Either way the page says what happened.
    ignore_unusable_baseline: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the first field that is out of bounds."""
        try:
            parse_spec(self.extractor)
        except ValueError as error:
            raise ValueError(f"evaluate.extractor: {error}") from None
        if not 0 <= self.seed <= 2**31 - 1:  # TF's op seeds
            raise ValueError(f"evaluate.seed={self.seed}: must be in [0, {2**31 - 1}]")
        if not 16 <= self.num_samples <= 1_000_000:
            raise ValueError(f"evaluate.num_samples={self.num_samples}: must be in [16, 1000000]")
        for name in ("max_fid", "max_kid", "max_fid_over_floor", "min_recall", "min_coverage",
                     "min_coverage_of_floor", "min_improvement", "min_cas_ratio", "cas_real_fraction"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"evaluate.{name}={getattr(self, name)}: must be a finite number")
        for name in ("max_fid", "max_kid", "max_fid_over_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"evaluate.{name}={getattr(self, name)}: must be >= 0 (0 disables it)")
        if 0 < self.max_fid_over_floor < 1:
            raise ValueError(f"evaluate.max_fid_over_floor={self.max_fid_over_floor}: must be 0 (off) or >= 1: "
                             "below 1 no generator can beat real images")
        self._validate_classifier()
        for name in ("min_recall", "min_coverage", "min_coverage_of_floor", "min_cas_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"evaluate.{name}={getattr(self, name)}: must be in [0, 1] (0 disables it)")
        if not 0.0 <= self.min_improvement < 1.0:
            raise ValueError(f"evaluate.min_improvement={self.min_improvement}: must be in [0, 1)")

    def _validate_classifier(self) -> None:
        kind, _, path = self.classifier.partition(":")
        if self.classifier not in CLASSIFIERS and not (kind == INCEPTION_CLASSIFIER and path):
            raise ValueError(f"evaluate.classifier={self.classifier!r}: must be one of {', '.join(CLASSIFIERS)} "
                             f"or {INCEPTION_CLASSIFIER}:<ImageNet weights with the top, .h5>")
        if not 10 <= self.classifier_steps <= 1_000_000:
            raise ValueError(f"evaluate.classifier_steps={self.classifier_steps}: must be in [10, 1000000]")
        if not 0 <= self.cas_samples <= 50_000:  # held in memory, twice, with the real fraction
            raise ValueError(f"evaluate.cas_samples={self.cas_samples}: must be in [0, 50000] (0: no CAS)")
        if not 0.0 < self.cas_real_fraction <= 1.0:
            raise ValueError(f"evaluate.cas_real_fraction={self.cas_real_fraction}: must be in (0, 1]")
        if self.min_cas_ratio > 0 and (self.cas_samples == 0 or self.classifier in ("none",)
                                       or kind == INCEPTION_CLASSIFIER):
            raise ValueError(f"evaluate.min_cas_ratio={self.min_cas_ratio:g} needs CAS: evaluate.cas_samples > 0 "
                             "and evaluate.classifier auto or domain")
        if self.extractor == DOMAIN_CLASSIFIER and self.classifier == "none":
            raise ValueError("evaluate.extractor=domain-classifier trains the domain classifier; it cannot go with "
                             "evaluate.classifier=none")

    def min_eval_images(self) -> int:
        """The fewest real eval images that score every limit that is on: 2 for FID's covariance;
        more than k for a k-NN limit (min_recall: k=3, min_coverage: k=5). The floor-relative
        coverage limit is not counted: without enough images it is switched off, and the report says so."""
        from ganpipe.evaluation import metrics

        needed = 2
        if self.min_recall > 0:
            needed = max(needed, metrics.PR_K + 1)
        if self.min_coverage > 0:
            needed = max(needed, metrics.DC_K + 1)
        return needed

    def check_files(self) -> None:
        """For runs on this machine: the extractor's model or weights file exists (before hours of training);
        an ``inception-2015-12-05`` graph must also parse and have the tensors FID reads.

        Raises:
          ValueError: one line naming the missing or wrong file.
        """
        from ganpipe.evaluation.feature_extractors import cached_inception_weights, read_inception_graph

        classifier_kind, _, classifier_path = self.classifier.partition(":")
        if classifier_kind == INCEPTION_CLASSIFIER and "://" not in classifier_path:
            # Loading it is the only real check (a notop file, any other .h5): a few seconds, paid only by
            # the runs that name one, instead of a traceback in the evaluator after training.
            from ganpipe.evaluation.feature_extractors import inception_v3_classifier

            expected = "expected Keras' InceptionV3 ImageNet weights with the top, an .h5"
            if not os.path.isfile(classifier_path):
                raise ValueError(f"evaluate.classifier={self.classifier!r}: {classifier_path} is not a file "
                                 f"({expected})")
            try:
                inception_v3_classifier(classifier_path)
            except Exception as error:  # noqa: BLE001 - h5py and Keras raise many kinds; one line for all
                detail = " ".join(str(error).split())[:200]
                raise ValueError(f"evaluate.classifier={self.classifier!r}: {classifier_path} does not load as "
                                 f"InceptionV3 with its top ({expected}): {type(error).__name__}: {detail}") \
                    from None
        kind, path = parse_spec(self.extractor)
        if kind == INCEPTION_GRAPH and path is not None and "://" not in path:
            # More than existence: a wrong file (not a GraphDef, other tensors) would otherwise fail only in
            # the evaluator, after training. Parsing it imports TensorFlow, which only this extractor pays.
            try:
                read_inception_graph(path)
            except (OSError, ValueError) as error:
                raise ValueError(f"evaluate.extractor: {error}") from None
        if path is not None and "://" not in path and not os.path.exists(path):
            raise ValueError(f"evaluate.extractor={self.extractor!r}: {path} does not exist")
        if kind == INCEPTION and path is None:
            try:
                cached_inception_weights()
            except FileNotFoundError as error:
                raise ValueError(f"evaluate.extractor: {error}") from None

    def with_limits(self, limits: Mapping[str, float | None]) -> "EvaluateConfig":
        """A copy with the given gate limits (None: keep this one's); raises ValueError as validate does."""
        unknown = sorted(set(limits) - set(GATE_LIMITS))
        if unknown:
            raise ValueError(f"not gate limits: {', '.join(unknown)} (known: {', '.join(GATE_LIMITS)})")
        changed = {name: float(value) for name, value in limits.items() if value is not None}
        return dataclasses.replace(self, **changed)  # __post_init__ validates

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "EvaluateConfig":
        """Builds a config from a dict, rejecting keys the evaluator does not know."""
        return settings.from_dict(cls, values, "evaluate")
