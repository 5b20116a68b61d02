"""Every email template of the library, sent through the real composition to the SMTP sink and
read as a person would: its HTML in headless Chromium on a phone's 375-px-wide screen (not blank,
no sideways scrolling, the footer's postal address and, for marketing mail, an unsubscribe link,
the call to action of a lead installment as a tracked button) and its plain text (no markup,
the call to action as "Label: URL", the footer). Templates are found in the library's folder, so
a template added later is checked too."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, get_args

import css_inline
import pytest
import yaml
from aiohttp import web
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities
from activities.team_mail import TEMPLATE_PREFIX, TeamMailActivities
from devstack.sinks.mail import MailSink
from journeys import email_layout
from journeys.contacts import Contact
from journeys.email_layout import TEXT_WIDTH
from journeys.plans.notices import About, Notice, NoticeKind, TeamMessage
from journeys.plans.people import Person
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from journeys.templates import TemplateError, load_template
from journeys.tokens import CLICK, ClickClaims, verify
from tests.browser import Page, headless_chromium
from tests.channel_fixtures import free_port, make_request

EMAIL_TEMPLATES = sorted(p.stem for p in (LIBRARY_DIR / "templates" / "email").glob("*.yaml"))
# Work mail of team plans (no unsubscribe link); every other template is marketing.
WORK = [name for name in EMAIL_TEMPLATES if name.startswith(TEMPLATE_PREFIX)]
MARKETING = [name for name in EMAIL_TEMPLATES if name not in WORK]
# The lead-nurturing installments: each carries a call to action into the site, tracked.
LEAD_INSTALLMENTS = [
    "lead_intro",
    "lead_part_2",
    "lead_part_3",
    "lead_followup",
    "cd_lead_newsletter",
    "cd_lead_missed_call",
    "cd_nurture_newsletter",
    "cd_event_invitation",
]
PHONE_WIDTH = 375

# A contact with the long name and address a narrow screen has to fit.
CONTACT = Contact(
    id="c1",
    email="alexandra.katharina.vandenberg-oppenheimer@example-company-with-a-long-name.com",
    consent={"email": True},
    attributes={"first_name": "Alexandra-Katharina", "last_name": "Oppenheimer", "company": "Acme"},
)
ANA = Person(id="ana", name="Ana Writer", email="ana@example.com", time_zone="America/New_York")
MAX = Person(id="max", name="Max Stake", email="max@example.com", time_zone="Europe/Warsaw")

# What the page shows: its visible text, how wide it scrolls, its links as a person sees them.
SHOWN = """(() => ({
    text: document.body.innerText,
    scrollWidth: document.documentElement.scrollWidth,
    hidden: [...document.body.querySelectorAll('*')]
        .filter(e => getComputedStyle(e).display === 'none')
        .map(e => e.textContent.trim()),
    links: [...document.querySelectorAll('a')].map(a => {
        const box = a.getBoundingClientRect();
        return {href: a.href, text: a.innerText.trim(), visible: box.width > 0 && box.height > 0};
    }),
    images: [...document.images].map(i => ({
        src: i.src, alt: i.alt, loaded: i.naturalWidth > 0, width: i.getBoundingClientRect().width,
    })),
}))()"""

# A logo far wider than a phone, as a designer might hand one over.
WIDE_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="400">'
    b'<rect width="1600" height="400" fill="#2f6fed"/></svg>'
)


@pytest.fixture(scope="module")
async def phone() -> AsyncIterator[Page]:
    """One browser for the module, its tab the size of a phone's screen."""
    async with headless_chromium() as tab:
        await tab.call(
            "Emulation.setDeviceMetricsOverride",
            width=PHONE_WIDTH,
            height=812,
            deviceScaleFactor=2,
            mobile=True,
        )
        yield tab


@pytest.fixture
def library_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"library_dir": LIBRARY_DIR})


async def marketing_email(
    name: str, store: ContactStore, settings: Settings, mail_sink: MailSink
) -> EmailMessage:
    """Template `name` sent to a contact as a journey's send step sends it."""
    await store.upsert_contacts([CONTACT])
    acts = EmailActivities(store, settings)
    try:
        req = make_request("email", CONTACT.id, step=name, template=name)
        result = await ActivityEnvironment().run(acts.send_email, req)
    finally:
        await acts.close()
    assert result.status == "sent", result
    [message] = await mail_sink.wait_for(1)
    return message


