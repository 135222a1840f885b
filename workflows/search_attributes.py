"""The contract's search attributes, as typed keys."""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

ORDER_STAGE = SearchAttributeKey.for_keyword("OrderStage")
ORDER_TYPE = SearchAttributeKey.for_keyword("OrderType")
REGION = SearchAttributeKey.for_keyword("Region")
STORE_CODE = SearchAttributeKey.for_keyword("StoreCode")
ASSIGNEE_ID = SearchAttributeKey.for_keyword("AssigneeId")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
ANOMALY_OPEN = SearchAttributeKey.for_bool("AnomalyOpen")

RECEIVED = "received"  # Stage.RECEIVED, the stage every order starts in

ALL = (ORDER_STAGE, ORDER_TYPE, REGION, STORE_CODE, ASSIGNEE_ID, SLA_BREACHED, ANOMALY_OPEN)


def at_start(
    store_code: str, order_type: str | None = None, region: str | None = None
) -> TypedSearchAttributes:
    """What an order is found by from its first moment: its store and stage, and its type and
    region when the starter knows the store (the gateway reads them from `stores`)."""
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(ORDER_STAGE, RECEIVED),
        SearchAttributePair(STORE_CODE, store_code),
    ]
    if order_type:
        pairs.append(SearchAttributePair(ORDER_TYPE, order_type))
    if region:
        pairs.append(SearchAttributePair(REGION, region))
    return TypedSearchAttributes(pairs)
