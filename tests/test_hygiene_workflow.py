"""A hygiene run on the time-skipping server with a real store: phones cleaned, a bad email
cleared, duplicates merged, the unengaged sunset, and a report that counts what the audit holds;
a dry run changes nothing; continue-as-new holds; a run whose worker is killed mid-batch
finishes on another worker without changing a contact twice; and the deliverability check
against a local DNS stand-in."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from sqlalchemy import Table, insert, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.hygiene import HygieneActivities
from journeys.events import OPENED
from journeys.hygiene.changes import HygienePolicy
from journeys.hygiene.rules import Candidate, DuplicateGroup
from journeys.hygiene.runs import HygieneInput, HygieneProgress, HygieneReport
from journeys.models import JourneyEvent
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.store.schema import contact_aliases, contacts, hygiene_changes, tags
from tests.temporal_fixtures import Stack
from tests.test_pii_in_history import decoded_history
from workflows.hygiene import HygieneWorkflow

# (id, email, phone, country, days since created)
PEOPLE: list[tuple[str, str | None, str | None, str | None, int]] = [
    ("c01", "ann@example.com", "650 253 0000", None, 10),  # US by default: phone normalised
    ("c02", "bob@example.com", "12", "PL", 10),  # no number anywhere: cleared
    ("c03", "not-an-address", None, None, 10),  # bad email: cleared
    ("c04", "Dup@Example.com", None, None, 30),  # c05 is the same person, older record
    ("c05", "dup@example.com", None, None, 5),
    ("c06", None, "+48601234567", "PL", 40),  # c07 is the same phone, once it is cleaned
    ("c07", None, "601 234 567", "PL", 3),
    ("c08", "old@example.com", None, None, 400),  # nothing for 400 days: sunset
    ("c09", "fan@example.com", None, None, 400),  # old, but opened an email 10 days ago
]
# What a run leaves in the audit: (contact, kind).
AUDITED = {
    ("c01", "phone_normalised"),
    ("c02", "phone_invalid"),
    ("c03", "email_invalid"),
    ("c05", "merged"),
    ("c07", "phone_normalised"),
    ("c07", "merged"),
    ("c08", "sunset"),
}
# ... and the contacts afterwards: (id, email, phone).
CLEANED = [
    ("c01", "ann@example.com", "+16502530000"),
    ("c02", "bob@example.com", None),
    ("c03", None, None),
    ("c04", "Dup@Example.com", None),
    ("c06", None, "+48601234567"),
    ("c08", "old@example.com", None),
    ("c09", "fan@example.com", None),
]


async def write(store: ContactStore, table: Table, rows: list[dict[str, Any]]) -> None:
    def run() -> None:
        with store.engine.begin() as conn:
            conn.execute(insert(table), rows)

    await asyncio.to_thread(run)


async def rows(store: ContactStore, table: Table, *columns: str) -> list[tuple[Any, ...]]:
    def read() -> list[tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(select(*(table.c[c] for c in columns))))

    return await asyncio.to_thread(read)


async def add_people(
    store: ContactStore,
    now: datetime,
    people: Sequence[tuple[str, str | None, str | None, str | None, int]] = PEOPLE,
) -> None:
    """Contacts as an old import left them (phones not E.164, addresses unchecked): written
    to the table directly, as the import validates today. Their ages count back from `now`, the
    test server's clock (skipped ahead by the tests before)."""
    await write(
        store,
        contacts,
        [
            {
                "id": cid,
                "email": email,
                "phone": phone,
                "time_zone": "UTC",
                "locale": "en",
                "attributes": {"country": country} if country else {},
                "consent": {"email": True},
                "in_mobile_app": False,
                "web_push": False,
                "created_at": now - timedelta(days=age),
                "updated_at": now - timedelta(days=age),
            }
            for cid, email, phone, country, age in people
        ],
    )
    if any(p[0] == "c09" for p in people):
        await store.record_event(
            "c09", JourneyEvent(kind=OPENED, occurred_at=now - timedelta(days=10))
        )


async def audit(store: ContactStore) -> list[tuple[str, str]]:
    return await rows(store, hygiene_changes, "contact_id", "kind")


