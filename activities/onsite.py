"""On-site messages: queued in the store for the website SDK, which shows them on the contact's
next page visit (a chat prompt or an NPS pop-up) and reports them shown."""

from __future__ import annotations

from temporalio import activity

from activities.deliveries import ChannelActivities, render, start_send
from journeys.models import SendRequest, SendResult
from journeys.templates import ONSITE_KINDS
from journeys.tokens import message_links


class OnsiteActivities(ChannelActivities):
    @activity.defn
    async def send_onsite(self, req: SendRequest) -> SendResult:
        """Queue one templated on-site message for the contact, exactly once per `req.key`.

        Returns failed (queuing nothing) for an unknown contact or one suppressed on `onsite`.
        """
        contact, suppressed = await self.store.recipient(req.contact_id)
        # The address is the website identity: the contact id the site's token carries.
        earlier = await start_send(self.store, req, contact, suppressed, req.contact_id)
        if earlier is not None:
            return earlier
        assert contact is not None  # start_send refused a missing contact
        links = message_links(self.settings, req)
        try:
            parts = render(self.settings, req, contact, links)
            content = {
                "kind": parts.get("kind", ONSITE_KINDS[0]).strip(),
                "body": parts["body"].strip(),
                # Every on-site message can lead to the survey: the seed's chats ask for feedback.
                "nps_url": links["nps"],
            }
            await self.store.queue_onsite(
                req.key, req.contact_id, req.journey_id, req.step_id, content
            )
        except BaseException:
            # Nothing was queued (a template error, the store away): the retry must queue it.
            await self.store.release_delivery(req.key)
            raise
        return await self._record_sent(req, None)
