"""The container entrypoint of every compiled TFX step: types KFP's input artifacts, then runs TFX's own.

    python -m ganpipe.kubeflow.entrypoint <the arguments of TFX's kubeflow_v2_run_executor>

What open-source KFP does (kubeflow/pipelines, tag 2.5.0). The driver resolves
an input that comes from an upstream task (`backend/src/v2/driver/driver.go`,
`resolveUpstreamArtifacts`) by reading the producer's MLMD artifact and
converting it with `backend/src/v2/metadata/converter.go`
(`toRuntimeArtifact`), which sets only the name (the MLMD id), the URI and the
metadata. `backend/src/v2/metadata/client.go` (`OutputArtifact.
ToRuntimeArtifact`) then adds a type whose `instanceSchema` is always `""`
(`Schema: "", // TODO(Bobgy): figure out how to get schema`). Artifacts handed
down from a parent DAG (`GetInputArtifactsByExecutionID`) keep no type at all.
So the `{{$}}` ExecutorInput of every step with an artifact input carries
artifacts whose type is empty or absent. Vertex AI Pipelines fills it in.

Where TFX fails (TFX 1.16.0). `tfx/orchestration/kubeflow/v2/container/
kubeflow_v2_run_executor.py` (`_run_executor`) parses the inputs with
`kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict`, whose
`_parse_raw_artifact` looks the artifact class up with `_retrieve_class_path`
(`tfx/orchestration/kubeflow/v2/container/kubeflow_v2_entrypoint_utils.py`).
An empty `instance_schema` gives `yaml.safe_load("") is None`, so
`data.get('title', ...)` raises AttributeError (line 259); no type at all
leaves `title` unassigned, so line 261 raises UnboundLocalError. The
`assert artifact_pb.type` before it (line 279) never fires: a protobuf message
is always truthy. The step dies before its executor starts.

What this fixes. With `use_pipeline_spec_2_1=True` (ganpipe compiles with it)
TFX passes each container the component's own ComponentInputsSpec as
`--json_serialized_inputs_spec_args`; its `artifacts.<name>.artifactType` is
the exact type TFX compiled for that input (e.g. `title: tfx.Examples`, with
its properties). `fill_input_types` copies that type into every input
artifact whose type is empty or absent, and TFX's own `main` runs with the
result: the same parsing, executor and ExecutorOutput as on Vertex, where the
types are present and the invocation is passed on unchanged (not even
re-serialised). An untyped input that the spec does not declare stops the step
with a message that says so, instead of TFX's AttributeError.

What it does not do, unlike the runtime patches of sky-uk/kfp-operator
(`provider-service/kfp/tfx-patch/`):
  - no `os._exit(0)` after the output is written (their fix for a
    "pure virtual method called" crash at interpreter shutdown, seen on
    TFX 1.17 with S3); not observed here;
  - nothing for `gs://`: no deletion of zero-byte directory markers, no
    flattening of the Trainer's `Format-Serving/` model directory;
  - no `system.*` title table and no guessing of types from metadata keys:
    the types come from the compiled spec, so they are TFX's exact `tfx.*`
    types;
  - output artifacts are left alone: KFP's driver types them itself from the
    component's outputDefinitions (`driver.go`, `provisionOutputs`).
"""

from __future__ import annotations

from typing import Optional

from absl import app
from absl import logging
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

COMMAND = ("python", "-m", "ganpipe.kubeflow.entrypoint")  # the container command `ganpipe compile` writes


def is_untyped(type_schema: pipeline_spec_pb2.ArtifactTypeSchema) -> bool:
    """True when an ArtifactTypeSchema names no type: no kind set, or an empty title/schema."""
    kind = type_schema.WhichOneof("kind")
    return kind is None or not getattr(type_schema, kind).strip()


def fill_input_types(invocation_json: str, inputs_spec_json: Optional[str]) -> str:
    """The ExecutorInput JSON with each untyped input artifact given the type the component declares.

    Returns `invocation_json` itself when every input artifact already has a type.
    Raises ValueError for an untyped input the inputs spec has no type for.
    """
    executor_input = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(invocation_json, executor_input, ignore_unknown_fields=True)  # as TFX parses it
    untyped = [(name, artifact) for name, artifact_list in executor_input.inputs.artifacts.items()
               for artifact in artifact_list.artifacts if is_untyped(artifact.type)]
    if not untyped:
        return invocation_json

    inputs_spec = pipeline_spec_pb2.ComponentInputsSpec()
    if inputs_spec_json:
        json_format.Parse(inputs_spec_json, inputs_spec, ignore_unknown_fields=True)
    for name, artifact in untyped:
        declared = inputs_spec.artifacts[name].artifact_type if name in inputs_spec.artifacts else None
        if declared is None or is_untyped(declared):
            raise ValueError(
                f"input artifact {name!r} ({artifact.uri}) arrived without a type and the component declares "
                "none in --json_serialized_inputs_spec_args; compile with use_pipeline_spec_2_1=True")
        artifact.type.CopyFrom(declared)
        logging.info("input artifact %r (%s): type taken from the component's inputs spec: %s",
                     name, artifact.uri, _title(declared))
    return json_format.MessageToJson(executor_input)


def main(parsed_argv) -> None:
    """absl main: (args, beam_args) as TFX's `_parse_flags` returns them."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    args, beam_args = parsed_argv
    logging.set_verbosity(logging.INFO)  # what TFX's _run_executor sets first thing
    args.json_serialized_invocation_args = fill_input_types(
        args.json_serialized_invocation_args, getattr(args, "json_serialized_inputs_spec_args", None))
    kubeflow_v2_run_executor.main((args, beam_args))


def _title(type_schema: pipeline_spec_pb2.ArtifactTypeSchema) -> str:
    kind = type_schema.WhichOneof("kind")
    text = getattr(type_schema, kind)
    if kind != "instance_schema":
        return text
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("title:")), text)


def _run() -> None:
    # TFX's own flag parser, so arguments (and the beam args it passes on) mean exactly what they do there.
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    app.run(main, flags_parser=kubeflow_v2_run_executor._parse_flags)  # pylint: disable=protected-access


if __name__ == "__main__":
    _run()
