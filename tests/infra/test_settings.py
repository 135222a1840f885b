"""The settings object: every variable is read there, on first use, and a bad value names itself."""

from __future__ import annotations

import ast
import re
from dataclasses import fields, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from infra.settings import (
    FILE_SUFFIX,
    SAFE_PASSTHROUGH,
    Settings,
    SettingsError,
    load_settings,
    settings,
    settings_for,
    variables,
)
from schemas.records import CreditEventKind

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "schemas",
    "meituan",
    "infra",
    "activities",
    "workflows",
    "analytics",
    "workers",
    "starter",
    "localstack",
)
BENCH = "bench"  # hands its environment to child processes; reads no variable of its own
SETTINGS_MODULE = "infra/settings.py"
VARIABLE = re.compile(r"^(?:ORDERFLOW_|MEITUAN_|TEMPORAL_|DATABASE_URL$)")

# Named in the docs but read by no service: the test suite's own, and compose's.
NOT_SETTINGS = {
    "ORDERFLOW_TEST_JITTER_MS",
    "ORDERFLOW_TEST_SESSION_LIMIT",
    "ORDERFLOW_KEEP_HISTORIES",  # tests/recording.py: recording the replay set
    "ORDERFLOW_UNPATCHED",
    "ORDERFLOW_DB_PASSWORD",  # compose's before its secret files: README's upgrade names it
    # compose's and the Caddyfile's: the proxy's host names and certificates, its network
    "ORDERFLOW_GATEWAY_HOST",
    "ORDERFLOW_API_HOST",
    "ORDERFLOW_CODEC_HOST",
    "ORDERFLOW_TLS",
    "ORDERFLOW_EDGE_SUBNET",
}


def _modules(*packages: str) -> list[tuple[str, ast.Module]]:
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            found.append((name, ast.parse(path.read_text(encoding="utf-8"), name)))
    return found


MODULES = _modules(*PACKAGES)
WITH_BENCH = MODULES + _modules(BENCH)


