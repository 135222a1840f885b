"""JSON-lines logs with customers' personal data masked, for every process.

Logs travel further than the database: terminals, log shippers, tickets. So phone numbers
(mainland mobiles, the platform's privacy numbers such as `13812345678_1234`, landlines),
customer names and addresses are masked before a line is written, whoever logged it: our
code through structlog or the standard `logging` module, and the libraries (temporalio,
uvicorn, httpx) through `logging`. Secrets (signatures, tokens, passwords, app secrets) are
masked by the same processor.

Masking works by key, anywhere in the event, nested dicts and lists included (`phone`,
`recipient_name`, `address`, `customer`, and prose about customers such as a notification's
`text` or an order's `remarks`), and in free text: phone numbers wherever they appear, and
`key=value` / `key: value` pairs of those keys (reprs, JSON, form bodies). Names and
addresses written as bare prose cannot be recognised: log identifiers, not people.

`configure_logging()` is for a process's entry point; `console="human"` gives a terminal one
readable line per event instead (infra/log_console.py, the local stack's console), masked alike,
with the JSON lines in a file. A uvicorn server must be given
`log_config=None`, or uvicorn installs its own, unmasked handlers. The SDK core (Rust) writes
its few lines of its own straight to the console, past `logging`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeAlias

import structlog
from pydantic import BaseModel
from structlog.typing import EventDict, Processor, WrappedLogger

from infra.log_console import one_line_exception, render_line
from infra.settings import settings
from schemas.contract import order_id_of

MASK: Final = "***"
SECRET_MASK: Final = "[secret]"

# --- phone numbers in text ----------------------------------------------------------------------

_MOBILE = r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"
_LANDLINE = r"0\d{2,3}[ -]?\d{3,4}[ -]?\d{4}"
_EXTENSION = r"(?:(?:[_,#＃]|转|ext\.?\s?)\d{1,6})?"
PHONE_PATTERN: Final = re.compile(
    rf"(?<![0-9A-Za-z+])(?:{_MOBILE}|{_LANDLINE}){_EXTENSION}(?![0-9A-Za-z])"
)
"""A whole number only: never digits inside a longer run such as an order id, a timestamp or
the hex of a run id."""
_MAIN_NUMBER = re.compile(rf"^(?:{_MOBILE}|{_LANDLINE})")


def _mask_phone_match(match: re.Match[str]) -> str:
    text = match.group(0)
    main = _MAIN_NUMBER.match(text)
    main_text = main.group(0) if main else text
    digits = re.sub(r"\D", "", main_text)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    masked = f"{digits[:3]}****{digits[-4:]}"
    return masked + ("_****" if len(main_text) < len(text) else "")


def mask_phones(text: str) -> str:
    """Every phone number in `text` as `138****5678` (`_****` for an extension)."""
    return PHONE_PATTERN.sub(_mask_phone_match, text)


def mask_phone(value: str) -> str:
    """A phone field's value: masked like `mask_phones`, or wholly when it is no number."""
    if not value:
        return value
    masked = mask_phones(value)
    return masked if masked != value else MASK


def mask_name(value: str) -> str:
    """`陆(先生)` -> `陆**`: the first character, which is rarely identifying on its own."""
    return f"{value[0]}**" if value else value


def mask_address(value: str) -> str:
    return MASK if value else value


def mask_secret(value: str) -> str:
    return SECRET_MASK if value else value


# --- keys ---------------------------------------------------------------------------------------

