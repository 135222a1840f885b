"""Decoding (and, for the simulator, encoding) of the platform's pushes (R2.1.1, R6.3.1).

A push is a form (POST body or GET query) of string values. Every value is URL-encoded a
second time inside the form value (numbers look the same either way; text and JSON do not),
and the signature is computed over the fully decoded values, empty ones included, with the
push URL configured in the platform's console. The decoding order is therefore: form-decode,
URL-decode every value once more (`+` is a space), verify the signature, then parse into a
model. Real captured pushes verify only this way (tests/platform_fixtures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode

from pydantic import BaseModel, ValidationError

from meituan.models import (
    CancelPush,
    LogisticsPush,
    OrderPush,
    OrderRefPush,
    PartialRefundPush,
    PlatformModel,
    PrivacyDowngradePush,
    PushModel,
    RefundPush,
    RefundStatusPush,
    RemindPush,
)
from meituan.signing import SIG, sign, verify


class PushKind(StrEnum):
    """Kinds of push; the value is the last segment of the push URL (`{push_base}/{kind}`)."""

    ORDER = "order"
    CANCEL = "cancel"
    REFUND = "refund"
    PARTIAL_REFUND = "partial-refund"
    REFUND_STATUS = "refund-status"
    LOGISTICS = "logistics"
    REMIND = "remind"
    ORDER_CONFIRMED = "order-confirmed"
    ORDER_COMPLETED = "order-completed"
    PRIVACY_DOWNGRADE = "privacy-downgrade"


PUSH_MODELS: Final[Mapping[PushKind, type[PlatformModel]]] = {
    PushKind.ORDER: OrderPush,
    PushKind.CANCEL: CancelPush,
    PushKind.REFUND: RefundPush,
    PushKind.PARTIAL_REFUND: PartialRefundPush,
    PushKind.REFUND_STATUS: RefundStatusPush,
    PushKind.LOGISTICS: LogisticsPush,
    PushKind.REMIND: RemindPush,
    PushKind.ORDER_CONFIRMED: OrderRefPush,
    PushKind.ORDER_COMPLETED: OrderRefPush,
    PushKind.PRIVACY_DOWNGRADE: PrivacyDowngradePush,
}

PUSH_METHODS: Final[Mapping[PushKind, str]] = {
    PushKind.ORDER: "POST",
    PushKind.CANCEL: "GET",
    PushKind.REFUND: "GET",
    PushKind.PARTIAL_REFUND: "GET",
    PushKind.REFUND_STATUS: "POST",
    PushKind.LOGISTICS: "POST",
    PushKind.REMIND: "POST",
    PushKind.ORDER_CONFIRMED: "POST",
    PushKind.ORDER_COMPLETED: "POST",
    PushKind.PRIVACY_DOWNGRADE: "POST",
}
"""How the platform sends each kind; a receiver should accept both methods anyway."""

OK_RESPONSE: Final[dict[str, str]] = {"data": "ok"}
"""The only answer the platform takes as delivered, to every push and to the URL probe."""


class PushDecodeError(ValueError):
    """A push that cannot be read; `field` names the offending field when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PushSignatureError(PushDecodeError):
    """The push's signature is missing or wrong: it is not from the platform, or the
    secret / push URL configured on our side differs from the platform console."""


FormInput = Mapping[str, str] | bytes | str


def parse_form(body: bytes | str) -> dict[str, str]:
    """First decoding: `application/x-www-form-urlencoded` (or a query string) to a dict."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict"))
    except UnicodeDecodeError as exc:
        raise PushDecodeError(f"push body is not UTF-8: {exc}") from exc


def _as_form(form: FormInput) -> dict[str, str]:
    if isinstance(form, bytes | str):
        return parse_form(form)
    return {str(k): str(v) for k, v in form.items()}


def is_probe(form: FormInput) -> bool:
    """The platform probes a newly configured push URL with an empty GET and POST."""
    return not any(value for value in _as_form(form).values())


def decode_fields(kind: PushKind, form: FormInput) -> dict[str, str]:
    """Form values with the second URL-decoding applied to every value (see the module)."""
    fields = _as_form(form)
    for name, value in fields.items():
        try:
            fields[name] = unquote_plus(value, errors="strict")
        except UnicodeDecodeError as exc:
            raise PushDecodeError(
                f"{kind} push: field {name!r} is not URL-encoded UTF-8", field=name
            ) from exc
    return fields


def second_encoding(fields: Mapping[str, str]) -> dict[str, str]:
    """What the platform does to each signed value before it encodes the form."""
    return {name: quote_plus(value, safe="") for name, value in fields.items()}


def signature_verifies(kind: PushKind, form: FormInput, *, url: str, secret: str) -> bool:
    """Whether a push carries a signature that verifies: only then is what it says the
    platform's. One that cannot even be decoded does not."""
    try:
        fields = decode_fields(kind, form)
    except PushDecodeError:
        return False
    return bool(fields.get(SIG)) and verify(url, fields, secret)


