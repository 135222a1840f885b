"""Outside the local stack a process does not start on the public development secrets: each
names what to set and exits non-zero (infra.fail_closed). The suite itself is the local stack
(tests/conftest.py sets ORDERFLOW_DEV), so these tests take it away."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from infra import database as db
from infra.codec import new_key
from infra.fail_closed import Role, missing
from infra.settings import DEFAULT_APP_SECRET, DEFAULT_CUSTOMER_KEY, load_settings, settings
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

KEYS = new_key("k1").spec()


def outside(**variables: str) -> dict[str, str]:
    """This environment without the local stack's flag, nor any secret, plus `variables`."""
    unset = (
        "ORDERFLOW_DEV",
        "MEITUAN_APP_SECRET",
        "ORDERFLOW_CODEC_KEYS",
        "ORDERFLOW_CODEC_TOKEN",
        "ORDERFLOW_CUSTOMER_KEY",
    )
    return {**{k: v for k, v in os.environ.items() if k not in unset}, **variables}


@pytest.mark.parametrize("role", list(Role))
def test_the_local_stack_needs_nothing(role: Role) -> None:
    assert missing(load_settings({"ORDERFLOW_DEV": "1"}), role) == []


def test_outside_it_each_role_names_what_it_relies_on() -> None:
    defaults = load_settings({})
    assert [m.split()[0] for m in missing(defaults, Role.GATEWAY)] == [
        "MEITUAN_APP_SECRET",
        "ORDERFLOW_CODEC_KEYS",
    ]
    assert [m.split()[0] for m in missing(defaults, Role.WORKER)] == [
        "MEITUAN_APP_SECRET",
        "ORDERFLOW_CODEC_KEYS",
        "ORDERFLOW_CUSTOMER_KEY",
    ]
    assert [m.split()[0] for m in missing(defaults, Role.API)] == ["ORDERFLOW_CODEC_KEYS"]
    assert [m.split()[0] for m in missing(defaults, Role.MIGRATIONS)] == ["ORDERFLOW_CUSTOMER_KEY"]
    public = load_settings(
        {
            "MEITUAN_APP_SECRET": DEFAULT_APP_SECRET,
            "ORDERFLOW_CODEC_KEYS": KEYS,
            "ORDERFLOW_CUSTOMER_KEY": DEFAULT_CUSTOMER_KEY,
        }
    )
    assert [m.split()[0] for m in missing(public, Role.GATEWAY)] == ["MEITUAN_APP_SECRET"]
    assert [m.split()[0] for m in missing(public, Role.MIGRATIONS)] == ["ORDERFLOW_CUSTOMER_KEY"]
    real = load_settings(
        {
            "MEITUAN_APP_SECRET": "a-real-one",
            "ORDERFLOW_CODEC_KEYS": KEYS,
            "ORDERFLOW_CUSTOMER_KEY": "a-real-key",
        }
    )
    assert all(missing(real, role) == [] for role in Role)


@pytest.mark.parametrize(
    ("roles", "needed"),
    [
        ("workflows", ["ORDERFLOW_CODEC_KEYS", "ORDERFLOW_CUSTOMER_KEY"]),
        ("notifications", ["ORDERFLOW_CODEC_KEYS"]),
        ("platform", ["MEITUAN_APP_SECRET", "ORDERFLOW_CODEC_KEYS"]),
        ("activities", ["MEITUAN_APP_SECRET", "ORDERFLOW_CODEC_KEYS", "ORDERFLOW_CUSTOMER_KEY"]),
        (
            "workflows,notifications,platform",
            ["MEITUAN_APP_SECRET", "ORDERFLOW_CODEC_KEYS", "ORDERFLOW_CUSTOMER_KEY"],
        ),
    ],
)
def test_a_worker_needs_the_secrets_of_its_roles_only(roles: str, needed: list[str]) -> None:
    """A worker that signs no platform call nor computes customer ids is not given those
    secrets (compose's services), so it must not ask for them. The workflows' worker records
    orders (LOCAL_WRITES), so it computes customer ids."""
    configured = load_settings({"ORDERFLOW_WORKER_ROLES": roles})
    assert [m.split()[0] for m in missing(configured, Role.WORKER)] == needed


def test_a_malformed_flag_is_an_error() -> None:
    with pytest.raises(ValueError, match="ORDERFLOW_DEV='maybe'"):
        load_settings({"ORDERFLOW_DEV": "maybe"})


@pytest.mark.parametrize(
    ("command", "role", "variable"),
    [
        (["workers.main"], "worker", "ORDERFLOW_CUSTOMER_KEY"),
        (["starter.gateway"], "gateway", "ORDERFLOW_CODEC_KEYS"),
        (["starter.api"], "api", "ORDERFLOW_CODEC_KEYS"),
        (["starter.db_cli", "migrate"], "migration runner", "ORDERFLOW_CUSTOMER_KEY"),
    ],
)
def test_a_process_started_without_its_secrets_says_so_and_stops(
    command: list[str], role: str, variable: str
) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", *command],
        env=outside(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode != 0
    assert f"the {role} does not start on development defaults" in ran.stderr
    assert variable in ran.stderr and "ORDERFLOW_DEV=1" in ran.stderr


def test_the_codec_server_serves_without_a_token_only_in_the_local_stack() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "starter.codec_server", "--no-auth"],
        env=outside(ORDERFLOW_CODEC_KEYS=KEYS),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode != 0
    assert "--no-auth is for the local stack only (ORDERFLOW_DEV=1)" in ran.stderr


async def test_no_process_applies_a_migration_on_the_development_key_outside_the_stack(
    monkeypatch: pytest.MonkeyPatch, pg_dsn: str
) -> None:
    """The gateway, the staff API and `orderctl admin` migrate at start: outside the local
    stack a pending migration is refused there too, unless the customer key is set."""
    name = f"t_fail_closed_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    pool = await db.connect(db.with_database(pg_dsn, name), max_size=2)
    try:
        with monkeypatch.context() as outside_the_stack:
            outside_the_stack.delenv("ORDERFLOW_DEV", raising=False)
            outside_the_stack.delenv("ORDERFLOW_CUSTOMER_KEY", raising=False)
            settings.cache_clear()
            with pytest.raises(db.MigrationError, match="ORDERFLOW_CUSTOMER_KEY"):
                await db.migrate(pool)
            assert await pool.fetchval("SELECT to_regclass('orders')") is None  # nothing ran
            outside_the_stack.setenv("ORDERFLOW_CUSTOMER_KEY", "a-real-key")
            settings.cache_clear()
            assert "0020_customer_hmac" in await db.migrate(pool)
            outside_the_stack.delenv("ORDERFLOW_CUSTOMER_KEY")
            settings.cache_clear()
            assert await db.migrate(pool) == []  # up to date: nothing pending, nothing asked
    finally:
        settings.cache_clear()
        await pool.close()
        await db.drop_database(pg_dsn, name)
