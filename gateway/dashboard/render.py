"""The dashboard's pages as HTML, from what the store and the reports say: pure functions of
their arguments (the routes in `gateway.dashboard.routes` gather them), so a test renders a page
from models it builds. Templates are `gateway/dashboard/templates/` (Jinja, autoescaped), with one
stylesheet inlined into each page: nothing is loaded from another host, and no script runs."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from journeys.contacts import Contact
from journeys.hygiene.changes import ChangeKind, HygieneChange
from journeys.logging import mask
from journeys.models import PathRecord
from journeys.plans.records import PlanRecord
from journeys.plans.report import PlanReport
from journeys.reports.models import JourneyReport, Overview, Period

PREFIX = "/dashboard"

# The period selector: `?since=` and how far back each choice counts.
Since = Literal["7d", "30d", "90d", "all"]
PERIODS: dict[Since, tuple[str, timedelta | None]] = {
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
    "90d": ("90 days", timedelta(days=90)),
    "all": ("all time", None),
}
DEFAULT_SINCE: Since = "30d"
# What a cell shows for a figure that does not apply (an en dash).
NONE = "\u2013"


def period_of(since: Since, now: datetime) -> Period:
    back = PERIODS[since][1]
    return Period(since=now - back if back else None, until=now)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else NONE


def _pct(rate: float | None) -> str:
    return NONE if rate is None else f"{100 * rate:.1f}%"


def _pct0(rate: float) -> str:
    return f"{100 * rate:.0f}%"


def _signed_pct(diff: float) -> str:
    return f"{100 * diff:+.1f} pts"


def _or_dash(value: Any) -> Any:
    return NONE if value is None else value


def _period_text(period: Period) -> str:
    start = _when(period.since) if period.since else "the start"
    return f"from {start} to {_when(period.until)}"


_env = Environment(
    loader=PackageLoader("gateway.dashboard", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    when=_when,
    pct=_pct,
    pct0=_pct0,
    signed_pct=_signed_pct,
    or_dash=_or_dash,
    period_text=_period_text,
)


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str
    current: bool


@dataclass(frozen=True)
class Nav:
    """The sections shown in the header: each only once its data exists."""

    links: list[NavLink]


def nav(current: str, plans: bool, hygiene: bool) -> Nav:
    sections = [(PREFIX, "Journeys")]
    if plans:
        sections.append((f"{PREFIX}/plans", "Team plans"))
    if hygiene:
        sections.append((f"{PREFIX}/hygiene", "Data hygiene"))
    return Nav([NavLink(href, label, href == current) for href, label in sections])


def _page(template: str, title: str, navigation: Nav, **values: Any) -> str:
    return _env.get_template(template).render(title=title, nav=navigation, **values)


def _periods() -> list[dict[str, str]]:
    return [{"value": value, "label": label} for value, (label, _) in PERIODS.items()]


def overview_page(overview: Overview, since: Since, navigation: Nav) -> str:
    return _page(
        "overview.html",
        "Journeys",
        navigation,
        overview=overview,
        since=since,
        period=overview.period,
        periods=_periods(),
    )


_XML_PROLOGUE = re.compile(r"^\s*<\?xml[^>]*\?>\s*")


def journey_page(report: JourneyReport, graph_svg: str, since: Since, navigation: Nav) -> str:
    """`graph_svg`: the journey drawn (journeys.reports.drawing), a standalone SVG document,
    put inline without its XML declaration (which HTML does not take)."""
    comparisons = {t.step_id: {c.variant: c for c in t.comparisons} for t in report.ab_tests}
    return _page(
        "journey.html",
        f"Journey {report.journey_id}",
        navigation,
        report=report,
        graph=Markup(_XML_PROLOGUE.sub("", graph_svg)),
        comparisons=comparisons,
        since=since,
        period=report.period,
        periods=_periods(),
    )


# The events that say what a contact did with a message (or what became of it).
_OPENED, _CLICKED, _UNSUBSCRIBED = "opened", "clicked", "unsubscribed"
_DELIVERY_REPORTS = ("delivered", "undelivered")


@dataclass
class Message:
    """One message sent to a contact and what they did with it: the events of the same journey
    and step (a step a contact visited twice shares them between its two messages)."""

    at: datetime
    journey_id: str
    step_id: str
    channel: str
    template: str
    variant: str | None
    status: str
    human_opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    unsubscribed: bool = False


def messages_of(
    deliveries: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]
) -> list[Message]:
    """The contact's ledger rows with their events, latest first."""
    reactions: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for e in events:
        if e["journey_id"] and e["step_id"]:
            reactions[(e["journey_id"], e["step_id"])].append(e)
    found = []
    for d in deliveries:
        m = Message(
            at=d["created_at"],
            journey_id=d["journey_id"],
            step_id=d["step_id"],
            channel=d["channel"],
            template=d["template"],
            variant=d["variant"],
            status=d["status"],
        )
        for e in reactions[(m.journey_id, m.step_id)]:
            machine = bool((e["data"] or {}).get("machine"))
            if e["kind"] == _OPENED:
                m.machine_opens += machine
                m.human_opens += not machine
            elif e["kind"] == _CLICKED and not machine:
                m.clicks += 1
            elif e["kind"] == _UNSUBSCRIBED:
                m.unsubscribed = True
            elif e["kind"] in _DELIVERY_REPORTS:
                m.status = e["kind"]  # the provider's word after the ledger's "sent"
        found.append(m)
    return sorted(found, key=lambda m: m.at, reverse=True)


