"""A journey's graph drawn as SVG (journeys/reports/drawing.py) and `journeys draw`: read back as
a person reads the drawing: a box per step saying what it is, an arrow per way on saying when it
is taken, figures in the right places, nothing on top of anything else, and in a browser it
renders, offline, without errors, every line of text inside its box."""

from __future__ import annotations

import base64
import io
import itertools
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from journeys.library import load_library
from journeys.reports.drawing import draw, outline
from journeys.reports.models import StepFigures
from journeys.settings import LIBRARY_DIR
from journeys.spec import JourneySpec
from starters.cli import app
from tests.browser import Page, headless_chromium

SVG = "{http://www.w3.org/2000/svg}"
LIBRARY = load_library(LIBRARY_DIR)
runner = CliRunner()


def every_kind() -> JourneySpec:
    """A journey with every kind of step, a loop back, labelled ways on, and a step nothing
    leads to."""
    return JourneySpec.model_validate(
        {
            "id": "every_kind",
            "version": 2,
            "description": "Every kind of step",
            "trigger": "manual",
            "steps": [
                {"id": "start", "kind": "send", "channel": "email", "template": "lead_intro",
                 "on_failure": "gone"},
                {"id": "opened", "kind": "wait_for", "event": "opened", "step": "start",
                 "timeout": "3d", "on_event": "check", "on_timeout": "coin"},
                {"id": "check", "kind": "branch",
                 "conditions": [{"when": "has_phone", "next": "call"}], "otherwise": "coin"},
                {"id": "coin", "kind": "split",
                 "arms": [{"weight": 3, "next": "tagged"}, {"weight": 1, "next": "call"}]},
                {"id": "call", "kind": "task", "title": "Call them", "role": "sales", "due": "1d",
                 "on": {"reached": "tagged", "overdue": "gone"}},
                {"id": "pause", "kind": "wait", "duration": "1d"},
                {"id": "back", "kind": "goto", "target": "opened"},
                {"id": "tagged", "kind": "tag", "add": ["X"]},
                {"id": "aud", "kind": "audience", "audience": "ads"},
                {"id": "done", "kind": "end"},
                {"id": "gone", "kind": "end", "tag": "LOST"},
                {"id": "orphan", "kind": "end"},
            ],
        }
    )  # fmt: skip


EVERY_KIND_EDGES = {
    ("start", "opened"): "",
    ("start", "gone"): "on failure",
    ("opened", "check"): "opened",
    ("opened", "coin"): "timeout",
    ("check", "call"): "has_phone",
    ("check", "coin"): "otherwise",
    ("coin", "tagged"): "weight 3",
    ("coin", "call"): "weight 1",
    ("call", "pause"): "no_answer, not_interested, unassigned",
    ("call", "tagged"): "reached",
    ("call", "gone"): "overdue",
    ("pause", "back"): "",
    ("back", "opened"): "",
    ("tagged", "aud"): "",
    ("aud", "done"): "",
}


def chain_of_loops(groups: int) -> JourneySpec:
    """A long journey: per group a send that may fail to one far exit, a wait for its open, a
    branch, a wait that every third group loops back to the group before."""
    steps: list[dict[str, Any]] = []
    for g in range(groups):
        after = f"send{g + 1}" if g + 1 < groups else "done"
        steps += [
            {"id": f"send{g}", "kind": "send", "channel": "email", "template": "t",
             "on_failure": "failed"},
            {"id": f"seen{g}", "kind": "wait_for", "event": "opened", "step": f"send{g}",
             "timeout": "3d", "on_event": f"fork{g}", "on_timeout": f"rest{g}"},
            {"id": f"fork{g}", "kind": "branch",
             "conditions": [{"when": "has_phone", "next": after}], "otherwise": f"rest{g}"},
            {"id": f"rest{g}", "kind": "wait", "duration": "1d",
             "next": f"send{g - 1}" if g % 3 == 2 else after},
        ]  # fmt: skip
    steps += [{"id": "done", "kind": "end"}, {"id": "failed", "kind": "end"}]
    return JourneySpec(id="long", version=1, description="long", trigger="manual", steps=steps)


