"""A validation error names the field and what is wrong, never the value: messages and pushes
carry a customer's name, phone and address, and errors reach logs and answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meituan.models import OrderPush
from schemas.order import Customer

ADDRESS = "上海市徐汇区宜山路1号"


def test_a_message_error_holds_no_customer_datum() -> None:
    with pytest.raises(ValidationError) as caught:
        Customer.model_validate({"name": ["张三"], "phone": 13812345678, "address": {ADDRESS: 1}})
    text = str(caught.value)
    assert "name" in text and "address" in text
    assert "张三" not in text and ADDRESS not in text and "13812345678" not in text


def test_a_push_error_holds_no_customer_datum() -> None:
    with pytest.raises(ValidationError) as caught:
        OrderPush.model_validate({"order_id": "x", "recipient_address": {"at": ADDRESS}})
    assert ADDRESS not in str(caught.value)