PHONE_KEYS: Final = frozenset(
    {
        "phone",
        "mobile",
        "tel",
        "telephone",
        "phone_number",
        "recipient_phone",
        "backup_recipient_phone",
        "customer_phone",
        "contact_phone",
        "courier_phone",
        "dispatcher_mobile",
    }
)
NAME_KEYS: Final = frozenset(
    {
        "name",
        "recipient_name",
        "customer_name",
        "contact_name",
        "courier_name",
        "dispatcher_name",
        "real_name",
        "full_name",
    }
)
ADDRESS_KEYS: Final = frozenset(
    {"address", "recipient_address", "customer_address", "delivery_address", "address_text"}
)
WHOLE_KEYS: Final = frozenset({"customer", "recipient", "consignee", "address_geocoded", "facts"})
"""Masked whole, whatever they hold: a customer object carries name, phone, address and place;
a notification's facts quote the customer."""
PROSE_KEYS: Final = frozenset(
    {
        "text",
        "remarks",
        "caution",
        "comment",
        "feedback_text",
        # a notification's facts (schemas.notices): the order's brief names the customer
        "brief",
        "detail",
        "told",
        "note",
        "response",
        "resolution",
        "promises",
        "reason",  # a customer's reason to cancel or for a refund
    }
)
"""Prose written by or about a customer (notification texts name them and their address)."""
SECRET_KEYS: Final = frozenset(
    {
        "secret",
        "app_secret",
        "password",
        "passwd",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "proxy_authorization",
        "cookie",
        "sig",
        "signature",
        "codec_keys",
        "orderflow_codec_keys",
        "orderflow_codec_token",
        "meituan_app_secret",
        "temporal_api_key",
    }
)

_MASKERS: Final[Mapping[frozenset[str], Callable[[str], str]]] = {
    PHONE_KEYS: mask_phone,
    NAME_KEYS: mask_name,
    ADDRESS_KEYS: mask_address,
    PROSE_KEYS: mask_address,
    SECRET_KEYS: mask_secret,
}


def _normal(key: object) -> str:
    return str(key).strip().lower().replace("-", "_")


def _masker(key: object) -> Callable[[str], str] | None:
    normal = _normal(key)
    for keys, masker in _MASKERS.items():
        if normal in keys:
            return masker
    return None


# --- key=value pairs in text --------------------------------------------------------------------

_TEXT_KEYS = sorted(
    PHONE_KEYS | NAME_KEYS | ADDRESS_KEYS | PROSE_KEYS | WHOLE_KEYS | SECRET_KEYS, key=len
)
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_])(?P<key>" + "|".join(map(re.escape, reversed(_TEXT_KEYS))) + r")"
    r"(?![A-Za-z0-9_])(?P<sep>['\"]?\s*[:=]\s*)"
    r"(?:(?P<quote>['\"])(?P<quoted>.*?)(?P=quote)"
    # A bare value followed by a bracket is a constructor (`customer=Customer(name=...)`):
    # not taken, so the fields inside are masked one by one.
    r"|(?P<bare>(?:(?:bearer|basic)\s+)?[^\s&,;(){}\[\]'\"]++)(?![({\[]))",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")


def _mask_pair(match: re.Match[str]) -> str:
    key = match.group("key")
    masker = _masker(key) or (lambda v: MASK)
    if match.group("quote") is not None:
        value = masker(match.group("quoted"))
        quote = match.group("quote")
        return f"{key}{match.group('sep')}{quote}{value}{quote}"
    return f"{key}{match.group('sep')}{masker(match.group('bare'))}"


# URLs carry credentials of their own: a password before the host, a robot's `?key=`, a
# hook's token as the last part of its path (WeCom and DingTalk robots, Feishu hooks).
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
# The userinfo's password runs to the last `@` of the URL: a password may hold `/` or `@`.
_URL_PASSWORD = re.compile(r"(?<=://)([^/@:\s]*):\S*@")
_URL_CREDENTIAL = re.compile(
    r"(?i)([?&#](?:key|access_token|refresh_token|token|secret|client_secret|sign|sig"
    r"|signature|password|api_key|apikey)=)[^&#\s]+"
)
_HOOK_TOKEN = re.compile(r"(?i)(/hook/)[^/?#\s]+")


