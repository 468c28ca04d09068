"""Fixtures of the deploy tests: the Dockerfile's instructions and the Kubernetes manifests, parsed."""

from __future__ import annotations

import pytest
from deploy_files import MANIFESTS, ROOT, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(ROOT / "Dockerfile")


@pytest.fixture(scope="session")
def manifests() -> dict[str, dict]:
    """``kind`` -> the resource, for every resource the kustomization lists."""
    import yaml

    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    resources: dict[str, dict] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((MANIFESTS / name).read_text()):
            resources[document["kind"]] = document
    return resources