@dataclass
class Box:
    step: str
    kind: str
    x: float
    y: float
    width: float
    height: float
    lines: list[str]
    title: str

    def inside(self, px: float, py: float, margin: float = 1.0) -> bool:
        return (
            self.x + margin < px < self.x + self.width - margin
            and self.y + margin < py < self.y + self.height - margin
        )


@dataclass
class Drawn:
    root: ET.Element
    boxes: dict[str, Box]
    edges: dict[tuple[str, str], ET.Element]
    labels: dict[tuple[str, str], list[str]]  # each edge's label lines


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


def read(svg: str) -> Drawn:
    root = ET.fromstring(svg)
    boxes = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "step":
            continue
        rect = g.find(f"{SVG}rect")
        title = g.find(f"{SVG}title")
        assert rect is not None and title is not None
        step = g.get("data-step", "")
        assert step not in boxes, f"two boxes for {step}"
        boxes[step] = Box(
            step,
            g.get("data-kind", ""),
            *(float(rect.get(a, "nan")) for a in ("x", "y", "width", "height")),
            lines=[text_of(t) for t in g.iter(f"{SVG}text")],
            title=text_of(title),
        )
    edges: dict[tuple[str, str], ET.Element] = {}
    labels: dict[tuple[str, str], list[str]] = {}
    for g in root.iter(f"{SVG}g"):
        pair = (g.get("data-from", ""), g.get("data-to", ""))
        if g.get("class") == "edge":
            assert pair not in edges, f"two edges for {pair}"
            edges[pair] = g
        elif g.get("class") == "edge-label":
            assert pair not in labels, f"two labels for {pair}"
            labels[pair] = [text_of(t) for t in g.iter(f"{SVG}text")]
    return Drawn(root, boxes, edges, labels)


def graph_pairs(spec: JourneySpec) -> set[tuple[str, str]]:
    return {(step, nxt) for step, successors in spec.graph().items() for nxt in successors}


_TOKEN = re.compile(r"[MLCQZ]|-?\d+(?:\.\d+)?")


def path_points(d: str, samples: int = 24) -> list[tuple[float, float]]:
    """Points along an SVG path of M, L, C, Q and Z commands (what the drawing writes)."""
    tokens = _TOKEN.findall(d)
    points: list[tuple[float, float]] = []
    at = (0.0, 0.0)
    i = 0
    while i < len(tokens):
        command = tokens[i]
        i += 1
        if command == "Z":
            continue
        size = {"M": 1, "L": 1, "Q": 2, "C": 3}[command]
        pts = [(float(tokens[i + 2 * k]), float(tokens[i + 2 * k + 1])) for k in range(size)]
        i += 2 * size
        if command == "M":
            points.append(pts[0])
        else:
            control = [at, *pts]
            for s in range(1, samples + 1):
                t = s / samples
                row = control
                while len(row) > 1:  # de Casteljau
                    row = [
                        (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                        for a, b in itertools.pairwise(row)
                    ]
                points.append(row[0])
        at = pts[-1]
    return points


def check_layout(drawn: Drawn) -> None:
    """No box on another, no line through a box it does not start or end at, and nothing cut
    off at the drawing's edges."""
    width, height = (float(drawn.root.get(a, "0")) for a in ("width", "height"))
    for rect in drawn.root.iter(f"{SVG}rect"):
        x, y = float(rect.get("x", "0")), float(rect.get("y", "0"))
        right, bottom = x + float(rect.get("width", "0")), y + float(rect.get("height", "0"))
        assert 0 <= x and right <= width and 0 <= y and bottom <= height, rect.attrib
    boxes = sorted(drawn.boxes.values(), key=lambda b: (b.y, b.x))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a.x + a.width <= b.x
                or b.x + b.width <= a.x
                or a.y + a.height <= b.y
                or b.y + b.height <= a.y
            )
            assert apart, f"boxes {a.step} and {b.step} overlap"
    for g in drawn.root.iter(f"{SVG}g"):
        if g.get("class") not in ("edge", "trunk"):
            continue
        ends = {g.get("data-from"), g.get("data-to")}
        line = g.find(f"{SVG}path")
        assert line is not None
        points = path_points(line.get("d", ""))
        assert all(0 <= x <= width and 0 <= y <= height for x, y in points), ends
        for box in boxes:
            if box.step in ends:
                continue
            crossing = [p for p in points if box.inside(*p)]
            assert not crossing, f"{sorted(ends - {None})} runs through {box.step}: {crossing[0]}"


