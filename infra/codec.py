"""Encryption of every Temporal payload (AES-256-GCM) before it leaves the process.

Orders carry customers' names, phones and addresses, and Temporal keeps every workflow input,
activity argument and result, signal, update and query answer in its histories: on the
server, in its database and backups, and in front of anyone with the Web UI. Encrypting in
the client means the server only ever holds ciphertext; the Web UI shows plaintext only
through the codec server (`starter.codec_server`), which holds the keys.

Keys come from `ORDERFLOW_CODEC_KEYS`: comma-separated `id:base64key` entries, each key 32
random bytes (`python -m infra.codec new-key <id>` prints one). The first key encrypts; all
of them decrypt, and each payload names the key it was encrypted with. Rotation: put a new key
first and keep the old ones for as long as histories encrypted with them are kept (running
orders and the namespace's retention period). Unset: no codec, payloads in plaintext, which
suits local development only.

With the codec on, failure messages and stack traces are encrypted too (they quote values,
pydantic validation errors in particular); SDK clients decrypt them transparently.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from infra.settings import DEFAULT_TEMPORAL_NAMESPACE, settings_for

ENV_KEYS: Final = "ORDERFLOW_CODEC_KEYS"
ENCODING: Final = b"binary/encrypted"
METADATA_ENCODING: Final = "encoding"
METADATA_KEY_ID: Final = "encryption-key-id"
"""The metadata names of Temporal's encryption samples, so their tooling reads our payloads."""
METADATA_BOUND: Final = "encryption-bound-to"
BOUND_TO: Final = b"key-id,namespace"
"""A payload sealed with its key id and namespace as associated data: relabelled with another
key id or copied into another namespace, it fails authentication. Payloads without it were
sealed before, with none, and still read; stripping it from a bound one does not help, since
it was sealed with them."""

KEY_BYTES: Final = 32  # AES-256
NONCE_BYTES: Final = 12  # GCM's standard nonce; random per payload
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_URLSAFE = str.maketrans("-_", "+/")


class CodecError(ValueError):
    """A payload that cannot be decrypted; the message says which key and why."""


class UnknownKeyError(CodecError):
    """The payload names a key id this process was not given."""


class CodecConfigError(ValueError):
    """`ORDERFLOW_CODEC_KEYS` is malformed; the message never quotes key material."""


@dataclass(frozen=True)
class CodecKey:
    key_id: str
    key: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.match(self.key_id):
            # Not quoted: a key pasted where its id belongs would end up in a log.
            raise CodecConfigError("a codec key id is 1-64 letters, digits, '.', '_' or '-'")
        if len(self.key) != KEY_BYTES:
            raise CodecConfigError(
                f"codec key {self.key_id!r} is {len(self.key)} bytes; AES-256 needs {KEY_BYTES}"
            )

    def spec(self) -> str:
        """The `id:base64key` form of `ORDERFLOW_CODEC_KEYS`."""
        return f"{self.key_id}:{base64.b64encode(self.key).decode('ascii')}"


def new_key(key_id: str) -> CodecKey:
    """A fresh random key."""
    return CodecKey(key_id, secrets.token_bytes(KEY_BYTES))


