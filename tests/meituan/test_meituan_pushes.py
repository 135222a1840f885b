"""Push decoding and encoding (R2.1.1, R6.3.1): the platform's double encoding, signatures,
the quirks of raw pushes, and clear errors for malformed ones."""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import quote_plus, urlencode

import pytest

from localstack.simulator import AnomalyKind, OrderGenerator, load_business
from meituan.codes import DealOpType, LogisticsStatus, PlatformCancelReason, RefundStatus
from meituan.models import (
    CancelPush,
    LogisticsPush,
    OrderPush,
    PartialRefundPush,
    RefundFood,
    RefundPush,
    RefundStatusPush,
    RemindPush,
)
from meituan.pushes import (
    PushDecodeError,
    PushKind,
    PushSignatureError,
    decode_order_push,
    decode_push,
    encode_fields,
    encode_order_push,
    encode_push,
    form_body,
    is_probe,
    parse_form,
    push_values,
)

PUSH_URL = "http://127.0.0.1:8080/meituan/push/order"
SECRET = "orderflow-dev-secret"
APP_ID = "orderflow-dev"

# A paid-order push made here in the platform's wire format: form-encoded, every value
# URL-encoded once more inside (so `%` shows as `%25`), a privacy phone number, a geocoded
# address after `@#`, an empty `{}` in extras, blank fields, and `sig` computed over the fully
# decoded values, blanks included, with our push URL. Pushes the platform really sent are
# under tests/platform_fixtures.
RAW_ORDER_PUSH_TEXT = (
    "order_id=27061900311184578&"
    "wm_order_id_view=10061900311184578&"
    "app_poi_code=SH-XH-001&"
    "wm_poi_name=%25E8%2580%2581%25E5%25BC%2584%25E5%25A0%2582%25E5%25B0%258F%25E9%25A6%2"
    "586%2528%25E5%25BE%2590%25E6%25B1%2587%25E5%25BA%2597%2529&"
    "wm_poi_address=%25E4%25B8%258A%25E6%25B5%25B7%25E5%25B8%2582%25E5%25BE%2590%25E6%25B"
    "1%2587%25E5%258C%25BA%25E6%25BC%2595%25E6%25BA%25AA%25E5%258C%2597%25E8%25B7%25AF88%"
    "25E5%258F%25B7&"
    "wm_poi_phone=021-64281234&"
    "recipient_name=%25E9%2599%2586%2528%25E5%2585%2588%25E7%2594%259F%2529&"
    "recipient_phone=13812345678_1234&"
    "backup_recipient_phone=%255B%252213812345678_5678%2522%255D&"
    "recipient_address=%25E6%25B1%2587%25E6%2588%2590%25E4%25B8%2580%25E6%259D%25918%25E5"
    "%258F%25B7%25E6%25A5%25BC1202%25E5%25AE%25A4%2540%2523%25E4%25B8%258A%25E6%25B5%25B7"
    "%25E5%25B8%2582%25E5%25BE%2590%25E6%25B1%2587%25E5%258C%25BA%25E6%25BC%2595%25E6%25B"
    "A%25AA%25E5%258C%2597%25E8%25B7%25AF1200%25E5%25BC%2584&"
    "latitude=31.186512&"
    "longitude=121.438211&"
    "shipping_fee=5.0&"
    "total=92.0&"
    "original_price=100.0&"
    "caution=%25E5%25B0%2591%25E6%2594%25BE%25E8%25BE%25A3%2B%25E5%25A4%259A%25E7%25BB%25"
    "99%25E9%25A4%2590%25E5%2585%25B7&"
    "status=2&"
    "ctime=1761874800&"
    "utime=1761874800&"
    "delivery_time=0&"
    "day_seq=12&"
    "pay_type=2&"
    "pick_type=0&"
    "is_third_shipping=0&"
    "logistics_code=0000&"
    "has_invoiced=0&"
    "invoice_title=&"
    "taxpayer_id=&"
    "dinners_number=2&"
    "is_pre_sale_order=false&"
    "city_id=310100&"
    "package_bag_money=&"
    "detail=%255B%257B%2522app_food_code%2522%253A%2522G-HSR%2522%252C%2522food_name%2522"
    "%253A%2522%25E7%25BA%25A2%25E7%2583%25A7%25E8%2582%2589%2522%252C%2522sku_id%2522%25"
    "3A%2522G-HSR%2522%252C%2522quantity%2522%253A1%252C%2522price%2522%253A48.0%252C%252"
    "2box_num%2522%253A1.0%252C%2522box_price%2522%253A1.0%252C%2522unit%2522%253A%2522%2"
    "5E4%25BB%25BD%2522%252C%2522spec%2522%253A%2522%2522%252C%2522food_discount%2522%253"
    "A1.0%252C%2522food_property%2522%253A%2522%25E5%25BE%25AE%25E8%25BE%25A3%2522%252C%2"
    "522cart_id%2522%253A0%257D%252C%257B%2522app_food_code%2522%253A%2522G-XLB%2522%252C"
    "%2522food_name%2522%253A%2522%25E5%25B0%258F%25E7%25AC%25BC%25E5%258C%2585%25288%25E"
    "5%258F%25AA%2529%2522%252C%2522sku_id%2522%253A%2522G-XLB%2522%252C%2522quantity%252"
    "2%253A2%252C%2522price%2522%253A22.0%252C%2522box_num%2522%253A2.0%252C%2522box_pric"
    "e%2522%253A1.0%252C%2522unit%2522%253A%2522%25E4%25BB%25BD%2522%252C%2522spec%2522%2"
    "53A%2522%2522%252C%2522food_discount%2522%253A1.0%252C%2522food_property%2522%253A%2"
    "522%2522%252C%2522cart_id%2522%253A0%257D%255D&"
    "extras=%255B%257B%2522act_detail_id%2522%253A710023811%252C%2522reduce_fee%2522%253A"
    "8.0%252C%2522mt_charge%2522%253A1.0%252C%2522poi_charge%2522%253A7.0%252C%2522remark"
    "%2522%253A%2522%25E6%25BB%25A150%25E5%2585%2583%25E5%2587%258F8%25E5%2585%2583%2522%"
    "252C%2522type%2522%253A2%257D%252C%257B%257D%255D&"
    "poi_receive_detail=%257B%2522onlinePayment%2522%253A9200%252C%2522wmPoiReceiveCent%2"
    "522%253A8565%252C%2522foodShareFeeChargeByPoi%2522%253A736%252C%2522logisticsFee%252"
    "2%253A0%257D&"
    "app_id=orderflow-dev&"
    "timestamp=1761874801&"
    "sig=5eeac31f6bfc3763801bc10f2235d556"
)
RAW_ORDER_PUSH = RAW_ORDER_PUSH_TEXT.encode("ascii")


