"""docker-compose.yml is valid and every orderflow service runs something the project has; least
privilege holds (each process its own database login, Temporal its own, only the proxy
published, each container only the secrets it uses) and deploy/Caddyfile routes to services
that exist. Read with yaml, and at the end by Compose itself (`docker-compose config`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from infra.settings import FILE_SUFFIX
from starter import gateway_metrics
from starter.db_logins import Login

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
OURS = [name for name, service in SERVICES.items() if service.get("image") == "orderflow:latest"]
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
INIT_SCRIPT = (ROOT / "deploy" / "postgres" / "10-temporal.sh").read_text(encoding="utf-8")
# Read by the Temporal SDK's environment configuration rather than by our code.
SDK_VARIABLES = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}
SOURCE = "\n".join(
    p.read_text(encoding="utf-8")
    for folder in ("activities", "infra", "meituan", "starter", "workers", "workflows", "schemas")
    for p in (ROOT / folder).rglob("*.py")
)
WORKERS = [n for n in OURS if SERVICES[n]["command"] == ["orderflow-worker"]]

SECRETS_USED: dict[str, set[str]] = {
    "postgresql": {"db_owner_password", "db_temporal_password"},
    "temporal-schema": {"db_temporal_password"},
    "temporal": {"db_temporal_password"},
    "migrate": {
        "db_owner_password",
        "db_gateway_password",
        "db_worker_password",
        "db_api_password",
        "db_codec_password",
        "db_reporting_password",
        "customer_key",  # migration 0020 re-keys the customer ids
    },
    "worker": {  # the workflows, with their record's writes as local activities
        "codec_keys",
        "db_worker_password",
        "customer_key",  # customer ids of the orders recorded
    },
    "activities": {
        "codec_keys",
        "db_worker_password",
        "meituan_app_secret",  # the patrol's platform calls
        "customer_key",  # customer ids of the orders recorded
        "notify_webhook",  # the route of the notifications written
    },
    "platform": {"codec_keys", "db_worker_password", "meituan_app_secret", "notify_webhook"},
    "notifications": {"codec_keys", "db_worker_password", "notify_webhook"},
    "gateway": {"codec_keys", "db_gateway_password", "meituan_app_secret", "notify_webhook"},
    "api": {"codec_keys", "db_api_password"},
    "codec-server": {"codec_keys", "codec_token", "db_codec_password"},
    "reporting": {"db_reporting_password"},
    "grafana": {"grafana_admin_password"},
}
"""Which secret each service is given, and why; any other service gets none."""
PLAIN_SECRETS = {
    "MEITUAN_APP_SECRET",
    "ORDERFLOW_CODEC_KEYS",
    "ORDERFLOW_CODEC_TOKEN",
    "ORDERFLOW_CUSTOMER_KEY",
    "ORDERFLOW_DATABASE_PASSWORD",
    "ORDERFLOW_NOTIFY_WEBHOOK",
    "ORDERFLOW_NOTIFY_SECRET",
    "POSTGRES_PASSWORD",
    "POSTGRES_PWD",
    "SQL_PASSWORD",  # temporal-sql-tool's
    "GF_SECURITY_ADMIN_PASSWORD",  # Grafana's
}
"""Variables that hold a secret: given as files (`<name>_FILE`), never in the environment, where
`docker inspect` and every process of the container would see them."""
GROUP_OF = {
    "gateway": "orderflow_service",
    **dict.fromkeys(("worker", "activities", "platform", "notifications"), "orderflow_service"),
    "api": "orderflow_api",
    "codec-server": "orderflow_signin",
    "reporting": "orderflow_reporting",
}
"""The group role each database-using service's login must be in (migration 0021)."""


def _environment(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[name].get("environment") or {}).items()}


def _secrets(name: str) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in SERVICES[name].get("secrets", [])}


def _mentioned(name: str) -> set[str]:
    """The secrets a service's environment, command or entrypoint read from /run/secrets."""
    service = SERVICES[name]
    words = [*(service.get("command") or []), *(service.get("entrypoint") or [])]
    text = " ".join([*_environment(name).values(), *map(str, words)])
    return set(re.findall(r"/run/secrets/([a-z_]+)", text))