async def work_email(
    name: str, store: ContactStore, settings: Settings, mail_sink: MailSink
) -> EmailMessage:
    """Template `name` (plan_<kind>) sent to a team member as a plan's notification."""
    kind = name.removeprefix(TEMPLATE_PREFIX)
    assert kind in get_args(NoticeKind), f"{name}: no plan notification is called {kind!r}"
    await store.upsert_people([ANA, MAX])
    msg = TeamMessage(
        plan_id="plan:blog_post:p1",
        template="blog_post",
        task_title="Create the blog post outline for the spring campaign",
        due_at=datetime(2027, 1, 13, 22, tzinfo=UTC),
        about_title="Approve the outline",
        notice=Notice(
            kind=kind,
            task="outline",
            round=1,
            person="ana",
            at=datetime(2027, 1, 11, 14, tzinfo=UTC),
            about=About(
                after_task="approve_outline",
                by="max",
                when=datetime(2027, 1, 11, 14, tzinfo=UTC),
                comment="Needs a case study and a comparison of the three pricing plans.",
            ),
        ),
    )
    acts = EmailActivities(store, settings)  # its Mailer, as the worker shares it
    try:
        team = TeamMailActivities(store, settings, acts.mailer)
        result = await ActivityEnvironment().run(team.send_team_mail, msg)
    finally:
        await acts.close()
    assert result.status == "sent", result
    [message] = await mail_sink.wait_for(1)
    return message


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def words(text: str) -> str:
    return " ".join(text.split())


def clicked_through(settings: Settings, url: str) -> str | None:
    """Where a click-tracking link of the gateway leads, or None for any other URL."""
    prefix = f"{settings.gateway_url}/t/c/"
    if not url.startswith(prefix):
        return None
    return verify(settings, CLICK, url.removeprefix(prefix), ClickClaims).url


async def shown_on_a_phone(phone: Page, html: str, tmp_path: Path) -> dict[str, Any]:
    """The HTML part as a phone's mail app shows it: loaded as a page of its own."""
    page = tmp_path / "email.html"
    page.write_text(html, encoding="utf-8")
    await phone.open(page.as_uri())
    await phone.wait_for("document.readyState === 'complete'", 10)
    shown: dict[str, Any] = await phone.evaluate(SHOWN)
    return shown


@pytest.mark.parametrize("name", EMAIL_TEMPLATES)
async def test_every_email_reads_well_on_a_phone_and_as_plain_text(
    name: str,
    store: ContactStore,
    library_settings: Settings,
    mail_sink: MailSink,
    phone: Page,
    tmp_path: Path,
) -> None:
    settings = library_settings
    marketing = name in MARKETING
    compose = marketing_email if marketing else work_email
    message = await compose(name, store, settings, mail_sink)
    html, text = part(message, "html"), part(message, "plain")
    parts = load_template(LIBRARY_DIR, "email", name).parts

    shown = await shown_on_a_phone(phone, html, tmp_path)
    visible = words(shown["text"])
    # Not blank: what the message says (a paragraph of its text) is on the screen, and the
    # footer's postal address.
    paragraphs = text.rsplit("\n-- \n", 1)[0].split("\n\n")
    assert any(words(paragraph) in visible for paragraph in paragraphs), visible
    assert settings.postal_address in visible, visible
    # Fits the phone's width: nothing to scroll sideways to.
    assert shown["scrollWidth"] <= PHONE_WIDTH, f"{name}: {shown['scrollWidth']} px wide"
    # The inbox's preview line is in the message, hidden.
    preheaders = [hidden for hidden in shown["hidden"] if hidden]
    assert len(preheaders) == ("preheader" in parts), shown["hidden"]
    assert all(words(hidden) not in visible for hidden in preheaders)
    unsubscribe = [
        link
        for link in shown["links"]
        if link["href"].startswith(f"{settings.gateway_url}/u/") and link["visible"]
    ]
    if marketing:
        assert [link["text"] for link in unsubscribe] == ["Unsubscribe"], shown["links"]
    else:
        assert unsubscribe == [] and "Unsubscribe" not in visible

    # The plain text: no markup, lines a mail reader need not scroll, and the same footer.
    assert not re.search(r"</?[A-Za-z!][^>]*>", text), text
    lines = text.splitlines()
    assert [line for line in lines if len(line) > TEXT_WIDTH and "://" not in line] == []
    footer = text.rsplit("\n-- \n", 1)[1]
    assert settings.postal_address in footer
    assert ("Unsubscribe: " in footer) == marketing, footer

    if name in LEAD_INSTALLMENTS:
        # A call to action into the site, as a visible button and a line of the text, both
        # through click tracking so the click is measured.
        label = parts["cta"]
        [button] = [link for link in shown["links"] if link["text"] == label]
        assert button["visible"]
        target = clicked_through(settings, button["href"])
        assert target is not None and target.startswith(f"{settings.site_url}/"), button
        [line] = [line for line in text.splitlines() if line.startswith(f"{label}: ")]
        assert clicked_through(settings, line.removeprefix(f"{label}: ")) == target


