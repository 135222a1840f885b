"""Every environment variable the services read, in one frozen object: `settings()`.

The variables are a contract with whoever deploys the services (README, docker-compose.yml), so
each field below names its variable and default, and nothing else reads the environment. The
groups are pydantic dataclasses, read by pydantic-settings through `_EnvironmentSource`: each
field carries its variable as its validation alias and its parser as a validator. The
environment is read on first use, not at import, so a process or a test that sets variables
before that sees them; `settings.cache_clear()` makes the next call read it again. A malformed
value fails there with the variable's name (every malformed one, not the first), not deep
inside an activity: one `SettingsError` such as
`ORDERFLOW_CREDIT_INITIAL='lots' is not an integer; ORDERFLOW_SHIFTS='always' must be one of
require, prefer, ignore`.

Values are stripped and a blank value counts as unset, unless a field says otherwise.

Any variable `X` below may instead be given as `X_FILE`, the path of a file holding its value
(one trailing newline dropped): compose mounts secrets as files under /run/secrets, so they
stay out of `docker inspect` and of every container that does not mount them. Setting both
is an error, and an error in a file's value names the file, never quoting its content.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import field, fields
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from infra import setting_values as parse
from infra.setting_values import SHIFT_MODES as SHIFT_MODES
from infra.setting_values import Network as Network
from schemas.records import CreditEventKind

DEFAULT_TEMPORAL_ADDRESS: Final = "localhost:7233"
DEFAULT_TEMPORAL_NAMESPACE: Final = "default"
DEFAULT_BASE_URL: Final = "http://127.0.0.1:8090/api/v1/"
"""The merchant API of the local simulator; production sets MEITUAN_BASE_URL to the platform."""
DEFAULT_APP_ID: Final = "orderflow-dev"
DEFAULT_APP_SECRET: Final = "orderflow-dev-secret"
DEFAULT_CUSTOMER_KEY: Final = "orderflow-dev-customer-key"
"""Credentials the simulator accepts by default; never valid on the real platform."""
DEFAULT_PUSH_BASE_URL: Final = "http://127.0.0.1:8080/meituan/push"
DEFAULT_CORS_ORIGIN: Final = "http://localhost:8233"
FILE_SUFFIX: Final = "_FILE"
"""`X_FILE` names a file holding the value of `X` (module docstring)."""
POLICY_PREFIX: Final = "ORDERFLOW_POLICY__"
PUSH_URL_PREFIX: Final = "ORDERFLOW_PUSH_URL_"
TEMPORAL_PREFIX: Final = "TEMPORAL_"


class SettingsError(ValueError):
    """A variable holds a value it cannot mean; the message names each such variable."""


# --- how a variable becomes a field --------------------------------------------------------------

_GROUP: Final = ConfigDict(validate_by_name=True, validate_by_alias=True)
"""A group is built from the environment by variable (the alias) and in code by field name
(`dataclasses.replace`, as the dev stack does)."""


@dataclasses.dataclass(frozen=True)
class _Var:
    name: str
    strip: bool
    blank_is_unset: bool


@dataclasses.dataclass(frozen=True)
class _Prefix:
    """Every variable whose name starts with `prefix`: `whole`, by its name with its value as
    set; else by the rest of its name, blank values left out."""

    prefix: str
    whole: bool


_SPEC: Final = "env"


def _parsing(parse: Callable[[str], Any]) -> BeforeValidator:
    """`parse` on text (the environment's); a value given in code is the field's already."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _env(
    name: str,
    parse: Callable[[str], Any],
    *,
    default: Any,
    strip: bool = True,
    blank_is_unset: bool = True,
    repr: bool = True,
) -> Any:
    """A field read from variable `name`: its alias, with `parse` as its validator (raising
    ValueError with what is wrong; the error adds the name), and the source's rules in the
    dataclass field's metadata."""
    info: FieldInfo = Field(default, validation_alias=name)
    info.metadata.append(_parsing(parse))
    return field(default=info, repr=repr, metadata={_SPEC: _Var(name, strip, blank_is_unset)})


def _prefix(prefix: str, *, whole: bool = False, repr: bool = True) -> Any:
    return field(
        default_factory=_no_variables,
        repr=repr,
        hash=False,
        metadata={_SPEC: _Prefix(prefix, whole)},
    )


def _no_variables() -> Mapping[str, str]:
    return MappingProxyType({})


Variables = Annotated[Mapping[str, str], AfterValidator(MappingProxyType)]
"""The variables a prefix field holds, read-only."""


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip()) or (
        DEFAULT_CORS_ORIGIN,
    )


