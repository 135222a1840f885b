"""Reading the platform's real material in `tests/platform_fixtures/`: pushes the platform sent
to merchants, as those merchants kept them (a logged parameter map, a JSON dump, a test's
`map.put` lines, a query pasted in a comment), each with its source in the file's header.

A fixture is never edited to fit our code: this module reads each format as it is and gives
back the push as it travelled, so the tests decode and verify exactly what the platform sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from meituan.pushes import second_encoding

FOLDER = Path(__file__).parent / "platform_fixtures"
_PUT = re.compile(r'(?:map|tempTimes)\.put\("([^"]+)",\s*(null|"((?:[^"\\]|\\.)*)")\);')
_MAP_ENTRY = re.compile(r",\s*(?=[A-Za-z_]+=)")


@dataclass(frozen=True)
class Fixture:
    name: str
    header: dict[str, str]
    notes: str
    payload: str
    values: dict[str, str] = field(default_factory=dict)
    """What the merchant's server held after the form decoding (every value still URL-encoded
    once more), less the keys its own framework added (`not-from-platform`)."""

    @property
    def kind(self) -> str:
        return self.header["kind"]

    @property
    def url(self) -> str:
        return self.header["url"]

    @property
    def secret(self) -> str | None:
        secret = self.header["secret"]
        return None if secret == "unpublished" else secret

    @property
    def app_id(self) -> str:
        return self.header["app_id"]

    @property
    def verifiable(self) -> bool:
        return self.header["verifies"] == "yes"

    @property
    def wire(self) -> str:
        """The form as it travelled: body of a POST or query of a GET."""
        return urlencode(self.values)


def _header(text: str) -> tuple[dict[str, str], str, str]:
    lines = text.splitlines(keepends=True)
    header: dict[str, str] = {}
    end = 0
    while end < len(lines) and lines[end].startswith("#"):
        end += 1
    head, _, notes = "".join(lines[:end]).partition("#\n# Notes from collecting it:\n")
    for line in head.splitlines():
        key, _, value = line.removeprefix("# ").partition(": ")
        header[key] = value
    return header, notes, "".join(lines[end:])


def _java_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _java_map_log(payload: str) -> dict[str, str]:
    """`{k=v, k=v}` of a logged `Map.toString()`, across comment lines."""
    text = "".join(re.sub(r"^\s*\*\s?", "", line).strip() for line in payload.splitlines())
    inner = text[text.index("{") + 1 : text.rindex("}")]
    return dict(entry.split("=", 1) for entry in _MAP_ENTRY.split(inner))


def _java_json_string(payload: str) -> dict[str, str]:
    literal = payload[payload.index('"{') + 1 : payload.rindex('}"') + 1]
    return {k: str(v) for k, v in json.loads(_java_unescape(literal)).items()}


def _java_map_put(payload: str) -> dict[str, str]:
    """`put("k", "v");` lines in source order; a commented line is not code, `null` not sent."""
    values: dict[str, str] = {}
    for line in payload.splitlines():
        if line.strip().startswith("//"):
            continue
        for key, raw, text in _PUT.findall(line):
            if raw != "null":
                values[key] = _java_unescape(text)
    return values


def _comment(payload: str) -> str:
    return payload.strip().removeprefix("//").strip()


def _values(fmt: str, payload: str) -> dict[str, str]:
    if fmt == "java-map-log":
        return _java_map_log(payload)
    if fmt == "java-json-string":
        return _java_json_string(payload)
    if fmt == "java-map-put-decoded":
        # Written fully decoded by the merchant: the platform's second encoding puts it back.
        return second_encoding(_java_map_put(payload))
    if fmt == "query-in-comment":
        return dict(parse_qsl(_comment(payload), keep_blank_values=True))
    if fmt == "bean-json-in-comment":
        bean = json.loads(_comment(payload))
        return {k: str(v) for k, v in bean.items() if v is not None}
    if fmt == "url-in-comment":
        url = _comment(payload).split("”")[0]
        return second_encoding(dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)))
    return {}  # read by the test that uses it (a signing string, a documentation text)


def load(name: str) -> Fixture:
    header, notes, payload = _header((FOLDER / name).read_text(encoding="utf-8"))
    values = _values(header["format"], payload)
    for key in header.get("not-from-platform", "").split():
        values.pop(key, None)
    return Fixture(name, header, notes, payload, values)


def every() -> list[Fixture]:
    return [load(path.name) for path in sorted(FOLDER.glob("*.txt"))]