def _environment_reads(tree: ast.Module) -> list[int]:
    """Lines touching `os.environ`/`os.getenv`, importing them, or looking a variable up by
    name in any mapping (`env.get("ORDERFLOW_...")`, `env["DATABASE_URL"]`)."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "environb", "getenv", "putenv", "unsetenv"}
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "environb", "getenv"}:
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            first = node.args[0] if node.args else None
            if (
                node.func.attr in {"get", "pop", "setdefault"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and VARIABLE.match(first.value)
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and VARIABLE.match(str(key.value)):
                lines.append(node.lineno)
    return lines


def test_only_the_settings_module_reads_the_environment() -> None:
    reading = {
        name: lines
        for name, tree in MODULES
        if name != SETTINGS_MODULE and (lines := _environment_reads(tree))
    }
    assert reading == {}


def test_the_check_sees_each_way_of_reading() -> None:
    for source in (
        "import os\nos.environ.get('X')",
        "import os\nos.getenv('X')",
        "from os import environ",
        "env.get('ORDERFLOW_SHIFTS', 'prefer')",
        "env['DATABASE_URL']",
    ):
        assert _environment_reads(ast.parse(source)), source
    assert not _environment_reads(ast.parse("env.get('HOME')\nname = 'ORDERFLOW_SHIFTS'"))


def _module_level_calls(tree: ast.Module) -> list[int]:
    """Lines calling `settings()` when the module is imported (function bodies and lambdas,
    dataclass default factories included, run later)."""
    lines = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"settings", "load_settings", "settings_for"}
        ):
            lines.append(node.lineno)
        pending.extend(ast.iter_child_nodes(node))
    return lines


def test_nothing_reads_the_settings_at_import() -> None:
    at_import = {
        name: lines
        for name, tree in WITH_BENCH
        if name != SETTINGS_MODULE and (lines := _module_level_calls(tree))
    }
    assert not at_import


def _documented() -> set[str]:
    names: set[str] = set()
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        names |= set(re.findall(r"\b(?:ORDERFLOW|MEITUAN|TEMPORAL)_[A-Z0-9_]*", doc.read_text()))
        names |= set(re.findall(r"\bDATABASE_URL\b", doc.read_text()))
    for _, tree in MODULES:  # docstrings and messages
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= set(re.findall(r"\b(?:ORDERFLOW|MEITUAN)_[A-Z0-9_]*", node.value))
    compose = (ROOT / "docker-compose.yml").read_text()
    names |= set(
        re.findall(r"^\s+((?:ORDERFLOW|MEITUAN|TEMPORAL)_[A-Z0-9_]+|DATABASE_URL):", compose, re.M)
    )
    return names - NOT_SETTINGS


def _known(name: str) -> bool:
    """A variable of the settings, or its `_FILE` twin; a documented prefix
    (`ORDERFLOW_CREDIT_`) is known when some variable has it."""
    known = variables()
    if name in known or name.removesuffix(FILE_SUFFIX) in known:
        return True
    prefixes = [n.removesuffix("*") for n in known if n.endswith("*")]
    if any(name.startswith(p) for p in prefixes):
        return True
    return name.endswith("_") and any(n.startswith(name) for n in known)


def test_every_documented_variable_is_a_setting() -> None:
    documented = _documented()
    assert len(documented) > 40
    assert {n for n in documented if not _known(n)} == set()


def test_every_field_names_its_variable_in_its_docstring() -> None:
    tree = ast.parse((ROOT / SETTINGS_MODULE).read_text(encoding="utf-8"))
    docs: dict[str, str] = {}
    for group in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for node, after in zip(group.body, group.body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
            ):
                docs[f"{group.name}.{node.target.id}"] = str(after.value.value)
    group_class = {f.name: type(getattr(Settings(), f.name)).__name__ for f in fields(Settings)}
    for name, where in variables().items():
        group, field = where.split(".")
        assert name.removesuffix("*") in docs[f"{group_class[group]}.{field}"], name


def _table() -> list[tuple[list[str], list[str]]]:
    """README's Configuration table: each row's variables and its defaults in backticks."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration") :].split("\n### ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names, default = line.split(" | ")[:2]
            rows.append((re.findall(r"`([^`]+)`", names), re.findall(r"`([^`]+)`", default)))
    return rows


def test_the_readme_table_keeps_step_with_the_settings() -> None:
    """Every variable has a row, every row names variables, and a default the row shows, read
    as the variable, is the field's default (a field whose default is unset says it in words)."""
    rows = _table()
    listed = [name for names, _ in rows for name in names]
    for name in variables():
        stem = name.removesuffix("*")
        assert name in listed or (stem != name and any(n.startswith(stem) for n in listed)), name
    assert [n for n in listed if not _known(n)] == []
    defaults = Settings()
    for names, shown in rows:
        if len(names) != len(shown) or not all(n in variables() for n in names):
            continue
        for name, text in zip(names, shown, strict=True):
            group, field = variables()[name].split(".")
            default = getattr(getattr(defaults, group), field)
            if default is not None:
                read = load_settings({name: text})
                assert getattr(getattr(read, group), field) == default, (name, text)


# --- values --------------------------------------------------------------------------------------


def test_no_environment_means_the_defaults() -> None:
    defaults = load_settings({})
    assert defaults == Settings()
    assert defaults.review.price_tolerance == Decimal("0.10")
    assert defaults.review.duplicate_window == timedelta(minutes=10)
    assert defaults.credit.deltas == {
        CreditEventKind.FRAUD: -50,
        CreditEventKind.NO_SHOW: -20,
        CreditEventKind.CANCELLATION: -5,
        CreditEventKind.COMPLAINT: -3,
        CreditEventKind.COMPLETED: 2,
    }
    assert defaults.business.timezone.key == "Asia/Shanghai"
    assert defaults.business.customer_salt == "orderflow"
    assert defaults.worker.sandbox_passthrough == SAFE_PASSTHROUGH
    assert "workflows" not in defaults.worker.sandbox_passthrough
    assert defaults.temporal.address == "localhost:7233"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ORDERFLOW_CREDIT_INITIAL", "lots", "ORDERFLOW_CREDIT_INITIAL='lots' is not an integer"),
        ("ORDERFLOW_CREDIT_NO_SHOW", "-2.5", "ORDERFLOW_CREDIT_NO_SHOW='-2.5' is not an integer"),
        (
            "ORDERFLOW_PRICE_TOLERANCE",
            "10%",
            "ORDERFLOW_PRICE_TOLERANCE='10%' is not a decimal number",
        ),
        (
            "ORDERFLOW_ASSIGN_LOAD_WEIGHT",
            "half",
            "ORDERFLOW_ASSIGN_LOAD_WEIGHT='half' is not a number",
        ),
        (
            "ORDERFLOW_SHIFTS",
            "always",
            "ORDERFLOW_SHIFTS='always' must be one of require, prefer, ignore",
        ),
        ("ORDERFLOW_TIMEZONE", "Mars/Olympus", "ORDERFLOW_TIMEZONE='Mars/Olympus' is not a known"),
        ("ORDERFLOW_PLATFORM_RATE", "0", "ORDERFLOW_PLATFORM_RATE='0' is not a positive number"),
        ("ORDERFLOW_PUSH_MAX_BYTES", "64k", "ORDERFLOW_PUSH_MAX_BYTES='64k' is not an integer"),
        (
            "ORDERFLOW_MAX_CACHED_WORKFLOWS",
            "many",
            "ORDERFLOW_MAX_CACHED_WORKFLOWS='many' is not an integer",
        ),
    ],
)
def test_a_malformed_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({name: value})


