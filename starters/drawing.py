"""`journeys draw`: a library journey's graph, as a text outline or written as an SVG file (the
drawing the dashboard shows, without its figures)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from journeys.reports.drawing import draw, outline
from journeys.settings import Settings
from starters.running import fail, journey_named


def draw_journey(
    journey: Annotated[str, typer.Argument(metavar="JOURNEY", help="A journey of the library")],
    svg: Annotated[
        Path | None, typer.Option(help="Write the graph to this SVG file instead", metavar="FILE")
    ] = None,
) -> None:
    """A journey's graph: each step (id, kind, what it does) and where it leads, and when; with
    --svg, drawn as an SVG file."""
    spec = journey_named(Settings(), journey)
    if svg is None:
        typer.echo(outline(spec), nl=False)
        return
    try:
        _write_atomically(svg, draw(spec))
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