async def hygiene(
    client: Client, task_queue: str, policy: HygienePolicy, batches_per_run: int = 100
) -> tuple[str, HygieneReport]:
    handle = await client.start_workflow(
        HygieneWorkflow.run,
        HygieneInput(policy=policy, batches_per_run=batches_per_run),
        id=f"hygiene-test-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    return handle.id, await handle.result()


async def assert_cleaned(store: ContactStore, report: HygieneReport) -> None:
    assert await rows(store, contacts, "id", "email", "phone") == CLEANED
    assert await rows(store, contact_aliases, "merged_id", "survivor_id") == [
        ("c05", "c04"),
        ("c07", "c06"),
    ]
    assert await rows(store, tags, "contact_id", "tag") == [("c08", "SUNSET")]
    audited = await audit(store)
    assert set(audited) == AUDITED and len(audited) == len(AUDITED)
    assert report.counts == Counter(kind for _, kind in audited)
    assert (report.contacts, report.groups, report.dry_run) == (len(PEOPLE), 2, False)
    assert {r[0] for r in await rows(store, hygiene_changes, "run_id")} == {report.run_id}


async def test_a_run_cleans_merges_sunsets_and_reports_what_the_audit_holds(
    stack: Stack,
) -> None:
    await add_people(stack.store, await stack.env.get_current_time())
    workflow_id, report = await hygiene(
        stack.env.client, stack.settings.task_queue, HygienePolicy()
    )
    await assert_cleaned(stack.store, report)
    # The history keeps ids, cursors and counts: no address or number, not even in the cursor
    # of the groups (whose keys are them).
    text = await decoded_history(stack.env.client, workflow_id)
    assert '"c09"' in text and '"merged"' in text  # decoded
    for _, email, phone, _, _ in PEOPLE:
        for value in (email, email and email.lower(), phone):
            assert not value or len(value) < 5 or value not in text  # "12" is in any text
    assert "+16502530000" not in text and "+48601234567" not in text


async def test_a_dry_run_reports_and_changes_nothing(stack: Stack) -> None:
    await add_people(stack.store, await stack.env.get_current_time())
    before = await rows(stack.store, contacts, "id", "email", "phone", "updated_at")
    _, report = await hygiene(
        stack.env.client, stack.settings.task_queue, HygienePolicy(dry_run=True)
    )
    assert await rows(stack.store, contacts, "id", "email", "phone", "updated_at") == before
    assert await audit(stack.store) == []
    assert await rows(stack.store, contact_aliases, "merged_id") == []
    assert await rows(stack.store, tags, "contact_id") == []
    # The phones are not cleaned in a dry run, so c07's number matches nobody's yet.
    assert report.dry_run and report.counts == {
        "phone_normalised": 2,
        "phone_invalid": 1,
        "email_invalid": 1,
        "merged": 1,
        "sunset": 1,
    }


async def runs_of(client: Client, workflow_id: str, first_run_id: str) -> list[str]:
    """The runs of a workflow from its first, following each continue-as-new."""
    chain = [first_run_id]
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=chain[-1]).fetch_history()
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return chain
        chain.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def test_a_run_of_many_batches_continues_as_new_and_finishes(stack: Stack) -> None:
    await add_people(stack.store, await stack.env.get_current_time())
    client = stack.env.client
    handle = await client.start_workflow(
        HygieneWorkflow.run,
        HygieneInput(policy=HygienePolicy(batch_size=2), batches_per_run=2),
        id=f"hygiene-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.task_queue,
    )
    report = await handle.result()
    await assert_cleaned(stack.store, report)
    # 9 contacts in 5 batches and 2 groups in 2 (the last one empty), 2 batches a run.
    assert handle.first_execution_run_id is not None
    assert len(await runs_of(client, handle.id, handle.first_execution_run_id)) == 4


class StopsMidBatch:
    """The store, but the `at`th call of `method` (`apply_hygiene`: a contact's changes,
    `merge_contacts`: a merge) blocks for ever, as in a worker about to be killed."""

    def __init__(self, store: ContactStore, method: str, at: int) -> None:
        self._store, self._method, self._at, self._calls = store, method, at, 0
        self.blocked = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if name != self._method:
            return found

        async def blocking(*args: Any) -> Any:
            self._calls += 1
            if self._calls == self._at:
                self.blocked.set()
                await asyncio.Event().wait()
            return await found(*args)

        return blocking


