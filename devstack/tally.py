"""Did every message the runs sent arrive once? Counted from the runs' results (read from
Temporal) against what the dev stack's sinks received, by the chaos bench (bench/chaos.py) and
the production simulation (devstack/prod_sim.py):

- expected: from each completed run's visits, one message per visit of a send step whose
  outcome is not failed (sent or duplicate);
- received: by the SMTP server, distinct Message-IDs (derived from the ledger key: a copy with
  the same Message-ID is one message to the recipient's mail system, counted under `copies`);
  by the Twilio stand-in, every message, its ledger key read from the signed token in its status
  callback URL;
- delivered and lost: received and missing against expected; duplicates: received beyond it (a
  second message for one step visit, an SMS sent twice for one key).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from journeys.contacts import Contact
from journeys.models import JourneyResult
from journeys.settings import Settings
from journeys.spec import JourneySpec, SendStep
from journeys.store import ContactStore
from journeys.tokens import SMS_STATUS, MessageClaims, verify

# (contact id, channel, step id)
Place = tuple[str, str, str]


def half_with_phones(prefix: str, count: int, **attributes: str) -> list[Contact]:
    """`count` contacts who all consent to email, every other one with a phone and SMS consent:
    lead_nurturing then takes both its email-only and its SMS paths."""
    return [
        Contact(
            id=f"{prefix}-{i}",
            email=f"{prefix}{i}@example.com",
            phone=f"+48601{i:06d}" if i % 2 == 0 else None,
            consent={"email": True, "sms": i % 2 == 0},
            attributes=dict(attributes),
        )
        for i in range(count)
    ]


@dataclass
class Tally:
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    # Emails received again with a Message-ID already received: one message to mail systems.
    copies: int = 0


async def outcome(
    client: Client, wid: str, deadline: float
) -> tuple[JourneyResult, datetime] | None:
    """The run's result and when it closed, or None if it did not complete by `deadline` (a
    time.monotonic()) or failed. Calls that fail while Temporal is away are tried again."""
    handle = client.get_workflow_handle(wid, result_type=JourneyResult)
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                result = await handle.result()
                closed = (await handle.describe()).close_time
            assert closed is not None
            return result, closed
        except TimeoutError:
            return None
        except WorkflowFailureError as e:
            print(f"  run {wid} failed: {e.cause}")
            return None
        except RPCError:
            await asyncio.sleep(1)
    return None


def expected_messages(spec: JourneySpec, results: Iterable[JourneyResult]) -> Counter[Place]:
    """One message per visit of a send step whose outcome is not a failure."""
    expected: Counter[Place] = Counter()
    for result in results:
        for visit in result.visits:
            step = spec.step(visit.step)
            if isinstance(step, SendStep) and not (visit.outcome or "").startswith("failed"):
                expected[(result.contact_id, step.channel, step.id)] += 1
    return expected


def received_messages(
    mail: MailSink, sms: SmsSink, settings: Settings, people: list[Contact]
) -> dict[Place, Counter[str]]:
    """Per place, how many times each distinct message arrived: emails by Message-ID, SMS by
    the ledger key in their status callback's token."""
    by_address = {c.email: c.id for c in people}
    received: dict[Place, Counter[str]] = {}
    for message in mail.messages:
        place = (by_address[str(message["To"])], "email", str(message["X-Journey-Step"]))
        received.setdefault(place, Counter())[str(message["Message-ID"])] += 1
    for sms_message in sms.messages:
        token = parse_qs(urlsplit(sms_message["status_callback"]).query)["token"][0]
        claims = verify(settings, SMS_STATUS, token, MessageClaims)
        received.setdefault((claims.contact_id, "sms", claims.step_id), Counter())[claims.key] += 1
    return received


def count(
    expected: Counter[Place], received: dict[Place, Counter[str]], finished: set[str]
) -> Tally:
    """Delivered, lost, duplicates and copies of the finished runs' contacts."""
    tally = Tally()
    for place in expected.keys() | received.keys():
        if place[0] not in finished:
            continue
        arrived = received.get(place, Counter())
        # An email is one message per Message-ID; an SMS is one message on a phone each time.
        messages = len(arrived) if place[1] == "email" else arrived.total()
        if place[1] == "email":
            tally.copies += arrived.total() - len(arrived)
        tally.expected += expected[place]
        tally.delivered += min(messages, expected[place])
        tally.lost += max(0, expected[place] - messages)
        tally.duplicates += max(0, messages - expected[place])
    return tally


async def undecided(store: ContactStore, people: list[Contact]) -> int:
    """Ledger rows neither sent nor failed."""
    rows = [row for c in people for row in await store.deliveries_of(c.id)]
    return sum(row["status"] not in ("sent", "failed") for row in rows)