def test_every_malformed_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"ORDERFLOW_DB_POOL_MAX": "ten", "ORDERFLOW_CREDIT_MAX": "high"})
    assert "ORDERFLOW_DB_POOL_MAX" in str(raised.value)
    assert "ORDERFLOW_CREDIT_MAX" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_values_are_stripped_and_blank_means_unset_unless_a_field_says_otherwise() -> None:
    read = load_settings(
        {
            "ORDERFLOW_CREDIT_INITIAL": " 80 ",
            "ORDERFLOW_SHIFTS": "Require",
            "ORDERFLOW_DB_POOL_MAX": "  ",
            "ORDERFLOW_NOTIFY_FLAVOUR": "",
            "ORDERFLOW_CUSTOMER_SALT": "",
            "ORDERFLOW_SANDBOX_PASSTHROUGH": "",
            "ORDERFLOW_WORKER_ROLES": "workflows, platform,",
            "ORDERFLOW_CODEC_CORS_ORIGIN": "http://a:1/, http://b:2",
            "ORDERFLOW_PUSH_URL_ORDER_CONFIRMED": " https://x/confirmed ",
            "ORDERFLOW_PUSH_URL_ORDER": " ",
            "ORDERFLOW_POLICY__goods__auto_confirm": "false",
            "TEMPORAL_NAMESPACE": "orders",
            "HOME": "/root",
        }
    )
    assert read.credit.initial == 80 and read.assignment.shifts == "require"
    assert read.database.pool_max == 10 and read.notify.flavour == "wecom"
    assert read.business.customer_salt == ""  # ids depend on it: taken as set
    assert read.worker.sandbox_passthrough == ()
    assert read.worker.roles == ("workflows", "platform")
    assert read.codec.cors_origins == ("http://a:1", "http://b:2")
    assert dict(read.gateway.push_urls) == {"ORDER_CONFIRMED": "https://x/confirmed"}
    assert dict(read.policy.overrides) == {"ORDERFLOW_POLICY__goods__auto_confirm": "false"}
    assert dict(read.temporal.environ) == {"TEMPORAL_NAMESPACE": "orders"}


def test_secrets_stay_out_of_the_repr() -> None:
    read = load_settings(
        {
            "DATABASE_URL": "postgresql://u:pw-1@h/db",
            "MEITUAN_APP_SECRET": "app-secret-2",
            "ORDERFLOW_CODEC_KEYS": "k:key-3",
            "ORDERFLOW_CODEC_TOKEN": "token-4",
            "ORDERFLOW_NOTIFY_SECRET": "robot-5",
            "ORDERFLOW_CUSTOMER_SALT": "salt-6",
            "TEMPORAL_API_KEY": "api-7",
        }
    )
    text = repr(read)
    for secret in ("pw-1", "app-secret-2", "key-3", "token-4", "robot-5", "salt-6", "api-7"):
        assert secret not in text


def test_the_environment_is_read_once_until_the_cache_is_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERFLOW_CREDIT_INITIAL", "90")
    settings.cache_clear()
    assert settings().credit.initial == 90
    monkeypatch.setenv("ORDERFLOW_CREDIT_INITIAL", "70")
    assert settings().credit.initial == 90
    settings.cache_clear()
    assert settings().credit.initial == 70
    assert settings_for({}).credit.initial == 100
    assert settings_for(None) is settings()


def test_a_malformed_value_fails_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERFLOW_CREDIT_BANNED_BELOW", "thirty")
    settings.cache_clear()
    with pytest.raises(SettingsError, match="ORDERFLOW_CREDIT_BANNED_BELOW='thirty'"):
        settings()


