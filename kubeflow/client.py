"""`ganpipe submit` / `ganpipe schedule`: start or schedule a compiled pipeline through the kfp 2.x client.

Everything that can be wrong locally (host, cron expression, package) is
checked before the client is built, because building it already calls the
server (kfp.Client asks /healthz). A recurring run never catches up on
missed intervals and never overlaps itself: a GAN run that outlasts its
interval must not pile up GPU jobs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import urllib.parse
from typing import Any, Callable

from ganpipe.kubeflow import cron as cron_rules

HOST_ENV = "KF_PIPELINES_ENDPOINT"  # the kfp client's own variable


class SubmitError(ValueError):
    """Bad host, cron or package; the message says what to fix. Nothing was sent."""


@dataclasses.dataclass(frozen=True)
class Submitted:
    kind: str  # "run" or "recurring run"
    id: str
    link: str
    detail: str = ""


def validate_host(host: str | None) -> str:
    """The KFP endpoint as an absolute http(s) URL without trailing slash; raises SubmitError."""
    host = (host or os.environ.get(HOST_ENV) or "").strip()
    if not host:
        raise SubmitError("no Kubeflow Pipelines host: pass --host URL, set kubeflow.host, or export "
                          f"{HOST_ENV} (e.g. http://localhost:8080 after "
                          "`kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`)")
    parsed = urllib.parse.urlsplit(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SubmitError(f"host {host!r}: must be an http:// or https:// URL with a host name, "
                          "e.g. http://localhost:8080")
    if parsed.query or parsed.fragment or any(c.isspace() for c in host):
        raise SubmitError(f"host {host!r}: must not contain spaces, a query or a fragment")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise SubmitError(f"host {host!r}: the port is not a number in 0-65535") from None
    return host.rstrip("/")


def validate_package(path: str) -> str:
    """A compiled KFP package (.yaml from `ganpipe compile`) that the kfp client itself can parse."""
    from kfp.client.client import _extract_pipeline_yaml

    if not os.path.isfile(path):
        raise SubmitError(f"pipeline package {path} does not exist: run `ganpipe compile` first")
    if not path.endswith((".yaml", ".yml")):
        raise SubmitError(f"pipeline package {path}: expected the .yaml that `ganpipe compile` writes")
    try:
        _extract_pipeline_yaml(path)
    except Exception as error:  # the client's own parser: whatever it rejects, KFP would too
        raise SubmitError(f"pipeline package {path} is not a KFP pipeline spec: {error}") from None
    return path


def validate_params(package: str, raw: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items -> the run's parameter values, checked against the package and the config's rules.

    Names must be parameters the package declares (``ganpipe compile`` declares
    RUNTIME_PARAMETERS of pipeline/pipeline.py); numbers must be finite and
    within the config's range; ``train_args`` must be TrainArgs JSON with a
    step count train.steps accepts. Raises SubmitError; nothing is sent.
    """
    if not raw:
        return {}
    from kfp.client.client import _extract_pipeline_yaml
    from kfp.pipeline_spec import pipeline_spec_pb2

    declared = _extract_pipeline_yaml(package).pipeline_spec.root.input_definitions.parameters
    values: dict[str, Any] = {}
    for item in raw:
        name, separator, text = item.partition("=")
        name = name.strip()
        if not separator or not name:
            raise SubmitError(f"--param {item!r}: expected NAME=VALUE")
        if name not in declared:
            raise SubmitError(f"--param {name}: the package declares no such parameter "
                              f"(it has: {', '.join(sorted(declared)) or 'none'})")
        if declared[name].parameter_type == pipeline_spec_pb2.ParameterType.NUMBER_DOUBLE:
            try:
                number = float(text)
            except ValueError:
                raise SubmitError(f"--param {name}={text!r}: expected a number") from None
            if not math.isfinite(number):
                raise SubmitError(f"--param {name}={text!r}: must be a finite number")
            values[name] = number
        else:
            values[name] = text
        _check_param(name, values[name])
    if "data_path" in values:
        _check_data_path_for_the_beam_runner(package, values["data_path"])
    return values


def _check_data_path_for_the_beam_runner(package: str, data_path: str) -> None:
    """The rule `ganpipe compile` applies to data.path (kubeflow/runner.py cluster_input), for a run's value.

    The Beam args are read from the ExampleGen's container args (ImageExampleGen, or ImportExampleGen for
    TFRecords), where TFX puts them (tfx/orchestration/kubeflow/v2/step_builder.py).
    """
    from kfp.client.client import _extract_pipeline_yaml

    from ganpipe.pipeline.config import BeamConfig

    executors = _extract_pipeline_yaml(package).pipeline_spec.deployment_spec["executors"]
    args = [str(arg) for name in executors.keys() if name.endswith("ExampleGen_executor")
            for arg in executors[name]["container"]["args"]]
    runner = BeamConfig(pipeline_args=[arg for arg in args if arg.startswith("--runner=")]).runner_that_cannot_read(
        data_path)
    if runner:
        raise SubmitError(f"--param data_path={data_path!r}: the package runs its Beam steps on --runner={runner}, "
                          "whose workers read the input themselves and reach neither the pipeline-root volume nor "
                          "other stores; put the images on gs://")


