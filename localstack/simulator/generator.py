"""Realistic orders for the demo company, with a configurable share of anomalous ones.

Seeded: the same seed gives the same orders, so tests and demos are repeatable. Anomalies
are the cases the review must catch (R2.2.1 basic info, R2.2.2 scope, R2.2.3 price, R5.1).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from localstack.simulator.business import Business, CatalogueItem, Store
from meituan.client import PLATFORM_TZ
from meituan.codes import DiscountType, OrderStatus
from meituan.models import CENT, ZERO, OrderPush

SHANGHAI_CITY_ID = 310100
SELF_DELIVERY_CODE = "0000"
PLATFORM_DELIVERY_CODES = ("1001", "1003")
KM_PER_DEGREE_LAT = 111.0


class AnomalyKind(StrEnum):
    """What is wrong with an anomalous generated order (R5.1)."""

    BAD_PHONE = "bad_phone"
    MISSING_ADDRESS = "missing_address"
    FAR_ADDRESS = "far_address"
    UNKNOWN_ITEM = "unknown_item"
    PROHIBITED_ITEM = "prohibited_item"
    WRONG_PRICE = "wrong_price"
    EXCESSIVE_DISCOUNT = "excessive_discount"
    TOTAL_MISMATCH = "total_mismatch"


NO_ANOMALY = "none"
"""Pass as `anomaly` to force a clean order."""

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾陆沈蒋顾"
TITLES = ("先生", "女士")
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "155", "156", "158", "159", "177", "180", "185", "186", "187", "188", "189", "199",
)  # fmt: skip

STREETS: dict[str, tuple[str, ...]] = {
    "徐汇区": (
        "漕溪北路",
        "肇嘉浜路",
        "天钥桥路",
        "宜山路",
        "虹桥路",
        "衡山路",
        "钦州北路",
        "田林路",
    ),
    "浦东新区": (
        "张杨路",
        "世纪大道",
        "浦东南路",
        "东方路",
        "崂山路",
        "源深路",
        "福山路",
        "商城路",
    ),
    "长宁区": ("延安西路", "仙霞路", "天山路", "娄山关路", "古北路", "长宁路"),
    "闵行区": ("莲花路", "虹梅路", "顾戴路", "漕宝路", "吴中路", "七莘路"),
}
DISTRICTS_BY_REGION: dict[str, tuple[str, ...]] = {
    "shanghai-xuhui": ("徐汇区",),
    "shanghai-pudong": ("浦东新区",),
}
COMPOUNDS = (
    "阳光花苑", "锦绣华庭", "东方城市花园", "金色港湾", "梅陇三村", "仁恒滨江园",
    "古北新城", "汇成一村", "康健新村", "世纪花园", "中远两湾城", "新梅共和城",
)  # fmt: skip
FAR_PLACES = (
    ("江苏省苏州市工业园区星湖街{n}号", 31.3040, 120.7270),
    ("上海市青浦区朱家角镇祥凝浜路{n}号", 31.1120, 121.0560),
    ("浙江省嘉兴市南湖区中山东路{n}号", 30.7520, 120.7650),
    ("上海市崇明区城桥镇八一路{n}号", 31.6240, 121.3970),
)
GOODS_CAUTIONS = (
    "", "", "", "少放辣", "不要香菜", "麻烦快一点，谢谢", "放门口就行，不用敲门",
    "【如遇缺货】：缺货时电话与我沟通", "多给两双筷子",
)  # fmt: skip
SERVICE_CAUTIONS = (
    "", "", "家里有宠物，请提前告知", "请提前半小时电话联系", "小区需登记，到了打电话",
    "请自带鞋套",
)  # fmt: skip
FOOD_PROPERTIES = {"hot_dishes": ("", "", "微辣", "不辣"), "soups": ("", "少辣")}
UNKNOWN_ITEM_NAMES = ("老板特供套餐", "隐藏款盲盒", "招牌新品(未上架)", "员工餐")
BAD_PHONES = ("1381234", "00000000000", "12345678901234", "138-1234-abcd", "")
COMPANY_NAMES = ("上海晨星信息科技有限公司", "上海弄堂文化传播有限公司", "上海汇智咨询有限公司")
SPEND_TIERS = ((Decimal(120), Decimal(25)), (Decimal(80), Decimal(15)), (Decimal(50), Decimal(8)),
               (Decimal(30), Decimal(3)))  # fmt: skip


@dataclass(frozen=True)
class GeneratedOrder:
    order: OrderPush
    anomaly: AnomalyKind | None
    platform_delivery: bool
    """True when platform couriers deliver it (the store is not self-delivering)."""


def _money(value: Decimal | float | int | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _yuan(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


class OrderGenerator:
    """Draws orders for the stores of `business`; `anomaly_rate` is the anomalous share."""

    def __init__(
        self,
        business: Business,
        *,
        seed: int = 0,
        anomaly_rate: float = 0.1,
        anomaly_kinds: Sequence[AnomalyKind] | None = None,
    ) -> None:
        self.business = business
        self.rng = random.Random(seed)
        self.anomaly_rate = anomaly_rate
        self.anomaly_kinds: tuple[AnomalyKind, ...] = tuple(anomaly_kinds or AnomalyKind)

    # -- public ------------------------------------------------------------------------------

    def generate(
        self,
        *,
        now: float,
        day_seq: int = 1,
        store_code: str | None = None,
        anomaly: AnomalyKind | str | None = None,
        order_id: int | None = None,
    ) -> GeneratedOrder:
        """One order placed at `now` (unix seconds).

        `anomaly`: None draws by `anomaly_rate`; `"none"` forces a clean order; a kind forces it.
        The parts are drawn in a fixed order (items, money, recipient, the rest), so a seed
        keeps giving the same orders.
        """
        rng = self.rng
        store = self.business.store(store_code) if store_code else rng.choice(self.business.stores)
        kind = self._pick_anomaly(anomaly)
        service = store.order_type == "service"
        lines = self._order_lines(store, kind)
        money = self._money(lines, kind, service)
        data = self._recipient_fields(store, kind)
        platform_delivery = not store.self_delivery
        ctime = int(now)
        data |= {
            "order_id": order_id or rng.randrange(27_000_000_000_000_000, 28_000_000_000_000_000),
            "wm_order_id_view": rng.randrange(10_000_000_000_000_000, 11_000_000_000_000_000),
            "app_poi_code": store.code,
            "wm_poi_name": store.name,
            "wm_poi_address": store.address,
            "wm_poi_phone": store.phone,
            **money,
            "caution": rng.choice(SERVICE_CAUTIONS if service else GOODS_CAUTIONS),
            "status": int(OrderStatus.SUBMITTED),
            "ctime": ctime,
            "utime": ctime,
            "delivery_time": self._appointment(now) if service else 0,
            "day_seq": day_seq,
            "pay_type": 2,
            "pick_type": 0,
            "is_third_shipping": 0,
            "logistics_code": (
                rng.choice(PLATFORM_DELIVERY_CODES) if platform_delivery else SELF_DELIVERY_CODE
            ),
            "is_pre_sale_order": False,
            "city_id": SHANGHAI_CITY_ID,
            "detail": lines,
        }
        if not service:
            data["dinners_number"] = rng.randint(1, 4)
        self._invoice(data)
        data["poi_receive_detail"] = self._receive_detail(data, data["extras"], platform_delivery)
        order = OrderPush.model_validate(data)
        return GeneratedOrder(order=order, anomaly=kind, platform_delivery=platform_delivery)

    # -- parts -------------------------------------------------------------------------------

    def _order_lines(self, store: Store, kind: AnomalyKind | None) -> list[dict[str, Any]]:
        """The items, with the unknown or prohibited item or the wrong price an anomaly adds."""
        rng = self.rng
        lines = self._lines(store)
        if kind is AnomalyKind.UNKNOWN_ITEM:
            lines.append(self._unknown_line())
        elif kind is AnomalyKind.PROHIBITED_ITEM:
            prohibited = [item for item in self.business.catalogue if item.prohibited]
            lines.append(self._line(rng.choice(prohibited), 1))
        elif kind is AnomalyKind.WRONG_PRICE:
            line = rng.choice(lines)
            factor = Decimal(str(rng.choice((0.1, 0.5, 2, 3))))
            line["price"] = max(_money(Decimal(str(line["price"])) * factor), CENT)
        return lines

    def _money(
        self, lines: list[dict[str, Any]], kind: AnomalyKind | None, service: bool
    ) -> dict[str, Any]:
        """Shipping, discounts and totals; an anomaly may give away too much or misstate the
        total (R2.2.3)."""
        rng = self.rng
        shipping = ZERO if service else _money(rng.choice(("3", "4", "5", "6.5")))
        subtotal = sum(
            (
                Decimal(str(x["price"])) * x["quantity"]
                + Decimal(str(x["box_num"])) * Decimal(str(x["box_price"]))
                for x in lines
            ),
            ZERO,
        )
        original = _money(subtotal + shipping)
        if kind is AnomalyKind.EXCESSIVE_DISCOUNT:
            reduce = _money((original * Decimal("0.85")).to_integral_value())
            extras = [self._discount(DiscountType.VOUCHER, reduce, ZERO, "商家特价券")]
        else:
            extras = self._discounts(subtotal, service)
        total = original - sum((Decimal(str(e["reduce_fee"])) for e in extras), ZERO)
        if kind is AnomalyKind.TOTAL_MISMATCH:
            delta = _money(rng.choice(("5", "8.8", "12", "20")))
            total = total + delta if total <= delta * 2 or rng.random() < 0.5 else total - delta
        return {
            "shipping_fee": shipping,
            "total": _money(total),
            "original_price": original,
            "extras": extras,
        }

    def _recipient_fields(self, store: Store, kind: AnomalyKind | None) -> dict[str, Any]:
        """Who receives the order and where; an anomaly may spoil the phone or the address
        (R2.2.1)."""
        rng = self.rng
        name, phone, backup = self._recipient()
        if kind is AnomalyKind.BAD_PHONE:
            phone, backup = rng.choice(BAD_PHONES), []
        address, lat, lon = self._address(store)
        coordinates: tuple[float, float] | None = (lat, lon)
        if kind is AnomalyKind.MISSING_ADDRESS:
            address = rng.choice(("", f"上海市{rng.choice(self._districts(store))}"))
            coordinates = None
        elif kind is AnomalyKind.FAR_ADDRESS:
            template, lat0, lon0 = rng.choice(FAR_PLACES)
            address = template.format(n=rng.randint(1, 800))
            coordinates = (
                round(lat0 + rng.uniform(-0.01, 0.01), 6),
                round(lon0 + rng.uniform(-0.01, 0.01), 6),
            )
        return {
            "recipient_name": name,
            "recipient_phone": phone,
            "backup_recipient_phone": backup,
            "recipient_address": address,
            "latitude": coordinates[0] if coordinates else None,
            "longitude": coordinates[1] if coordinates else None,
        }

    def _invoice(self, data: dict[str, Any]) -> None:
        # Real pushes carry these fields empty on most orders, and sign them empty.
        data.update(has_invoiced=0, invoice_title="", taxpayer_id="", shipper_phone="")
        if self.rng.random() < 0.1:
            data.update(has_invoiced=1, invoice_title=self.rng.choice(COMPANY_NAMES))
            data["taxpayer_id"] = "91310104MA1FR" + "".join(
                self.rng.choices("0123456789ABCDEF", k=5)
            )

    def _pick_anomaly(self, anomaly: AnomalyKind | str | None) -> AnomalyKind | None:
        if anomaly == NO_ANOMALY:
            return None
        if anomaly is not None:
            return AnomalyKind(anomaly)
        if self.anomaly_kinds and self.rng.random() < self.anomaly_rate:
            return self.rng.choice(self.anomaly_kinds)
        return None

    def _line(self, item: CatalogueItem, quantity: int) -> dict[str, Any]:
        goods = item.kind == "goods"
        properties = FOOD_PROPERTIES.get(item.scope, ("",))
        return {
            "app_food_code": item.sku,
            "food_name": item.name,
            "sku_id": item.sku,
            "quantity": quantity,
            "price": item.price,
            "box_num": Decimal(quantity) if goods else ZERO,
            "box_price": item.box_price,
            "unit": "份" if goods else "次",
            "spec": "",
            "food_discount": Decimal(1),
            "food_property": self.rng.choice(properties),
            "cart_id": 0,
        }

    def _lines(self, store: Store) -> list[dict[str, Any]]:
        rng = self.rng
        items = self.business.items_for(store)
        if store.order_type == "service":
            return [self._line(rng.choice(items), 1)]
        count = rng.choices((1, 2, 3, 4), weights=(3, 4, 2, 1))[0]
        chosen = rng.sample(items, k=min(count, len(items)))
        return [self._line(item, rng.choices((1, 2, 3), weights=(14, 5, 1))[0]) for item in chosen]

    def _unknown_line(self) -> dict[str, Any]:
        rng = self.rng
        code = f"X-{rng.randint(100, 999)}"
        return {
            "app_food_code": code,
            "food_name": rng.choice(UNKNOWN_ITEM_NAMES),
            "sku_id": code,
            "quantity": 1,
            "price": _money(rng.choice((18, 28, 38))),
            "box_num": Decimal(1),
            "box_price": _money(1),
            "unit": "份",
            "spec": "",
            "food_discount": Decimal(1),
            "food_property": "",
            "cart_id": 0,
        }

    def _discount(
        self, kind: DiscountType, reduce: Decimal, mt_charge: Decimal, remark: str
    ) -> dict[str, Any]:
        return {
            "act_detail_id": self.rng.randrange(100_000_000, 999_999_999),
            "reduce_fee": _money(reduce),
            "mt_charge": _money(mt_charge),
            "poi_charge": _money(reduce - mt_charge),
            "remark": remark,
            "type": int(kind),
        }

    def _discounts(self, subtotal: Decimal, service: bool) -> list[dict[str, Any]]:
        rng = self.rng
        out: list[dict[str, Any]] = []
        if service:
            if rng.random() < 0.3:
                reduce = Decimal(rng.choice((10, 15, 20)))
                out.append(self._discount(DiscountType.VOUCHER, reduce, ZERO, "到家服务券"))
            return out
        if rng.random() < 0.7:
            for threshold, reduce in SPEND_TIERS:
                if subtotal >= threshold:
                    mt = Decimal(rng.choice((0, 1, 2)))
                    remark = f"满{_yuan(threshold)}元减{_yuan(reduce)}元"
                    out.append(self._discount(DiscountType.SPEND_X_SAVE_Y, reduce, mt, remark))
                    break
        if subtotal >= 20 and rng.random() < 0.15:
            out.append(
                self._discount(DiscountType.FIRST_ORDER, Decimal(5), Decimal(2), "新客立减5元")
            )
        if subtotal >= 20 and rng.random() < 0.1:
            out.append(
                self._discount(DiscountType.COUPON, Decimal(3), Decimal(3), "美团红包抵扣3元")
            )
        # A clean order never gives away more than 40% of the goods.
        while out and sum(Decimal(str(e["reduce_fee"])) for e in out) > subtotal * Decimal("0.4"):
            out.pop()
        return out

    def _recipient(self) -> tuple[str, str, list[str]]:
        rng = self.rng
        name = f"{rng.choice(SURNAMES)}({rng.choice(TITLES)})"
        mobile = rng.choice(MOBILE_PREFIXES) + "".join(rng.choices("0123456789", k=8))
        if rng.random() < 0.7:
            # Privacy number: a virtual line plus an extension, kept as text end to end.
            phone = f"{mobile}_{rng.randint(0, 9999):04d}"
            backup = [f"{mobile}_{rng.randint(0, 9999):04d}"] if rng.random() < 0.5 else []
            return name, phone, backup
        return name, mobile, []

    def _districts(self, store: Store) -> tuple[str, ...]:
        districts = DISTRICTS_BY_REGION.get(store.region, ("徐汇区",))
        if store.delivery_radius_km > 8:
            # A wide service area crosses into the neighbouring districts.
            districts = (*districts, "长宁区", "闵行区")
        return districts

    def _address(self, store: Store) -> tuple[str, float, float]:
        rng = self.rng
        district = rng.choice(self._districts(store))
        street = rng.choice(STREETS[district])
        compound = rng.choice(COMPOUNDS)
        lane = rng.randint(1, 1200)
        door = f"{rng.randint(1, 30)}号楼{rng.randint(1, 30)}{rng.randint(1, 4):02d}室"
        if rng.random() < 0.5:
            address = f"{compound}{door}@#上海市{district}{street}{lane}弄{compound}"
        else:
            address = f"上海市{district}{street}{lane}弄{compound}{door}"
        distance = store.delivery_radius_km * 0.8 * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        lat = store.latitude + distance * math.cos(angle) / KM_PER_DEGREE_LAT
        lon = store.longitude + distance * math.sin(angle) / (
            KM_PER_DEGREE_LAT * math.cos(math.radians(store.latitude))
        )
        return address, round(lat, 6), round(lon, 6)

    def _appointment(self, now: float) -> int:
        """A service slot 1–7 days ahead, on the hour between 09:00 and 17:00 platform time."""
        rng = self.rng
        day = datetime.fromtimestamp(now, PLATFORM_TZ).date() + timedelta(days=rng.randint(1, 7))
        start = datetime(day.year, day.month, day.day, rng.choice((9, 11, 13, 15, 17)), 0,
                         tzinfo=PLATFORM_TZ)  # fmt: skip
        return int(start.timestamp())

    def _receive_detail(
        self, data: dict[str, Any], extras: list[dict[str, Any]], platform_delivery: bool
    ) -> dict[str, Any]:
        total = Decimal(str(data["total"]))
        mt_share = sum((Decimal(str(e["mt_charge"])) for e in extras), ZERO)
        commission = _money(total * Decimal("0.08"))
        logistics = Decimal(str(data["shipping_fee"])) if platform_delivery else ZERO
        receive = total + mt_share - commission - logistics

        def cents(value: Decimal) -> int:
            return int((value * 100).to_integral_value())

        return {
            "onlinePayment": cents(total),
            "wmPoiReceiveCent": cents(receive),
            "foodShareFeeChargeByPoi": cents(commission),
            "logisticsFee": cents(logistics),
        }