def test_every_service_has_an_image_and_depends_only_on_services_that_exist() -> None:
    assert {"postgresql", "temporal", "temporal-ui", "worker", "gateway", "proxy"} <= set(SERVICES)
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
    for variable in _environment(name):
        read = variable.removesuffix(FILE_SUFFIX)  # the `_FILE` twin of a setting
        assert read in SDK_VARIABLES or read in SOURCE, f"{name}: {variable} is unused"


def test_the_image_copies_what_the_services_import_and_only_what_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
            copied.add(path)
    production = {"schemas", "infra", "meituan", "activities", "workflows", "analytics"}
    assert production | {"workers", "starter", "migrations"} <= copied


def test_a_worker_service_per_role() -> None:
    from workers.main import ROLES

    roles = [_environment(n)["ORDERFLOW_WORKER_ROLES"] for n in WORKERS]
    assert sorted(roles) == sorted(ROLES)
    for name in WORKERS:  # the shared settings, the platform queue among them, reach each one
        assert _environment(name)["ORDERFLOW_PLATFORM_TASK_QUEUE"] == "orders-platform"
        assert "ORDERFLOW_STATS_REFRESH_MINUTES" in _environment(name)  # one Schedule for all


def test_only_the_proxy_is_published_to_the_network() -> None:
    """Temporal, its Web UI and the codec server on loopback only; the UI cannot act; the
    gateway and the staff API only through the proxy's TLS."""
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            public = not str(port).startswith("127.0.0.1:")
            assert not public or name == "proxy", f"{name} publishes {port}"
    assert sorted(map(str, SERVICES["proxy"]["ports"])) == [
        "127.0.0.1:8081:8081",  # the codec server's site
        "127.0.0.1:8233:8233",  # the Web UI's, the same host: one site for the sign-in cookie
        "443:443",
        "80:80",  # redirects to 443, and ACME's challenges
    ]
    assert _environment("temporal-ui")["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    ui = _environment("temporal-ui")
    assert ui["TEMPORAL_CODEC_ENDPOINT"].startswith("https://")
    # The UI sends the codec server the cookie of a person's sign-in (starter/codec_signin.py),
    # from the one origin the codec server admits.
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert "ports" not in SERVICES["temporal-ui"]  # through the proxy's TLS only
    origin = "https://${ORDERFLOW_CODEC_HOST:-localhost}:8233"
    assert ui["TEMPORAL_CORS_ORIGINS"] == origin
    assert _environment("codec-server")["ORDERFLOW_CODEC_CORS_ORIGIN"] == origin
    assert SERVICES["api"]["command"][0] == "orderflow-api"


def test_each_service_logs_into_postgresql_as_its_own_role() -> None:
    owner = _environment("postgresql")["POSTGRES_USER"]
    logins = {
        spec.name: spec
        for arg in SERVICES["migrate"]["command"]
        if arg.startswith("--login=")
        for spec in [Login.parse(arg.removeprefix("--login="))]
    }
    users: dict[str, str] = {}
    for name in OURS:
        environment = _environment(name)
        assert "DATABASE_URL" in environment, f"{name} has no database"
        url = urlsplit(environment["DATABASE_URL"])
        assert url.password is None, f"{name}: a password in DATABASE_URL"
        password_file = environment["ORDERFLOW_DATABASE_PASSWORD_FILE"]
        users[name] = str(url.username)
        if name == "migrate":
            assert url.username == owner
            assert password_file == _environment("postgresql")["POSTGRES_PASSWORD_FILE"]
            continue
        assert url.username != owner and url.username not in ("postgres", "temporal"), name
        login = logins[str(url.username)]  # migrate makes it, with the service's own secret
        assert login.group == GROUP_OF[name], name
        assert str(login.password_file) == password_file, name
    assert set(users) == set(GROUP_OF) | {"migrate"}
    # One login per process; the worker services share the workers' one.
    by_login = {u: sorted(n for n in users if users[n] == u) for u in users.values()}
    assert by_login.pop("orderflow_worker") == ["activities", "notifications", "platform", "worker"]
    assert all(len(names) == 1 for names in by_login.values())
    assert set(logins) == set(users.values()) - {owner}


def test_temporal_has_its_own_database_user_and_databases() -> None:
    """The server and its schema tool log in as `temporal`, never as the owner or a superuser,
    their password read from the secret just before they start, on the databases the init
    script made and handed to it (the tool creates none: the role may not)."""
    owner = _environment("postgresql")["POSTGRES_USER"]
    temporal, schema = _environment("temporal"), _environment("temporal-schema")
    assert temporal["POSTGRES_USER"] == schema["SQL_USER"] == "temporal" != owner
    assert temporal["DB"] == schema["SQL_PLUGIN"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == schema["SQL_HOST"] == "postgresql"
    for name, variable in (("temporal", "POSTGRES_PWD"), ("temporal-schema", "SQL_PASSWORD")):
        assert variable not in _environment(name)
        script = " ".join(SERVICES[name]["entrypoint"] + SERVICES[name].get("command", []))
        assert f'{variable}="$$(cat /run/secrets/db_temporal_password)"' in script, name
    assert "create-database" not in " ".join(SERVICES["temporal-schema"]["command"])
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in SERVICES["postgresql"]["volumes"]
    assert (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]) == (
        schema["DBNAME"],
        schema["VISIBILITY_DBNAME"],
    )
    for database in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]):
        assert f"'{database}'" in INIT_SCRIPT  # made by the init script, owned by temporal
    # A login and nothing more: no superuser, no CREATEDB, no CREATEROLE.
    assert re.findall(r"(?:CREATE|ALTER) ROLE temporal (?:WITH )?(.*?)PASSWORD", INIT_SCRIPT) == [
        "LOGIN ",
        "LOGIN ",
    ]
    assert "TEMPORAL_DB_PASSWORD_FILE" in _environment("postgresql")


