"""The contract's search attributes, as typed keys."""

from temporalio.common import SearchAttributeKey

ORDER_STAGE = SearchAttributeKey.for_keyword("OrderStage")
ORDER_TYPE = SearchAttributeKey.for_keyword("OrderType")
REGION = SearchAttributeKey.for_keyword("Region")
STORE_CODE = SearchAttributeKey.for_keyword("StoreCode")
ASSIGNEE_ID = SearchAttributeKey.for_keyword("AssigneeId")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
ANOMALY_OPEN = SearchAttributeKey.for_bool("AnomalyOpen")

ALL = (ORDER_STAGE, ORDER_TYPE, REGION, STORE_CODE, ASSIGNEE_ID, SLA_BREACHED, ANOMALY_OPEN)
