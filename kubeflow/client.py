"""`ganpipe submit` / `ganpipe schedule`: start or schedule a compiled pipeline through the kfp 2.x client.

Everything that can be wrong locally (host, cron expression, package) is
checked before the client is built, because building it already calls the
server (kfp.Client asks /healthz). A recurring run never catches up on
missed intervals and never overlaps itself: a GAN run that outlasts its
interval must not pile up GPU jobs.
"""

from __future__ import annotations

import dataclasses
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
) -> Submitted:
    """Starts one run of the package; returns its id and UI link."""
    host = validate_host(host)
    package = validate_package(package)
    client = _client(host, namespace, client_factory)
    result = client.create_run_from_pipeline_package(
        package, run_name=run_name, experiment_name=experiment, namespace=namespace,
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
) -> Submitted:
    """Creates a recurring run: no catch-up, at most one run at a time; returns its id and UI link."""
    parsed = cron_rules.parse(cron)  # CronError is a ValueError the CLI reports
    host = validate_host(host)
    package = validate_package(package)
    client = _client(host, namespace, client_factory)
    experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
    recurring = client.create_recurring_run(
        experiment_id=experiment_id, job_name=job_name, cron_expression=parsed.expression,
        max_concurrency=1, no_catchup=True, pipeline_package_path=package, pipeline_root=pipeline_root or None,
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