def _waits_for(name: str, dependency: str) -> str:
    """The condition `name` waits for on `dependency` (`service_started` when listed bare)."""
    depends = SERVICES[name].get("depends_on", {})
    if isinstance(depends, list):
        return "service_started" if dependency in depends else ""
    return str(depends.get(dependency, {}).get("condition", "")) if dependency in depends else ""


def test_temporal_starts_on_its_schema_and_the_workers_on_its_namespace() -> None:
    """Schema, server, namespace and search attributes, in that order: the server starts once
    the schema is complete, the setup once the server answers, the workers once it is done."""
    assert _waits_for("temporal-schema", "postgresql") == "service_healthy"
    assert _waits_for("temporal", "temporal-schema") == "service_completed_successfully"
    assert "healthcheck" in SERVICES["temporal"]
    assert _waits_for("temporal-setup", "temporal") == "service_healthy"
    for name in WORKERS:
        assert _waits_for(name, "temporal-setup") == "service_completed_successfully", name
    for name in ("temporal-schema", "temporal-setup"):
        assert SERVICES[name]["restart"] == "no", f"{name} runs once"
    schema = " ".join(SERVICES["temporal-schema"]["command"])
    for part in ("temporal", "visibility"):  # both databases, the schema dirs of PostgreSQL 12+
        assert f"{part}:$$" in schema
    assert "setup-schema -v 0.0" in schema and "update-schema" in schema
    assert "/etc/temporal/schema/postgresql/v12/$${schema%%:*}/versioned" in schema


def test_the_setup_registers_the_namespace_and_search_attributes_of_the_contract() -> None:
    from infra.temporal import RETENTION
    from workflows import search_attributes

    setup = _environment("temporal-setup")
    assert setup["TEMPORAL_NAMESPACE"] == _environment("worker")["TEMPORAL_NAMESPACE"]
    assert setup["TEMPORAL_ADDRESS"] == _environment("worker")["TEMPORAL_ADDRESS"]
    assert _environment("temporal-ui")["TEMPORAL_DEFAULT_NAMESPACE"] == setup["TEMPORAL_NAMESPACE"]
    assert setup["NAMESPACE_RETENTION"] == f"{int(RETENTION.total_seconds()) // 3600}h"
    kinds = {"KEYWORD": "Keyword", "BOOL": "Bool"}
    assert setup["SEARCH_ATTRIBUTES"].split() == [
        f"{key.name}:{kinds[key.indexed_value_type.name]}" for key in search_attributes.ALL
    ]
    command = " ".join(SERVICES["temporal-setup"]["command"])
    assert "namespace create" in command and "search-attribute create" in command


