"""The words of every notification, in Chinese (the default) and English.

A text names the order by its day number and store, says what is needed and by when: people
act on a robot message in a busy kitchen, not on an order id. Facts the workflow did not give
are left blank rather than failing the notification: a text is never worth a lost message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from infra.settings import settings
from schemas.messages import FeedbackKind
from schemas.notices import Language, Topic
from schemas.order import Stage
from schemas.policy import Clause
from schemas.review import AnomalyKind

_ZH, _EN = Language.ZH_CN, Language.EN

TEXTS: dict[Topic, dict[Language, tuple[str, str]]] = {
    Topic.ASSIGNED: {
        _ZH: ("新订单分配给您", "{brief}"),
        _EN: ("A new order is yours", "{brief}"),
    },
    Topic.CHANGED: {
        _ZH: ("订单已修改，请重新确认", "顾客修改了{fields}，请与顾客重新确认。"),
        _EN: (
            "Order changed: confirm again",
            "The customer changed {fields}. Confirm with the customer again.",
        ),
    },
    Topic.VISIT: {
        _ZH: ("上门服务 {slot_at}", "{brief}\n请提前与顾客确认时间和地址。"),
        _EN: ("Visit at {slot_at}", "{brief}\nRe-confirm time and place with the customer."),
    },
    Topic.VISIT_MOVED: {
        _ZH: ("上门时间改为 {slot_at}", "{brief}\n请与顾客确认新的时间。"),
        _EN: ("Visit moved to {slot_at}", "{brief}\nRe-confirm the new time with the customer."),
    },
    Topic.CANCELLED_FOR_STAFF: {
        _ZH: ("订单已取消", "原因：{reason}。无需继续处理。"),
        _EN: ("Order cancelled", "Reason: {reason}. Nothing more to do on it."),
    },
    Topic.FEEDBACK_OPENED: {
        _ZH: ("顾客反馈 #{case}（{kind}，第{round}轮）", "{text}"),
        _EN: ("Feedback #{case} ({kind}, round {round})", "{text}"),
    },
    Topic.REMINDER: {
        _ZH: ("顾客在催单", "当前阶段：{stage}。请回复催单 {remind_id}。"),
        _EN: ("The customer is waiting", "Stage {stage}. Reply with reply-reminder {remind_id}."),
    },
    Topic.DEADLINE_MISSED: {
        _ZH: ("{clause}超时", "应于 {due} 完成，最晚 {hard_at}。当前阶段：{stage}。"),
        _EN: ("{clause} deadline missed", "Due {due}; hard limit {hard_at}. Stage: {stage}."),
    },
    Topic.HARD_LIMIT: {
        _ZH: ("{clause}超过最后期限", "已升级给您处理。当前阶段：{stage}。\n{brief}"),
        _EN: ("{clause} past its hard limit", "Escalated to you. Stage: {stage}.\n{brief}"),
    },
    Topic.NOT_RELEASED: {
        _ZH: ("{what}未释放", "取消订单时未能释放{what}（{error}），请手工释放。"),
        _EN: (
            "{what} not released",
            "Cancelling the order could not release its {what} ({error}). Release it by hand.",
        ),
    },
    Topic.FEEDBACK_ESCALATED: {
        _ZH: ("反馈 #{case} 仍未解决", "经过{round}轮：{text}。现由您处理。"),
        _EN: ("Feedback #{case} still unsatisfied", "After {round} rounds: {text}. It is yours."),
    },
    Topic.REFUND_REQUEST: {
        _ZH: ("退款申请待决定", "{extent}退款：{reason}。请决定。"),
        _EN: ("Refund request to decide", "{extent} refund: {reason}. Decide it."),
    },
    Topic.LOW_STOCK: {
        _ZH: ("库存不足", "已到或低于警戒线：{items}"),
        _EN: ("Low stock", "At or under the low-water mark: {items}"),
    },
    Topic.ANOMALY_OPENED: {
        _ZH: ("异常订单（{kind}）", "{detail}。订单已暂停，等待您的决定。"),
        _EN: ("Anomalous order ({kind})", "{detail}. Processing is paused until you decide."),
    },
    Topic.ANOMALY_UNDECIDED: {
        _ZH: ("异常订单待决定", "自 {started_at} 起未决定。"),
        _EN: ("Anomaly undecided", "No decision since {started_at}."),
    },
    Topic.ANOMALY_HARD_LIMIT: {
        _ZH: ("异常订单超过最后期限", "已升级：订单保持暂停直到作出决定。"),
        _EN: ("Anomaly past its hard limit", "Escalated: the order stays paused until decided."),
    },
    Topic.REPORT: {
        _ZH: (
            "{kind}报 {period}",
            "各门店：订单（上期）、按时率、评分\n{figures}\n要点：\n{findings}\n完整报告：{file}",
        ),
        _EN: (
            "{kind} report {period}",
            "Stores: orders (before), on time, rating\n{figures}\nFindings:\n{findings}\n"
            "The whole report: {file}",
        ),
    },
    Topic.PLATFORM_REPORT: {
        _ZH: ("需向美团反映：{kind}", "{text}\n请联系平台对接人并记录答复。"),
        _EN: ("Report to Meituan: {kind}", "{text}\nRaise it with the platform's contact."),
    },
    Topic.CONFIRMED: {
        _ZH: ("您的订单已确认", "预计{what}时间：{promised_at}。{promises}"),
        _EN: ("Your order is confirmed", "Expected {what}: {promised_at}. {promises}"),
    },
    Topic.REJECTED: {
        _ZH: ("您的订单未能接受", "{reason}"),
        _EN: ("Your order could not be accepted", "{reason}"),
    },
    Topic.PROGRESS: {_ZH: ("订单进展", "{note}"), _EN: ("Progress on your order", "{note}")},
    Topic.EXCEPTION_SUBSTITUTED: {
        _ZH: ("关于您的订单", "您的订单有变动：{detail}"),
        _EN: ("About your order", "A change to your order: {detail}"),
    },
    Topic.EXCEPTION_RESCHEDULED: {
        _ZH: ("关于您的订单", "新的预计时间：{promised_at}。{detail}"),
        _EN: ("About your order", "New expected time: {promised_at}. {detail}"),
    },
    Topic.EXCEPTION_CANCELLED: {
        _ZH: ("关于您的订单", "很抱歉，我们不得不取消您的订单：{detail}"),
        _EN: ("About your order", "We have to cancel your order: {detail}"),
    },
    Topic.EXCEPTION_ESCALATED: {
        _ZH: ("关于您的订单", "您的订单遇到问题，我们正在处理：{detail}"),
        _EN: ("About your order", "We are sorting out a problem with your order: {detail}"),
    },
    Topic.DELIVERED: {
        _ZH: ("已送达", "您的订单已送达，祝您用餐愉快！"),
        _EN: ("Delivered", "Your order was delivered. Enjoy!"),
    },
    Topic.SERVICE_COMPLETED: {
        _ZH: ("服务已完成", "请为本次服务评分（1-5）。"),
        _EN: ("Service completed", "Please rate the service (1-5)."),
    },
    Topic.CANCELLED: {
        _ZH: ("您的订单已取消", "{reason}"),
        _EN: ("Your order was cancelled", "{reason}"),
    },
    Topic.FEEDBACK_ANSWER: {
        _ZH: ("关于您的反馈", "{response}"),
        _EN: ("About your feedback", "{response}"),
    },
    Topic.FEEDBACK_RESOLUTION: {
        _ZH: ("您的反馈处理结果", "{resolution}"),
        _EN: ("Resolution of your feedback", "{resolution}"),
    },
    Topic.ORDER_UPDATED: {
        _ZH: ("您的订单已更新", "{note}"),
        _EN: ("Your order was updated", "{note}"),
    },
}

CLAUSE_NAMES: dict[str, str] = {
    Clause.RECEIVE: "接单",
    Clause.REVIEW: "审核",
    Clause.ACCEPT: "平台确认",
    Clause.ASSIGN: "分配",
    Clause.CONFIRM: "与顾客确认",
    Clause.PREPARE: "备货",
    Clause.DELIVER: "配送",
    Clause.SCHEDULE: "排期",
    Clause.RECONFIRM_VISIT: "上门前确认",
    Clause.EXECUTE: "服务执行",
    Clause.FEEDBACK_RESPONSE: "反馈响应",
    Clause.FEEDBACK_RESOLUTION: "反馈处理",
    Clause.REMINDER_REPLY: "催单回复",
    Clause.REFUND_DECISION: "退款决定",
    Clause.ANOMALY_DECISION: "异常决定",
}

STAGE_NAMES: dict[str, str] = {
    Stage.RECEIVED: "已接收",
    Stage.REVIEWING: "审核中",
    Stage.ACCEPTED: "已接单",
    Stage.ASSIGNED: "已分配",
    Stage.CONFIRMED: "已确认",
    Stage.IN_PROGRESS: "进行中",
    Stage.DELIVERING: "配送中",
    Stage.DELIVERED: "已送达",
    Stage.CLOSED: "已完成",
    Stage.REJECTED: "已拒绝",
    Stage.CANCELLED: "已取消",
    Stage.ON_HOLD: "暂停",
}


WORDS: dict[str, dict[str, str]] = {
    "clause": CLAUSE_NAMES,
    "stage": STAGE_NAMES,
    "kind": {  # the anomaly's (R5.1) and the feedback's (R4.2.1) kinds
        AnomalyKind.INFO: "信息有误",
        AnomalyKind.PRICE: "价格异常",
        AnomalyKind.PROHIBITED: "违禁内容",
        AnomalyKind.FRAUD: "恶意或欺诈",
        AnomalyKind.OTHER: "其他",
        FeedbackKind.INQUIRY: "咨询",
        FeedbackKind.COMPLAINT: "投诉",
        FeedbackKind.SUGGESTION: "建议",
        FeedbackKind.DISPUTE: "配送争议",
        FeedbackKind.REMINDER: "催单",
        FeedbackKind.REFUND: "退款",
        "daily": "日",
        "weekly": "周",
    },
    "extent": {"partial": "部分", "full": "全额"},
    "what": {
        "delivery": "送达",
        "visit": "上门",
        "stock": "库存",
        "booking": "预约",
        "assignee capacity": "负责人的接单量",
    },
    "note": {"correct_info": "订单信息已更正。", "adjust_price": "订单价格已调整。"},
}
"""Our own names in a fact (a clause, a stage, a kind, ...), in Chinese; English shows them as
they are unless `WORDS_EN` has a sentence for them."""

WORDS_EN: dict[str, dict[str, str]] = {
    "note": {
        "correct_info": "Your order's details were corrected.",
        "adjust_price": "Your order's price was adjusted.",
    },
}


@dataclass(frozen=True)
class Heading:
    """Which order, where: the first line of every staff text."""

    order_id: str
    day_seq: int | None
    store_name: str | None

    def line(self, language: Language) -> str:
        store = self.store_name or ""
        if not self.order_id:  # about no one order: a report
            return store
        if self.day_seq is None:
            return f"{store} {'订单' if language is _ZH else 'order'} {self.order_id}".strip()
        return f"#{self.day_seq} {store}".strip()


class _Facts(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def moment(value: datetime, language: Language) -> str:
    """In the business's time zone (ORDERFLOW_TIMEZONE), what stores read; a time without a
    zone is taken to be in it already."""
    zone = settings().business.timezone
    local = value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)
    return local.strftime("%m-%d %H:%M") if language is _ZH else local.strftime("%Y-%m-%d %H:%M")


def _fact(key: str, value: str, language: Language) -> str:
    if key.endswith("_at") or key == "due":
        try:
            return moment(datetime.fromisoformat(value), language)
        except ValueError:
            return value
    if language is _ZH:
        return WORDS.get(key, {}).get(value, value)
    return WORDS_EN.get(key, {}).get(value, value)


def render(
    topic: Topic,
    language: Language,
    facts: Mapping[str, str],
    heading: Heading,
    due_at: datetime | None,
) -> tuple[str, str]:
    """The subject and the text: the order's day number and store first, the deadline last."""
    subject, body = TEXTS[topic][language]
    filled = _Facts({k: _fact(k, v, language) for k, v in facts.items()})
    text = "\n".join(filter(None, (heading.line(language), body.format_map(filled).strip())))
    if due_at is not None:
        by = "请于" if language is _ZH else "By"
        after = "前完成" if language is _ZH else ""
        text += f"\n{by} {moment(due_at, language)} {after}".rstrip()
    return subject.format_map(filled).strip(), text
