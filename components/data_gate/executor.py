"""DataGate executor: read the validation results, stop or pass the schema on."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from absl import logging
from tensorflow_data_validation.utils import anomalies_util
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from ganpipe import contract
from ganpipe.components.data_gate import checks
from ganpipe.trainer import data

ANOMALIES_FILE = "SchemaDiff.pb"


class DataGateError(RuntimeError):
    """The data failed the gate; the message lists every reason, one per line."""


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        statistics = artifact_utils.get_single_instance(input_dict["statistics"])
        anomalies = artifact_utils.get_single_instance(input_dict["anomalies"])
        schema_uri = artifact_utils.get_single_uri(input_dict["schema"])
        validated_schema_uri = artifact_utils.get_single_uri(output_dict["validated_schema"])

        problems: list[str] = []
        ingest_report = data.read_ingest_report(examples.uri)  # ImportExampleGen inputs have none
        if ingest_report is not None:
            problems += checks.ingest_problems(ingest_report, float(exec_properties["max_bad_fraction"]))

        counts = {
            split: stats_artifact_utils.load_statistics(statistics, split).proto().datasets[0].num_examples
            for split in artifact_utils.decode_split_names(statistics.split_names)
        }
        problems += checks.size_problems(counts, int(exec_properties["min_images"]), ingest_report,
                                         min_eval_images=int(exec_properties.get("min_eval_images") or 2))

        for split in artifact_utils.decode_split_names(anomalies.split_names):
            path = os.path.join(artifact_utils.get_split_uri([anomalies], split), ANOMALIES_FILE)
            if tf.io.gfile.exists(path):
                problems += checks.anomaly_problems(split, anomalies_util.load_anomalies_binary(path))

        verdict = {"passed": not problems, "problems": problems, "examples_per_split": counts}
        logging.info("DataGate verdict: %s", json.dumps(verdict))
        if problems:
            raise DataGateError(
                "data gate stopped the run:\n" + "\n".join(f"  - {problem}" for problem in problems)
                + (f"\n  ingest report: {os.path.join(examples.uri, contract.INGEST_REPORT_FILE)}"
                   if ingest_report is not None else "")
            )
        schema_file = io_utils.get_only_uri_in_dir(schema_uri)
        io_utils.copy_file(schema_file, os.path.join(validated_schema_uri, os.path.basename(schema_file)))