def test_every_image_is_pinned_to_a_tag() -> None:
    """Ours is built here; every other is a named release, never `latest` or a bare name, so
    an upgrade is a change to this file (Temporal's servers one minor version at a time)."""
    for name, service in SERVICES.items():
        if name in OURS:
            assert service["build"] == ".", name
            continue
        image, _, tag = str(service["image"]).partition(":")
        assert tag and tag != "latest", f"{name}: {image} is not pinned to a tag"
    versions = {
        SERVICES[name]["image"].partition(":")[2]
        for name in ("temporal", "temporal-schema", "temporal-setup")
    }
    assert len(versions) == 1, "the server and its admin tools are of one release"
    assert SERVICES["temporal"]["image"].startswith("temporalio/server:")
    assert not any("auto-setup" in str(s.get("image")) for s in SERVICES.values())


def test_no_service_receives_a_secret_it_does_not_use() -> None:
    given = {name: _secrets(name) for name in SERVICES if _secrets(name)}
    assert given == SECRETS_USED
    for name in SERVICES:
        assert _mentioned(name) == _secrets(name), f"{name}: mounted and read differ"
        plain = PLAIN_SECRETS & set(_environment(name))
        assert not plain, f"{name}: {plain} in the environment, not as a file"
    for secret, definition in COMPOSE["secrets"].items():
        assert definition == {"file": f"./secrets/{secret}"}, secret
    assert set(COMPOSE["secrets"]) == set().union(*SECRETS_USED.values())


def test_the_caddyfile_routes_to_services_that_exist() -> None:
    proxy = SERVICES["proxy"]
    assert proxy["image"].startswith("caddy:2")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    upstreams = re.findall(r"^\s*reverse_proxy\s+([\w-]+):(\d+)\s*$", CADDYFILE, re.M)
    hosts = sorted(host for host, _ in upstreams)
    assert hosts == ["api", "codec-server", "gateway", "temporal-ui"]
    for host, port in upstreams:
        if host == "temporal-ui":
            assert port == "8080" and "TEMPORAL_UI_PORT" not in _environment(host)  # the image's
            continue
        command = SERVICES[host]["command"]
        assert command[command.index("--port") + 1] == port, host
        assert "edge" in SERVICES[host]["networks"], f"the proxy cannot reach {host}"
    placeholders = set(re.findall(r"\{\$([A-Z_]+)(?::[^}]*)?\}", CADDYFILE))
    assert placeholders and placeholders <= set(_environment("proxy"))
    gateway_site = CADDYFILE.split("{$ORDERFLOW_GATEWAY_HOST:push.localhost} {")[1].split("\n}")[0]
    assert "respond /metrics 404" in gateway_site  # its counts are not the public's
    sites = [s for s in re.findall(r"^(\S+) \{$", CADDYFILE, re.M) if not s.startswith("(")]
    assert sites == [
        "{$ORDERFLOW_GATEWAY_HOST:push.localhost}",
        "{$ORDERFLOW_API_HOST:api.localhost}",
        "{$ORDERFLOW_CODEC_HOST:localhost}:8081",  # published on loopback only
        "{$ORDERFLOW_CODEC_HOST:localhost}:8233",  # the same
    ]


