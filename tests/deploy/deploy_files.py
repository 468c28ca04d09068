"""Reading the deploy files: the Dockerfile's instructions (imported by module name, like serverprocs)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes" / "base"


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    """The last ``keyword`` (ENTRYPOINT or CMD) as its JSON exec-form list.

    Raises:
        AssertionError: it is missing or in shell form (a shell would not forward SIGTERM).
    """
    found = [rest for key, rest in instructions if key == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    value = json.loads(found[-1])
    assert isinstance(value, list), f"{keyword} must be in exec form (a JSON list) so that SIGTERM reaches the server"
    return value