@pytest.mark.parametrize("journey", sorted(LIBRARY))
def test_every_library_journey_draws_a_box_per_step_and_an_arrow_per_way_on(journey: str) -> None:
    spec = LIBRARY[journey]
    svg = draw(spec)
    drawn = read(svg)
    root = drawn.root
    assert root.tag == f"{SVG}svg"
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert drawn.boxes.keys() == {s.id for s in spec.steps}
    for step in spec.steps:
        box = drawn.boxes[step.id]
        assert box.lines[0] == step.id and box.lines[1] == step.kind, box.lines
        assert box.kind == step.kind
        assert step.describe() in box.title  # the whole of it on hover
        assert box.x >= 0 and box.y >= 0
        assert box.x + box.width <= width and box.y + box.height <= height
    assert drawn.edges.keys() == graph_pairs(spec)
    check_layout(drawn)
    # No script, no style sheet, nothing fetched.
    assert not re.search(r"<script|<style|<image|href=|url\(|@import", svg)
    assert draw(spec) == svg  # deterministic


def test_each_arrow_says_when_it_is_taken() -> None:
    spec = every_kind()
    drawn = read(draw(spec))
    assert drawn.edges.keys() == set(EVERY_KIND_EDGES) == graph_pairs(spec)
    for pair, label in EVERY_KIND_EDGES.items():
        title = drawn.edges[pair].find(f"{SVG}title")
        assert title is not None
        if not label:
            assert pair not in drawn.labels
            assert text_of(title) == f"{pair[0]} → {pair[1]}"
            continue
        assert text_of(title) == f"{pair[0]} → {pair[1]}: {label}"
        [shown] = drawn.labels[pair]
        assert shown == label or (shown.endswith("…") and label.startswith(shown[:-1])), shown
    check_layout(drawn)


def test_a_loop_back_runs_beside_the_boxes_and_a_step_nothing_reaches_comes_last() -> None:
    drawn = read(draw(every_kind()))
    boxes = drawn.boxes.values()
    line = drawn.edges["back", "opened"].find(f"{SVG}path")
    assert line is not None
    xs = [x for x, _ in path_points(line.get("d", ""))]
    left, right = min(b.x for b in boxes), max(b.x + b.width for b in boxes)
    assert min(xs) < left or max(xs) > right, "the loop back runs among the boxes"
    orphan = drawn.boxes["orphan"]
    assert all(orphan.y > b.y + b.height for b in boxes if b.step != "orphan")


def test_a_long_label_on_a_loop_back_stays_inside_the_drawing() -> None:
    loop = "has_phone and opted_in:sms and not grade_in:[C,D]"
    spec = JourneySpec.model_validate(
        {
            "id": "narrow",
            "version": 1,
            "description": "One column, a loop back with a long condition",
            "trigger": "manual",
            "steps": [
                {"id": "pause", "kind": "wait", "duration": "1d"},
                {"id": "again", "kind": "branch", "conditions": [{"when": loop, "next": "pause"}],
                 "otherwise": "done"},
                {"id": "done", "kind": "end"},
            ],
        }
    )  # fmt: skip
    drawn = read(draw(spec))
    [shown] = drawn.labels["again", "pause"]
    assert loop.startswith(shown.rstrip("…"))
    check_layout(drawn)


def test_a_long_journey_keeps_its_boxes_apart_and_its_lines_off_them() -> None:
    spec = chain_of_loops(30)
    drawn = read(draw(spec))
    assert len(drawn.boxes) == len(spec.steps) == 122
    assert drawn.edges.keys() == graph_pairs(spec)
    check_layout(drawn)