# --- the groups ----------------------------------------------------------------------------------


@dataclass(frozen=True, config=_GROUP)
class BusinessSettings:
    timezone: ZoneInfo = _env("ORDERFLOW_TIMEZONE", parse.zone, default=ZoneInfo("Asia/Shanghai"))
    """ORDERFLOW_TIMEZONE (Asia/Shanghai): shifts, service slots, naive times and the day's
    figures are in the company's local time."""
    customer_key: str = _env(
        "ORDERFLOW_CUSTOMER_KEY", parse.text, strip=False, default=DEFAULT_CUSTOMER_KEY, repr=False
    )
    """ORDERFLOW_CUSTOMER_KEY (a public development key): customer ids are an HMAC of the phone
    under it, so nobody without it can turn a phone into an id or an id back into a phone.
    Required outside the local stack; the same for every process, migrations included.
    Rotated with `python -m starter.db_cli rekey-customers` (README "Customer ids")."""
    customer_key_previous: str = _env(
        "ORDERFLOW_CUSTOMER_KEY_PREVIOUS", parse.text, strip=False, default="", repr=False
    )
    """ORDERFLOW_CUSTOMER_KEY_PREVIOUS (unset): the key being rotated away from, read by
    `db_cli rekey-customers` only."""
    customer_salt: str = _env(
        "ORDERFLOW_CUSTOMER_SALT",
        parse.text,
        strip=False,
        blank_is_unset=False,
        default="orderflow",
        repr=False,
    )
    """ORDERFLOW_CUSTOMER_SALT (orderflow): the salt of the customer ids before migration 0020,
    which re-keys them under ORDERFLOW_CUSTOMER_KEY; read by that migration only. Taken exactly
    as set, blank included."""


@dataclass(frozen=True, config=_GROUP)
class DatabaseSettings:
    url: str | None = _env("DATABASE_URL", parse.text, default=None, repr=False)
    """DATABASE_URL (unset: the embedded PostgreSQL under `data_dir`/pg): the system of record."""
    password: str | None = _env(
        "ORDERFLOW_DATABASE_PASSWORD", parse.text, strip=False, default=None, repr=False
    )
    """ORDERFLOW_DATABASE_PASSWORD (unset: the URL's own, if any): the password of DATABASE_URL's
    user, kept out of the URL so that compose can give it as a secret file
    (ORDERFLOW_DATABASE_PASSWORD_FILE); it wins over a password in the URL."""
    data_dir: Path | None = _env("ORDERFLOW_DATA_DIR", Path, default=None)
    """ORDERFLOW_DATA_DIR (unset: `<repo>/.data`): where embedded servers keep their data."""
    pool_max: int = _env("ORDERFLOW_DB_POOL_MAX", parse.integer, default=10)
    """ORDERFLOW_DB_POOL_MAX (10): connections a process's pool opens at most."""
    stats_url: str | None = _env(
        "ORDERFLOW_STATS_DATABASE_URL", parse.text, default=None, repr=False
    )
    """ORDERFLOW_STATS_DATABASE_URL (unset: the worker's own): the regular reports' database
    role, one that may refresh the statistics' rollup as `orderctl stats` does; the services'
    least-privilege role may not."""


@dataclass(frozen=True, config=_GROUP)
class TemporalSettings:
    environ: Variables = _prefix(TEMPORAL_PREFIX, whole=True, repr=False)
    """Every TEMPORAL_* variable, handed as set to the SDK's environment configuration:
    TEMPORAL_ADDRESS (localhost:7233), TEMPORAL_NAMESPACE (default), and for Temporal Cloud or
    a TLS cluster TEMPORAL_API_KEY or TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH."""

    @property
    def address(self) -> str:
        """TEMPORAL_ADDRESS as the SDK takes it, for messages; a profile file may name another."""
        return self.environ.get("TEMPORAL_ADDRESS") or DEFAULT_TEMPORAL_ADDRESS

    @property
    def namespace(self) -> str:
        """TEMPORAL_NAMESPACE (default): what encrypted payloads are bound to (infra.codec)."""
        return self.environ.get("TEMPORAL_NAMESPACE") or DEFAULT_TEMPORAL_NAMESPACE


