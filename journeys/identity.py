"""How runs are named and indexed in Temporal. Opaque ids only: never an email or a phone."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

JOURNEY_ID = SearchAttributeKey.for_keyword("JourneyId")
JOURNEY_VERSION = SearchAttributeKey.for_int("JourneyVersion")
CONTACT_ID = SearchAttributeKey.for_keyword("ContactId")
STEP = SearchAttributeKey.for_keyword("Step")
# A plan run: its template, its state (running, finished, cancelled) and who has open tasks in it
# (person ids, opaque like contact ids).
PLAN_TEMPLATE = SearchAttributeKey.for_keyword("PlanTemplate")
PLAN_STATE = SearchAttributeKey.for_keyword("PlanState")
PLAN_OWNERS = SearchAttributeKey.for_keyword_list("PlanOwners")
SEARCH_ATTRIBUTES = (
    JOURNEY_ID,
    JOURNEY_VERSION,
    CONTACT_ID,
    STEP,
    PLAN_TEMPLATE,
    PLAN_STATE,
    PLAN_OWNERS,
)
_INDEXED_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    SearchAttributeIndexedValueType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


def workflow_id(journey_id: str, contact_id: str) -> str:
    """One run per (journey, contact) at a time."""
    return f"journey:{journey_id}:{contact_id}"


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Make the typed search attributes known to the server; those already known stay as they are.

    One at a time, without listing first: the time-skipping test server cannot list them.
    """
    for key in SEARCH_ATTRIBUTES:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace,
                    search_attributes={key.name: _INDEXED_TYPES[key.indexed_value_type]},
                )
            )
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