class Reads:
    """The store, noting where each read of candidates or of duplicate groups starts."""

    def __init__(self, store: ContactStore) -> None:
        self._store = store
        self.after: list[str | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def hygiene_candidates(self, after_id: str | None, limit: int) -> list[Candidate]:
        self.after.append(after_id)
        return await self._store.hygiene_candidates(after_id, limit)

    async def duplicate_groups(self, after_key: str | None, limit: int) -> list[DuplicateGroup]:
        self.after.append(after_key)
        return await self._store.duplicate_groups(after_key, limit)


@asynccontextmanager
async def hygiene_worker(
    env: WorkflowEnvironment, store: Any, settings: Settings, task_queue: str
) -> AsyncIterator[asyncio.Task[None]]:
    activities = HygieneActivities(store, settings)
    worker = Worker(
        env.client,
        task_queue=task_queue,
        workflows=[HygieneWorkflow],
        activities=[
            activities.clean_contacts,
            activities.merge_duplicates,
            activities.count_hygiene_changes,
        ],
    )
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        try:
            await task
        except BaseException:  # cancelled: the worker is gone
            pass


@pytest.mark.parametrize(
    ("method", "at", "changed_before", "resumed_after"),
    [
        # Cleaning: the 4th contact with changes is c07, the 7th of the batch.
        ("apply_hygiene", 4, {"c01", "c02", "c03"}, "c01"),
        # Merging: c05 into c04 was done (and heartbeated), c07 into c06 is cut off.
        ("merge_contacts", 2, {"c01", "c02", "c03", "c05", "c07", "c08"}, "email:dup@example.com"),
    ],
)
async def test_a_killed_run_resumes_without_changing_a_contact_twice(
    dev_temporal: WorkflowEnvironment,
    store: ContactStore,
    settings: Settings,
    method: str,
    at: int,
    changed_before: set[str],
    resumed_after: str,
) -> None:
    # On the dev server: the time-skipping server hands a task to the poll of a worker that
    # is gone and never again to another.
    env, queue = dev_temporal, f"hygiene-{uuid.uuid4().hex[:8]}"
    await add_people(store, datetime.now(UTC))
    stopping = StopsMidBatch(store, method, at)
    async with hygiene_worker(env, stopping, settings, queue) as first:
        handle = await env.client.start_workflow(
            HygieneWorkflow.run,
            HygieneInput(policy=HygienePolicy(batch_size=9)),
            id=f"hygiene-test-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        async with asyncio.timeout(20):
            await stopping.blocked.wait()
        assert {c for c, _ in await audit(store)} == changed_before
        first.cancel()
    reads = Reads(store)
    async with hygiene_worker(env, reads, settings, queue):
        async with asyncio.timeout(60):
            report = await handle.result()
        progress = await handle.query(HygieneWorkflow.progress)
    await assert_cleaned(store, report)
    # The batch went on from its last heartbeat, not from the start.
    assert reads.after[0] is not None and reads.after[0] >= resumed_after
    assert progress == HygieneProgress(
        phase="report", cursor=None, read={"clean": 9, "dedup": 2}, counts=progress.counts
    )


class DnsStandIn(asyncio.DatagramProtocol):
    """A name server on 127.0.0.1: `withmail.org` has a mail server, `nomail.org` does not exist,
    `bare.org` exists with no mail server or address, `slow.org` is never answered."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text()
        self.asked.append(f"{name} {dns.rdatatype.to_text(question.rdtype)}")
        response = dns.message.make_response(query)
        if name == "slow.org.":
            return
        if name == "nomail.org.":
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif name == "withmail.org." and question.rdtype == dns.rdatatype.MX:
            response.answer.append(
                dns.rrset.from_text(name, 300, "IN", "MX", "10 mx.withmail.org.")
            )
        self.transport.sendto(response.to_wire(), addr)


async def test_deliverability_clears_addresses_whose_domain_takes_no_mail(
    time_skipping: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> None:
    loop = asyncio.get_running_loop()
    transport, dns_server = await loop.create_datagram_endpoint(
        DnsStandIn, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        await add_people(
            store,
            await time_skipping.get_current_time(),
            [
                ("d1", "ann@withmail.org", None, None, 1),
                ("d2", "bob@WITHMAIL.org", None, None, 1),
                ("d3", "cid@nomail.org", None, None, 1),
                ("d4", "dee@bare.org", None, None, 1),
                ("d5", "eve@slow.org", None, None, 1),
            ],
        )
        checking = settings.model_copy(
            update={"dns_server": f"127.0.0.1:{port}", "dns_timeout": 0.3}
        )
        queue = f"hygiene-{uuid.uuid4().hex[:8]}"
        async with hygiene_worker(time_skipping, store, checking, queue):
            _, report = await hygiene(
                time_skipping.client, queue, HygienePolicy(check_deliverability=True)
            )
    finally:
        transport.close()
    assert await rows(store, contacts, "id", "email") == [
        ("d1", "ann@withmail.org"),
        ("d2", "bob@WITHMAIL.org"),
        ("d3", None),
        ("d4", None),
        ("d5", "eve@slow.org"),  # no answer in time: kept
    ]
    assert await audit(store) == [("d3", "email_undeliverable"), ("d4", "email_undeliverable")]
    assert report.counts == {"email_undeliverable": 2}
    # Each domain asked once (the two addresses at withmail.org share the answer); a domain
    # without MX is asked for its address too.
    asked = Counter(q for q in dns_server.asked if not q.startswith("slow.org."))
    assert asked == Counter(
        ["withmail.org. MX", "nomail.org. MX", "bare.org. MX", "bare.org. A", "bare.org. AAAA"]
    )
