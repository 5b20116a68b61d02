"""Opens, clicks and unsubscribes over real HTTP (uvicorn) against runs on the Temporal dev server:
a hit reaches the run that sent the message within a second, and a bad link changes nothing."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities
from gateway.tracking import PIXEL
from journeys.library import load_library
from journeys.settings import LIBRARY_DIR
from journeys.spec import JourneySpec
from journeys.tokens import (
    CLICK,
    MAX_AGE,
    OPEN,
    UNSUBSCRIBE,
    ClickClaims,
    make_token,
    verify,
)
from tests.channel_fixtures import make_request
from tests.gateway_fixtures import (
    APPLE_PROXY,
    HUMAN,
    SiteStack,
    altered,
    path_of,
    run_events,
    sent_ago,
    signed_ago,
    stored_events,
    wait_at,
)
from tests.postgres_fixtures import ON_EACH_STORE
from workflows.journey import JourneyWorkflow

LEAD_NURTURING = load_library(LIBRARY_DIR)["lead_nurturing"]

# One email with links in both parts; a click on one of them moves the run on.
LINKS = JourneySpec.model_validate(
    {
        "id": "gateway_links",
        "version": 1,
        "description": "Sends links and waits for a click.",
        "trigger": "manual",
        "steps": [
            {"id": "links", "kind": "send", "channel": "email", "template": "tracked_links"},
            {
                "id": "clicked",
                "kind": "wait_for",
                "event": "clicked",
                "step": "links",
                "timeout": "1d",
                "on_event": "thanks",
                "on_timeout": "done",
            },
            {"id": "thanks", "kind": "send", "channel": "email", "template": "lead_part_2"},
            {"id": "done", "kind": "end"},
        ],
    }
)


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def pixel_of(message: EmailMessage) -> str:
    found = re.search(r'<img src="([^"]+/t/o/[^"]+)" width="1" height="1"', body(message, "html"))
    assert found, body(message, "html")
    return found[1]


def unsubscribe_of(message: EmailMessage) -> str:
    return str(message["List-Unsubscribe"]).strip("<>")


@ON_EACH_STORE
async def test_an_open_reaches_the_run_and_the_next_email_leaves(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    handle = await site.start(LEAD_NURTURING, contact)
    [intro] = await site.mail.wait_for(1, timeout=10)
    await wait_at(handle, "intro_opened")
    # A person opens mail a while after it arrived; a fetch on arrival is a machine's.
    pixel = sent_ago(site.settings, pixel_of(intro), OPEN, 60)

    r = await site.http.get(pixel, headers={"User-Agent": HUMAN})
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "image/gif", PIXEL)
    assert "no-store" in r.headers["cache-control"]
    # How fast is bench/event_latency.py's business; here: that it happens at all.
    [_, part_2] = await site.mail.wait_for(2, timeout=30)
    assert part_2["Subject"] == "Part 2 of 3: the feature most people miss"
    [opened] = await run_events(handle, "opened")
    assert (opened.step, opened.data) == ("intro", {"machine": False})


async def test_machine_opens_are_delivered_marked_and_do_not_move_the_run(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    handle = await site.start(LEAD_NURTURING, contact)
    [intro] = await site.mail.wait_for(1, timeout=10)
    await wait_at(handle, "intro_opened")
    read_later = sent_ago(site.settings, pixel_of(intro), OPEN, 60)
    on_arrival = sent_ago(site.settings, pixel_of(intro), OPEN, 1)

    # Apple's privacy proxy (by its user agent), then a fetch seconds after delivery.
    agents = [(read_later, APPLE_PROXY), (on_arrival, HUMAN), (read_later, "Googlebot/2.1")]
    for pixel, agent in agents:
        assert (await site.http.get(pixel, headers={"User-Agent": agent})).status_code == 200

    opens = await run_events(handle, "opened", 3)
    assert [(e.step, e.data["machine"]) for e in opens] == [("intro", True)] * 3
    status = await handle.query(JourneyWorkflow.status)
    assert status.current_step == "intro_opened"  # machine opens do not count as reading it
    assert len(site.mail.messages) == 1


@ON_EACH_STORE
async def test_links_are_rewritten_and_a_click_redirects_and_reaches_the_run(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    handle = await site.start(LINKS, contact)
    [message] = await site.mail.wait_for(1, timeout=10)
    html, text = body(message, "html"), body(message, "plain")

    base = re.escape(site.settings.gateway_url)
    assert pixel_of(message).startswith(site.settings.gateway_url + "/t/o/")
    clicks = [
        m[2] for m in re.finditer(rf"""href=(["'])({base}/t/c/[^"']+)\1""", html, re.IGNORECASE)
    ]
    destinations = [verify(site.settings, CLICK, c.rsplit("/", 1)[1], ClickClaims) for c in clicks]
    assert [d.url for d in destinations] == [
        site.settings.site_url,  # the layout's brand, linked to the site
        "https://example.com/docs?a=1&b=2",
        "http://example.com/pricing",
    ]
    assert {(d.contact_id, d.journey_id, d.step_id) for d in destinations} == {
        (contact, "gateway_links", "links")
    }
    # Links to the gateway itself, and mailto:, stay as they are; nothing leads off untracked.
    assert re.search(rf'href="{base}/nps/[^"]+"[^>]*>Survey', html)
    assert re.search(rf'href="{base}/u/[^"]+"[^>]*>Unsubscribe', html)
    assert 'href="mailto:hi@example.com"' in html
    assert "example.com/docs" not in html + text
    text_click = re.search(rf"Read the docs at ({base}/t/c/\S+)\.\n", text)
    assert text_click, text
    assert verify(site.settings, CLICK, text_click[1].rsplit("/", 1)[1], ClickClaims).url == (
        "https://example.com/docs?a=1&b=2"
    )
    assert re.search(rf"^Survey: {base}/nps/\S+$", text, re.MULTILINE)
    assert re.search(rf"^Unsubscribe: {base}/u/\S+$", text, re.MULTILINE)

    docs = clicks[1]
    r = await site.http.get(path_of(docs) + "x")
    assert r.status_code == 400
    click = sent_ago(site.settings, docs, CLICK, 60)
    r = await site.http.get(click, headers={"User-Agent": HUMAN})
    assert (r.status_code, r.headers["location"]) == (302, "https://example.com/docs?a=1&b=2")

    [clicked] = await run_events(handle, "clicked")
    assert (clicked.step, clicked.data) == (
        "links",
        {"url": "https://example.com/docs?a=1&b=2", "machine": False},
    )
    await site.mail.wait_for(2, timeout=5)  # the click moved the run on
    assert await stored_events(site.store, contact) == ["clicked"]


@ON_EACH_STORE
async def test_one_click_unsubscribe_ends_the_run_and_no_journey_sends_again(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    handle = await site.start(LEAD_NURTURING, contact)
    [intro] = await site.mail.wait_for(1, timeout=10)
    unsubscribe = path_of(unsubscribe_of(intro))
    assert intro["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Looking (a person, or a link scanner) changes nothing.
    page = await site.http.get(unsubscribe)
    assert page.status_code == 200
    assert '<form method="post">' in page.text
    assert await site.store.suppressed_channels(contact) == set()

    one_click = {
        "content": b"List-Unsubscribe=One-Click",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    r = await site.http.post(unsubscribe, **one_click)
    assert r.status_code == 200
    assert "You are unsubscribed" in r.text
    assert await site.store.suppressed_channels(contact) == {"email"}
    result = await handle.result()
    assert (result.reason, result.ended_at_step) == ("exit_event", "intro_opened")

    again = await site.http.post(unsubscribe, **one_click)
    assert again.status_code == 200
    assert await stored_events(site.store, contact) == ["unsubscribed"]

    # Any journey, any step: the send activity refuses.
    other = make_request("email", contact, "welcome", journey="other")
    sent = await ActivityEnvironment().run(
        EmailActivities(site.store, site.settings).send_email, other
    )
    assert (sent.status, sent.reason) == (
        "failed",
        "contact is suppressed on email (unsubscribed, STOP or bounced)",
    )
    assert len(site.mail.messages) == 1


@pytest.mark.parametrize(
    ("method", "prefix", "purpose"),
    [
        ("GET", "/t/o/", OPEN),
        ("GET", "/t/c/", CLICK),
        ("GET", "/u/", UNSUBSCRIBE),
        ("POST", "/u/", UNSUBSCRIBE),
    ],
)
async def test_forged_altered_expired_or_misused_tokens_change_nothing(
    site: SiteStack, method: str, prefix: str, purpose: str
) -> None:
    contact = await site.add_contact()
    claims: dict[str, Any] = {
        "contact_id": contact,
        "channel": "email",
        "key": f"journey:lead_nurturing:{contact}/e1/intro/1",
        "journey_id": "lead_nurturing",
        "step_id": "intro",
        "url": "https://evil.example/",
    }
    secret = site.settings.secret_key.get_secret_value()
    good = make_token(secret, purpose, claims)
    bad = {
        "forged": make_token("another-secret", purpose, claims),
        "altered": altered(good),
        "expired": signed_ago(secret, purpose, claims, MAX_AGE[purpose] + 60),
        "other purpose": make_token(secret, "nps" if purpose != "nps" else OPEN, claims),
        "not a token": "hello",
    }
    for name, token in bad.items():
        form = {"List-Unsubscribe": "One-Click"} if method == "POST" else None
        r = await site.http.request(method, prefix + token, data=form)
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert "This link does not work" in r.text, name
    assert await stored_events(site.store, contact) == []
    assert await site.store.suppressed_channels(contact) == set()