def test_the_lead_installments_are_library_templates() -> None:
    # The list above names templates that exist, so a renamed one is not silently skipped.
    assert set(LEAD_INSTALLMENTS) <= set(MARKETING)


async def test_a_send_does_not_inline_the_css_again(
    store: ContactStore,
    library_settings: Settings,
    mail_sink: MailSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sends are hot: the layout is inlined once per template version, not per message.
    await marketing_email("lead_part_2", store, library_settings, mail_sink)
    inlined: list[str] = []

    def counting_inliner(color: str) -> Any:
        inlined.append(color)
        return css_inline.CSSInliner()

    monkeypatch.setattr(email_layout, "_inliner", counting_inliner)
    await store.upsert_contacts([CONTACT.model_copy(update={"id": "c2"})])
    acts = EmailActivities(store, library_settings)
    try:
        req = make_request("email", "c2", step="again", template="lead_part_2")
        assert (await ActivityEnvironment().run(acts.send_email, req)).status == "sent"
    finally:
        await acts.close()
    await mail_sink.wait_for(2)
    assert inlined == []


@pytest.mark.parametrize(
    ("parts", "says"),
    [
        (
            {"html": "<html><body><p>Hi</p></body></html>"},
            "the html part is the content block only: the layout writes <html>",
        ),
        ({"cta": "Go"}, "a call to action has both parts, cta and cta_url"),
        (
            {
                "html": "<table><tr><td>Plans</td></tr>{% for plan in contact.attributes.plans %}"
                "<tr><td>{{ plan }}</td></tr>{% endfor %}</table>"
            },
            "the HTML parser moved the Jinja tag",
        ),
    ],
    ids=["whole page", "label without a URL", "tag between table rows"],
)
def test_an_email_template_the_layout_cannot_take_is_refused_naming_the_file(
    parts: dict[str, str], says: str, tmp_path: Path
) -> None:
    path = tmp_path / "templates" / "email" / "offer.yaml"
    path.parent.mkdir(parents=True)
    template = {"subject": "Offer", "text": "Hello", "html": "<p>Hello</p>", **parts}
    path.write_text(yaml.safe_dump(template), encoding="utf-8")
    with pytest.raises(TemplateError) as refused:
        load_template(tmp_path, "email", "offer")
    assert str(refused.value).startswith(f"{path}: {says}")


@asynccontextmanager
async def serving_logo() -> AsyncIterator[str]:
    """The URL of WIDE_LOGO, served on 127.0.0.1 (the only host the test's browser reaches)."""

    async def logo(_request: web.Request) -> web.Response:
        return web.Response(body=WIDE_LOGO, content_type="image/svg+xml")

    app = web.Application()
    app.router.add_get("/logo.svg", logo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/logo.svg"
    finally:
        await runner.cleanup()


async def test_the_brand_logo_shows_and_fits_a_phone(
    store: ContactStore,
    library_settings: Settings,
    mail_sink: MailSink,
    phone: Page,
    tmp_path: Path,
) -> None:
    async with serving_logo() as logo_url:
        branded = library_settings.model_copy(
            update={"brand_name": "Acme Widgets", "brand_logo_url": logo_url}
        )
        message = await marketing_email("lead_intro", store, branded, mail_sink)
        shown = await shown_on_a_phone(phone, part(message, "html"), tmp_path)
    [logo] = [image for image in shown["images"] if image["src"] == logo_url]
    assert logo["loaded"] and logo["alt"] == "Acme Widgets"
    assert 0 < logo["width"] <= PHONE_WIDTH
    assert shown["scrollWidth"] <= PHONE_WIDTH
    assert "Acme Widgets" in words(shown["text"])  # the footer names the sender
