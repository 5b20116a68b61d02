"""A team member's calendar feed (`/calendar/{token}.ics`): their open tasks' due dates as an
iCalendar (RFC 5545) feed a calendar subscribes to. Written with the `icalendar` package, which
folds long lines at 75 octets and escapes text as the RFC says.

Each task is a half-hour block ending at its due moment, in UTC: the due moment is an instant
(the end of its owner's working day on their clock), so every calendar shows it at the right
time in its own zone, and the block reads as "have it done by then"; an all-day event would name
a date without saying whose. A task's UID is its plan and task ids at the gateway's host, so a
calendar updates the same event when the due date moves and drops it once the task is done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import Response
from icalendar import Calendar, Event

from gateway.deps import GatewayDep
from gateway.pages import PAGE_HEADERS, TokenRoute
from gateway.responses import documented
from journeys.plans.records import OpenTask
from journeys.settings import Settings
from journeys.tokens import CALENDAR, PersonClaims, task_links, verify

router = APIRouter(route_class=TokenRoute, responses=documented(400))

ICALENDAR = "text/calendar; charset=utf-8"
BLOCK = timedelta(minutes=30)
PRODUCT = "-//journeys//team plans//EN"


def task_uid(settings: Settings, plan_id: str, task_id: str) -> str:
    host = urlsplit(settings.gateway_url).hostname or "localhost"
    return f"{plan_id}.{task_id}@{host}"


def task_feed(settings: Settings, person_id: str, tasks: list[OpenTask], now: datetime) -> bytes:
    """The iCalendar text of `tasks` for `person_id`, stamped `now`."""
    feed = Calendar()
    feed.add("prodid", PRODUCT)
    feed.add("version", "2.0")
    feed.add("calscale", "GREGORIAN")
    feed.add("method", "PUBLISH")
    feed.add("x-wr-calname", "My tasks")
    for open_task in tasks:
        plan, task = open_task.plan, open_task.task
        due = task.due_at.astimezone(UTC)
        event = Event()
        event.add("uid", task_uid(settings, plan.plan_id, task.task_id))
        event.add("dtstamp", now.astimezone(UTC))
        event.add("dtstart", due - BLOCK)
        event.add("dtend", due)
        # A rejection makes the task someone's again: a new round is a new version of the event.
        event.add("sequence", task.rounds)
        event.add("summary", task.title)
        event.add("url", task_links(settings, plan.plan_id, task.task_id, person_id)["task"])
        feed.add_component(event)
    return feed.to_ical()


@router.get(
    "/calendar/{token}.ics",
    summary="A team member's open tasks as an iCalendar feed",
    response_class=Response,
    responses={200: {"content": {ICALENDAR: {}}}},
)
async def calendar_feed(token: str, gw: GatewayDep) -> Response:
    claims = verify(gw.settings, CALENDAR, token, PersonClaims)
    tasks = await gw.store.open_tasks_of(claims.person_id)
    body = task_feed(gw.settings, claims.person_id, tasks, datetime.now(UTC))
    return Response(body, media_type=ICALENDAR, headers=PAGE_HEADERS)
