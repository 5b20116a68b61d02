"""The `journeys` command line: validate and list journeys, import contacts, start journeys,
hand events to runs, show where a contact is, and run the worker or the whole dev stack. Team
plans' commands (`journeys plan`, `journeys task`) are in starters.plans, data hygiene's
(`journeys hygiene`) in starters.hygiene, `journeys draw` in starters.drawing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from journeys.connection import connect
from journeys.contacts import parse_csv
from journeys.csvfile import RowProblem, decode_csv
from journeys.leads.grading import GradingSpec
from journeys.leads.library import is_grading_file, load_grading
from journeys.library import SpecError, journey_files, load_journey
from journeys.limits import MAX_EVENT_DATA_BYTES, MAX_SPEED, MIN_SPEED, check_json_object
from journeys.logging import configure_logging
from journeys.models import JourneyEvent
from journeys.plans.library import is_plan_file, load_plan
from journeys.plans.people import DAYS, Person, parse_people_csv
from journeys.plans.spec import PlanSpec
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore, open_store
from starters.drawing import draw_journey
from starters.hygiene import hygiene_app
from starters.leads import leads_app
from starters.plans import plan_app, task_app
from starters.running import fail, journey_library, journey_named, run
from workflows.runs import hand_new_event, journey_statuses, start_journey

app = typer.Typer(help="Durable customer journeys on Temporal.", no_args_is_help=True)
contacts_app = typer.Typer(help="Manage contacts in the contact store.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
team_app = typer.Typer(help="The people team plans are run with.", no_args_is_help=True)
app.add_typer(team_app, name="team")
app.add_typer(plan_app, name="plan")
app.add_typer(task_app, name="task")
app.add_typer(hygiene_app, name="hygiene")
app.add_typer(leads_app, name="leads")
app.command("draw")(draw_journey)
out = Console()
err = Console(stderr=True)


def _check_speed(speed: float) -> None:
    # Written so that NaN fails it too.
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise fail(f"--speed must be from {MIN_SPEED:g} to {MAX_SPEED:g}")


def main() -> None:
    """The `journeys` command. Whatever logs while a command runs (the store, Temporal) goes to
    stderr as masked JSON lines, never into what the command prints; the worker, the gateway
    and the dev stack log from INFO, the other commands only warnings."""
    configure_logging("WARNING")
    app()


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Journey, plan or grading YAML files")],
) -> None:
    """Check journey, plan and grading files: every problem with the file, line and step or
    task id; non-zero if any. A file in a `plans` folder, or with `tasks:`, is a plan; one named
    grading.yaml, or with `half_life_days:`, is the grading file."""
    bad = 0
    for path in paths:
        try:
            typer.echo(f"{path}: ok: {_validated(path)}")
        except SpecError as e:
            bad += 1
            for problem in e.problems:
                typer.echo(str(problem))
    if bad:
        raise typer.Exit(1)


def _validated(path: Path) -> str:
    """What a valid file holds, in a few words; SpecError with every problem otherwise."""
    if is_plan_file(path):
        plan = load_plan(path)
        return f"plan {plan.id} v{plan.version}, {len(plan.tasks)} tasks, {len(plan.roles)} roles"
    if is_grading_file(path):
        grading = load_grading(path)
        return (
            f"grading, {len(grading.fit)} fit rules, {len(grading.weights)} weighted events, "
            f"half-life {grading.half_life_days:g} days"
        )
    library_dir = path.parent if (path.parent / "templates").is_dir() else Settings().library_dir
    spec = load_journey(path, library_dir)
    return f"{spec.id} v{spec.version}, {len(spec.steps)} steps, trigger {spec.trigger}"


@app.command()
def schema(
    plan: Annotated[bool, typer.Option("--plan", help="The schema of a plan template")] = False,
    grading: Annotated[
        bool, typer.Option("--grading", help="The schema of the grading file")
    ] = False,
) -> None:
    """Print the JSON Schema of a journey file, a plan template or the grading file (for
    editors)."""
    model: type[BaseModel] = PlanSpec if plan else GradingSpec if grading else JourneySpec
    typer.echo(json.dumps(model.model_json_schema(), indent=2))


@app.command("list")
def list_journeys() -> None:
    """List the journeys in the library with their versions and triggers."""
    settings = Settings()
    table = Table("journey", "version", "trigger", "steps", "description")
    for path in journey_files(settings.library_dir):
        try:
            spec = load_journey(path, settings.library_dir)
        except SpecError:
            table.add_row(path.stem, "-", "-", "-", "[red]invalid: run journeys validate[/red]")
            continue
        trigger = spec.trigger if spec.active else f"{spec.trigger} (inactive: start by hand)"
        table.add_row(spec.id, str(spec.version), trigger, str(len(spec.steps)), spec.description)
    out.print(table)


def _serving_settings(sends_email: bool = False) -> Settings:
    """The environment's settings for a long-running service, refused on public dev secrets
    (and, for one that sends email, on the sample postal address and site)."""
    try:
        settings = Settings()
    except ValidationError as e:
        raise fail(str(e)) from None
    if missing := settings.missing_secrets():
        raise fail(
            f"{', '.join(missing)} not set (or left at the public dev default): set a secret "
            "value of this deployment, or JOURNEYS_ENV=dev on a machine of your own"
        )
    if sends_email and (missing := settings.missing_sender_details()):
        raise fail(
            f"{', '.join(missing)} not set (or left at the sample): every email's footer shows "
            "the sender's postal address (CAN-SPAM) and its calls to action lead to the site"
        )
    return settings


@app.command()
def worker() -> None:
    """Run a worker (settings from the environment) until SIGTERM or Ctrl-C."""
    from workers.worker import run_worker

    settings = _serving_settings(sends_email=True)
    configure_logging()
    run(run_worker(settings))


@app.command("gateway")
def gateway_command(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="JOURNEYS_GATEWAY_PROCESSES",
            help="Gateway processes sharing the port: up to one per core left to the gateway "
            "(with PostgreSQL as the store)",
        ),
    ] = 1,
) -> None:
    """Serve the gateway (tracking, unsubscribe, NPS pages, webhooks, /v1 API) until SIGTERM."""
    from gateway.serve import run_gateway, serve_in_processes

    settings = _serving_settings()
    configure_logging()
    if processes == 1:
        run(run_gateway(settings, host, port))
        return
    raise typer.Exit(serve_in_processes(host, port, processes))


@contacts_app.command("import")
def import_contacts(file: Path) -> None:
    """Import contacts from CSV: every row is checked; bad rows are reported by line and change
    nothing, good rows are stored. Columns: id, email, phone, time_zone, locale, consent
    (channels separated by ';'), in_mobile_app, web_push; other columns become attributes."""
    contacts, problems = parse_csv(_csv_text(file))
    _import(file, len(contacts), problems, "contacts", lambda s: s.upsert_contacts(contacts))


@team_app.command("import")
def import_team(file: Path) -> None:
    """Import team members from CSV, checked like contacts: bad rows are reported by line and
    change nothing, good rows are stored. Columns: id, name, email, roles (separated by ';'),
    time_zone, working_days (mon-fri, or days separated by ';'), hours (09:00-17:00)."""
    people, problems = parse_people_csv(_csv_text(file))
    _import(file, len(people), problems, "team members", lambda s: s.upsert_people(people))


def _import(
    file: Path,
    good: int,
    problems: list[RowProblem],
    what: str,
    save: Callable[[ContactStore], Coroutine[Any, Any, None]],
) -> None:
    """Store the good rows of a CSV file, then report its problems by line; exit 1 if any."""

    async def store_all() -> None:
        store = await open_store(Settings().database_url)
        try:
            await save(store)
        finally:
            await store.close()

    run(store_all())
    for problem in problems:
        typer.echo(f"{file}:{problem}", err=True)
    typer.echo(f"imported {good} {what}, rejected {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


@team_app.command("list")
def list_team() -> None:
    """The team: each member's roles, time zone, working days and hours."""

    async def read() -> list[Person]:
        store = await open_store(Settings().database_url)
        try:
            return await store.team_members()
        finally:
            await store.close()

    table = Table("id", "name", "roles", "time zone", "works")
    for person in run(read()):
        days = ",".join(DAYS[d] for d in sorted(person.working_days))
        hours = f"{person.starts:%H:%M}-{person.ends:%H:%M}"
        roles = ", ".join(person.roles)
        table.add_row(person.id, person.name, roles, person.time_zone, f"{days} {hours}")
    out.print(table)