def test_decode_raw_order_push() -> None:
    order = decode_order_push(RAW_ORDER_PUSH, url=PUSH_URL, secret=SECRET, app_id=APP_ID)

    assert order.order_id == 27061900311184578
    assert order.wm_order_id_view == 10061900311184578
    assert order.app_poi_code == "SH-XH-001"
    assert order.wm_poi_name == "老弄堂小馆(徐汇店)"
    assert order.recipient_name == "陆(先生)"
    assert order.recipient_phone == "13812345678_1234"
    assert order.backup_recipient_phone == ["13812345678_5678"]
    assert order.recipient_address == "汇成一村8号楼1202室@#上海市徐汇区漕溪北路1200弄"
    assert order.address_text == "汇成一村8号楼1202室"
    assert order.address_geocoded == "上海市徐汇区漕溪北路1200弄"
    assert order.caution == "少放辣 多给餐具"
    assert order.status == 2 and order.day_seq == 12 and order.delivery_time == 0
    assert order.latitude == pytest.approx(31.186512)
    assert order.package_bag_money is None  # blank means absent
    assert order.invoice_title == ""

    assert [(i.app_food_code, i.quantity, i.price) for i in order.detail] == [
        ("G-HSR", 1, Decimal("48.00")),
        ("G-XLB", 2, Decimal("22.00")),
    ]
    assert order.detail[0].food_property == "微辣"
    assert len(order.extras) == 1  # the `{}` entry is not a discount
    assert order.extras[0].reduce_fee == Decimal("8") and order.extras[0].poi_charge == 7
    assert order.extras[0].remark == "满50元减8元"
    assert order.poi_receive_detail == {
        "onlinePayment": 9200,
        "wmPoiReceiveCent": 8565,
        "foodShareFeeChargeByPoi": 736,
        "logisticsFee": 0,
    }
    assert isinstance(order.total, Decimal) and order.total == Decimal("92")
    assert order.items_amount == Decimal("92")
    assert order.box_amount == Decimal("3")
    assert order.expected_original_price == order.original_price == Decimal("100")
    assert order.expected_total == Decimal("92.00") and order.total_consistent


def test_raw_push_signature_is_checked_against_our_url_and_secret() -> None:
    with pytest.raises(PushSignatureError):
        decode_order_push(RAW_ORDER_PUSH, url=PUSH_URL, secret="another-secret")
    with pytest.raises(PushSignatureError):
        decode_order_push(
            RAW_ORDER_PUSH, url="https://gw.example.com/meituan/push/order", secret=SECRET
        )
    tampered = RAW_ORDER_PUSH.replace(b"total=92.0", b"total=9.20")
    with pytest.raises(PushSignatureError) as caught:
        decode_order_push(tampered, url=PUSH_URL, secret=SECRET)
    assert caught.value.field == "sig"
    # Without a secret the push is only parsed.
    assert decode_order_push(tampered).total == Decimal("9.20")