def decode_push(
    kind: PushKind | str,
    form: FormInput,
    *,
    url: str | None = None,
    secret: str | None = None,
    app_id: str | None = None,
) -> PushModel:
    """Decode a push of `kind`; with `secret` (and our push `url`) the signature is verified.

    Raises `PushSignatureError` for a bad signature and `PushDecodeError` for anything else
    malformed, so a receiver can answer the platform with a failure and let it retry.
    """
    kind = PushKind(kind)
    fields = decode_fields(kind, form)
    if is_probe(fields):
        raise PushDecodeError(f"{kind} push is empty (a URL probe?)")
    if secret is not None:
        if url is None:
            raise ValueError("verifying a push needs the push URL it was sent to")
        if not fields.get(SIG):
            raise PushSignatureError(f"{kind} push has no signature", field=SIG)
        if not verify(url, fields, secret):
            raise PushSignatureError(f"{kind} push signature does not match", field=SIG)
    if app_id is not None and fields.get("app_id") not in (None, "", app_id):
        raise PushDecodeError(f"{kind} push is for app_id {fields['app_id']!r}", field="app_id")
    fields.pop(SIG, None)
    model = PUSH_MODELS[kind]
    try:
        result = model.model_validate(fields)
    except ValidationError as exc:
        raise _decode_error(kind, exc) from exc
    return result  # type: ignore[return-value]


def decode_order_push(
    form: FormInput,
    *,
    url: str | None = None,
    secret: str | None = None,
    app_id: str | None = None,
) -> OrderPush:
    """`decode_push` for the paid-order push, typed."""
    result = decode_push(PushKind.ORDER, form, url=url, secret=secret, app_id=app_id)
    if not isinstance(result, OrderPush):  # pragma: no cover - PUSH_MODELS maps ORDER to it
        raise TypeError(f"order push decoded as {type(result).__name__}")
    return result


def _decode_error(kind: PushKind, exc: ValidationError) -> PushDecodeError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = first["loc"]
    field = str(loc[0]) if loc else None
    where = ".".join(str(part) for part in loc) or "(push)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return PushDecodeError(f"malformed {kind} push: field {where}: {first['msg']}{more}", field)


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        # The platform's JSON carries numbers; decoding reads them back as exact decimals.
        return int(value) if value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(exclude_none=True))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps_json(value: Any) -> str:
    """Compact JSON as the platform writes it (UTF-8 text, numbers for money)."""
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))


def to_text(value: Any) -> str:
    """A field value as the platform puts it in a form."""
    if isinstance(value, bool):
        return "true" if value else "false"  # as in real pushes (`is_favorites=true`)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return dumps_json(value)


def push_values(push: PlatformModel) -> dict[str, str]:
    """The fully decoded string values of a push (what the signature covers), minus `sig`."""
    data = push.model_dump(exclude_none=True)
    return {key: to_text(value) for key, value in data.items() if key != SIG}


def encode_fields(
    kind: PushKind | str,
    values: Mapping[str, str],
    *,
    url: str,
    app_id: str,
    secret: str,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Sign decoded `values` for `url`, then apply the second encoding: the form to send."""
    kind = PushKind(kind)
    fields = {k: v for k, v in values.items() if k != SIG}
    fields["app_id"] = app_id
    fields["timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    fields[SIG] = sign(url, fields, secret)
    return second_encoding(fields)


def encode_push(
    kind: PushKind | str,
    push: PlatformModel,
    *,
    url: str,
    app_id: str,
    secret: str,
    timestamp: int | None = None,
    empty_discount: bool = False,
) -> dict[str, str]:
    """A raw, signed, double-encoded push form as the platform would send `push` to `url`.

    `empty_discount` adds the `{}` entry real order pushes sometimes carry in `extras`.
    `decode_push(kind, encode_push(kind, x, ...))` gives back `x`.
    """
    values = push_values(push)
    if empty_discount and "extras" in values:
        entries = json.loads(values["extras"])
        values["extras"] = dumps_json([*entries, {}])
    return encode_fields(kind, values, url=url, app_id=app_id, secret=secret, timestamp=timestamp)


def encode_order_push(
    order: OrderPush,
    *,
    url: str,
    app_id: str,
    secret: str,
    timestamp: int | None = None,
    empty_discount: bool = False,
) -> dict[str, str]:
    """`encode_push` for the paid-order push."""
    return encode_push(
        PushKind.ORDER,
        order,
        url=url,
        app_id=app_id,
        secret=secret,
        timestamp=timestamp,
        empty_discount=empty_discount,
    )


def form_body(fields: Mapping[str, str]) -> str:
    """The form as it travels (first encoding): body of a POST or query of a GET."""
    return urlencode(fields)
