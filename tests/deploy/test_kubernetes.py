"""The Kubernetes manifests: valid against the API schemas and consistent with the server's own flags."""

from __future__ import annotations

import copy

import pytest

from server.cli import parse_config

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (dev extra)")
KUBERNETES_VERSION = "1.33.0"
MARGIN_S = 5  # the kubelet's SIGKILL must not come right on the heels of the grace period


def _container(manifests):
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _server_config(container):
    environ = {e["name"]: e["value"] for e in container.get("env", []) if e["name"].startswith("RECSYS_")}
    config, _ = parse_config(container["args"], environ=environ)
    return config


def test_every_manifest_is_valid_for_the_kubernetes_api(manifests):
    assert set(manifests) == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
    }
    for resource in manifests.values():
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field(manifests):
    broken = copy.deepcopy(manifests["Deployment"])
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_probes_and_ports_are_the_servers_grpc_port(manifests):
    container = _container(manifests)
    config = _server_config(container)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": config.port, "metrics": config.metrics_port}
    assert config.host == "0.0.0.0", "a pod must accept connections from outside it (--listen-all-interfaces)"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == config.port, probe
    assert container["readinessProbe"]["grpc"]["service"] == ""  # ready while a model version is
    assert container["livenessProbe"]["grpc"]["service"] == "liveness"
    service_ports = {port["name"]: port for port in manifests["Service"]["spec"]["ports"]}
    assert service_ports["grpc"]["targetPort"] == "grpc" and service_ports["metrics"]["targetPort"] == "metrics"


def test_termination_grace_outlasts_drain_delay_plus_grace(manifests):
    container = _container(manifests)
    config = _server_config(container)
    assert config.drain_delay_s > 0, "without a drain delay a rolling update fails the calls still routed to the pod"
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= config.drain_delay_s + config.grace_s + MARGIN_S
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > config.drain_delay_s + config.grace_s


def test_processes_fit_the_cpu_request_and_the_repository_comes_from_the_volume(manifests):
    container = _container(manifests)
    config = _server_config(container)
    assert config.processes == int(container["resources"]["requests"]["cpu"])
    assert "memory" in container["resources"]["limits"]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts[str(config.repository)]["readOnly"] is True
    volumes = {volume["name"]: volume for volume in manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mounts[str(config.repository)]["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim == manifests["PersistentVolumeClaim"]["metadata"]["name"]


def test_budget_autoscaler_and_service_select_the_deployments_pods(manifests):
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    hpa = manifests["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] > manifests["PodDisruptionBudget"]["spec"]["minAvailable"]
