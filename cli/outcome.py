"""What a finished local run produced, read back from MLMD.

The CLI reports from MLMD rather than from guessed paths so that what it
prints is what the pipeline recorded: the pushed version, the evaluation,
the model that was trained.
"""

from __future__ import annotations

import dataclasses
import json
import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ganpipe import contract


@dataclasses.dataclass
class RunOutcome:
    pushed: bool
    pushed_destination: str | None
    model_uri: str | None
    examples_uri: str | None
    evaluation: dict | None
    evaluation_uri: str | None
    synthetic_uri: str | None = None  # SyntheticExampleGen's Examples (export.synthetic_count), when it ran
    synthetic_count: int = 0


def read_outcome(metadata_path: str, since_ms: int) -> RunOutcome:
    """Collects the newest artifacts of each type created since `since_ms` (the run's start)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)

    def newest(type_name: str, synthetic: bool = False):
        artifacts = [a for a in store.get_artifacts_by_type(type_name) if a.create_time_since_epoch >= since_ms
                     and (contract.SYNTHETIC_COUNT_PROPERTY in a.custom_properties) == synthetic]
        return max(artifacts, key=lambda a: a.id) if artifacts else None

    pushed_model = newest("PushedModel")
    model = newest("Model")
    examples = newest("Examples")  # the real images, not the synthetic ones made after a push
    synthetic = newest("Examples", synthetic=True)
    evaluation_artifact = newest("ModelEvaluation")
    evaluation = None
    if evaluation_artifact is not None:
        metrics_path = os.path.join(evaluation_artifact.uri, "metrics.json")
        if os.path.exists(metrics_path):
            with open(metrics_path, encoding="utf-8") as handle:
                evaluation = json.load(handle)
    pushed = bool(pushed_model and pushed_model.custom_properties["pushed"].int_value)
    return RunOutcome(
        pushed=pushed,
        pushed_destination=(
            pushed_model.custom_properties["pushed_destination"].string_value if pushed else None
        ),
        model_uri=model.uri if model else None,
        examples_uri=examples.uri if examples else None,
        evaluation=evaluation,
        evaluation_uri=evaluation_artifact.uri if evaluation_artifact else None,
        synthetic_uri=synthetic.uri if synthetic else None,
        synthetic_count=synthetic.custom_properties[contract.SYNTHETIC_COUNT_PROPERTY].int_value if synthetic else 0,
    )
