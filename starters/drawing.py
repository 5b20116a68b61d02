"""`journeys draw`: a library journey's graph, as a text outline or written as an SVG file (the
drawing the dashboard shows; with --figures, with the report's figures on it)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from journeys.reports.drawing import draw, outline
from journeys.reports.models import Period
from journeys.settings import Settings
from starters.reports import journey_report, parse_since
from starters.running import fail, journey_named, run


def draw_journey(
    journey: Annotated[str, typer.Argument(metavar="JOURNEY", help="A journey of the library")],
    svg: Annotated[
        Path | None, typer.Option(help="Write the graph to this SVG file instead", metavar="FILE")
    ] = None,
    figures: Annotated[
        bool,
        typer.Option(
            "--figures",
            help="With --svg: each step's figures from `journeys report` on the drawing "
            "(entered, waiting now, how branches split)",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="With --figures: from this day (2026-11-01, UTC) or this long ago (7d)"),
    ] = None,
) -> None:
    """A journey's graph: each step (id, kind, what it does) and where it leads, and when; with
    --svg, drawn as an SVG file."""
    settings = Settings()
    spec = journey_named(settings, journey)
    if svg is None:
        if figures:
            raise typer.BadParameter("--figures goes on a drawing: give --svg FILE")
        typer.echo(outline(spec), nl=False)
        return
    steps = None
    if figures:
        period = Period(since=parse_since(since), until=datetime.now(UTC))
        steps = {s.step_id: s for s in run(journey_report(settings, spec, period)).steps}
    try:
        _write_atomically(svg, draw(spec, steps))
    except OSError as e:
        raise fail(f"cannot write {svg}: {e.strerror or e}") from None
    typer.echo(f"drew {spec.id} v{spec.version} ({len(spec.steps)} steps) to {svg}")


def _write_atomically(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it: whoever opens `path` finds the old file or
    the whole new one, and an error leaves nothing behind."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp's file is for its owner alone; a drawing is as readable as any file written.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
