"""Email over SMTP, once per idempotency key: a retry after an unknown outcome sends again with
the same Message-ID, which mail systems take for the same message (see activities.deliveries)."""

from __future__ import annotations

import email.policy
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import partial
from html import escape, unescape

import aiosmtplib
from temporalio import activity

from activities.deliveries import (
    ChannelActivities,
    HandOver,
    NotTaken,
    Outcome,
    Refused,
    Sent,
    message_context,
    provider_error,
    unclassified,
)
from activities.smtp import Session, SmtpSessions
from journeys.channels import CHANNELS
from journeys.contacts import Contact
from journeys.email_layout import Brand
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.templates import load_template
from journeys.tokens import message_links, tracked_url


class _HeaderClasses(HeaderRegistry):
    """The standard header factory, but each header's class is made once: the standard one makes
    a new class for every header set, which was over half the CPU of composing a message."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(name)
        return self._made[key]


_HEADERS = _HeaderClasses()
# How a message is built: the default policy with the header factory above.
_COMPOSE = email.policy.default.clone(header_factory=_HEADERS)
# The SMTP policy folds headers at 78 columns, and a header with no spaces to fold at (the
# List-Unsubscribe URL) is then turned into RFC 2047 encoded words that mail providers do not
# read as a URL. 998 is the hard limit of RFC 5322. Bodies are made 7-bit safe (base64 for
# non-ASCII) so delivery never depends on the relay supporting 8BITMIME. The header factory
# above serves here too: writing out the multipart boundary makes a Content-Type header.
_WIRE = email.policy.SMTP.clone(max_line_length=998, cte_type="7bit", header_factory=_HEADERS)
_WIRE_UTF8 = email.policy.SMTPUTF8.clone(
    max_line_length=998, cte_type="7bit", header_factory=_HEADERS
)


def message_id(key: str, mail_from: str) -> str:
    """The Message-ID of the email sent for `key`: the same on every attempt, so even a copy
    that slipped through twice is one message to the recipient's mail system."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "journeys"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


