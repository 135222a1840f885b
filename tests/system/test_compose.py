"""docker-compose.yml is valid and every orderflow service runs something the project has."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
OURS = [name for name, service in SERVICES.items() if service.get("image") == "orderflow:latest"]
# Read by the Temporal SDK's environment configuration rather than by our code.
SDK_VARIABLES = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}
SOURCE = "\n".join(
    p.read_text(encoding="utf-8")
    for folder in ("activities", "infra", "meituan", "starter", "workers", "workflows", "schemas")
    for p in (ROOT / folder).rglob("*.py")
)


def test_every_service_has_an_image_and_depends_only_on_services_that_exist() -> None:
    assert {"postgresql", "temporal", "temporal-ui", "worker", "gateway"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", []):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"


@pytest.mark.parametrize("name", OURS)
def test_each_orderflow_command_exists_in_the_project(name: str) -> None:
    command: list[str] = SERVICES[name]["command"]
    if command[:2] == ["python", "-m"]:
        spec = importlib.util.find_spec(command[2])
        assert spec is not None and spec.origin is not None, f"{name}: no module {command[2]}"
        assert '__name__ == "__main__"' in Path(spec.origin).read_text(encoding="utf-8")
    else:
        assert command[0] in SCRIPTS, f"{name}: {command[0]} is not a console script"


@pytest.mark.parametrize("name", OURS)
def test_each_orderflow_setting_is_one_the_code_reads(name: str) -> None:
    for variable in SERVICES[name]["environment"]:
        assert variable in SDK_VARIABLES or variable in SOURCE, f"{name}: {variable} is unused"


def test_the_image_copies_only_what_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"


def test_a_worker_service_per_role() -> None:
    from workers.main import ROLES

    workers = [n for n in OURS if SERVICES[n]["command"] == ["orderflow-worker"]]
    roles = [SERVICES[n]["environment"]["ORDERFLOW_WORKER_ROLES"] for n in workers]
    assert sorted(roles) == sorted(ROLES)
    for name in workers:  # the shared settings, the platform queue among them, reach each one
        assert SERVICES[name]["environment"]["ORDERFLOW_PLATFORM_TASK_QUEUE"] == "orders-platform"


def test_temporal_is_not_published_to_people() -> None:
    """Temporal, its Web UI and the codec server only on loopback; the UI cannot act."""
    for name in ("temporal", "temporal-ui", "codec-server"):
        for port in SERVICES[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
    assert SERVICES["temporal-ui"]["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert SERVICES["api"]["command"][0] == "orderflow-api"
    assert SERVICES["api"]["ports"] == ["${ORDERFLOW_API_PUBLISH:-127.0.0.1}:8082:8082"]