@dataclass(frozen=True, config=_GROUP)
class CodecSettings:
    keys: str = _env("ORDERFLOW_CODEC_KEYS", parse.text, default="", repr=False)
    """ORDERFLOW_CODEC_KEYS (unset: payloads in plaintext): `id:base64key,...`, the first
    encrypts; parsed by `infra.codec`, whose errors name the variable."""
    token: str | None = _env("ORDERFLOW_CODEC_TOKEN", parse.text, default=None, repr=False)
    """ORDERFLOW_CODEC_TOKEN (unset: the codec server refuses to start without --no-auth)."""
    bind: bool = _env("ORDERFLOW_CODEC_BIND", parse.flag, default=True)
    """ORDERFLOW_CODEC_BIND (yes): seal each payload with its key id and namespace. Set it to
    0 while processes of a release before it still run (a rolling upgrade): they cannot read
    bound payloads. Every release reads both."""
    cors_origins: tuple[str, ...] = _env(
        "ORDERFLOW_CODEC_CORS_ORIGIN", _origins, default=(DEFAULT_CORS_ORIGIN,)
    )
    """ORDERFLOW_CODEC_CORS_ORIGIN (http://localhost:8233), comma-separated: the UIs that may
    ask the codec server."""


@dataclass(frozen=True, config=_GROUP)
class ReviewSettings:
    """The review rules' thresholds (R2.2.1-R2.2.3, R5.1, R5.3.1-R5.3.3; `activities.rules`)."""

    price_tolerance: Decimal = _env(
        "ORDERFLOW_PRICE_TOLERANCE", parse.decimal, default=Decimal("0.10")
    )
    """ORDERFLOW_PRICE_TOLERANCE (0.10): share of the list price a pushed unit price may differ
    by; a per-SKU `prices.tolerance` overrides it."""
    discount_max_share: Decimal = _env(
        "ORDERFLOW_DISCOUNT_MAX_SHARE", parse.decimal, default=Decimal("0.50")
    )
    """ORDERFLOW_DISCOUNT_MAX_SHARE (0.50): all discounts together, as a share of the item total."""
    merchant_discount_max_share: Decimal = _env(
        "ORDERFLOW_MERCHANT_DISCOUNT_MAX_SHARE", parse.decimal, default=Decimal("0.30")
    )
    """ORDERFLOW_MERCHANT_DISCOUNT_MAX_SHARE (0.30): the merchant-funded part, same base."""
    total_tolerance: Decimal = _env(
        "ORDERFLOW_TOTAL_TOLERANCE", parse.decimal, default=Decimal("0.01")
    )
    """ORDERFLOW_TOTAL_TOLERANCE (0.01): yuan the paid total may differ from items + boxes +
    shipping + package fee - discounts."""
    duplicate_window: timedelta = _env(
        "ORDERFLOW_DUPLICATE_WINDOW_MINUTES", parse.minutes, default=timedelta(minutes=10)
    )
    """ORDERFLOW_DUPLICATE_WINDOW_MINUTES (10): an earlier order of the same customer with the
    same items within this window makes an order a duplicate (R5.1)."""
    credit_watch_below: int = _env("ORDERFLOW_CREDIT_WATCH_BELOW", parse.integer, default=70)
    """ORDERFLOW_CREDIT_WATCH_BELOW (70): a credit score below this raises a fraud anomaly."""
    max_line_quantity: int = _env("ORDERFLOW_MAX_LINE_QUANTITY", parse.integer, default=50)
    """ORDERFLOW_MAX_LINE_QUANTITY (50): more of one item is checked with the customer."""


@dataclass(frozen=True, config=_GROUP)
class CreditSettings:
    """Customer credit (R5.3.3; `activities.credit`); data migrations get them too."""

    initial: int = _env("ORDERFLOW_CREDIT_INITIAL", parse.integer, default=100)
    """ORDERFLOW_CREDIT_INITIAL (100): a new customer's score."""
    maximum: int = _env("ORDERFLOW_CREDIT_MAX", parse.integer, default=100)
    """ORDERFLOW_CREDIT_MAX (100): no score goes above it."""
    restricted_below: int = _env("ORDERFLOW_CREDIT_RESTRICTED_BELOW", parse.integer, default=60)
    """ORDERFLOW_CREDIT_RESTRICTED_BELOW (60): below it a customer is restricted."""
    banned_below: int = _env("ORDERFLOW_CREDIT_BANNED_BELOW", parse.integer, default=30)
    """ORDERFLOW_CREDIT_BANNED_BELOW (30): below it a customer is banned; only a person lifts a
    ban."""
    fraud: int = _env("ORDERFLOW_CREDIT_FRAUD", parse.integer, default=-50)
    """ORDERFLOW_CREDIT_FRAUD (-50): the score change of a fraud; the four below likewise."""
    no_show: int = _env("ORDERFLOW_CREDIT_NO_SHOW", parse.integer, default=-20)
    """ORDERFLOW_CREDIT_NO_SHOW (-20)."""
    cancellation: int = _env("ORDERFLOW_CREDIT_CANCELLATION", parse.integer, default=-5)
    """ORDERFLOW_CREDIT_CANCELLATION (-5)."""
    complaint: int = _env("ORDERFLOW_CREDIT_COMPLAINT", parse.integer, default=-3)
    """ORDERFLOW_CREDIT_COMPLAINT (-3)."""
    completed: int = _env("ORDERFLOW_CREDIT_COMPLETED", parse.integer, default=2)
    """ORDERFLOW_CREDIT_COMPLETED (+2)."""

    @property
    def deltas(self) -> Mapping[CreditEventKind, int]:
        """The score change of each outcome: the field named after it."""
        return {kind: getattr(self, kind.value) for kind in CreditEventKind}