def _b64(text: str, key_id: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    padded = text.translate(_URLSAFE) + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise CodecConfigError(f"{ENV_KEYS}: key {key_id!r} is not valid base64") from None


def parse_keys(spec: str) -> list[CodecKey]:
    """`id:base64key,id:base64key,...` in order (the first encrypts); empty entries ignored."""
    keys: list[CodecKey] = []
    for n, entry in enumerate((e.strip() for e in spec.split(",")), start=1):
        if not entry:
            continue
        key_id, sep, material = entry.partition(":")
        key_id, material = key_id.strip(), material.strip()
        if not sep or not key_id or not material:
            raise CodecConfigError(f"{ENV_KEYS}: entry {n} is not of the form id:base64key")
        if not _KEY_ID.match(key_id):
            raise CodecConfigError(
                f"{ENV_KEYS}: entry {n}: a key id is 1-64 letters, digits, '.', '_' or '-'"
            )
        if any(k.key_id == key_id for k in keys):
            raise CodecConfigError(f"{ENV_KEYS}: key id {key_id!r} appears twice")
        keys.append(CodecKey(key_id, _b64(material, key_id)))
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload: `nonce || ciphertext+tag`, key id in metadata.

    Payloads that are not `binary/encrypted` decode unchanged, so histories written before the
    codec was turned on still read.
    """

    def __init__(
        self,
        keys: Sequence[CodecKey],
        namespace: str = DEFAULT_TEMPORAL_NAMESPACE,
        *,
        bind: bool = True,
    ) -> None:
        if not keys:
            raise CodecConfigError("an encryption codec needs at least one key")
        ids = [k.key_id for k in keys]
        if len(set(ids)) != len(ids):
            raise CodecConfigError(f"codec key ids must be unique: {ids}")
        self._encrypting = keys[0].key_id
        self._ciphers = {k.key_id: AESGCM(k.key) for k in keys}
        self._namespace = namespace
        self._bind = bind

    def _bound(self, key_id: str) -> bytes:
        """The associated data of a bound payload (METADATA_BOUND)."""
        return f"orderflow payload|key id {key_id}|namespace {self._namespace}".encode()

    @property
    def encrypting_key_id(self) -> str:
        return self._encrypting

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = secrets.token_bytes(NONCE_BYTES)
        key_id = self._encrypting
        metadata = {METADATA_ENCODING: ENCODING, METADATA_KEY_ID: key_id.encode("ascii")}
        if self._bind:
            metadata[METADATA_BOUND] = BOUND_TO
        associated = self._bound(key_id) if self._bind else None
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), associated)
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(METADATA_ENCODING) != ENCODING:
            return payload
        raw_id = payload.metadata.get(METADATA_KEY_ID)
        if not raw_id:
            raise CodecError(f"encrypted payload has no {METADATA_KEY_ID!r} metadata")
        key_id = raw_id.decode("utf-8", errors="backslashreplace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"payload was encrypted with key id {key_id!r}, which is not configured "
                f"(configured: {', '.join(self._ciphers)}); add that key to {ENV_KEYS} "
                "to read it"
            )
        data = payload.data
        bound = payload.metadata.get(METADATA_BOUND)
        if bound not in (None, BOUND_TO):
            raise CodecError(f"payload bound to {bound!r}, which this codec does not know")
        associated = self._bound(key_id) if bound is not None else None
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated)
        except InvalidTag:
            raise CodecError(
                f"payload under key id {key_id!r} failed authentication: the key configured "
                "under that id is not the one that encrypted it, the payload belongs to "
                f"another namespace than {self._namespace!r}, or it was altered"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def codec_from_env(
    environ: Mapping[str, str] | None = None, *, namespace: str | None = None
) -> EncryptionCodec | None:
    """The codec `ORDERFLOW_CODEC_KEYS` asks for, bound to `namespace` (default
    TEMPORAL_NAMESPACE); None when unset (plaintext)."""
    configured = settings_for(environ)
    keys = parse_keys(configured.codec.keys)
    if not keys:
        return None
    bound_to = namespace or configured.temporal.namespace
    return EncryptionCodec(keys, bound_to, bind=configured.codec.bind)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic data converter, encrypting through `codec` when there is one."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def build_converter(keys: str | Sequence[CodecKey] | None = None) -> DataConverter:
    """An encrypting converter for tests: an `ORDERFLOW_CODEC_KEYS` string, keys, or (None)
    one fresh random key."""
    if keys is None:
        keys = [new_key("test")]
    elif isinstance(keys, str):
        keys = parse_keys(keys)
    return data_converter(EncryptionCodec(keys))


def main(argv: list[str] | None = None) -> None:
    """`python -m infra.codec new-key <id>`: print an `id:base64key` entry."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "new-key":
        sys.exit("usage: python -m infra.codec new-key <key-id>")
    try:
        print(new_key(args[1]).spec())
    except CodecConfigError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
