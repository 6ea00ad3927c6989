"""The Kubernetes calls the launcher makes, through the official `kubernetes` client.

Five calls, all in one namespace, matching the Role in k8s/base/rbac.yaml:
tfjobs create/get/delete, pods list, pods/log get. Objects come back as
plain dicts in the API's own JSON shape (camelCase), which is what
status.py reads, so the same code reads a live object and a test's dict.
"""

from __future__ import annotations

from typing import Any, Protocol

from ganpipe.components.tfjob_trainer import spec


class TFJobApi(Protocol):
    """What the launcher needs from a cluster."""

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def delete(self, namespace: str, name: str) -> None: ...

    def worker_pods(self, namespace: str, name: str) -> list[dict[str, Any]]: ...

    def pod_log(self, namespace: str, pod: str, tail_lines: int) -> str: ...


class KubernetesTFJobApi:
    """TFJobApi over a real API server (in-cluster service account, else ~/.kube/config)."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self._api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    @classmethod
    def from_environment(cls) -> "KubernetesTFJobApi":
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return cls(client.ApiClient())

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._custom.create_namespaced_custom_object(
            spec.GROUP, spec.VERSION, manifest["metadata"]["namespace"], spec.PLURAL, manifest)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._custom.get_namespaced_custom_object(spec.GROUP, spec.VERSION, namespace, spec.PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete(self, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self._custom.delete_namespaced_custom_object(
                spec.GROUP, spec.VERSION, namespace, spec.PLURAL, name,
                body=client.V1DeleteOptions(propagation_policy="Background"))
        except ApiException as error:
            if error.status != 404:
                raise

    def worker_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        pods = self._core.list_namespaced_pod(namespace, label_selector=f"{spec.JOB_NAME_LABEL}={name}")
        return [self._api_client.sanitize_for_serialization(pod) for pod in pods.items]

    def pod_log(self, namespace: str, pod: str, tail_lines: int) -> str:
        return self._core.read_namespaced_pod_log(pod, namespace, container=spec.CONTAINER_NAME,
                                                  tail_lines=tail_lines)