def _csv_text(file: Path) -> str:
    try:
        return decode_csv(file.read_bytes())
    except OSError as e:
        raise fail(f"cannot read {file}: {e.strerror}") from None
    except ValueError as e:
        raise fail(f"{file}:{e}") from None


def _csv_ids(file: Path) -> list[str]:
    contacts, problems = parse_csv(_csv_text(file))
    if problems:
        raise fail("\n".join(f"{file}:{p}" for p in problems))
    return [c.id for c in contacts]


@app.command()
def start(
    journey: str,
    contact: Annotated[str | None, typer.Option(help="One contact id")] = None,
    csv: Annotated[Path | None, typer.Option(help="A CSV whose 'id' column lists contacts")] = None,
    speed: Annotated[float, typer.Option(help="Divide every duration (8640: a day in 10 s)")] = 1.0,
    concurrency: Annotated[int, typer.Option(help="Starts in flight at once")] = 50,
) -> None:
    """Start a journey for one contact or for every contact in a CSV (never twice per contact)."""
    if (contact is None) == (csv is None):
        raise fail("give exactly one of --contact or --csv")
    _check_speed(speed)
    settings = Settings()
    spec = journey_named(settings, journey)
    ids = [contact] if contact else _csv_ids(csv)  # type: ignore[arg-type]

    async def start_all() -> dict[str, int]:
        client = await connect(settings)
        counts = {"started": 0, "already": 0}
        gate = asyncio.Semaphore(concurrency)
        with Progress(
            TextColumn("starting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=len(ids) < 2,
        ) as progress:
            task = progress.add_task("start", total=len(ids))

            async def one(contact_id: str) -> None:
                async with gate:
                    outcome = await start_journey(
                        client, spec, contact_id, settings.task_queue, speed
                    )
                counts[outcome] += 1
                progress.advance(task)

            await asyncio.gather(*(one(i) for i in ids))
        return counts

    counts = run(start_all())
    typer.echo(
        f"{journey}: started {counts['started']}, already in or through it {counts['already']}"
    )


@app.command()
def event(
    contact_id: str,
    kind: Annotated[str, typer.Argument(metavar="EVENT", help="opened, clicked, purchase, ...")],
    step: Annotated[str | None, typer.Option(help="The send step the event is about")] = None,
    data: Annotated[str, typer.Option(help="JSON object with details")] = "{}",
    event_id: Annotated[
        str | None,
        typer.Option("--id", help="Unique per event: the same id again changes nothing"),
    ] = None,
    speed: Annotated[float, typer.Option(help="Speed of journeys this event starts")] = 1.0,
) -> None:
    """Hand an event to the contact's running journeys and start those it triggers."""
    _check_speed(speed)
    # Its own namespace: an id given here is not taken for an API event with the same id.
    once_id = f"cli:{event_id or uuid.uuid4().hex}"
    try:
        payload = json.loads(data)
        ev = JourneyEvent(
            kind=kind, step=step, occurred_at=datetime.now(UTC), data=payload, id=once_id
        )
        check_json_object(ev.data, MAX_EVENT_DATA_BYTES, "--data")
    except (ValueError, ValidationError) as e:
        raise fail(f"--data must be a JSON object: {e}") from None
    settings = Settings()
    library = journey_library(settings)

    async def hand() -> dict[str, str] | None:
        store = await open_store(settings.database_url)
        try:
            # A contact data hygiene merged into another: the event is the survivor's.
            current = await store.resolve(contact_id)
            if await store.get_contact(current) is None:
                raise fail(f"no such contact '{contact_id}' (journeys contacts import adds one)")
            client = await connect(settings)
            return await hand_new_event(
                client, store, library.values(), current, ev, settings.task_queue, once_id, speed
            )
        finally:
            await store.close()

    outcome = run(hand())
    if outcome is None:
        typer.echo(f"event '{event_id}' was handled before: nothing done")
        return
    if not outcome:
        typer.echo(f"recorded '{kind}' for {contact_id}; no journey of theirs is running")
    for journey, what in outcome.items():
        typer.echo(f"{journey}: {what}")


@app.command()
def status(contact_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each journey run of the contact: where it stands, the steps visited, the events received."""
    settings = Settings()
    library = journey_library(settings)

    async def fetch() -> list[Any]:
        client = await connect(settings)
        return await journey_statuses(client, library.values(), contact_id)

    runs = run(fetch())
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "journey": j,
                        "temporal_status": s.name if s else None,
                        **st.model_dump(mode="json"),
                    }
                    for j, s, st in runs
                ],
                indent=2,
            )
        )
        return
    if not runs:
        typer.echo(f"{contact_id} has no journey runs")
    for journey, temporal_status, st in runs:
        state = temporal_status.name.lower() if temporal_status else "unknown"
        out.print(f"[bold]{journey}[/bold] v{st.journey_version} ({state}): {st.details}")
        if st.visits:
            out.print(
                f"  {'entered (UTC)':<21}{'left (UTC)':<21}{'step':<21}outcome", highlight=False
            )
        for visit in st.visits:
            left = _utc(visit.left_at) if visit.left_at else "-"
            out.print(
                f"  {_utc(visit.at)}  {left:<19}  {visit.step:<20} {visit.outcome or ''}".rstrip(),
                highlight=False,
            )
        if st.events:
            out.print(f"  {'happened (UTC)':<21}event", highlight=False)
        for ev in st.events:
            about = f" about {ev.step}" if ev.step else ""
            out.print(f"  {_utc(ev.occurred_at)}  {ev.kind}{about}", highlight=False)


def _utc(at: datetime) -> str:
    # Events come in the zone their reporter used; one zone makes the lines comparable.
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


@app.command()
def dev(
    data_dir: Annotated[
        Path, typer.Option(help="Where Temporal, the store, mail, SMS and push keep their files")
    ] = Path(".data"),
    temporal_port: int = 7233,
    ui_port: int = 8233,
    smtp_port: int = 1025,
    sms_port: int = 8025,
    gateway_port: int = 8000,
    web_push_port: int = 8026,
    fcm_port: int = 8027,
    metrics_port: Annotated[
        int, typer.Option(help="Prometheus /metrics of the worker and the gateway")
    ] = 9464,
    demo: Annotated[
        bool, typer.Option(help="Also import sample contacts and start journeys")
    ] = False,
    demo_speed: float = 17280.0,
) -> None:
    """The whole stack in the foreground: Temporal dev server, the worker, the gateway, and
    local stand-ins for SMTP, Twilio, web push and FCM."""
    from devstack.embedded import EmbeddedMissing, require_dev_stack
    from devstack.stack import DevPorts, run_dev

    try:
        require_dev_stack()
    except EmbeddedMissing as e:
        raise fail(str(e)) from None
    configure_logging()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = DevPorts(
        temporal=temporal_port,
        ui=ui_port,
        smtp=smtp_port,
        sms=sms_port,
        gateway=gateway_port,
        web_push=web_push_port,
        fcm=fcm_port,
        metrics=metrics_port,
    )
    run(run_dev(data_dir, ports, demo=demo, demo_speed=demo_speed))
