"""A login role per process, each a member of the group role its work needs (migrations 0007,
0014, 0021): `python -m starter.db_cli logins LOGIN:GROUP[:PASSWORD_FILE] ...`, or the same
specs as `migrate --login`, run as the tables' owner.

A login is created, or brought in line: its password set anew, a member of its group and of no
other orderflow group. Passwords are read from files (compose mounts them under /run/secrets),
and reach the server only as SCRAM-SHA-256 verifiers computed here, so no statement log and no
`pg_stat_statements` ever holds one in plaintext. A role with more than a login (a superuser,
one that may create roles or databases) is never touched: a typo must not change the owner's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.database import Conn

GROUPS: Final = ("orderflow_service", "orderflow_api", "orderflow_reporting", "orderflow_signin")
"""The group roles a login may be given: the services', the staff API's, reporting's, and the
codec server's sign-in lookups."""
SECRETS_DIR: Final = Path("/run/secrets")
MIN_PASSWORD: Final = 16
SCRAM_ITERATIONS: Final = 4096  # PostgreSQL's scram_iterations default
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class LoginError(ValueError):
    """A login that cannot be made as asked; the message says which and why."""


@dataclass(frozen=True)
class Login:
    name: str
    group: str
    password_file: Path

    @classmethod
    def parse(cls, spec: str) -> Login:
        """`LOGIN:GROUP[:PASSWORD_FILE]`; the file defaults to /run/secrets/LOGIN."""
        name, _, rest = spec.partition(":")
        group, _, path = rest.partition(":")
        if not _NAME.match(name):
            raise LoginError(f"{spec!r}: the login must be a lower-case identifier")
        if group not in GROUPS:
            raise LoginError(f"{spec!r}: the group must be one of {', '.join(GROUPS)}")
        if name in GROUPS:
            raise LoginError(f"{spec!r}: {name} is a group role, not a login")
        return cls(name, group, Path(path) if path else SECRETS_DIR / name)

    def password(self) -> str:
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise LoginError(
                f"{self.name}: {self.password_file} cannot be read: {reason}"
            ) from None
        password = text.removesuffix("\n").removesuffix("\r")
        if len(password) < MIN_PASSWORD or password != password.strip():
            raise LoginError(
                f"{self.name}: the password in {self.password_file} must be at least "
                f"{MIN_PASSWORD} characters, without surrounding blanks (openssl rand -hex 24)"
            )
        return password


def scram(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, RFC 7677), which CREATE
    and ALTER ROLE take in place of the password itself."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def ensure_logins(conn: Conn, logins: Sequence[Login]) -> list[str]:
    """Create or update each login, in one transaction; a line per login for the operator."""
    passwords = {login.name: login.password() for login in logins}  # every file, before a change
    done = []
    async with conn.transaction():
        for login in logins:
            done.append(await _ensure(conn, login, passwords[login.name]))
    return done


async def _ensure(conn: Conn, login: Login, password: str) -> str:
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login.group):
        raise LoginError(f"{login.name}: its group {login.group} does not exist; migrate first")
    existing = await conn.fetchrow(
        """
        SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls
               AS powerful
        FROM pg_roles WHERE rolname = $1
        """,
        login.name,
    )
    itself = login.name == await conn.fetchval("SELECT current_user")
    if itself or (existing is not None and existing["powerful"]):
        raise LoginError(
            f"{login.name} has more than a login (it may administer or create): not changed"
        )
    if existing is None:
        await _run(conn, "CREATE ROLE %I LOGIN INHERIT PASSWORD %L", login.name, scram(password))
    else:
        await _run(
            conn, "ALTER ROLE %I WITH LOGIN INHERIT PASSWORD %L", login.name, scram(password)
        )
    await _run(conn, "GRANT %I TO %I", login.group, login.name)
    others = await conn.fetch(
        """
        SELECT g.rolname FROM pg_auth_members m
        JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE u.rolname = $1 AND g.rolname = ANY($2::text[])
        """,
        login.name,
        [g for g in GROUPS if g != login.group],
    )
    for other in others:  # a login moved to another group leaves the one it had
        await _run(conn, "REVOKE %I FROM %I", other["rolname"], login.name)
    return f"{login.name}: {'created' if existing is None else 'updated'}, in {login.group}"


async def _run(conn: Conn, template: str, *values: str) -> None:
    """DDL takes no parameters: the server quotes each name (%I) and literal (%L) itself."""
    slots = ", ".join(f"${i}::text" for i in range(2, len(values) + 2))
    statement = await conn.fetchval(f"SELECT format($1, {slots})", template, *values)
    await conn.execute(statement)
