"""The channels a journey sends on, each described once: what its templates hold, what a contact
needs to be reached on it, whether that takes their opt-in, and which activity sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The type of a send step's channel; tests check it names exactly the channels of CHANNELS.
Channel = Literal["email", "sms", "web_push", "mobile_push", "onsite"]

# Not a channel: a suppression under this name stops every send that is not transactional, on
# every channel (a contact data hygiene sunset); transactional messages still go.
MARKETING = "marketing"


@dataclass(frozen=True)
class ChannelInfo:
    name: Channel
    # How people read it: "sending SMS 'nudge'", "stop receiving our web push messages".
    display: str
    # The parts of a template, each Jinja2 (see journeys.templates).
    parts: tuple[str, ...]
    optional_parts: tuple[str, ...]
    # What the contact must have to be reached: "contact has no phone number".
    address: str
    # Reaching a person unasked needs their opt-in, under `consent_key` in Contact.consent.
    opt_in: bool
    consent_key: str
    # The activity that sends it; recorded in workflow histories, so it never changes.
    activity: str
    # Defaults of what holds a message back (journeys.send_window), each overridable per channel
    # in settings: no message in these hours of the contact's clock ("21:00-08:00"), and at most
    # COUNT messages in any DURATION ("1/1d"). None: never held back.
    quiet_hours: str | None = None
    frequency_cap: str | None = None

    @property
    def checked_activity(self) -> str:
        """The activity that checks quiet hours and the cap, then sends (the same code as
        `activity`, asked with SendRequest.window). A name of its own: a worker from before the
        check moved into the send does not know it, so it fails such a task rather than send it
        unchecked, and the send is retried until a worker that knows it takes it."""
        return f"{self.activity}_checked"


CHANNELS: dict[str, ChannelInfo] = {
    c.name: c
    for c in (
        ChannelInfo(
            name="email",
            display="email",
            # `html` is the content block of the layout (journeys.email_layout); `preheader`
            # the line inboxes show after the subject; `cta` and `cta_url` a call to action.
            parts=("subject", "text", "html"),
            optional_parts=("preheader", "cta", "cta_url"),
            address="email address",
            opt_in=True,
            consent_key="email",
            activity="send_email",
            frequency_cap="3/7d",
        ),
        ChannelInfo(
            name="sms",
            display="SMS",
            parts=("body",),
            optional_parts=(),
            address="phone number",
            opt_in=True,
            consent_key="sms",
            activity="send_sms",
            quiet_hours="21:00-08:00",
            frequency_cap="1/1d",
        ),
        # `url`: where a tap on the notification leads (the NPS survey, say).
        ChannelInfo(
            name="web_push",
            display="web push",
            parts=("title", "body"),
            optional_parts=("url",),
            address="web push subscription",
            opt_in=True,
            consent_key="web_push",
            activity="send_web_push",
            quiet_hours="21:00-08:00",
        ),
        ChannelInfo(
            name="mobile_push",
            display="mobile push",
            parts=("title", "body"),
            optional_parts=("url",),
            address="mobile app token",
            opt_in=True,
            consent_key="mobile_push",
            activity="send_mobile_push",
            quiet_hours="21:00-08:00",
        ),
        # A message on the company's own site, shown to a visitor the site identified (its
        # address is that identity), needs no opt-in; asking to see no more is a suppression.
        # `kind`: how the website shows it (journeys.templates.ONSITE_KINDS, chat when left out).
        ChannelInfo(
            name="onsite",
            display="on-site",
            parts=("body",),
            optional_parts=("kind",),
            address="website identity",
            opt_in=False,
            consent_key="onsite",
            activity="send_onsite",
        ),
    )
}
