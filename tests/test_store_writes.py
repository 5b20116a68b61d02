"""What one run writes to the contact store, statement by statement and table by table: the
figures docs/scaling.md sizes a production store with (lead_nurturing, the contact who opens)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from sqlalchemy import event

from tests.scenarios import play, scenario
from tests.temporal_fixtures import Stack

WRITE = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+\"?(\w+)", re.IGNORECASE)


async def test_one_run_writes_the_ledger_three_times_a_send_and_its_path_once_a_step(
    own_stack: Stack,
) -> None:
    # A time-skipping server of its own: it lets days pass (see own_stack).
    stack = own_stack
    opened = scenario("lead_nurturing", "opened")
    await stack.store.upsert_contacts([opened.contact])
    writes: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if match := WRITE.match(statement):
            writes[match[2].lower()] += 1

    event.listen(stack.store.engine, "before_cursor_execute", count)
    try:
        _, result = await play(stack, opened)
    finally:
        event.remove(stack.store.engine, "before_cursor_execute", count)

    assert [v.step for v in result.visits if v.outcome == "sent"] == ["intro", "part_2", "part_3"]
    assert len(stack.mail.messages) == 3
    # Beside the scenario's own set-up (the contact, their tags): per send the ledger's claim,
    # `sending` and `sent`; per record of the path (at each of the two waits and at the end)
    # the entry and its visits since the last record, one statement each.
    run_writes = {table: n for table, n in writes.items() if table not in {"contacts", "tags"}}
    assert run_writes == {"deliveries": 9, "journey_entries": 3, "journey_visits": 3}