def mask_url(url: str) -> str:
    url = _URL_PASSWORD.sub(rf"\1:{SECRET_MASK}@", url)
    url = _URL_CREDENTIAL.sub(rf"\1{SECRET_MASK}", url)
    return _HOOK_TOKEN.sub(rf"\1{SECRET_MASK}", url)


# --- Chinese labels, identity and card numbers ---------------------------------------------------

# What follows a label people write (`地址：上海市…`, `身份证号:110…`) up to the next separator.
_LABELS: Final = (
    "收货地址", "送货地址", "详细地址", "地址", "收货人", "收件人", "联系人", "姓名", "客户",
    "联系电话", "手机号码", "手机号", "手机", "电话", "身份证号码", "身份证号", "身份证",
    "银行卡号", "银行卡", "卡号", "账号",
)  # fmt: skip
_LABELLED = re.compile(
    r"(?P<label>" + "|".join(sorted(_LABELS, key=len, reverse=True)) + r")"
    r"(?P<sep>\s*[:：]\s*)(?P<value>[^\s,，;；。|]+)"
)
# A resident identity number: region, birth date, sequence, check character (GB 11643).
_ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
    r"[\dXx](?![0-9A-Za-z])"
)
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# A card number as people write it, in groups of four (an unbroken run of digits is an order id
# as often as a card, so only a labelled one is masked).
_CARD = re.compile(r"(?<![0-9A-Za-z])\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?![0-9A-Za-z])")


def _is_id_number(text: str) -> bool:
    total = sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == text[17].upper()


def _passes_luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _mask_id(match: re.Match[str]) -> str:
    text = match.group(0)
    return f"{text[:3]}{MASK}{text[-2:]}" if _is_id_number(text) else text


def _mask_card(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    return f"{MASK}{digits[-4:]}" if _passes_luhn(digits) else text


def mask_chinese(text: str) -> str:
    """Labelled values (`地址：…` -> `地址：***`), identity numbers and card numbers."""
    text = _LABELLED.sub(lambda m: f"{m.group('label')}{m.group('sep')}{MASK}", text)
    text = _ID_NUMBER.sub(_mask_id, text)
    return _CARD.sub(_mask_card, text)


def mask_text(text: str) -> str:
    """Free text: credentials in URLs, `key=value` pairs of personal or secret keys, bearer
    tokens, Chinese labels, identity and card numbers, then phones."""
    text = _URL.sub(lambda m: mask_url(m.group(0)), text)
    text = _PAIR.sub(_mask_pair, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {SECRET_MASK}", text)
    return mask_phones(mask_chinese(text))


# --- values -------------------------------------------------------------------------------------


def redact(value: Any, key: object = None) -> Any:
    """`value` with personal data and secrets masked; `key` is the name it was found under."""
    if key is not None:
        normal = _normal(key)
        if normal in WHOLE_KEYS:
            return MASK if value not in (None, "", [], {}) else value
        masker = _masker(normal)
        if masker is not None and not isinstance(value, Mapping | list | tuple | set):
            return value if value is None else masker(str(value))
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, BaseModel):
        return redact(value.model_dump(mode="json"), key)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redact(dataclasses.asdict(value), key)
    if isinstance(value, Mapping):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, key) for v in value]
    return mask_text(str(value))


_UNTOUCHED: Final = frozenset({"level", "logger", "timestamp"})


