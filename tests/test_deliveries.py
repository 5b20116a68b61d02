"""The send protocol every channel goes through (`ChannelActivities.send_once`), with attempts
that stand in for a provider."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import deliveries
from activities.deliveries import (
    Attempt,
    ChannelActivities,
    HandOver,
    Outcome,
    Reconcile,
    Refused,
    Sent,
    resend,
)
from journeys.contacts import Contact
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from tests.channel_fixtures import make_request
from tests.postgres_fixtures import ON_EACH_STORE

ALICE = "alice@example.com"

# The ledger's protocol on each store the workers run on.
pytestmark = ON_EACH_STORE


class Provider:
    """An attempt that raises `error` before or after the hand-over, once, then takes it."""

    def __init__(self, error: BaseException | None = None, after_hand_over: bool = False) -> None:
        self.error = error
        self.after_hand_over = after_hand_over
        self.calls = 0

    async def __call__(
        self, req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        self.calls += 1
        error, self.error = self.error, None
        if error is not None and not self.after_hand_over:
            raise error
        await hand_over()
        if error is not None:
            raise error
        return Sent(f"id-{self.calls}")


async def send(
    store: ContactStore, settings: Settings, attempt: Attempt, reconcile: Reconcile = resend
) -> SendResult:
    contact, suppressed = await store.recipient("c1")
    acts = ChannelActivities(store, settings)
    req = make_request("email")
    return await acts.send_once(req, contact, suppressed, ALICE, attempt, reconcile=reconcile)


@pytest.fixture(autouse=True)
async def contact(store: ContactStore) -> None:
    await store.upsert_contacts([Contact(id="c1", email=ALICE, consent={"email": True})])


async def test_an_error_before_the_hand_over_releases_the_claim(
    store: ContactStore, settings: Settings
) -> None:
    provider = Provider(TimeoutError())

    with pytest.raises(TimeoutError):
        await send(store, settings, provider)
    assert await store.deliveries_of("c1") == []
    assert (await send(store, settings, provider)).provider_id == "id-2"


async def test_a_worker_killed_between_the_claim_and_the_hand_over_leaves_a_send_the_retry_makes(
    store: ContactStore, settings: Settings
) -> None:
    await store.claim_delivery(make_request("email"))  # and the worker died
    provider = Provider()

    retry = await send(store, settings, provider)

    assert (retry.status, retry.provider_id, provider.calls) == ("sent", "id-1", 1)
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["attempt"], row["reconciled"]) == ("sent", 2, None)
    assert (await send(store, settings, provider)).status == "duplicate"
    assert provider.calls == 1


async def test_an_attempt_overtaken_by_its_retry_does_not_send(
    store: ContactStore, settings: Settings
) -> None:
    """A worker presumed dead (heartbeat timeout) still runs its attempt when the retry starts."""
    stalled, go_on = asyncio.Event(), asyncio.Event()

    async def zombie(
        req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        stalled.set()
        await go_on.wait()
        await hand_over()
        raise AssertionError("the overtaken attempt sent")

    first = asyncio.create_task(send(store, settings, zombie))
    await stalled.wait()
    provider = Provider()
    retry = await send(store, settings, provider)
    go_on.set()

    with pytest.raises(ApplicationError, match="later attempt holds"):
        await first
    assert (retry.status, provider.calls) == ("sent", 1)
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["provider_id"]) == ("sent", "id-1")


async def test_an_attempt_cancelled_after_the_hand_over_finishes_and_its_retry_does_not_send(
    store: ContactStore, settings: Settings
) -> None:
    """Temporal took the attempt for dead (its heartbeat timeout passed on a busy server) and
    cancels it while the provider has the message: the attempt waits for the provider's answer
    and records it, so the retry finds the message sent instead of an unknown outcome to send
    again."""
    handed_over, answer = asyncio.Event(), asyncio.Event()

    async def slow_provider(
        req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        await hand_over()
        handed_over.set()
        await answer.wait()
        return Sent("id-slow")

    first = asyncio.create_task(send(store, settings, slow_provider))
    await handed_over.wait()
    for _ in range(2):  # Temporal may cancel more than once
        first.cancel()
        await asyncio.sleep(0.05)
    answer.set()
    assert (await first).status == "sent"
    provider = Provider()
    retry = await send(store, settings, provider)

    assert (retry.status, retry.provider_id, provider.calls) == ("duplicate", "id-slow", 0)
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["provider_id"], row["reconciled"]) == ("sent", "id-slow", None)


async def test_an_attempt_cancelled_while_it_records_the_outcome_records_it(
    store: ContactStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider took the message; the cancellation comes as the ledger records it. A record
    left undone would leave `sending`, which the retry sends again."""
    recording, go_on = asyncio.Event(), asyncio.Event()
    finish = store.finish_delivery

    async def slow_finish(*args: Any, **kwargs: Any) -> bool:
        recording.set()
        await go_on.wait()
        return await finish(*args, **kwargs)

    monkeypatch.setattr(store, "finish_delivery", slow_finish)
    first = asyncio.create_task(send(store, settings, Provider()))
    await recording.wait()
    first.cancel()
    await asyncio.sleep(0.1)
    go_on.set()
    assert (await first).status == "sent"
    monkeypatch.undo()
    provider = Provider()
    assert ((await send(store, settings, provider)).status, provider.calls) == ("duplicate", 0)


