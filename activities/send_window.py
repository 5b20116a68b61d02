"""Compliance at send time, before a send activity: may the message leave now (quiet hours on the
contact's clock, the frequency cap), and if not, until when must it wait or is it skipped."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from temporalio import activity

from journeys.metrics import count_send
from journeys.models import SendWindow, SendWindowRequest
from journeys.send_window import decide
from journeys.settings import Settings
from journeys.store import ContactStore


class SendWindowActivities:
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.store = store
        self.policies = settings.send_policies()

    @activity.defn
    async def send_window(self, req: SendWindowRequest) -> SendWindow:
        channel = req.send.channel
        policy = self.policies[channel]
        if policy.quiet_hours is None and policy.cap is None:
            return SendWindow(action="now")  # nothing to read or record
        # Sends older than the cap's period cannot hold this one back, now or later.
        since = req.now - policy.cap.period if policy.cap else req.now
        window = await self.store.check_send(
            req.send,
            req.now,
            since,
            lambda zone, sent: decide(
                req.now, ZoneInfo(zone), channel, policy, sent, req.when_capped
            ),
        )
        if window.action == "skip":
            count_send(activity.metric_meter(), req.send, "capped")
        return window