def _check_param(name: str, value: Any) -> None:
    """The same ranges the config enforces, for the parameters ganpipe declares."""
    from ganpipe.evaluation.config import GATE_LIMITS, EvaluateConfig
    from ganpipe.pipeline.config import OBJECT_STORE_SCHEMES

    try:
        if name in GATE_LIMITS:
            EvaluateConfig().with_limits({name: value})
        elif name == "max_bad_fraction" and not 0.0 <= value <= 1.0:
            raise ValueError("must be in [0, 1]")
        elif name == "data_path" and not (value.startswith(OBJECT_STORE_SCHEMES) or value.startswith("/")):
            raise ValueError(f"must be object storage ({', '.join(OBJECT_STORE_SCHEMES)}...) or an absolute "
                             "path on the pipeline-root volume")
        elif name == "train_args":
            _check_train_args(value)
    except ValueError as error:
        raise SubmitError(f"--param {name}={value!r}: {error}") from None


def _check_train_args(text: str) -> None:
    from google.protobuf import json_format
    from tfx.proto import trainer_pb2

    from ganpipe.trainer.config import UPPER_BOUNDS

    example = '{"splits": ["train"], "num_steps": 2000}'
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        train_args = json_format.ParseDict(document, trainer_pb2.TrainArgs())
    except (ValueError, json_format.ParseError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"not TrainArgs JSON such as {example} ({error})") from None
    low, high = UPPER_BOUNDS["steps"]
    if not low <= train_args.num_steps <= high:
        raise ValueError(f"num_steps must be in [{low}, {high}] (0 or none: the package's train.steps)")
    if list(train_args.splits) not in ([], ["train"]):
        raise ValueError('splits must be ["train"]: the generator trains on the train split')


def run_link(host: str, run_id: str) -> str:
    return f"{host}/#/runs/details/{run_id}"


def recurring_run_link(host: str, recurring_run_id: str) -> str:
    return f"{host}/#/recurringrun/details/{recurring_run_id}"


def submit(
    package: str,
    host: str | None,
    experiment: str,
    pipeline_root: str,
    run_name: str | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
    client_factory: Callable[..., Any] | None = None,
    params: list[str] | None = None,
) -> Submitted:
    """Starts one run of the package; returns its id and UI link. ``params``: ``NAME=VALUE`` (validate_params)."""
    host = validate_host(host)
    package = validate_package(package)
    arguments = validate_params(package, params or [])
    client = _client(host, namespace, client_factory)
    result = client.create_run_from_pipeline_package(
        package, arguments=arguments, run_name=run_name, experiment_name=experiment, namespace=namespace,
        pipeline_root=pipeline_root or None, enable_caching=False, service_account=service_account or None)
    return Submitted("run", result.run_id, run_link(host, result.run_id))


def schedule(
    package: str,
    host: str | None,
    cron: str,
    experiment: str,
    pipeline_root: str,
    job_name: str,
    namespace: str | None = None,
    service_account: str | None = None,
    client_factory: Callable[..., Any] | None = None,
    params: list[str] | None = None,
) -> Submitted:
    """Creates a recurring run: no catch-up, at most one run at a time; returns its id and UI link."""
    parsed = cron_rules.parse(cron)  # CronError is a ValueError the CLI reports
    host = validate_host(host)
    package = validate_package(package)
    arguments = validate_params(package, params or [])
    client = _client(host, namespace, client_factory)
    experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
    recurring = client.create_recurring_run(
        experiment_id=experiment_id, job_name=job_name, cron_expression=parsed.expression,
        max_concurrency=1, no_catchup=True, pipeline_package_path=package, params=arguments,
        pipeline_root=pipeline_root or None,
        enable_caching=False, service_account=service_account or None)
    return Submitted("recurring run", recurring.recurring_run_id,
                     recurring_run_link(host, recurring.recurring_run_id), parsed.describe())


def _client(host: str, namespace: str | None, client_factory: Callable[..., Any] | None) -> Any:
    if client_factory is None:
        import kfp

        client_factory = kfp.Client
    kwargs = {"host": host}
    if namespace:
        kwargs["namespace"] = namespace
    return client_factory(**kwargs)
