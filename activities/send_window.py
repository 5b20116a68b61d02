"""Compliance at send time, before the message leaves: may it leave now (quiet hours on the
contact's clock, the frequency cap), and if not, until when must it wait or is it skipped. A
send asks `SendWindows.check` itself (`activities.deliveries`); runs from before that ask the
`send_window` activity first."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from temporalio import activity

from journeys.metrics import count_send
from journeys.models import SendRequest, SendWindow, SendWindowRequest, WindowCheck
from journeys.send_window import decide
from journeys.settings import Settings
from journeys.store import ContactStore


class SendWindows:
    """The send policies of the worker's settings, checked against the store."""

    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.store = store
        self.policies = settings.send_policies()

    async def check(self, send: SendRequest, check: WindowCheck) -> SendWindow:
        channel = send.channel
        policy = self.policies[channel]
        if policy.quiet_hours is None and policy.cap is None:
            return SendWindow(action="now")  # nothing to read or record
        # Sends older than the cap's period cannot hold this one back, now or later.
        since = check.now - policy.cap.period if policy.cap else check.now
        window = await self.store.check_send(
            send,
            check.now,
            since,
            lambda zone, sent: decide(
                check.now, ZoneInfo(zone), channel, policy, sent, check.when_capped
            ),
        )
        if window.action == "skip":
            count_send(activity.metric_meter(), send, "capped")
        return window


class SendWindowActivities:
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.windows = SendWindows(store, settings)

    @activity.defn
    async def send_window(self, req: SendWindowRequest) -> SendWindow:
        return await self.windows.check(req.send, req)