@dataclass(frozen=True)
class MaskedContact:
    """What the contact page shows of a contact: its addresses masked as the logs mask them."""

    email: str | None
    phone: str | None
    time_zone: str


def contact_page(
    contact_id: str,
    contact: Contact | None,
    entries: Sequence[PathRecord],
    messages: Sequence[Message],
    navigation: Nav,
) -> str:
    shown = (
        MaskedContact(
            email=mask(contact.email) if contact.email else None,
            phone=mask(contact.phone) if contact.phone else None,
            time_zone=contact.time_zone,
        )
        if contact
        else None
    )
    return _page(
        "contact.html",
        f"Contact {contact_id}",
        navigation,
        contact=shown,
        entries=entries,
        messages=messages,
    )


@dataclass(frozen=True)
class BoardTask:
    owner: str
    title: str
    plan_id: str
    due_at: datetime


@dataclass
class BoardSection:
    label: str
    overdue: bool = False
    tasks: list[BoardTask] = field(default_factory=list)


def board(
    plans: Iterable[PlanRecord], names: Mapping[str, str], now: datetime
) -> list[BoardSection]:
    """The open tasks of running plans by state, overdue first; in each, by owner, then soonest
    due."""
    overdue = BoardSection("Overdue", overdue=True)
    active = BoardSection("Active")
    waiting = BoardSection("Waiting for earlier work")
    for plan in plans:
        if plan.state != "running":
            continue
        for task in plan.tasks:
            if task.status == "done":
                continue
            owner = ", ".join(names.get(p, p) for p in task.people) or "nobody yet"
            row = BoardTask(owner, task.title, plan.plan_id, task.due_at)
            if task.status == "waiting":
                waiting.tasks.append(row)
            elif task.due_at < now:
                overdue.tasks.append(row)
            else:
                active.tasks.append(row)
    sections = [overdue, active, waiting]
    for section in sections:
        section.tasks.sort(key=lambda t: (t.owner, t.due_at, t.plan_id))
    return sections


def plans_page(
    sections: Sequence[BoardSection],
    reports: Sequence[PlanReport],
    names: Mapping[str, str],
    navigation: Nav,
) -> str:
    return _page(
        "plans.html", "Team plans", navigation, board=sections, reports=reports, names=names
    )


@dataclass(frozen=True)
class ShownChange:
    changed_at: datetime
    contact_id: str
    kind: str
    what: str
    why: str


def hygiene_page(
    run_id: str,
    counts: Mapping[ChangeKind, int],
    changes: Sequence[HygieneChange],
    navigation: Nav,
) -> str:
    """The latest run's report; addresses and numbers before and after are masked."""
    shown = [
        ShownChange(c.changed_at, c.contact_id, c.kind, *(mask(x) for x in c.what_and_why()))
        for c in changes
    ]
    return _page(
        "hygiene.html",
        "Data hygiene",
        navigation,
        run_id=run_id,
        counts=counts,
        changes=shown,
        shown=len(shown),
        total=sum(counts.values()),
    )