FIGURES = {
    "start": StepFigures(
        step_id="start", kind="send", entered=500, visits=500,
        next={"opened": 450, "gone": 50}, sent=480, opens=200, clicks=31,
    ),
    "opened": StepFigures(
        step_id="opened", kind="wait_for", entered=450, visits=688, waiting=12,
        next={"check": 412, "coin": 264},
    ),
    "check": StepFigures(
        step_id="check", kind="branch", entered=412, visits=412, next={"call": 412}
    ),
    "coin": StepFigures(step_id="coin", kind="split", entered=2, visits=2, next={"tagged": 2}),
    "call": StepFigures(step_id="call", kind="task", entered=1000, visits=1000, waiting=0),
}  # fmt: skip


def test_figures_go_in_their_boxes_and_on_their_arrows() -> None:
    drawn = read(draw(every_kind(), FIGURES))
    start, opened, pause = (drawn.boxes[s].lines for s in ("start", "opened", "pause"))
    assert "500 entered" in start and "480 sent · 200 opens · 31 clicks" in start
    assert not any("waiting" in line for line in start)
    assert "450 entered · 688 visits" in opened and "12 waiting now" in opened
    assert "1,000 entered" in drawn.boxes["call"].lines
    assert "0 waiting now" in drawn.boxes["call"].lines
    assert "0 entered" in pause  # no figures: nobody came
    assert drawn.labels["start", "opened"] == ["450 · 90%"]
    assert drawn.labels["start", "gone"] == ["on failure", "50 · 10%"]
    assert drawn.labels["opened", "check"] == ["opened", "412 · 61%"]
    assert drawn.labels["opened", "coin"] == ["timeout", "264 · 39%"]
    assert drawn.labels["check", "call"] == ["has_phone", "412 · 100%"]
    assert drawn.labels["check", "coin"] == ["otherwise", "0 · 0%"]
    # Steps without `next` counts (the task has none yet, pause no figures) count no arrow.
    assert drawn.labels["call", "gone"] == ["overdue"]
    assert ("pause", "back") not in drawn.labels

    def stroke(pair: tuple[str, str]) -> float:
        line = drawn.edges[pair].find(f"{SVG}path")
        assert line is not None
        return float(line.get("stroke-width", "0"))

    assert stroke(("check", "call")) > stroke(("opened", "check")) > stroke(("opened", "coin"))
    assert stroke(("opened", "coin")) > stroke(("start", "gone")) > stroke(("check", "coin"))
    check_layout(drawn)
    assert draw(every_kind(), dict(reversed(FIGURES.items()))) == draw(every_kind(), FIGURES)


def test_text_is_escaped_and_long_text_shortened() -> None:
    hostile = 'a < b & "c" </svg><script>alert(1)</script>'
    spec = JourneySpec.model_validate(
        {
            "id": "hostile",
            "version": 1,
            "description": hostile,
            "trigger": "manual",
            "steps": [
                {"id": "x" * 64, "kind": "branch", "conditions": [{"when": hostile, "next": "y"}],
                 "otherwise": "y", "note": hostile},
                {"id": "y", "kind": "end", "tag": "T" * 60},
            ],
        }
    )  # fmt: skip
    svg = draw(spec)
    drawn = read(svg)  # parses: nothing escaped the text
    assert "<script" not in svg
    box = drawn.boxes["x" * 64]
    assert box.lines[0].endswith("…") and len(box.lines[0]) < 64
    assert hostile in box.title and f"checking {hostile}" in box.title
    [label] = drawn.labels["x" * 64, "y"]
    assert label.endswith("…") and hostile.startswith(label[:-1])
    assert any(line.endswith("…") for line in drawn.boxes["y"].lines)


