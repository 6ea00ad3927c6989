"""`ganpipe submit` / `ganpipe schedule`: everything checked before the KFP client is built.

No network in these tests: sockets are closed off, and the one successful
path goes to `RecordingClient`, a stand-in for kfp.Client whose calls are
bound against the real kfp.Client method signatures (so a wrong keyword
fails here as it would against the real client).
"""

from __future__ import annotations

import inspect
import socket
import types

import kfp
import pytest

from ganpipe.cli import main as cli

from ganpipe.kubeflow import cron, client as kfp_client

HOST = "http://kfp.example.test:8080"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network call was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv(kfp_client.HOST_ENV, raising=False)


@pytest.fixture
def package(tmp_path) -> str:
    """A tiny but real KFP package (PipelineSpec + PlatformSpec), as `ganpipe compile` writes."""
    path = tmp_path / "ganpipe.yaml"
    path.write_text(
        '{"pipelineInfo": {"name": "ganpipe"}, "root": {"dag": {"tasks": {}}}, "schemaVersion": "2.0.0",'
        ' "defaultPipelineRoot": "gs://b/p"}\n---\n'
        '{"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}\n')
    return str(path)


# --- cron ------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, sent, converted", [
    ("0 3 * * *", "0 0 3 * * *", True),
    ("*/15 9-17 * * MON-FRI", "0 */15 9-17 * * MON-FRI", True),
    ("30 0 3 * * *", "30 0 3 * * *", False),
    ("0 0 9 ? * 2-6", "0 0 9 ? * 2-6", False),  # kfp.Client's own docstring example
    ("0 0 0 1,15 JAN,jul *", "0 0 0 1,15 JAN,jul *", False),
    ("  0   3 * * *  ", "0 0 3 * * *", True),
    ("@daily", "@daily", False),
    ("@Hourly", "@hourly", False),
])
def test_cron_accepts_5_and_6_fields_and_sends_kfp_6(given, sent, converted):
    parsed = cron.parse(given)
    assert (parsed.expression, parsed.converted) == (sent, converted)
    assert ("5 fields" in parsed.describe()) == converted


@pytest.mark.parametrize("expression, message", [
    ("", "empty"),
    ("* * * *", "has 4 fields"),
    ("0 0 0 * * * *", "has 7 fields"),
    ("61 * * * *", "minute value 61 is outside 0-59"),
    ("0 24 * * *", "hour value 24 is outside 0-23"),
    ("0 0 0 0 * *", "day-of-month value 0 is outside 1-31"),
    ("0 0 13 *", "has 4 fields"),
    ("0 0 1 13 *", "month value 13 is outside 1-12"),
    ("0 0 * * 7", "day-of-week value 7 is outside 0-6"),
    ("0 0 * * FUNDAY", "not a number or one of SUN"),
    ("0 0 5-1 * *", "runs backwards"),
    ("*/0 * * * *", "step must be >= 1"),
    ("? * * * *", "only allowed in day-of-month and day-of-week"),
    ("0 0 * * 1;rm", "not valid"),
    ("@every 5m", "unknown descriptor"),
])
def test_cron_rejects_with_a_message_naming_the_field(expression, message):
    with pytest.raises(cron.CronError, match=message):
        cron.parse(expression)


# --- host and package -------------------------------------------------------------------------

@pytest.mark.parametrize("host, expected", [
    ("http://localhost:8080", "http://localhost:8080"),
    ("https://kubeflow.example.com/pipeline/", "https://kubeflow.example.com/pipeline"),
])
def test_good_hosts_are_normalised(host, expected):
    assert kfp_client.validate_host(host) == expected


@pytest.mark.parametrize("host, message", [
    ("", "no Kubeflow Pipelines host"),
    (None, "no Kubeflow Pipelines host"),
    ("localhost:8080", "must be an http:// or https:// URL"),
    ("ftp://kfp.example", "must be an http:// or https:// URL"),
    ("http://", "must be an http:// or https:// URL"),
    ("http://kfp example:80", "must not contain spaces"),
    ("http://kfp.example:99999", "port"),
    ("http://kfp.example/?token=x", "query"),
])
def test_bad_or_missing_hosts_are_refused(host, message, no_network):
    with pytest.raises(kfp_client.SubmitError, match=message):
        kfp_client.validate_host(host)


def test_the_host_can_come_from_the_kfp_clients_own_variable(monkeypatch):
    monkeypatch.setenv(kfp_client.HOST_ENV, "http://from-env:8888/")
    assert kfp_client.validate_host("") == "http://from-env:8888"