def test_behind_the_proxy_the_apps_trust_it_alone() -> None:
    """X-Forwarded-For is believed from the network the proxy shares with the apps, and the
    proxy reaches nothing else: neither the database nor Temporal."""
    assert SERVICES["proxy"]["networks"] == ["edge"]
    subnet = COMPOSE["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    for name in ("gateway", "codec-server"):
        assert _environment(name)["ORDERFLOW_TRUSTED_PROXIES"] == subnet
    members = {n for n, s in SERVICES.items() if "edge" in s.get("networks", [])}
    assert members == {"proxy", "gateway", "api", "codec-server", "temporal-ui"}


# --- metrics and dashboards (the `observability` profile) --------------------------------------

DEPLOY = ROOT / "deploy"
PROMETHEUS: dict[str, Any] = yaml.safe_load(
    (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
)
SDK_METRICS = {
    "temporal_workflow_task_schedule_to_start_latency": {"namespace", "task_queue"},
    "temporal_workflow_task_execution_latency": {"namespace", "task_queue"},
    "temporal_workflow_task_execution_failed": {"namespace", "failure_reason"},
    "temporal_activity_schedule_to_start_latency": {"namespace", "task_queue"},
    "temporal_activity_execution_failed": {"namespace", "activity_type"},
    "temporal_worker_task_slots_available": {"namespace", "worker_type"},
    "temporal_worker_task_slots_used": {"namespace", "worker_type"},
}
"""The Temporal SDK's metrics the dashboard reads, with the labels it groups them by, as the
workers' Prometheus endpoint names them (the `temporal_` prefix, histograms in milliseconds,
counters without `_total`): tests/workers/test_sdk_metrics.py checks them against a worker."""
OURS_METRICS = {
    **{name: set(labels) for name, (_, labels) in gateway_metrics.METRICS.items()},
    "orderflow_workflows_not_replaying": set(),  # activities/doctor.py, through the SDK's meter
}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _metrics_port(name: str) -> int:
    """The port a service serves its metrics on, as its own configuration says."""
    if name in WORKERS:
        return _port(_environment(name)["ORDERFLOW_METRICS_ADDRESS"])
    if name == "temporal":
        return _port(_environment(name)["PROMETHEUS_ENDPOINT"])
    command = SERVICES[name]["command"]
    return int(command[command.index("--port") + 1])


def test_prometheus_scrapes_each_worker_replica_the_gateway_and_temporal() -> None:
    """Each target is a service that exists, on the port it serves metrics on, and on a
    network Prometheus shares with it."""
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    assert set(jobs) == {"workers", "gateway", "temporal"}
    [dns] = jobs["workers"]["dns_sd_configs"]  # every replica, not one of them
    assert dns["type"] == "A" and sorted(dns["names"]) == sorted(WORKERS)
    scraped = {(name, int(dns["port"])) for name in dns["names"]}
    for job in ("gateway", "temporal"):
        for static in jobs[job]["static_configs"]:
            scraped |= {(t.split(":")[0], _port(t)) for t in static["targets"]}
    for name, port in scraped:
        assert name in SERVICES, f"Prometheus scrapes unknown {name}"
        assert _metrics_port(name) == port, f"{name} serves metrics on another port"
        assert "default" in SERVICES[name].get("networks", ["default"]), name
    assert "networks" not in SERVICES["prometheus"]  # the default network: not the edge
    for name in WORKERS:  # on the compose network, never published
        assert _environment(name)["ORDERFLOW_METRICS_ADDRESS"].startswith("0.0.0.0:")
    volume = "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert volume in SERVICES["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]


def test_the_observability_services_are_optional_and_on_loopback() -> None:
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["observability"], name
        assert all(str(p).startswith("127.0.0.1:") for p in SERVICES[name]["ports"]), name
    grafana = _environment("grafana")
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"


def _mounted(service: str, target: str) -> Path:
    """The folder or file of this repository that a service mounts at `target`."""
    for volume in SERVICES[service]["volumes"]:
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            assert source.startswith("./"), f"{service}: {target} is not from the repository"
            return ROOT / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards() -> None:
    datasources = _mounted("grafana", "/etc/grafana/provisioning/datasources")
    [source] = yaml.safe_load((datasources / "prometheus.yml").read_text(encoding="utf-8"))[
        "datasources"
    ]
    url = urlsplit(source["url"])
    assert source["type"] == "prometheus" and url.hostname == "prometheus"
    assert url.port == _port(SERVICES["prometheus"]["ports"][0]) == 9090  # Prometheus' own
    providers = _mounted("grafana", "/etc/grafana/provisioning/dashboards")
    [provider] = yaml.safe_load((providers / "orderflow.yml").read_text(encoding="utf-8"))[
        "providers"
    ]
    folder = _mounted("grafana", provider["options"]["path"])
    dashboards = sorted(folder.glob("*.json"))
    assert dashboards == [DEPLOY / "grafana" / "dashboards" / "orderflow.json"]
    assert {p.name for p in datasources.iterdir()} == {"prometheus.yml"}  # nothing unread
    assert {p.name for p in providers.iterdir()} == {"orderflow.yml"}
    for path in dashboards:
        for panel, target in _targets(json.loads(path.read_text(encoding="utf-8"))):
            assert target["datasource"]["uid"] == source["uid"], panel


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in dashboard["panels"] for t in p.get("targets", [])]