# A link in the HTML part: the href value (entity-escaped, as HTML writes it) in either quotes.
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(https?://[^"']*)\2""", re.IGNORECASE)
# A URL in the text part, without the punctuation that ends the sentence around it.
_BARE_URL = re.compile(r"""https?://[^\s<>"']*[^\s<>"'.,;:!?)\]]""", re.IGNORECASE)


def _track_html(html: str, track: Callable[[str], str]) -> str:
    return _HREF.sub(lambda m: f"{m[1]}{m[2]}{escape(track(unescape(m[3])))}{m[2]}", html)


def _track_text(text: str, track: Callable[[str], str]) -> str:
    return _BARE_URL.sub(lambda m: track(m[0]), text)


def _with_pixel(html: str, pixel_url: str) -> str:
    pixel = f'<img src="{escape(pixel_url)}" width="1" height="1" alt="">'
    at = html.lower().rfind("</body>")
    return html + pixel if at < 0 else html[:at] + pixel + html[at:]


def _permanent(e: aiosmtplib.SMTPException) -> bool:
    """A 5xx about this recipient or message (RCPT, DATA). A 5xx to HELO, AUTH or MAIL FROM is
    about our own configuration, so it is retried and stays visible until someone fixes it."""
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
        return any(r.code >= 500 for r in e.recipients)
    if isinstance(e, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return e.code >= 500
    return False


def _smtp_reason(e: aiosmtplib.SMTPException) -> str:
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"smtp {r.code}: {r.message}" for r in e.recipients)
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return f"smtp {e.code}: {e.message}"
    return f"{type(e).__name__}: {e}"


def _outcome(e: BaseException, handed_over: bool) -> Outcome:
    """What a failed send says about the message; `handed_over`: DATA had begun."""
    if not isinstance(e, aiosmtplib.SMTPException):
        return unclassified(e, handed_over)
    if _permanent(e):
        # A 5xx to RCPT is about the mailbox (a hard bounce); to DATA, about the message.
        bounced = not isinstance(e, aiosmtplib.SMTPDataError)
        return Refused(_smtp_reason(e), dead_address=bounced)
    error = provider_error(_smtp_reason(e), type(e).__name__)
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return NotTaken(error)  # the server answered, and not with the message queued
    # No answer (a lost connection, a timeout): once DATA began, the server may have queued it.
    return unclassified(error, handed_over)


class Mailer:
    """What every email shares, marketing or work: the sender and its brand, the pooled SMTP
    sessions, the headers that make a message one message (Message-ID from the ledger key), the
    transmission and what an SMTP error says about the message (`outcome`)."""

    outcome = staticmethod(_outcome)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Every message's layout shows it (journeys.email_layout).
        self.brand = Brand.of(settings)
        self._sender = parseaddr(settings.mail_from)[1]
        self._sessions = SmtpSessions(settings)

    async def close(self) -> None:
        """End the SMTP sessions kept open; call on worker shutdown."""
        await self._sessions.close()

    def message(self, key: str, to: str, subject: str) -> EmailMessage:
        """A new message for the ledger's `key` to `to`, with its headers and no body yet."""
        message = EmailMessage(policy=_COMPOSE)
        message["From"] = self.settings.mail_from
        message["To"] = to
        # A template line break must not end the header (or start a new one).
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(key, self.settings.mail_from)
        return message

    async def send(self, message: EmailMessage, to: str, hand_over: HandOver) -> Outcome:
        """Hand `message` to the SMTP server in a pooled session; raises as SMTP does."""
        async with self._sessions.session(hand_over) as smtp:
            await self._transmit(smtp, message, to)
        return Sent(message["Message-ID"])

    async def _transmit(self, smtp: Session, message: EmailMessage, to: str) -> None:
        # Internationalized addresses need SMTPUTF8; sendmail refuses if the server lacks it.
        utf8 = not (self._sender + to).isascii()
        await smtp.sendmail(
            self._sender,
            [to],
            message.as_bytes(policy=_WIRE_UTF8 if utf8 else _WIRE),
            mail_options=["SMTPUTF8"] if utf8 else [],
        )


class EmailActivities(ChannelActivities):
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        super().__init__(store, settings)
        self.mailer = Mailer(settings)

    async def close(self) -> None:
        """End the SMTP sessions kept open; call on worker shutdown."""
        await self.mailer.close()

    @activity.defn(name=CHANNELS["email"].activity)
    async def send_email(self, req: SendRequest) -> SendResult:
        """Send one templated email to a contact who consented, exactly once per `req.key`.

        Returns failed (without sending) for no contact, no address, no consent, or a 5xx from
        the server for this recipient or message; raises for anything worth retrying.
        """
        contact, suppressed = await self.store.recipient(req.contact_id)
        address = contact.email if contact else None
        return await self.send_once(
            req, contact, suppressed, address, self._attempt, self.mailer.outcome
        )

    async def _attempt(
        self, req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        return await self.mailer.send(self._compose(req, contact, address), address, hand_over)

    def _compose(self, req: SendRequest, contact: Contact, to: str) -> EmailMessage:
        links = message_links(self.settings, req)
        template = load_template(self.settings.library_dir, "email", req.template)
        context = message_context(self.settings, req, contact, links)
        parts = template.render_email(context, self.mailer.brand, links["unsubscribe"])
        message = self.mailer.message(req.key, to, parts["subject"])
        message["List-Unsubscribe"] = f"<{links['unsubscribe']}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["X-Journey-Id"] = req.journey_id
        message["X-Journey-Step"] = req.step_id
        # Every link goes through the gateway, which reports the click and leads on.
        track = partial(tracked_url, self.settings, req)
        message.set_content(_track_text(parts["text"], track))
        html = _track_html(parts["html"], track)
        message.add_alternative(_with_pixel(html, links["open_pixel"]), subtype="html")
        return message