@dataclass(frozen=True, config=_GROUP)
class AssignmentSettings:
    """Assignment by rules and capacity (R2.3.2; `activities.assignment`)."""

    shifts: str = _env("ORDERFLOW_SHIFTS", parse.shifts, default="prefer")
    """ORDERFLOW_SHIFTS (prefer): `require` assigns only people on shift; `prefer` ranks them
    first and falls back to off-shift people; `ignore` disregards shifts."""
    load_weight: float = _env("ORDERFLOW_ASSIGN_LOAD_WEIGHT", parse.number, default=0.5)
    """ORDERFLOW_ASSIGN_LOAD_WEIGHT (0.5): the score's weight of a person's free capacity."""
    skill_weight: float = _env("ORDERFLOW_ASSIGN_SKILL_WEIGHT", parse.number, default=0.3)
    """ORDERFLOW_ASSIGN_SKILL_WEIGHT (0.3): of their skill level on what is needed."""
    department_weight: float = _env("ORDERFLOW_ASSIGN_DEPARTMENT_WEIGHT", parse.number, default=0.2)
    """ORDERFLOW_ASSIGN_DEPARTMENT_WEIGHT (0.2): of a quieter department."""


@dataclass(frozen=True, config=_GROUP)
class BookingSettings:
    default_service_minutes: int = _env(
        "ORDERFLOW_DEFAULT_SERVICE_MINUTES", parse.integer, default=60
    )
    """ORDERFLOW_DEFAULT_SERVICE_MINUTES (60): a job's length when its items do not say (R3.2.1)."""


@dataclass(frozen=True, config=_GROUP)
class PatrolSettings:
    previous_day: timedelta = _env(
        "ORDERFLOW_PATROL_PREVIOUS_DAY_MINUTES", parse.minutes, default=timedelta(minutes=60)
    )
    """ORDERFLOW_PATROL_PREVIOUS_DAY_MINUTES (60): how long after midnight (platform time) the
    previous day is walked whatever it shows; after that, until a walk finds it settled."""


@dataclass(frozen=True, config=_GROUP)
class NotifySettings:
    webhook: str | None = _env("ORDERFLOW_NOTIFY_WEBHOOK", parse.text, default=None, repr=False)
    """ORDERFLOW_NOTIFY_WEBHOOK (unset: notifications are recorded only): a group robot's URL."""
    flavour: str = _env("ORDERFLOW_NOTIFY_FLAVOUR", parse.flavour, default="wecom")
    """ORDERFLOW_NOTIFY_FLAVOUR (wecom): whose robot: wecom, dingtalk, feishu or webhook."""
    secret: str | None = _env("ORDERFLOW_NOTIFY_SECRET", parse.text, default=None, repr=False)
    """ORDERFLOW_NOTIFY_SECRET (unset): the robot's signing secret, where it has one."""
    platform_liaison: str | None = _env("ORDERFLOW_PLATFORM_LIAISON", parse.text, default=None)
    """ORDERFLOW_PLATFORM_LIAISON (unset): who gets the platform liaison's notifications (R6.2)."""
    customer_webhook: str | None = _env(
        "ORDERFLOW_CUSTOMER_WEBHOOK", parse.text, default=None, repr=False
    )
    """ORDERFLOW_CUSTOMER_WEBHOOK (unset: what customers are told stays on the order's record):
    a webhook (an SMS provider's, say) that gets each customer notification with the
    customer's number (R2.2.4, R2.4.3, R3.3.1, R3.4.1)."""
    customer_secret: str | None = _env(
        "ORDERFLOW_CUSTOMER_WEBHOOK_SECRET", parse.text, default=None, repr=False
    )
    """ORDERFLOW_CUSTOMER_WEBHOOK_SECRET (unset): signs its body (X-Orderflow-Signature)."""
    max_attempts: int = _env("ORDERFLOW_NOTIFY_MAX_ATTEMPTS", parse.positive_int, default=10)
    """ORDERFLOW_NOTIFY_MAX_ATTEMPTS (10): tries of one delivery before it is dead-lettered
    (backoff 5 s doubling to 10 min: about half an hour in all)."""
    language: str = _env("ORDERFLOW_NOTIFY_LANGUAGE", parse.language, default="zh-CN")
    """ORDERFLOW_NOTIFY_LANGUAGE (zh-CN; or en): the texts of people without a language set."""