def redact_event(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: masks the whole event dict; runs last before rendering."""
    for key in list(event_dict):
        if key not in _UNTOUCHED:
            event_dict[key] = redact(event_dict[key], None if key == "event" else key)
    return event_dict


def _drop_duplicates(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    # uvicorn's copy of the message with terminal colour codes, and the formatted message a
    # handler before ours may have left on the record.
    event_dict.pop("color_message", None)
    if event_dict.get("message") == event_dict.get("event"):
        event_dict.pop("message", None)
    return event_dict


# --- configuration ------------------------------------------------------------------------------


class _Handler(logging.StreamHandler[IO[str]]):
    """Ours, so a second `configure_logging` replaces it instead of doubling every line."""


class _FileHandler(logging.FileHandler):
    """Ours too: the JSON log file kept beside the console (`orderctl dev`)."""


ConsoleFormat: TypeAlias = Literal["json", "human"]


_ROUTED: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio")
# Their INFO lines are every request's full URL: at WARNING, only their trouble is written.
_QUIET: Final = ("httpx", "httpcore")


def _temporal_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The SDK's own lines carry their context as an extra dict; lift it to the top level,
    named like the lines our activities write (order_id, workflow_id, activity)."""
    extra = event_dict.pop("temporal_activity", None) or event_dict.pop("temporal_workflow", None)
    if isinstance(extra, dict):
        event_dict.setdefault("workflow_id", extra.get("workflow_id"))
        if "activity_type" in extra:
            event_dict.setdefault("activity", extra["activity_type"])
    order_id = order_id_of(event_dict.get("workflow_id"))
    if order_id:
        event_dict.setdefault("order_id", order_id)
    return event_dict


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _level_number(level: int | str) -> int:
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    return numeric


def _formatter(console: ConsoleFormat) -> structlog.stdlib.ProcessorFormatter:
    """Masked JSON lines, or one readable line per event (`human`): both mask the same."""
    human = console == "human"
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            one_line_exception if human else structlog.processors.format_exc_info,
            _drop_duplicates,
            _temporal_context,
            redact_event,
            render_line if human else structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )


def configure_logging(
    level: int | str | None = None,
    *,
    stream: IO[str] | None = None,
    console: ConsoleFormat = "json",
    file: Path | None = None,
    file_level: int | str | None = None,
) -> logging.Handler:
    """structlog and the standard `logging` module both write masked lines to `stream`
    (stderr): JSON, or with `console="human"` one readable line per event
    (infra/log_console.py). `file` also gets the JSON lines, tracebacks whole, from
    `file_level` up (default: `level`). `level` defaults to ORDERFLOW_LOG_LEVEL, else INFO.
    A handler left by `logging.basicConfig` would print unmasked lines, so it is replaced.
    Returns the console's handler."""
    numeric = _level_number(level if level is not None else settings().logging.level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler: logging.Handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter(console))
    handler.setLevel(numeric)
    handlers = [handler]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        to_file = _FileHandler(file, encoding="utf-8")
        to_file.setFormatter(_formatter("json"))
        to_file.setLevel(numeric if file_level is None else _level_number(file_level))
        handlers.append(to_file)
    _install(handlers)
    return handler


def _install(handlers: list[logging.Handler]) -> None:
    """`handlers` in place of ours and of a plain one left by `basicConfig`; every line of
    the libraries routed to them."""
    lowest = min(h.level for h in handlers)
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _Handler | _FileHandler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
            if isinstance(old, _FileHandler):
                old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(lowest)
    for name in _ROUTED:
        routed = logging.getLogger(name)
        for old in list(routed.handlers):
            routed.removeHandler(old)
        routed.propagate = True
        routed.setLevel(logging.NOTSET)  # uvicorn sets its own; the chosen level applies
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(lowest, logging.WARNING))
    # A `dictConfig` elsewhere (uvicorn's own, by default) disables the loggers it does not
    # name; every line must reach the masking handler, so none stays disabled.
    for existing in logging.root.manager.loggerDict.values():
        if isinstance(existing, logging.Logger):
            existing.disabled = False


def get_logger(name: str | None = None) -> Any:
    """A structlog logger whose lines go through the masking processor once configured."""
    return structlog.stdlib.get_logger(name)


__all__ = [
    "MASK",
    "SECRET_MASK",
    "ConsoleFormat",
    "configure_logging",
    "get_logger",
    "mask_phones",
    "mask_text",
    "mask_url",
    "redact",
    "redact_event",
]
