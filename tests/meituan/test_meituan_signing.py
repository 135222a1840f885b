"""The platform signature (R6.3.1): the documented vector and the rules around it."""

from __future__ import annotations

import hashlib

from meituan.signing import sign, signing_string, verify

DOC_URL = "http://waimaiopen.meituan.com/api/v1/poi/mget"
DOC_PARAMS = {"app_id": "1235123121", "app_poi_codes": "31", "timestamp": "1389751221"}
DOC_SECRET = "d31ba58fd73c71db697ab5e4946d52d"
DOC_SIG = "00934d00d0aea6f12161edfb6456143d"


def test_documented_example() -> None:
    assert sign(DOC_URL, DOC_PARAMS, DOC_SECRET) == DOC_SIG
    assert signing_string(DOC_URL, DOC_PARAMS, DOC_SECRET) == (
        "http://waimaiopen.meituan.com/api/v1/poi/mget"
        "?app_id=1235123121&app_poi_codes=31&timestamp=1389751221"
        "d31ba58fd73c71db697ab5e4946d52d"
    )


def test_sig_img_data_and_unsent_values_are_not_signed() -> None:
    noisy = {**DOC_PARAMS, "sig": "whatever", "img_data": "binary", "x": None}
    assert sign(DOC_URL, noisy, DOC_SECRET) == DOC_SIG


def test_empty_values_are_signed() -> None:
    """The platform signs `caution=` as it sends it (tests/platform_fixtures verify this)."""
    with_empty = {**DOC_PARAMS, "caution": ""}
    assert sign(DOC_URL, with_empty, DOC_SECRET) != DOC_SIG
    assert signing_string(DOC_URL, with_empty, DOC_SECRET) == (
        "http://waimaiopen.meituan.com/api/v1/poi/mget"
        "?app_id=1235123121&app_poi_codes=31&caution=&timestamp=1389751221"
        "d31ba58fd73c71db697ab5e4946d52d"
    )


def test_query_of_the_url_is_ignored_and_order_does_not_matter() -> None:
    shuffled = dict(reversed(list(DOC_PARAMS.items())))
    assert sign(DOC_URL + "?app_id=1&sig=2", shuffled, DOC_SECRET) == DOC_SIG


def test_scheme_and_values_matter() -> None:
    assert sign(DOC_URL.replace("http:", "https:"), DOC_PARAMS, DOC_SECRET) != DOC_SIG
    assert sign(DOC_URL, {**DOC_PARAMS, "app_poi_codes": "32"}, DOC_SECRET) != DOC_SIG
    assert sign(DOC_URL, DOC_PARAMS, DOC_SECRET + "x") != DOC_SIG


def test_values_are_raw_utf8_not_url_encoded() -> None:
    params = {"reason": "顾客要求取消 & 退款", "food_data": '[{"count":1}]', "timestamp": "1"}
    expected = hashlib.md5(
        f'{DOC_URL}?food_data=[{{"count":1}}]&reason=顾客要求取消 & 退款&timestamp=1s'.encode()
    ).hexdigest()
    assert sign(DOC_URL, params, "s") == expected


def test_verify() -> None:
    assert verify(DOC_URL, {**DOC_PARAMS, "sig": DOC_SIG}, DOC_SECRET)
    assert verify(DOC_URL, {**DOC_PARAMS, "sig": DOC_SIG.upper()}, DOC_SECRET)
    assert verify(DOC_URL, DOC_PARAMS, DOC_SECRET, sig=DOC_SIG)
    assert not verify(DOC_URL, {**DOC_PARAMS, "sig": "0" * 32}, DOC_SECRET)
    assert not verify(DOC_URL, DOC_PARAMS, DOC_SECRET)
    assert not verify(DOC_URL, {**DOC_PARAMS, "sig": DOC_SIG}, "wrong")