@dataclass(frozen=True, config=_GROUP)
class PolicySettings:
    """Where the policy comes from (`activities.policy`); the file is read for every order."""

    file: Path | None = _env("ORDERFLOW_POLICY", Path, strip=False, default=None)
    """ORDERFLOW_POLICY (unset: `policy.toml` in the working directory when it exists)."""
    overrides: Variables = _prefix(POLICY_PREFIX, whole=True)
    """Every ORDERFLOW_POLICY__<path> variable, value as set: one policy value each."""
    platform_task_queue: str | None = _env(
        "ORDERFLOW_PLATFORM_TASK_QUEUE", parse.text, default=None
    )
    """ORDERFLOW_PLATFORM_TASK_QUEUE (unset: the `orders` queue): a queue of their own for the
    merchant API calls; the workflow and the platform workers read it alike."""


# What workflow code uses but does not run: its messages and the activities it names. Each is
# deterministic to import and holds no workflow state.
SAFE_PASSTHROUGH = ("schemas", "pydantic", "pydantic_core", "activities")


@dataclass(frozen=True, config=_GROUP)
class WorkerSettings:
    """`workers.main`: what a worker process runs and how (docs/benchmarks.md)."""

    roles: tuple[str, ...] = _env("ORDERFLOW_WORKER_ROLES", parse.names, default=())
    """ORDERFLOW_WORKER_ROLES (unset: every role configured), comma-separated: `workflows`,
    `activities`, `platform`; checked by `workers.main.roles`."""
    platform_rate: float | None = _env("ORDERFLOW_PLATFORM_RATE", parse.positive, default=None)
    """ORDERFLOW_PLATFORM_RATE (unset: no limit): merchant API calls per second across the
    platform queue, enforced by the server (R6.3.1)."""
    shutdown_seconds: float = _env("ORDERFLOW_SHUTDOWN_SECONDS", parse.number, default=30.0)
    """ORDERFLOW_SHUTDOWN_SECONDS (30): how long SIGTERM waits for activities in flight."""
    max_cached_workflows: int | None = _env(
        "ORDERFLOW_MAX_CACHED_WORKFLOWS", parse.integer, default=None
    )
    """ORDERFLOW_MAX_CACHED_WORKFLOWS (unset: the SDK's 1000): open orders kept in memory."""
    sticky_timeout_s: float = _env("ORDERFLOW_STICKY_TIMEOUT_SECONDS", parse.positive, default=3.0)
    """ORDERFLOW_STICKY_TIMEOUT_SECONDS (3; the SDK's 10): how long an order's next task waits
    for the worker that holds it before any worker takes it from its history. A worker that
    died holds its orders no longer than this, and a shorter wait narrows the window in which a
    query or an update reaches an order that another worker then replays from its history."""
    sandbox_passthrough: tuple[str, ...] = _env(
        "ORDERFLOW_SANDBOX_PASSTHROUGH", parse.names, blank_is_unset=False, default=SAFE_PASSTHROUGH
    )
    """ORDERFLOW_SANDBOX_PASSTHROUGH (the messages and the activity interfaces; set but empty:
    none), comma-separated: modules the workflow sandbox takes from the worker instead of
    importing them for every run. Adding `workflows` saves memory (docs/benchmarks.md) but
    runs the workflow code without the sandbox's determinism checks."""
    metrics_address: str | None = _env(
        "ORDERFLOW_METRICS_ADDRESS", parse.text, strip=False, default=None
    )
    """ORDERFLOW_METRICS_ADDRESS (unset: off): where the worker serves Prometheus metrics."""
    doctor_minutes: float | None = _env("ORDERFLOW_DOCTOR_MINUTES", parse.positive, default=None)
    """ORDERFLOW_DOCTOR_MINUTES (unset: off): how often the Schedule `order-doctor` finds the
    workflows whose history no longer replays and repairs them, as `orderctl doctor --repair`."""
    record_check_minutes: float = _env(
        "ORDERFLOW_RECORD_CHECK_MINUTES", parse.positive, default=5.0
    )
    """ORDERFLOW_RECORD_CHECK_MINUTES (5): how often the Schedule `order-record-check` finds the
    orders whose record holds lines of a workflow task that never completed, and has them
    written again (`activities/record_check.py`)."""
    stats_refresh_minutes: float = _env(
        "ORDERFLOW_STATS_REFRESH_MINUTES", parse.positive, default=5.0
    )
    """ORDERFLOW_STATS_REFRESH_MINUTES (5): how often the Schedule `order-stats-refresh` adds the
    orders finished since to the statistics' rollup (R4.3.1), so that `orderctl stats` run as
    the read-only reporting role reads a fresh one without writing it."""