async def test_an_attempt_cancelled_before_the_hand_over_stops_and_its_retry_sends(
    store: ContactStore, settings: Settings
) -> None:
    composing = asyncio.Event()

    async def composes_for_ever(
        req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        composing.set()
        await asyncio.Event().wait()
        raise AssertionError("not cancelled")

    first = asyncio.create_task(send(store, settings, composes_for_ever))
    await composing.wait()
    first.cancel()
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await store.deliveries_of("c1") == []  # the claim let go
    provider = Provider()
    assert ((await send(store, settings, provider)).status, provider.calls) == ("sent", 1)


async def test_an_error_after_the_hand_over_is_reconciled_by_the_retry(
    store: ContactStore, settings: Settings
) -> None:
    provider = Provider(ConnectionResetError(), after_hand_over=True)

    with pytest.raises(ConnectionResetError):
        await send(store, settings, provider)
    [row] = await store.deliveries_of("c1")
    assert row["status"] == "sending"
    retry = await send(store, settings, provider)

    # A channel without a way to ask its provider sends a copy the provider takes for the same.
    assert (retry.status, provider.calls) == ("sent", 2)
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["reconciled"]) == ("sent", "resent")


async def test_a_message_the_provider_has_is_not_sent_again(
    store: ContactStore, settings: Settings
) -> None:
    provider = Provider(ConnectionResetError(), after_hand_over=True)
    asked = []

    async def in_the_log(req: SendRequest, address: str, row: dict[str, Any]) -> Sent | None:
        asked.append((address, row["status"]))
        return Sent("found-id")

    with pytest.raises(ConnectionResetError):
        await send(store, settings, provider, in_the_log)
    retry = await send(store, settings, provider, in_the_log)

    assert (retry.status, retry.provider_id, provider.calls) == ("sent", "found-id", 1)
    assert asked == [(ALICE, "sending")]
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["reconciled"]) == ("sent", "found")


async def test_a_resend_not_taken_leaves_the_earlier_copy_to_reconcile(
    store: ContactStore, settings: Settings
) -> None:
    provider = Provider(ConnectionResetError(), after_hand_over=True)
    with pytest.raises(ConnectionResetError):
        await send(store, settings, provider)

    with pytest.raises(TimeoutError):  # before the hand-over this time
        await send(store, settings, Provider(TimeoutError()))

    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["attempt"]) == ("sending", 2)


async def test_a_dead_address_fails_the_send_and_suppresses_the_channel(
    store: ContactStore, settings: Settings
) -> None:
    async def bounces(
        req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        return Refused(f"550 no mailbox {address}", dead_address=True)

    result = await send(store, settings, bounces)

    assert (result.status, result.reason) == ("failed", "550 no mailbox a***@example.com")
    assert await store.suppressed_channels("c1") == {"email"}


async def test_a_send_heartbeats_while_it_runs_and_a_quick_one_not_at_all(
    store: ContactStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So a worker that died mid-send is noticed within the workflow's heartbeat timeout; a send
    over before the first beat is due calls Temporal for none."""
    monkeypatch.setattr(deliveries, "HEARTBEAT_EVERY", 0.05)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, started_time=datetime.now(UTC))
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    quick = await env.run(send, store, settings, Provider())
    assert (quick.status, beats) == ("sent", [])

    async def slow(req: SendRequest, contact: Contact, address: str, hand_over: HandOver) -> Sent:
        await asyncio.sleep(0.3)
        await hand_over()
        return Sent("slow")

    await store.upsert_contacts([Contact(id="c2", email=ALICE, consent={"email": True})])
    contact, suppressed = await store.recipient("c2")
    acts = ChannelActivities(store, settings)
    req = make_request("email").model_copy(update={"contact_id": "c2", "key": "slow"})
    result = await env.run(acts.send_once, req, contact, suppressed, ALICE, slow)
    assert (result.status, len(beats) >= 3) == ("sent", True)


async def test_a_send_that_starts_late_heartbeats_at_once(
    store: ContactStore, settings: Settings
) -> None:
    """Temporal counts the heartbeat timeout from the attempt's start: a send that waited (a
    busy store) before it got to the provider must not wait for its first beat too."""
    env = ActivityEnvironment()
    late = datetime.now(UTC) - timedelta(seconds=deliveries.HEARTBEAT_EVERY)
    env.info = dataclasses.replace(env.info, started_time=late)
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    result = await env.run(send, store, settings, Provider())

    assert (result.status, beats) == ("sent", [()])