DASHBOARD: dict[str, Any] = json.loads(
    (DEPLOY / "grafana" / "dashboards" / "orderflow.json").read_text(encoding="utf-8")
)


def test_the_dashboard_reads_metrics_that_exist_by_labels_they_have() -> None:
    """Every metric a query names is one the SDK, the gateway or the doctor emits, and every
    label it groups by is one that metric carries (or the scrape adds: `service`, `le`)."""
    known = {**SDK_METRICS, **OURS_METRICS}
    assert all(f'"{name}"' in SOURCE for name in OURS_METRICS)
    shown: set[str] = set()
    for panel, target in _targets(DASHBOARD):
        expr = target["expr"]
        names = set(re.findall(r"\b((?:temporal|orderflow)_[a-z_]+)\b", expr))
        assert names, f"{panel}: no metric"
        for name in names:
            metric = re.sub(r"_bucket$", "", name)
            assert metric in known, f"{panel}: {name} is no metric of ours or the SDK's"
            shown.add(metric)
            for group in re.findall(r"by \(([^)]*)\)", expr):
                labels = {g.strip() for g in group.split(",")} - {"le", "service"}
                assert labels <= known[metric], f"{panel}: {metric} has no {labels}"
    assert shown == set(known), f"not shown: {set(known) - shown}"
    wanted = ("schedule_to_start", "activity_execution_failed", "slots", "accepted", "refused")
    assert all(any(w in m for m in shown) for w in wanted)


# --- Compose itself -----------------------------------------------------------------------------

REQUIRED = {
    "MEITUAN_APP_ID": "4321",
    "ORDERFLOW_PUSH_BASE_URL": "https://push.example/meituan/push",
}


def _compose_config(
    tmp_path: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with every profile: Compose validates the file against its
    schema, interpolates the variables and resolves anchors, paths and profiles, without a
    Docker daemon. It is Debian 12's docker-compose (1.29; CI installs it), which predates the
    top-level `name`: the copy it reads leaves that line out, and `-p` names the project."""
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is needed: apt-get install docker-compose (.ci/run does)"
    copy = tmp_path / "docker-compose.yml"
    lines = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").splitlines(keepends=True)
    copy.write_text("".join(line for line in lines if not line.startswith("name:")))
    profiles = sorted({p for s in SERVICES.values() for p in s.get("profiles", [])})
    command = [tool, "-f", str(copy), "--project-directory", str(ROOT), "-p", COMPOSE["name"]]
    command += [arg for profile in profiles for arg in ("--profile", profile)]
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **environment}
    return subprocess.run(
        [*command, "config"], env=environment, capture_output=True, text=True, timeout=60
    )


def test_docker_compose_accepts_the_file_with_every_service(tmp_path: Path) -> None:
    shown = _compose_config(tmp_path, REQUIRED)
    assert shown.returncode == 0, shown.stderr
    resolved = yaml.safe_load(shown.stdout)
    assert set(resolved["services"]) == set(SERVICES)
    ui = resolved["services"]["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CORS_ORIGINS"] == "https://localhost:8233"  # the default, interpolated
    gateway = resolved["services"]["gateway"]["environment"]
    assert gateway["ORDERFLOW_PUSH_BASE_URL"] == REQUIRED["ORDERFLOW_PUSH_BASE_URL"]


@pytest.mark.parametrize("unset", sorted(REQUIRED))
def test_docker_compose_refuses_to_start_without_a_required_variable(
    tmp_path: Path, unset: str
) -> None:
    given = {name: value for name, value in REQUIRED.items() if name != unset}
    shown = _compose_config(tmp_path, given)
    assert shown.returncode != 0
    assert f"set {'the public push URL' if unset.endswith('URL') else unset}" in shown.stderr
