"""The send protocol every channel goes through (`ChannelActivities.send_once`), with attempts
that stand in for a provider."""

from __future__ import annotations

import pytest

from activities.deliveries import Attempt, ChannelActivities, HandOver, Outcome, Refused, Sent
from journeys.contacts import Contact
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from tests.channel_fixtures import make_request

ALICE = "alice@example.com"


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


async def send(store: ContactStore, settings: Settings, attempt: Attempt) -> SendResult:
    contact, suppressed = await store.recipient("c1")
    acts = ChannelActivities(store, settings)
    return await acts.send_once(make_request("email"), contact, suppressed, ALICE, attempt)


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


async def test_an_error_after_the_hand_over_keeps_the_claim(
    store: ContactStore, settings: Settings
) -> None:
    provider = Provider(ConnectionResetError(), after_hand_over=True)

    with pytest.raises(ConnectionResetError):
        await send(store, settings, provider)
    retry = await send(store, settings, provider)

    assert (retry.status, provider.calls) == ("duplicate", 1)
    [row] = await store.deliveries_of("c1")
    assert row["status"] == "sending"


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
