"""Migration 0020 and the key's rotation: customer ids as an HMAC under a secret key (R1.3).

The database is made as the code before the migration made it: migrated up to 0019, and the
real activities record orders, credit events, notices and an admin's ban with the salted id of
that code patched in. Then the migration, or `db_cli rekey-customers`, moves them.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from activities import orders
from activities.credit import Credit
from activities.orders import OrderRecords
from activities.rules import customer_id_for, customer_key
from infra import database as db
from infra.settings import settings
from schemas.records import CreditEvent, CreditEventKind, RecordOrder
from starter import db_cli
from starter.db_cli import load_demo, rekey_customers
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import make_order
from tests.db_fixtures import pg_dsn as pg_dsn

REKEY = "0020_customer_hmac"
SALT = "the-old-salt"
KEY = "k" * 32
T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
PHONES = ("13812340000_1111", "+86 139 1234 0000", "021-64381234", "13712340000")
SETTINGS = {
    **db.migration_settings(),
    "orderflow.customer_salt": SALT,
    "orderflow.customer_key": KEY,
}


def salted(phone: str) -> str:
    """The id the code before migration 0020 gave."""
    return "c-" + hashlib.sha256(f"{SALT}:{customer_key(phone)}".encode()).hexdigest()[:20]


@dataclass
class OldDatabase:
    pool: asyncpg.Pool
    folder: Path

    async def order(self, phone: str, minute: int) -> str:
        order = make_order(phone=phone, created_at=T0 + timedelta(minutes=minute))
        await OrderRecords(self.pool).record_order(
            RecordOrder(order=order, received_at=order.created_at, source="push")
        )
        return order.order_id

    async def migrate(self, given: dict[str, str] | None = None) -> list[str]:
        shutil.copy(db.MIGRATIONS_DIR / f"{REKEY}.sql", self.folder)
        return await db.migrate(
            self.pool, self.folder, settings=SETTINGS if given is None else given
        )

    async def up_to_date(self) -> list[str]:
        """Every later migration too: what the code of today runs on."""
        for path in sorted(db.MIGRATIONS_DIR.glob("*.sql")):
            shutil.copy(path, self.folder / path.name)
        return await db.migrate(self.pool, self.folder, settings=SETTINGS)

    async def ids(self) -> dict[str, list[str]]:
        """Every place a customer id is kept."""
        queries = {
            "customers": "SELECT customer_id FROM customers ORDER BY 1",
            "orders": "SELECT customer_id FROM orders ORDER BY order_id",
            "credit": "SELECT customer_id FROM credit_events ORDER BY order_id, kind",
            "notices": "SELECT recipient FROM notifications WHERE audience = 'customer' ORDER BY 1",
            "audit": "SELECT target FROM admin_audit ORDER BY audit_id",
        }
        return {k: [str(r[0]) for r in await self.pool.fetch(q)] for k, q in queries.items()}


@pytest_asyncio.fixture
async def old(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OldDatabase]:
    for path in sorted(db.MIGRATIONS_DIR.glob("*.sql")):
        if path.stem < REKEY:
            shutil.copy(path, tmp_path / path.name)
    name = f"t_hmac_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    pool = await db.connect(db.with_database(pg_dsn, name), max_size=4)
    try:
        await db.migrate(pool, tmp_path, settings=SETTINGS)
        await load_demo(pool)
        with monkeypatch.context() as old_code:
            old_code.setattr(orders, "customer_id_for", lambda phone, key: salted(phone))
            yield OldDatabase(pool, tmp_path)
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


async def _history(old: OldDatabase) -> dict[str, str]:
    """Orders of four customers, a fraud on one, a notice to another and an admin's ban."""
    placed = {phone: await old.order(phone, minute) for minute, phone in enumerate(PHONES)}
    first = placed[PHONES[0]]
    await Credit(old.pool).record_credit_event(
        CreditEvent(customer_id=salted(PHONES[0]), order_id=first, kind=CreditEventKind.FRAUD)
    )
    await old.pool.execute(
        "INSERT INTO notifications (key, order_id, audience, recipient, store_code, subject, "
        "text, channel) VALUES ('n1', $1, 'customer', $2, 'SH-XH-001', 's', 't', 'recorded')",
        placed[PHONES[1]],
        salted(PHONES[1]),
    )
    await old.pool.execute(
        "INSERT INTO admin_audit (actor, action, target, reason) VALUES ('A-901', 'ban', $1, 'x')",
        f"customer:{salted(PHONES[2])}",
    )
    return placed


async def test_the_sql_hmac_is_the_code_s(old: OldDatabase) -> None:
    """The migration's id is the one `customer_id_for` computes, whatever the key's length."""
    await old.migrate()
    keys = ("k", KEY, "密钥-" * 30, "x" * 64, "y" * 65)
    phones = (*PHONES, "(138)1234 5678_0001", "0086 13812345678", "")
    for key in keys:
        for phone in phones:
            in_sql = await old.pool.fetchval(
                "SELECT orderflow_customer_id($1::text, $2::text)", key, phone
            )
            assert in_sql == customer_id_for(phone, key), (key, phone)
    expected = hmac.new(KEY.encode(), b"13812340000_1111", hashlib.sha256).hexdigest()[:24]
    assert customer_id_for(PHONES[0], KEY) == "c-" + expected


