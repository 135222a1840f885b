"""The system of record from the command line.

    python -m starter.db_cli migrate [--login L:G[:F]]...   apply pending migrations
    python -m starter.db_cli logins L:G[:F]...       a login role per process (starter.db_logins)
    python -m starter.db_cli load-demo [--file F]    load the demo company (idempotent)
    python -m starter.db_cli dsn [--keep-running]    print the DSN in use
    python -m starter.db_cli rekey-customers         move customer ids to a new key

Outside the local stack (`ORDERFLOW_DEV`) it does not migrate or re-key with the development
customer key (`infra.fail_closed`).

Uses `DATABASE_URL` when set, else the embedded PostgreSQL under `$ORDERFLOW_DATA_DIR/pg`.
The embedded server stops when this command exits unless another process still holds it, or
`dsn --keep-running` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from infra import fail_closed
from infra.database import REPO_ROOT, Conn, MigrationError, connect, migrate, resolve_dsn
from infra.logging import configure_logging
from infra.settings import SettingsError, settings
from starter.db_logins import GROUPS, Login, LoginError, ensure_logins

DEMO_FILE = REPO_ROOT / "localstack" / "demo_business.json"


class DemoDataError(ValueError):
    """The business file is missing something the tables need."""


def _time(value: str) -> time:
    return time.fromisoformat(value)


async def load_business(conn: Conn, data: dict[str, Any]) -> dict[str, int]:
    """Upsert the company: stores, catalogue, prices, scopes, departments, staff, stock.

    Stock rows already present keep their counts (a reload must not undo live orders); only the
    low-water mark is refreshed. Returns the number of rows per table in the file.
    """
    try:
        stores, catalogue = data["stores"], data["catalogue"]
        departments, staff = data["departments"], data["staff"]
    except KeyError as exc:
        raise DemoDataError(f"the business file has no {exc.args[0]!r} section") from None
    shifts = data.get("shifts") or {}
    async with conn.transaction():
        await _upsert_stores(conn, stores)
        await _upsert_catalogue(conn, catalogue)
        await _replace_scopes(conn, stores, catalogue)
        await _upsert_departments(conn, departments)
        await _upsert_staff(conn, staff, departments, shifts)
        await _upsert_stock(conn, data.get("stock", []))
    return {
        "stores": len(stores),
        "catalogue": len(catalogue),
        "departments": len(departments),
        "staff": len(staff),
        "stock": len(data.get("stock", [])),
    }


Records = list[dict[str, Any]]


async def _upsert_stores(conn: Conn, stores: Records) -> None:
    await conn.executemany(
        """
        INSERT INTO stores (code, name, region, order_type, address, phone, latitude,
                            longitude, delivery_radius_km, self_delivery)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (code) DO UPDATE SET
            name = EXCLUDED.name, region = EXCLUDED.region,
            order_type = EXCLUDED.order_type, address = EXCLUDED.address,
            phone = EXCLUDED.phone, latitude = EXCLUDED.latitude,
            longitude = EXCLUDED.longitude,
            delivery_radius_km = EXCLUDED.delivery_radius_km,
            self_delivery = EXCLUDED.self_delivery, updated_at = now()
        """,
        [
            (
                s["code"],
                s["name"],
                s["region"],
                s["order_type"],
                s.get("address", ""),
                s.get("phone", ""),
                s.get("latitude"),
                s.get("longitude"),
                Decimal(str(s.get("delivery_radius_km", 0))),
                bool(s.get("self_delivery", False)),
            )
            for s in stores
        ],
    )


async def _upsert_catalogue(conn: Conn, catalogue: Records) -> None:
    """The catalogue and, for the items that have one, their price."""
    await conn.executemany(
        """
        INSERT INTO catalogue (sku, name, kind, scope, prohibited, skill, duration_minutes)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (sku) DO UPDATE SET
            name = EXCLUDED.name, kind = EXCLUDED.kind, scope = EXCLUDED.scope,
            prohibited = EXCLUDED.prohibited, skill = EXCLUDED.skill,
            duration_minutes = EXCLUDED.duration_minutes, updated_at = now()
        """,
        [
            (
                c["sku"],
                c["name"],
                c["kind"],
                c["scope"],
                bool(c.get("prohibited", False)),
                c.get("skill"),
                c.get("duration_minutes"),
            )
            for c in catalogue
        ],
    )
    await conn.executemany(
        """
        INSERT INTO prices (sku, unit_price, box_price, tolerance) VALUES ($1, $2, $3, $4)
        ON CONFLICT (sku) DO UPDATE SET
            unit_price = EXCLUDED.unit_price, box_price = EXCLUDED.box_price,
            tolerance = EXCLUDED.tolerance, updated_at = now()
        """,
        [
            (
                c["sku"],
                Decimal(str(c["price"])),
                Decimal(str(c.get("box_price", "0"))),
                Decimal(str(c["price_tolerance"])) if "price_tolerance" in c else None,
            )
            for c in catalogue
            if "price" in c
        ],
    )


async def _replace_scopes(conn: Conn, stores: Records, catalogue: Records) -> None:
    # R2.2.2 a store sells the scopes it lists, else every scope of its kind in the catalogue.
    scopes = [
        (s["code"], scope)
        for s in stores
        for scope in s.get("scopes")
        or sorted({c["scope"] for c in catalogue if c["kind"] == s["order_type"]})
    ]
    await conn.execute(
        "DELETE FROM store_scopes WHERE store_code = ANY($1::text[])",
        [s["code"] for s in stores],
    )
    await conn.executemany("INSERT INTO store_scopes (store_code, scope) VALUES ($1, $2)", scopes)


async def _upsert_departments(conn: Conn, departments: Records) -> None:
    await conn.executemany(
        """
        INSERT INTO departments (code, name, order_type, region, manager_id)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (code) DO UPDATE SET
            name = EXCLUDED.name, order_type = EXCLUDED.order_type,
            region = EXCLUDED.region, manager_id = EXCLUDED.manager_id, updated_at = now()
        """,
        [
            (d["code"], d["name"], d["order_type"], d["region"], d.get("manager"))
            for d in departments
        ],
    )


async def _upsert_staff(
    conn: Conn, staff: Records, departments: Records, shifts: dict[str, Any]
) -> None:
    """The staff with their region from their department, their shift, and their skills."""
    region_of = {d["code"]: d["region"] for d in departments}
    rows = []
    for p in staff:
        if p["department"] not in region_of:
            raise DemoDataError(f"staff {p['id']}: unknown department {p['department']!r}")
        shift = p.get("shift") or shifts
        rows.append(
            (
                p["id"],
                p["name"],
                p["department"],
                region_of[p["department"]],
                p.get("role", "staff"),
                p.get("phone", ""),
                int(p.get("capacity", 1)),
                _time(shift["start"]) if shift.get("start") else None,
                _time(shift["end"]) if shift.get("end") else None,
            )
        )
    await conn.executemany(
        """
        INSERT INTO staff (staff_id, name, department, region, role, phone, capacity,
                           shift_start, shift_end)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (staff_id) DO UPDATE SET
            name = EXCLUDED.name, department = EXCLUDED.department,
            region = EXCLUDED.region, role = EXCLUDED.role, phone = EXCLUDED.phone,
            capacity = EXCLUDED.capacity, shift_start = EXCLUDED.shift_start,
            shift_end = EXCLUDED.shift_end, active = true, updated_at = now()
        """,
        rows,
    )
    await conn.execute(
        "DELETE FROM staff_skills WHERE staff_id = ANY($1::text[])", [p["id"] for p in staff]
    )
    await conn.executemany(
        "INSERT INTO staff_skills (staff_id, skill, level) VALUES ($1, $2, $3)",
        [(p["id"], skill, int(level)) for p in staff for skill, level in p["skills"].items()],
    )


async def _upsert_stock(conn: Conn, stock: Records) -> None:
    await conn.executemany(
        """
        INSERT INTO stock (store_code, sku, on_hand, low_water) VALUES ($1, $2, $3, $4)
        ON CONFLICT (store_code, sku) DO UPDATE SET
            low_water = EXCLUDED.low_water, updated_at = now()
        """,
        [(s["store"], s["sku"], int(s["on_hand"]), int(s.get("low_water", 0))) for s in stock],
    )


async def generate_slots(
    conn: Conn,
    store_code: str,
    *,
    days_ahead: int,
    slot_minutes: int,
    day_start: str,
    day_end: str,
    first_day: date | None = None,
) -> int:
    """R3.2.1 bookable slots for the store's technicians, in the company's time zone.

    Technicians are the `technician` staff of the service departments of the store's region.
    Existing slots are kept, so running it daily extends the calendar. Returns new slots.
    """
    technicians = await conn.fetch(
        """
        SELECT st.staff_id FROM staff st
        JOIN departments d ON d.code = st.department
        JOIN stores s ON s.code = $1 AND s.region = d.region AND d.order_type = 'service'
        WHERE st.active AND st.role = 'technician'
        ORDER BY st.staff_id
        """,
        store_code,
    )
    if not technicians:
        raise DemoDataError(f"store {store_code} has no technicians to make slots for")
    zone = settings().business.timezone
    start_day = first_day or datetime.now(zone).date()
    length = timedelta(minutes=slot_minutes)
    slots: list[tuple[str, str, datetime, datetime]] = []
    for offset in range(days_ahead):
        day = start_day + timedelta(days=offset)
        at = datetime.combine(day, _time(day_start), zone)
        close = datetime.combine(day, _time(day_end), zone)
        while at + length <= close:
            slots.extend((t["staff_id"], store_code, at, at + length) for t in technicians)
            at += length
    before = await conn.fetchval(
        "SELECT count(*) FROM service_slots WHERE store_code = $1", store_code
    )
    await conn.executemany(
        """
        INSERT INTO service_slots (staff_id, store_code, starts_at, ends_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (staff_id, starts_at) DO NOTHING
        """,
        slots,
    )
    after = await conn.fetchval(
        "SELECT count(*) FROM service_slots WHERE store_code = $1", store_code
    )
    return int(after - before)


async def load_demo(
    pool: asyncpg.Pool, path: Path = DEMO_FILE, *, days: int | None = None
) -> dict[str, int]:
    try:
        data = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    except FileNotFoundError:
        raise DemoDataError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise DemoDataError(f"{path} is not valid JSON: {exc}") from None
    async with pool.acquire() as conn:
        try:
            counts = await load_business(conn, data)
            plan = data.get("service_slots")
            if plan:
                counts["new_slots"] = await generate_slots(
                    conn,
                    plan["store"],
                    days_ahead=days or int(plan.get("days_ahead", 7)),
                    slot_minutes=int(plan.get("slot_minutes", 120)),
                    day_start=plan.get("day_start", "09:00"),
                    day_end=plan.get("day_end", "19:00"),
                )
        except KeyError as exc:
            raise DemoDataError(f"{path}: a record has no {exc.args[0]!r}") from None
    return counts


def _rotating(previous: str, key: str) -> None:
    if not previous or previous == key:
        raise SettingsError(
            "set ORDERFLOW_CUSTOMER_KEY_PREVIOUS to the key in use and ORDERFLOW_CUSTOMER_KEY "
            "to the new one"
        )


async def rekey_customers(pool: asyncpg.Pool, previous: str, key: str) -> int:
    """Every customer id from the HMAC under `previous` to the one under `key`, in one
    transaction (migration 0020's `orderflow_rekey_customers`); the number of profiles moved.
    The workers are stopped meanwhile, or they would write ids under the old key."""
    _rotating(previous, key)
    async with pool.acquire() as conn, conn.transaction():
        # The keys as settings of this transaction, not as arguments of the long statement:
        # a server that logs slow statements logs their arguments.
        await conn.execute(
            "SELECT set_config('orderflow.customer_key_previous', $1, true),"
            " set_config('orderflow.customer_key', $2, true)",
            previous,
            key,
        )
        moved: int = await conn.fetchval(
            "SELECT orderflow_rekey_customers('key',"
            " current_setting('orderflow.customer_key_previous'),"
            " current_setting('orderflow.customer_key'))"
        )
        moved += await conn.fetchval("SELECT orderflow_unlink_orphans()")  # migration 0022
    return moved


async def _run(args: argparse.Namespace) -> int:
    if args.command == "dsn":
        print(await resolve_dsn(keep_running=args.keep_running))
        return 0
    fail_closed.require(settings(), fail_closed.Role.MIGRATIONS)
    business = settings().business
    if args.command == "rekey-customers":
        _rotating(business.customer_key_previous, business.customer_key)  # before any change
    pool = await connect()
    try:
        applied = await migrate(pool)
        if args.command == "rekey-customers":
            moved = await rekey_customers(
                pool, business.customer_key_previous, business.customer_key
            )
            print(f"customer profiles moved to the new key: {moved}")
            return 0
        if args.command in ("migrate", "logins"):
            if args.command == "migrate":
                print("applied: " + (", ".join(applied) if applied else "nothing, up to date"))
            async with pool.acquire() as conn:
                for line in await ensure_logins(conn, args.login):
                    print(f"login {line}")
            return 0
        counts = await load_demo(pool, Path(args.file), days=args.days)
        print(f"applied: {', '.join(applied)}" if applied else "schema up to date")
        print("loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    finally:
        await pool.close()


def _login(spec: str) -> Login:
    try:
        return Login.parse(spec)
    except LoginError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _logins_argument(parser: argparse.ArgumentParser, name: str, **how: Any) -> None:
    parser.add_argument(
        name,
        type=_login,
        metavar="LOGIN:GROUP[:PASSWORD_FILE]",
        help=f"a login role in GROUP ({', '.join(GROUPS)}), its password read from the file "
        "(default /run/secrets/LOGIN); created, or its password and group brought in line",
        **how,
    )


def main(argv: list[str] | None = None) -> int:
    configure_logging("WARNING")
    parser = argparse.ArgumentParser(
        prog="python -m starter.db_cli", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    migrate_cmd = sub.add_parser("migrate", help="apply pending migrations, then the logins")
    _logins_argument(migrate_cmd, "--login", action="append", default=[])
    logins = sub.add_parser("logins", help="create or update login roles (migrates first)")
    _logins_argument(logins, "login", nargs="+")
    demo = sub.add_parser("load-demo", help="load the demo company (migrates first)")
    demo.add_argument("--file", default=str(DEMO_FILE), help="business file (JSON)")
    demo.add_argument("--days", type=int, default=None, help="days of service slots to make")
    sub.add_parser(
        "rekey-customers",
        help="move customer ids from ORDERFLOW_CUSTOMER_KEY_PREVIOUS to ORDERFLOW_CUSTOMER_KEY "
        "(migrates first; workers stopped)",
    )
    dsn = sub.add_parser("dsn", help="print the DSN (starts the embedded server if needed)")
    dsn.add_argument(
        "--keep-running", action="store_true", help="leave the embedded server up after exit"
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (MigrationError, DemoDataError, SettingsError, LoginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: database: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a clear line rather than a traceback for the operator
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
