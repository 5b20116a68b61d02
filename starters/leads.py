"""`journeys leads`: a contact's lead grade, and regrading contacts now (the gateway regrades a
contact after each event, the hygiene schedule every contact)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer

from journeys.leads.grading import GradingSpec, rounded
from journeys.leads.library import grading_of
from journeys.settings import Settings
from journeys.store import ContactStore, open_store
from journeys.yamlfile import SpecError
from starters.running import fail, run

leads_app = typer.Typer(help="Lead grades and scores.", no_args_is_help=True)
# Contacts regraded per transaction batch by `regrade --all`.
BATCH = 500
MINUTE = "%Y-%m-%d %H:%M"

T = TypeVar("T")


def _on_store(work: Callable[[ContactStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await open_store(Settings().database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    return run(go())


def _grading() -> GradingSpec:
    settings = Settings()
    try:
        spec = grading_of(settings.library_dir)
    except SpecError as e:
        raise fail(f"the grading file has problems:\n{e}") from None
    if spec is None:
        raise fail(f"the library ({settings.library_dir}) has no grading.yaml: nobody is graded")
    return spec


@leads_app.command()
def show(contact_id: str) -> None:
    """The contact's grade, its fit and score, and when the grade last changed."""

    async def read(store: ContactStore) -> str:
        if await store.get_contact(contact_id) is None:
            raise fail(f"no such contact '{contact_id}'")
        kept = await store.lead_grade(contact_id)
        if kept is None:
            return f"{contact_id}: not graded yet (journeys leads regrade {contact_id})"
        return (
            f"{contact_id}: grade {kept.grade} (fit {kept.fit}, score {rounded(kept.score):g}) "
            f"since {kept.changed_at:{MINUTE}} UTC; computed {kept.computed_at:{MINUTE}} UTC"
        )

    typer.echo(_on_store(read))


@leads_app.command()
def regrade(
    contact_ids: Annotated[list[str] | None, typer.Argument(help="Contacts to regrade")] = None,
    every: Annotated[bool, typer.Option("--all", help="Regrade every contact")] = False,
) -> None:
    """Regrade contacts now. A change is recorded as a grade_changed event, which a running
    gateway hands to journeys."""
    if bool(contact_ids) == every:
        raise fail("name the contacts to regrade, or say --all")
    spec, now = _grading(), datetime.now(UTC)

    async def some(store: ContactStore) -> list[str]:
        lines = []
        for contact_id in contact_ids or []:
            if await store.get_contact(contact_id) is None:
                raise fail(f"no such contact '{contact_id}'")
            change = await store.regrade(contact_id, spec, now)
            kept = await store.lead_grade(contact_id)
            assert kept is not None  # just graded
            what = (
                f"{change.before or 'none'} -> {kept.grade}"
                if change
                else f"{kept.grade}, as before"
            )
            lines.append(f"{contact_id}: {what} (score {rounded(kept.score):g})")
        return lines

    async def everyone(store: ContactStore) -> list[str]:
        last_id, changes = None, 0
        while True:
            last_id, changed = await store.regrade_batch(last_id, BATCH, spec, now)
            if last_id is None:
                return [f"every contact regraded: {changes} grade(s) changed"]
            changes += changed

    for line in _on_store(everyone if every else some):
        typer.echo(line)
