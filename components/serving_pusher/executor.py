"""ServingPusher executor: the stock Pusher's checks and outputs, with atomic integer versions.

Subclasses TFX's Pusher executor so blessing checks (``CheckBlessing``),
model lookup (``GetModelPath``) and the PushedModel properties (``pushed``,
``pushed_destination``, ``pushed_version``) stay exactly TFX's. Only the copy
differs: the stock executor names versions by unix time (two pushes in one
second: the second is silently skipped) and copies file by file into the
final directory (a polling server can load it half-written).
"""

from __future__ import annotations

import datetime
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from ganpipe import contract
from ganpipe.components.serving_pusher import layout

KEEP_VERSIONS_KEY = "keep_versions"
NOT_PUSHED_REASON_PROPERTY = "not_pushed_reason"


class Executor(pusher_executor.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            # Not blessed: the serving directory is not even looked at.
            self._MarkNotPushed(pushed_model)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("ServingPusher pushes to a filesystem destination only")
        if destination.filesystem.versioning == pusher_pb2.Versioning.UNIX_TIMESTAMP:
            raise ValueError("ServingPusher numbers versions 1, 2, 3...; leave versioning at AUTO")
        custom_config = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null")
        keep = int((custom_config or {}).get(KEEP_VERSIONS_KEY, 0))

        model_path = self.GetModelPath(input_dict)
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        blessing = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_BLESSING_KEY])
        # The version the evaluator judged against (GanEvaluator records it; 0: nothing was serving).
        judged_against = (blessing.get_int_custom_property(contract.BASELINE_VERSION_PROPERTY)
                          if blessing.has_custom_property(contract.BASELINE_VERSION_PROPERTY) else None)
        record = {"model_uri": model.uri, "model_id": model.id, "judged_against": judged_against,
                  "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        try:
            version, serving_path = layout.publish(model_path, destination.filesystem.base_directory, keep=keep,
                                                   judged_against=judged_against, record=record)
        except layout.StaleBaselineError as error:
            logging.warning("ServingPusher: %s", error)
            self._MarkNotPushed(pushed_model)
            pushed_model.set_string_custom_property(NOT_PUSHED_REASON_PROPERTY, str(error))
            return
        logging.info("Model pushed to serving path %s (version %d).", serving_path, version)
        # As the stock Pusher does: the PushedModel artifact holds a copy for lineage.
        io_utils.copy_dir(model_path, pushed_model.uri)
        self._MarkPushed(pushed_model, pushed_destination=serving_path, pushed_version=str(version))