@dataclass(frozen=True, config=_GROUP)
class MeituanSettings:
    """The merchant API (`meituan.client`); unset means the simulator and its dev credentials."""

    base_url: str = _env("MEITUAN_BASE_URL", parse.text, strip=False, default=DEFAULT_BASE_URL)
    """MEITUAN_BASE_URL (http://127.0.0.1:8090/api/v1/, the simulator)."""
    app_id: str = _env("MEITUAN_APP_ID", parse.text, strip=False, default=DEFAULT_APP_ID)
    """MEITUAN_APP_ID (orderflow-dev)."""
    app_secret: str = _env(
        "MEITUAN_APP_SECRET", parse.text, strip=False, default=DEFAULT_APP_SECRET, repr=False
    )
    """MEITUAN_APP_SECRET (the simulator's dev secret): signs calls and checks pushes."""


@dataclass(frozen=True, config=_GROUP)
class PushGatewaySettings:
    """The push gateway (`starter.gateway.GatewaySettings` is built from these)."""

    push_base_url: str = _env(
        "ORDERFLOW_PUSH_BASE_URL", parse.text, strip=False, default=DEFAULT_PUSH_BASE_URL
    )
    """ORDERFLOW_PUSH_BASE_URL (http://127.0.0.1:8080/meituan/push): the public push URL the
    platform signs for, before `/<kind>`."""
    push_urls: Variables = _prefix(PUSH_URL_PREFIX)
    """ORDERFLOW_PUSH_URL_<KIND> (unset: base/<kind>): a kind's URL as the platform's console
    has it, by the kind's name (`ORDER_CONFIRMED`)."""
    temporal_timeout_s: float = _env(
        "ORDERFLOW_GATEWAY_TEMPORAL_TIMEOUT", parse.number, default=5.0
    )
    """ORDERFLOW_GATEWAY_TEMPORAL_TIMEOUT (5): seconds a push waits for Temporal."""
    push_max_age_s: float = _env("ORDERFLOW_PUSH_MAX_AGE_SECONDS", parse.number, default=600.0)
    """ORDERFLOW_PUSH_MAX_AGE_SECONDS (600): oldest `timestamp` a push may carry; 0: unchecked."""
    max_body_bytes: int = _env("ORDERFLOW_PUSH_MAX_BYTES", parse.integer, default=64 * 1024)
    """ORDERFLOW_PUSH_MAX_BYTES (65536): largest push body (or query) read."""
    refused_max_rows: int = _env(
        "ORDERFLOW_REFUSED_PUSHES_MAX_ROWS", parse.positive_int, default=10_000
    )
    """ORDERFLOW_REFUSED_PUSHES_MAX_ROWS (10000): refused pushes kept at most; the oldest go."""
    refused_keep_days: float = _env("ORDERFLOW_REFUSED_PUSHES_DAYS", parse.positive, default=30.0)
    """ORDERFLOW_REFUSED_PUSHES_DAYS (30): how long a refused push is kept."""
    refused_per_source_per_minute: int = _env(
        "ORDERFLOW_REFUSED_PUSHES_PER_MINUTE", parse.positive_int, default=60
    )
    """ORDERFLOW_REFUSED_PUSHES_PER_MINUTE (60): refused pushes kept per source address a
    minute; the rest are counted, not kept."""