async def test_every_id_moves_to_the_key_with_what_it_holds(old: OldDatabase) -> None:
    placed = await _history(old)
    standing = await old.pool.fetchrow(
        "SELECT credit_score, status FROM customers WHERE customer_id = $1", salted(PHONES[0])
    )
    before = await old.ids()
    assert await old.migrate() == [REKEY]
    after = await old.ids()
    moved = {salted(p): customer_id_for(p, KEY) for p in PHONES}
    assert after["customers"] == sorted(moved.values())
    for place in ("orders", "credit", "notices"):
        assert after[place] == [moved[i] for i in before[place]], place
    assert after["audit"] == [f"customer:{customer_id_for(PHONES[2], KEY)}"]
    again = await old.pool.fetchrow(
        "SELECT credit_score, status FROM customers WHERE customer_id = $1",
        customer_id_for(PHONES[0], KEY),
    )
    assert again == standing  # the profile itself moved: score and standing kept
    order = await old.pool.fetchval(
        "SELECT customer_id FROM orders WHERE order_id = $1", placed[PHONES[3]]
    )
    assert order == customer_id_for(PHONES[3], KEY)


async def test_a_wrong_salt_or_no_key_stops_it_and_changes_nothing(old: OldDatabase) -> None:
    await _history(old)
    before = await old.ids()
    wrong = {**SETTINGS, "orderflow.customer_salt": "orderflow"}
    with pytest.raises(asyncpg.RaiseError, match="previous salt explains none"):
        await old.migrate(wrong)
    with pytest.raises(asyncpg.RaiseError, match="no key"):
        await old.migrate({**SETTINGS, "orderflow.customer_key": ""})
    assert await old.ids() == before


async def test_an_empty_database_needs_no_settings(old: OldDatabase) -> None:
    assert await old.migrate({"orderflow.unrelated": "x"}) == [REKEY]


async def test_a_rotation_moves_every_id_once_and_the_new_code_finds_them(
    old: OldDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _history(old)
    await old.up_to_date()
    rotated = "r" * 40
    with pytest.raises(asyncpg.RaiseError, match="previous key explains none"):
        await rekey_customers(old.pool, "not-the-key", rotated)
    assert await rekey_customers(old.pool, KEY, rotated) == len(PHONES)
    assert await rekey_customers(old.pool, KEY, rotated) == 0  # run again: nothing to move
    ids = await old.ids()
    assert ids["customers"] == sorted(customer_id_for(p, rotated) for p in PHONES)
    with monkeypatch.context() as today:  # undone before the fixture puts the old code back
        today.setattr(orders, "customer_id_for", customer_id_for)
        today.setenv("ORDERFLOW_CUSTOMER_KEY", rotated)
        settings.cache_clear()
        again = await old.order(PHONES[0], 30)
    settings.cache_clear()
    found = await old.pool.fetchval(
        "SELECT count(*) FROM orders WHERE customer_id = "
        "(SELECT customer_id FROM orders WHERE order_id = $1)",
        again,
    )
    assert found == 2  # the returning customer is the same profile


async def test_a_profile_no_order_names_gets_an_id_nobody_can_compute(old: OldDatabase) -> None:
    """Its order's phone was corrected (the order went to the new number's profile): the old
    profile, named by no order, would keep its salted id, which the salt reverses (0022)."""
    placed = await _history(old)
    corrected = "13600000000"
    await old.pool.execute(
        "INSERT INTO customers (customer_id, credit_score) VALUES ($1, 40)", salted(corrected)
    )
    await old.pool.execute(
        "INSERT INTO credit_events (order_id, kind, customer_id, delta, score_after) "
        "VALUES ($1, 'no_show', $2, -60, 40)",
        placed[PHONES[1]],
        salted(corrected),
    )
    applied = await old.up_to_date()
    assert applied[0] == REKEY and "0022_customer_orphans" in applied
    ids = await old.ids()
    [orphan] = [i for i in ids["customers"] if i.startswith("o-")]
    assert len(orphan) == 26 and salted(corrected) not in ids["customers"]
    assert orphan in ids["credit"]  # its history went with it
    score = await old.pool.fetchval(
        "SELECT credit_score FROM customers WHERE customer_id = $1", orphan
    )
    assert score == 40
    assert all(i.startswith("o-") or len(i) == 26 for i in ids["customers"])  # no salted id


def test_the_rotation_command_names_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with monkeypatch.context() as unset:
        unset.delenv("ORDERFLOW_CUSTOMER_KEY_PREVIOUS", raising=False)
        unset.setenv("ORDERFLOW_DEV", "1")
        settings.cache_clear()
        assert db_cli.main(["rekey-customers"]) == 1
    settings.cache_clear()
    assert "ORDERFLOW_CUSTOMER_KEY_PREVIOUS" in capsys.readouterr().err