def test_wrong_app_id_is_refused() -> None:
    with pytest.raises(PushDecodeError) as caught:
        decode_order_push(RAW_ORDER_PUSH, app_id="someone-else")
    assert caught.value.field == "app_id"


def test_decode_accepts_an_already_form_decoded_mapping() -> None:
    form = parse_form(RAW_ORDER_PUSH)
    assert form["recipient_phone"] == "13812345678_1234"
    assert form["recipient_name"].startswith("%E9%99%86")  # still second-encoded
    order = decode_order_push(form, url=PUSH_URL, secret=SECRET)
    assert order.recipient_name == "陆(先生)"


def test_fields_we_do_not_model_are_decoded_twice_kept_and_signed() -> None:
    """Newer pushes carry JSON we do not read: it is decoded like the rest, kept as text, and
    its presence never breaks the signature."""
    order = OrderGenerator(load_business(), seed=1).generate(now=time.time()).order
    unmodelled = {
        "sku_benefit_detail": '[{"app_food_code":"G-HSR","totalReducePrice":2.5}]',
        "order_tag_list": "[8,23]",
        "user_member_info": '{"is_poi_member":false}',
        "incmp_modules": "[]",
        "recipient_address_detail": '{"province":"上海市","detail_address":"漕溪北路1200弄"}',
        "poi_receive_detail_yuan": '{"onlinePayment":"92.00"}',
    }
    values = {**push_values(order), **unmodelled}
    form = encode_fields(PushKind.ORDER, values, url=PUSH_URL, app_id=APP_ID, secret=SECRET)
    assert form["order_tag_list"] == "%5B8%2C23%5D"  # URL-encoded once inside the form
    decoded = decode_order_push(form_body(form), url=PUSH_URL, secret=SECRET)
    assert {k: (decoded.model_extra or {})[k] for k in unmodelled} == unmodelled


@pytest.mark.parametrize("seed", range(6))
def test_order_round_trip(seed: int) -> None:
    generator = OrderGenerator(load_business(), seed=seed, anomaly_rate=0.5)
    for _ in range(20):
        original = generator.generate(now=time.time()).order
        fields = encode_order_push(
            original, url=PUSH_URL, app_id=APP_ID, secret=SECRET, empty_discount=seed % 2 == 0
        )
        decoded = decode_order_push(form_body(fields), url=PUSH_URL, secret=SECRET)
        strip = {"app_id", "timestamp"}
        assert decoded.model_dump(exclude=strip) == original.model_dump(exclude=strip)
        assert decoded.address_text == original.address_text
        assert decoded.address_geocoded == original.address_geocoded
        assert decoded.app_id == APP_ID


def test_every_anomaly_kind_round_trips() -> None:
    generator = OrderGenerator(load_business(), seed=3)
    for kind in AnomalyKind:
        original = generator.generate(now=time.time(), anomaly=kind).order
        fields = encode_order_push(original, url=PUSH_URL, app_id=APP_ID, secret=SECRET)
        decoded = decode_order_push(fields, url=PUSH_URL, secret=SECRET)
        assert decoded.model_dump(exclude={"app_id", "timestamp"}) == original.model_dump(
            exclude={"app_id", "timestamp"}
        ), kind


OTHER_PUSHES: list[tuple[PushKind, object]] = [
    (
        PushKind.CANCEL,
        CancelPush(
            order_id=27061900311184578,
            reason_code=PlatformCancelReason.NOT_CONFIRMED_IN_TIME,
            reason="商家超时未接单，系统自动取消 (100% 退款)",
            deal_op_type=DealOpType.SYSTEM,
        ),
    ),
    (
        PushKind.REFUND,
        RefundPush(
            order_id=27061900311184578,
            refund_id=60000000123,
            notify_type="apply",
            res_type=0,
            is_appeal=0,
            reason="送错了+少了一份",
            pictures=["http://p0.meituan.net/a.jpg", "http://p0.meituan.net/b.jpg"],
            ctime=1761874900,
        ),
    ),
    (
        PushKind.PARTIAL_REFUND,
        PartialRefundPush(
            order_id=27061900311184578,
            refund_id=60000000124,
            notify_type="apply",
            reason="少送了小笼包",
            food=[
                RefundFood(
                    app_food_code="G-XLB",
                    food_name="小笼包(8只)",
                    count=1,
                    refund_price=Decimal("23.00"),
                )
            ],
            money=Decimal("23.00"),
        ),
    ),
    (
        PushKind.REFUND_STATUS,
        RefundStatusPush(
            refund_id=60000000124,
            refund_status=RefundStatus.PARTIAL_SUCCEEDED,
            money=Decimal("23.00"),
            order_id=27061900311184578,
        ),
    ),
    (
        PushKind.LOGISTICS,
        LogisticsPush(
            order_id=27061900311184578,
            logistics_status=LogisticsStatus.PICKED_UP,
            time=1761875000,
            dispatcher_name="张师傅",
            dispatcher_mobile="13900001111",
        ),
    ),
    (
        PushKind.REMIND,
        RemindPush(order_id=27061900311184578, remind_id=60000000200, remind_time=1761875100),
    ),
]