@dataclass(frozen=True, config=_GROUP)
class StaffApiSettings:
    """The staff API, between people and Temporal, and how `orderctl` finds it."""

    url: str = _env("ORDERFLOW_API_URL", parse.text, strip=False, default="http://127.0.0.1:8082")
    """ORDERFLOW_API_URL (http://127.0.0.1:8082): where `orderctl` sends people's actions."""
    token: str | None = _env("ORDERFLOW_TOKEN", parse.text, default=None, repr=False)
    """ORDERFLOW_TOKEN (unset: the one `orderctl login` kept): the person's sign-in token."""
    config_home: Path | None = _env("XDG_CONFIG_HOME", Path, default=None)
    """XDG_CONFIG_HOME (~/.config): `orderctl login` keeps the token in orderflow/token there."""
    temporal_timeout_s: float = _env("ORDERFLOW_API_TEMPORAL_TIMEOUT", parse.positive, default=30.0)
    """ORDERFLOW_API_TEMPORAL_TIMEOUT (30): seconds an action waits for the order's answer."""

    @property
    def token_file(self) -> Path:
        return (self.config_home or Path.home() / ".config") / "orderflow" / "token"


@dataclass(frozen=True, config=_GROUP)
class TerminalSettings:
    """How `orderctl` writes to a person's terminal."""

    no_color: bool = _env("NO_COLOR", parse.given, default=False)
    """NO_COLOR (unset): any value turns colour off (no-color.org)."""
    force_color: bool = _env("FORCE_COLOR", parse.given, default=False)
    """FORCE_COLOR (unset): any value turns colour on where output is not a terminal, unless
    NO_COLOR is set too."""


@dataclass(frozen=True, config=_GROUP)
class DeploymentSettings:
    dev: bool = _env("ORDERFLOW_DEV", parse.flag, default=False)
    """ORDERFLOW_DEV (unset: no): the local stack (`orderctl dev`, `make demo`, the tests), where
    the public development secrets and plaintext payloads are allowed. Anywhere else a process
    that would use them does not start (`infra.fail_closed`)."""
    trusted_proxies: tuple[Network, ...] = _env(
        "ORDERFLOW_TRUSTED_PROXIES", parse.networks, default=()
    )
    """ORDERFLOW_TRUSTED_PROXIES (unset: none), comma-separated addresses or CIDR networks: the
    reverse proxies whose X-Forwarded-For the gateway and the codec server believe, so that
    their limits per source address see the client rather than the proxy
    (`infra.forwarded`)."""


@dataclass(frozen=True, config=_GROUP)
class TracingSettings:
    """Optional OpenTelemetry tracing (`infra.tracing`), with the `otel` extra installed."""

    otlp_endpoint: str | None = _env("OTEL_EXPORTER_OTLP_ENDPOINT", parse.http_url, default=None)
    """OTEL_EXPORTER_OTLP_ENDPOINT (unset: no tracing): the OTLP/HTTP collector's base URL, e.g.
    `http://collector:4318`; spans go to its `/v1/traces`."""
    service_name: str = _env("OTEL_SERVICE_NAME", parse.text, default="orderflow")
    """OTEL_SERVICE_NAME (orderflow): the `service.name` of the process's spans."""


@dataclass(frozen=True, config=_GROUP)
class LoggingSettings:
    level: str = _env("ORDERFLOW_LOG_LEVEL", parse.text, default="INFO")
    """ORDERFLOW_LOG_LEVEL (INFO): checked by `infra.logging.configure_logging`."""