def test_replaced_settings_hold_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERFLOW_POLICY", raising=False)
    settings.cache_clear()
    before = settings()
    other = load_settings({"ORDERFLOW_POLICY": "/etc/orderflow/policy.toml"})
    with settings.replaced(other):
        assert settings().policy.file == Path("/etc/orderflow/policy.toml")
        settings.cache_clear()  # as after each test, while a module's stack runs on
        assert settings() is other
    assert settings() == before


# --- values from files (compose's secrets) -------------------------------------------------------


def test_a_value_may_come_from_the_file_its_twin_names(tmp_path: Path) -> None:
    secret = tmp_path / "app_secret"
    secret.write_text(" s3cret-with-spaces \n", encoding="utf-8")  # a trailing newline only
    salt = tmp_path / "salt"
    salt.write_text("\n", encoding="utf-8")
    read = load_settings(
        {
            "MEITUAN_APP_SECRET_FILE": str(secret),
            "ORDERFLOW_CUSTOMER_SALT_FILE": str(salt),
            "ORDERFLOW_DATABASE_PASSWORD_FILE": f" {secret} ",
            "ORDERFLOW_CREDIT_INITIAL_FILE": "",  # blank: as if unset
        }
    )
    assert read.meituan.app_secret == " s3cret-with-spaces "  # taken as set, as the variable
    assert read.business.customer_salt == ""
    assert read.database.password == " s3cret-with-spaces "
    assert read.credit.initial == 100


def test_a_file_twin_that_cannot_be_read_or_doubles_a_variable_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "pool"
    bad.write_text("twenty\n", encoding="utf-8")
    with pytest.raises(SettingsError) as raised:
        load_settings(
            {
                "ORDERFLOW_CODEC_KEYS_FILE": str(tmp_path / "missing"),
                "ORDERFLOW_CODEC_TOKEN": "t",
                "ORDERFLOW_CODEC_TOKEN_FILE": str(bad),
                "ORDERFLOW_DB_POOL_MAX_FILE": str(bad),
            }
        )
    message = str(raised.value)
    assert f"ORDERFLOW_CODEC_KEYS_FILE={str(tmp_path / 'missing')!r} cannot be read" in message
    assert "ORDERFLOW_CODEC_TOKEN and ORDERFLOW_CODEC_TOKEN_FILE are both set" in message
    assert f"ORDERFLOW_DB_POOL_MAX_FILE={str(bad)!r}: the file's value is not an integer" in (
        message
    )
    assert "twenty" not in message  # a file's content may be a secret: never quoted


def test_trusted_proxies_are_addresses_or_networks() -> None:
    read = load_settings({"ORDERFLOW_TRUSTED_PROXIES": " 10.0.0.7, 172.18.0.0/16 ,,::1 "})
    assert [str(n) for n in read.deployment.trusted_proxies] == [
        "10.0.0.7/32",
        "172.18.0.0/16",
        "::1/128",
    ]
    assert load_settings({}).deployment.trusted_proxies == ()
    with pytest.raises(SettingsError, match="has 'proxy', neither an address nor a CIDR"):
        load_settings({"ORDERFLOW_TRUSTED_PROXIES": "10.0.0.1, proxy"})


# --- pydantic-settings ---------------------------------------------------------------------------


def test_the_mapping_given_is_read_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORDERFLOW_CREDIT_INITIAL", "90")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ORDERFLOW_CREDIT_MAX=95\n", encoding="utf-8")
    assert load_settings({}) == Settings()
    assert load_settings().credit.initial == 90
    assert load_settings().credit.maximum == 100  # no dotenv file


def test_a_group_changed_in_code_is_checked_by_field_name() -> None:
    read = load_settings({"ORDERFLOW_POLICY__goods__auto_confirm": "false"})
    moved = replace(read, policy=replace(read.policy, file=Path("/etc/policy.toml")))
    assert moved.policy.file == Path("/etc/policy.toml")
    assert dict(moved.policy.overrides) == dict(read.policy.overrides)
    assert replace(read.assignment, shifts="Require").shifts == "require"  # text: as if read
    assert len({read, moved, load_settings({})}) == 3  # hashable, as the frozen dataclasses were
    with pytest.raises(ValueError, match="must be one of"):
        replace(read.assignment, shifts="always")
