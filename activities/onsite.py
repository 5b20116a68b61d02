"""On-site messages: queued in the store for the website SDK, which shows them on the contact's
next page visit (a chat prompt or an NPS pop-up) and reports them shown.

The queue write is the hand-over and one transaction, so an earlier attempt's unknown outcome is
settled by the queue itself: a message queued under the key was sent, none means nothing left.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.deliveries import ChannelActivities, HandOver, NotTaken, Outcome, Sent, render
from journeys.channels import CHANNELS
from journeys.contacts import Contact
from journeys.models import SendRequest, SendResult
from journeys.templates import ONSITE_KINDS
from journeys.tokens import message_links


def _outcome(error: BaseException, _handed_over: bool) -> Outcome:
    """The store queues a message in one transaction, rolled back on any error: nothing was
    queued, so the retry must queue it."""
    return NotTaken(error)


class OnsiteActivities(ChannelActivities):
    @activity.defn(name=CHANNELS["onsite"].activity)
    async def send_onsite(self, req: SendRequest) -> SendResult:
        """Queue one templated on-site message for the contact, exactly once per `req.key`.

        Returns failed (queuing nothing) for an unknown contact or one suppressed on `onsite`.
        """
        contact, suppressed = await self.store.recipient(req.contact_id)
        # The address is the website identity: the contact id the site's token carries.
        return await self.send_once(
            req, contact, suppressed, req.contact_id, self._queue, _outcome, self._in_queue
        )

    async def _in_queue(self, req: SendRequest, _address: str, _row: dict[str, Any]) -> Sent | None:
        return Sent(None) if await self.store.onsite_queued(req.key) else None

    async def _queue(
        self, req: SendRequest, contact: Contact, _address: str, hand_over: HandOver
    ) -> Outcome:
        links = message_links(self.settings, req)
        parts = render(self.settings, req, contact, links)
        content = {
            "kind": parts.get("kind", ONSITE_KINDS[0]).strip(),
            "body": parts["body"].strip(),
            # Every on-site message can lead to the survey: the seed's chats ask for feedback.
            "nps_url": links["nps"],
        }
        await hand_over()
        await self.store.queue_onsite(req.key, req.contact_id, req.journey_id, req.step_id, content)
        return Sent(None)
