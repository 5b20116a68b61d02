"""What every `journeys` command shares: running its async work, failing with one line on
stderr and exit 1 (a refusal from a plan and an unknown plan end a command the same way), and
the journey library."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import typer

from journeys import eventloop
from journeys.codec import PayloadKeyError
from journeys.library import SpecError, load_library
from journeys.plans.state import Refused
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.yamlfile import did_you_mean
from workflows.plan_runs import PlanNotFound

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return eventloop.run(coro)
    except PayloadKeyError as e:
        raise fail(str(e)) from None
    except Refused as e:
        raise fail(f"refused: {e}") from None
    except PlanNotFound as e:
        raise fail(f"no plan '{e}' (journeys plan list shows them)") from None


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def journey_library(settings: Settings) -> dict[str, JourneySpec]:
    try:
        return load_library(settings.library_dir)
    except SpecError as e:
        raise fail(f"the journey library has problems:\n{e}") from None


def journey_named(settings: Settings, journey_id: str) -> JourneySpec:
    """The library's journey of that id, or exit 1 naming the nearest one."""
    known = journey_library(settings)
    if journey_id not in known:
        raise fail(
            f"no journey '{journey_id}' in {settings.library_dir}"
            f"{did_you_mean(journey_id, known)} (journeys list shows them)"
        )
    return known[journey_id]