def test_packages_are_parsed_by_the_kfp_client_before_anything_is_sent(tmp_path, package, no_network):
    assert kfp_client.validate_package(package) == package
    with pytest.raises(kfp_client.SubmitError, match="does not exist"):
        kfp_client.validate_package(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text('{"pipelineInfo": {"name": "x"}, "notAField": 1}\n')
    with pytest.raises(kfp_client.SubmitError, match="not a KFP pipeline spec"):
        kfp_client.validate_package(str(broken))
    job_json = tmp_path / "ganpipe.json"
    job_json.write_text("{}")
    with pytest.raises(kfp_client.SubmitError, match="expected the .yaml"):
        kfp_client.validate_package(str(job_json))


# --- the CLI refuses before compiling or connecting --------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["schedule", "--cron", "0 25 * * *", "--host", HOST], "hour value 25"),
    (["schedule", "--cron", "0 3 * * *"], "no Kubeflow Pipelines host"),
    (["schedule", "--cron", "0 3 * * *", "--host", "kfp.example:8080"], "http:// or https://"),
    (["submit"], "no Kubeflow Pipelines host"),
    (["submit", "--host", HOST, "--package", "/nonexistent/ganpipe.yaml"], "does not exist"),
    (["submit", "--host", HOST], "kubeflow.pipeline_root is not set"),
])
def test_cli_rejects_before_any_network_call(argv, message, no_network, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ganpipe_output").exists()  # nothing compiled either


# --- the calls that would go to KFP ------------------------------------------------------------

class RecordingClient:
    """Stand-in for kfp.Client: records calls after binding them to kfp.Client's real signatures."""

    instances: list["RecordingClient"] = []

    def __init__(self, **kwargs):
        inspect.signature(kfp.Client.__init__).bind(self, **kwargs)
        self.init, self.calls = kwargs, []
        RecordingClient.instances.append(self)

    def _record(self, method: str, *args, **kwargs):
        inspect.signature(getattr(kfp.Client, method)).bind(self, *args, **kwargs)
        self.calls.append((method, kwargs))

    def create_run_from_pipeline_package(self, *args, **kwargs):
        self._record("create_run_from_pipeline_package", *args, **kwargs)
        return types.SimpleNamespace(run_id="run-123")

    def create_experiment(self, *args, **kwargs):
        self._record("create_experiment", *args, **kwargs)
        return types.SimpleNamespace(experiment_id="exp-9")

    def create_recurring_run(self, *args, **kwargs):
        self._record("create_recurring_run", *args, **kwargs)
        return types.SimpleNamespace(recurring_run_id="rr-42")


def test_schedule_creates_a_recurring_run_without_catch_up_or_overlap(package, no_network):
    submitted = kfp_client.schedule(package, HOST + "/", "0 3 * * *", "ganpipe", "gs://b/p",
                                    job_name="nightly", namespace="team-a", service_account="ganpipe-pipeline",
                                    client_factory=RecordingClient)
    client = RecordingClient.instances[-1]
    assert client.init == {"host": HOST, "namespace": "team-a"}
    (_, experiment), (_, recurring) = client.calls
    assert experiment == {"name": "ganpipe", "namespace": "team-a"}
    assert recurring["cron_expression"] == "0 0 3 * * *"
    assert recurring["max_concurrency"] == 1 and recurring["no_catchup"] is True
    assert recurring["experiment_id"] == "exp-9" and recurring["pipeline_package_path"] == package
    assert recurring["pipeline_root"] == "gs://b/p" and recurring["service_account"] == "ganpipe-pipeline"
    assert submitted.id == "rr-42"
    assert submitted.link == f"{HOST}/#/recurringrun/details/rr-42"
    assert "sent to KFP as '0 0 3 * * *'" in submitted.detail


def test_submit_starts_one_run_and_links_to_it(package, no_network):
    submitted = kfp_client.submit(package, HOST, "ganpipe", "", run_name="try-1",
                                  client_factory=RecordingClient)
    client = RecordingClient.instances[-1]
    assert client.init == {"host": HOST}
    ((name, call),) = client.calls
    assert name == "create_run_from_pipeline_package"
    assert call["experiment_name"] == "ganpipe" and call["run_name"] == "try-1"
    assert call["pipeline_root"] is None  # the package's defaultPipelineRoot applies
    assert (submitted.id, submitted.link) == ("run-123", f"{HOST}/#/runs/details/run-123")


def test_schedule_never_builds_a_client_for_a_bad_cron(package, no_network):
    before = len(RecordingClient.instances)
    with pytest.raises(cron.CronError):
        kfp_client.schedule(package, HOST, "0 3 * *", "e", "gs://b/p", "n", client_factory=RecordingClient)
    assert len(RecordingClient.instances) == before