@pytest.mark.parametrize(("kind", "push"), OTHER_PUSHES, ids=[k.value for k, _ in OTHER_PUSHES])
def test_other_pushes_round_trip(kind: PushKind, push: object) -> None:
    assert isinstance(
        push, OrderPush | CancelPush | RefundPush | RefundStatusPush | LogisticsPush | RemindPush
    )
    url = f"http://127.0.0.1:8080/meituan/push/{kind.value}"
    fields = encode_push(kind, push, url=url, app_id=APP_ID, secret=SECRET, timestamp=1761875200)
    assert fields["timestamp"] == "1761875200" and len(fields["sig"]) == 32
    # GET pushes arrive as a query string; either way it is one form layer.
    decoded = decode_push(kind, urlencode(fields), url=url, secret=SECRET)
    assert type(decoded) is type(push)
    assert decoded.model_dump(exclude={"app_id", "timestamp"}) == push.model_dump(
        exclude={"app_id", "timestamp"}
    )


def test_cancel_push_captured_as_a_query_string() -> None:
    reason = quote_plus(quote_plus("用户取消订单"))
    query = f"order_id=27061900311184578&reason_code=1101&reason={reason}&deal_op_type=1"
    push = decode_push("cancel", query)
    assert isinstance(push, CancelPush)
    assert push.reason == "用户取消订单"
    assert push.reason_code == PlatformCancelReason.USER_1101
    assert push.deal_op_type == DealOpType.USER


def test_probe_is_recognised_and_not_decoded() -> None:
    assert is_probe(b"")
    assert is_probe({})
    assert not is_probe(RAW_ORDER_PUSH)
    with pytest.raises(PushDecodeError, match="empty"):
        decode_order_push(b"")


def _order_form(**changes: str) -> dict[str, str]:
    form = parse_form(RAW_ORDER_PUSH)
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"detail": quote_plus("[{not json")}, "detail"),
        ({"extras": quote_plus('{"reduce_fee": 1}')}, "extras"),
        ({"total": "abc"}, "total"),
        ({"order_id": "27061900311184578x"}, "order_id"),
        ({"detail": quote_plus('[{"app_food_code":"G-HSR","quantity":1}]')}, "detail"),
        ({"recipient_name": "%E9%99"}, "recipient_name"),
    ],
)
def test_malformed_push_names_the_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(PushDecodeError) as caught:
        decode_order_push(_order_form(**changes))
    assert caught.value.field == field
    assert field in str(caught.value)
    assert not isinstance(caught.value, PushSignatureError)


def test_missing_required_field() -> None:
    form = _order_form()
    del form["order_id"]
    with pytest.raises(PushDecodeError, match="order_id") as caught:
        decode_order_push(form)
    assert caught.value.field == "order_id"


def test_missing_signature_when_verifying() -> None:
    form = _order_form()
    del form["sig"]
    with pytest.raises(PushSignatureError, match="no signature"):
        decode_order_push(form, url=PUSH_URL, secret=SECRET)


def test_order_detail_json_shape_is_accepted() -> None:
    """`getOrderDetail` answers typed JSON with `detail`/`extras` as JSON text."""
    data = {
        "order_id": 27061900311184578,
        "app_poi_code": "SH-PD-002",
        "recipient_phone": 13812345678,
        "total": 27.5,
        "shipping_fee": "",
        "detail": '[{"app_food_code":"G-CFR","quantity":1,"price":26.0,"box_num":1,'
        '"box_price":1.5}]',
        "extras": "[{}]",
        "backup_recipient_phone": "",
        "some_new_platform_field": "kept",
    }
    order = OrderPush.model_validate(data)
    assert order.recipient_phone == "13812345678"
    assert order.shipping_fee == 0 and order.extras == [] and order.backup_recipient_phone == []
    assert order.total_consistent
    assert order.model_extra == {"some_new_platform_field": "kept"}