@dataclass(frozen=True, config=_GROUP)
class Settings:
    """Everything configurable, by concern; `Settings()` is the defaults."""

    business: BusinessSettings = field(default_factory=BusinessSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    codec: CodecSettings = field(default_factory=CodecSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    credit: CreditSettings = field(default_factory=CreditSettings)
    assignment: AssignmentSettings = field(default_factory=AssignmentSettings)
    booking: BookingSettings = field(default_factory=BookingSettings)
    patrol: PatrolSettings = field(default_factory=PatrolSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    meituan: MeituanSettings = field(default_factory=MeituanSettings)
    gateway: PushGatewaySettings = field(default_factory=PushGatewaySettings)
    api: StaffApiSettings = field(default_factory=StaffApiSettings)
    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)


# --- reading -------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Reading:
    """One reading of `environ`: what is wrong with it, by variable, and the variables whose
    values came from files (an error names the file: its content may be a secret)."""

    environ: Mapping[str, str]
    errors: list[tuple[str, str]] = field(default_factory=list)
    from_files: dict[str, str] = field(default_factory=dict)

    def failed(self, err: ValidationError) -> None:
        """pydantic's errors as this module words them: `X='value' is not an integer`."""
        for error in err.errors():
            name = error["loc"][-1]
            problem = error.get("ctx", {}).get("error")
            if not isinstance(problem, ValueError):
                problem = error["msg"]
            label = self.from_files.get(str(name)) or f"{name}={error['input']!r}"
            self.errors.append((str(name), f"{label} {problem}"))

    def message(self) -> str:
        """Every error at once, in the order of the fields."""
        order = {name.removesuffix("*"): i for i, name in enumerate(variables())}
        ranked = sorted(self.errors, key=lambda error: order.get(error[0], len(order)))
        return "; ".join(message for _, message in ranked)


_READING: ContextVar[_Reading] = ContextVar("_READING")
"""The reading under way: pydantic-settings makes its sources in a classmethod, which is given
no mapping, so `load_settings` hands it over here."""


class _EnvironmentSource(PydanticBaseSettingsSource):
    """The variables of the mapping being read (not only os.environ), as the fields say: the
    `X_FILE` twins, stripping and blank values, prefixes as mappings of their own."""

    def __init__(self, settings_cls: type[BaseSettings], reading: _Reading) -> None:
        super().__init__(settings_cls)
        self._reading = reading

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every group at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        groups = {g.name: self._group(g.default_factory) for g in fields(Settings)}
        return {"read": groups}

    def _group(self, cls: Any) -> dict[str, Any]:
        environ = self._reading.environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            spec = f.metadata[_SPEC]
            if isinstance(spec, _Prefix):
                chosen = sorted((n, v) for n, v in environ.items() if n.startswith(spec.prefix))
                values[f.name] = (
                    dict(chosen)
                    if spec.whole
                    else {n.removeprefix(spec.prefix): v.strip() for n, v in chosen if v.strip()}
                )
            elif (text := self._given(spec)) is not None:
                raw = text.strip() if spec.strip else text
                if raw or not spec.blank_is_unset:
                    values[spec.name] = raw
        return values

    def _given(self, spec: _Var) -> str | None:
        """The variable's text, set or read from the file its `_FILE` twin names."""
        environ, errors = self._reading.environ, self._reading.errors
        twin = spec.name + FILE_SUFFIX
        path = environ.get(twin, "").strip()
        if not path:
            return environ.get(spec.name)
        if spec.name in environ:
            errors.append((spec.name, f"{spec.name} and {twin} are both set: set one of them"))
            return None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            errors.append((spec.name, f"{twin}={path!r} cannot be read: {reason}"))
            return None
        self._reading.from_files[spec.name] = f"{twin}={path!r}: the file's value"
        return text.removesuffix("\n").removesuffix("\r")


class _Environment(BaseSettings):
    """pydantic-settings reading `Settings` from `_EnvironmentSource` alone: no dotenv file and
    no secrets directory (the `X_FILE` twins name their files one by one)."""

    model_config = SettingsConfigDict(frozen=True)

    read: Settings = Field(default_factory=Settings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_EnvironmentSource(settings_cls, _READING.get()),)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings `environ` (default: this process's environment) asks for; `SettingsError`
    naming every malformed variable."""
    reading = _Reading(os.environ if environ is None else environ)
    token = _READING.set(reading)
    read: Settings | None = None
    try:
        read = _Environment().read
    except ValidationError as err:
        reading.failed(err)
    finally:
        _READING.reset(token)
    if reading.errors or read is None:
        raise SettingsError(reading.message())
    return read


def variables() -> dict[str, str]:
    """Each variable (a prefix ends in `*`) and the field that holds it, as `group.field`."""
    found: dict[str, str] = {}
    for group in fields(Settings):
        assert isinstance(group.default_factory, type)
        for f in fields(group.default_factory):
            spec = f.metadata[_SPEC]
            name = spec.name if isinstance(spec, _Var) else f"{spec.prefix}*"
            found[name] = f"{group.name}.{f.name}"
    return found


class _Cached:
    """`settings()`: the environment read once per process, on first use."""

    def __init__(self) -> None:
        self._read: Settings | None = None
        self._replacements: list[Settings] = []

    def __call__(self) -> Settings:
        if self._replacements:
            return self._replacements[-1]
        read = self._read
        if read is None:
            read = self._read = load_settings()
        return read

    def cache_clear(self) -> None:
        """The next call reads the environment again (tests that set variables); settings
        `replaced` meanwhile hold until their block ends."""
        self._read = None

    @contextlib.contextmanager
    def replaced(self, value: Settings) -> Iterator[Settings]:
        """`value` for everything in this process meanwhile: the dev stack runs the services in
        one process and gives them settings the environment does not have (its policy file)."""
        self._replacements.append(value)
        try:
            yield value
        finally:
            self._replacements.remove(value)


settings: Final = _Cached()


def settings_for(environ: Mapping[str, str] | None) -> Settings:
    """`settings()`, or those `environ` asks for when given: for functions that also serve a
    process of another environment (tests, the dev stack's child processes)."""
    return settings() if environ is None else load_settings(environ)