def test_draw_prints_the_outline() -> None:
    result = runner.invoke(app, ["draw", "lead_nurturing"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "lead_nurturing v1: 17 steps, trigger contact_added"
    at = lines.index("intro_opened  wait_for  waiting up to 3 days for 'intro' to be opened")
    assert lines[at + 1 : at + 3] == ["    -> part_2 (opened)", "    -> has_phone (timeout)"]
    assert "has_phone  branch  checking has_phone" in lines
    assert "    -> resend_intro (otherwise)" in lines
    assert "completed  end  ended with tag NURTURE_COMPLETED" in lines
    steps = [line for line in lines[1:] if not line.startswith(" ")]
    assert len(steps) == 17
    assert sum(line.startswith("    -> ") for line in lines) == len(
        graph_pairs(LIBRARY["lead_nurturing"])
    )


def test_the_outline_marks_what_nothing_reaches() -> None:
    text = outline(every_kind())
    assert "orphan  end  ended  (unreachable)" in text.splitlines()
    assert "    -> pause (no_answer, not_interested, unassigned)" in text.splitlines()


def test_draw_writes_the_svg_file(tmp_path: Path) -> None:
    target = tmp_path / "lead.svg"
    result = runner.invoke(app, ["draw", "lead_nurturing", "--svg", str(target)])
    assert result.exit_code == 0, result.output
    assert str(target) in result.output
    assert read(target.read_text(encoding="utf-8")).boxes.keys() == {
        s.id for s in LIBRARY["lead_nurturing"].steps
    }
    assert os.listdir(tmp_path) == ["lead.svg"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "lead.svg"
    target.write_text("the drawing from before")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    result = runner.invoke(app, ["draw", "lead_nurturing", "--svg", str(target)])
    assert result.exit_code == 1
    assert f"error: cannot write {target}: No space left on device" in result.output
    assert target.read_text() == "the drawing from before"
    assert os.listdir(tmp_path) == ["lead.svg"]

    missing = tmp_path / "nowhere" / "lead.svg"
    result = runner.invoke(app, ["draw", "lead_nurturing", "--svg", str(missing)])
    assert result.exit_code == 1 and "cannot write" in result.output
    assert not missing.parent.exists()


def test_an_unknown_journey_is_named_with_the_nearest(tmp_path: Path) -> None:
    target = tmp_path / "x.svg"
    result = runner.invoke(app, ["draw", "lead_nurturin", "--svg", str(target)])
    assert result.exit_code == 1
    assert "error: no journey 'lead_nurturin'" in result.output
    assert "(did you mean 'lead_nurturing'?)" in result.output
    assert not target.exists()


# What a person sees of each box: whether every line of its text lies inside its rectangle.
TEXT_OUTSIDE_BOXES = """
[...document.querySelectorAll('g.step')].flatMap(g => {
  const box = g.querySelector('rect').getBBox();
  return [...g.querySelectorAll('text')].filter(t => {
    const b = t.getBBox();
    return b.x < box.x || b.y < box.y || b.x + b.width > box.x + box.width
      || b.y + b.height > box.y + box.height;
  }).map(t => g.dataset.step + ': ' + t.textContent);
})
"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Page]:
    async with headless_chromium() as tab:
        yield tab


async def shown(page: Page, svg: str, path: Path) -> Image.Image:
    """The SVG file as the browser shows it, opened on its own: the screenshot."""
    path.write_text(svg, encoding="utf-8")
    root = ET.fromstring(svg)
    width, height = (round(float(root.get(a, "0"))) for a in ("width", "height"))
    await page.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    await page.open(path.as_uri())
    await page.wait_for("document.readyState === 'complete'", 10)
    shot = await page.call("Page.captureScreenshot", format="png")
    return Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")


@pytest.mark.parametrize("journey", ["lead_nurturing", "cd_lead_nurturing", "every_kind"])
async def test_the_drawing_renders_in_a_browser(
    journey: str, browser: Page, tmp_path: Path
) -> None:
    spec = every_kind() if journey == "every_kind" else LIBRARY[journey]
    figures = FIGURES if journey == "every_kind" else None
    svg = draw(spec, figures)
    image = await shown(browser, svg, tmp_path / f"{journey}.svg")
    assert browser.errors == [] and not [e for e in browser.log if e.startswith("error")]
    assert browser.requested == [(tmp_path / f"{journey}.svg").as_uri()]
    assert await browser.evaluate("document.querySelectorAll('g.step').length") == len(spec.steps)
    assert await browser.evaluate(TEXT_OUTSIDE_BOXES) == []
    # Not blank: the boxes' colours are on the screen, and plenty of ink.
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is not None
    counted = {rgb: n for n, rgb in colours}
    pixels = image.width * image.height
    assert counted.get((255, 255, 255), 0) < 0.9 * pixels
    send_fill, end_fill = (0xDB, 0xEA, 0xFE), (0xE5, 0xE7, 0xEB)
    assert counted.get(send_fill, 0) > 1000 and counted.get(end_fill, 0) > 1000
