"""A journey's graph, drawn as a standalone SVG document on the server (the dashboard inlines
it; `journeys draw --svg` writes it), and the same graph as a plain-text outline for terminals.

A layered drawing, top to bottom, in the manner of Sugiyama: a step's layer is the longest path
to it from the first step once the back edges (loops, gotos back) a depth-first search from the
first step meets are left out; steps no path reaches share a last layer. An edge that spans
layers passes through a placeholder in each layer between, so it runs between boxes, never
across one (edges to the same step share their placeholders: one trunk); an edge that goes back
up (or within a layer) runs around the side in a lane of its own. Barycentre passes order each
layer to cut crossings, and each layer's x positions are the closest to their neighbours' the
order allows (a least-squares fit under minimum gaps).

Pure and deterministic: the same spec and figures give the same bytes. Text is measured with a
wide font's character widths (no font metrics on the server) and cut with an ellipsis where it
would leave its box; the whole text shows on hover. Only presentation attributes, no <style>,
no ids, no script: a page can inline several drawings.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from xml.sax.saxutils import escape

from journeys.reports.models import StepFigures
from journeys.spec import (
    OVERDUE,
    UNASSIGNED,
    BranchStep,
    EndStep,
    GotoStep,
    JourneySpec,
    SendStep,
    SplitStep,
    Step,
    TaskStep,
    WaitForStep,
)

# Geometry, in px.
BOX_WIDTH = 248
BOX_PAD = 10
BOX_GAP = 28  # between boxes side by side
PASS_GAP = 14  # beside an edge passing through a layer
LINE = 15  # a line of text in a box
MIN_GAP = 44  # between layers
LABEL_LINE = 14
CHANNEL = 6  # between the horizontal runs of edges going back, where they share a gap
LANE = 12  # between the lanes of edges going back, beside the drawing
MARGIN = 16
LEGEND_HEIGHT = 30
ID_SIZE = 13
TEXT_SIZE = 11.5
LABEL_SIZE = 11
LABEL_WIDTH = 190  # an edge's label is cut beyond this
INK = "#111827"
MUTED = "#374151"
EDGE = "#4b5563"
BOLD = ' font-weight="bold"'

# Fill and border by what a kind does; dark text on a light fill reads on screen and in print.
_PALETTE = {
    "send": ("#dbeafe", "#1e40af"),
    "wait": ("#fef3c7", "#92400e"),
    "decision": ("#ede9fe", "#5b21b6"),
    "action": ("#dcfce7", "#166534"),
    "end": ("#e5e7eb", "#111827"),
}
_FAMILY = {
    "send": "send",
    "wait": "wait",
    "wait_for": "wait",
    "task": "wait",
    "branch": "decision",
    "split": "decision",
    "tag": "action",
    "audience": "action",
    "goto": "action",
    "end": "end",
}
# Characters XML 1.0 cannot hold at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Advance widths in em of DejaVu Sans (Debian's default sans-serif, wider than Arial or
# Helvetica, so text measured with them fits in those too); bold is about an eighth wider.
_EM = {
    **dict.fromkeys("ijl'|", 0.28),
    **dict.fromkeys(" .,:;!·", 0.33),
    **dict.fromkeys("ft()[]{}-", 0.4),
    **dict.fromkeys('r"', 0.46),
    **dict.fromkeys("sz_", 0.53),
    **dict.fromkeys("cekvxy", 0.6),
    **dict.fromkeys("abdghnopqu0123456789", 0.64),
    **dict.fromkeys("w", 0.82),
    **dict.fromkeys("m%", 0.98),
    **dict.fromkeys("+=<>&~", 0.84),
    **dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 0.76),
    **dict.fromkeys("MW", 0.99),
}
_EM_OTHER = 1.0  # anything else, wide enough for a symbol or an ideograph
_BOLD = 1.13


class Edge(NamedTuple):
    """One (step, successor) pair and what taking it means ("" when it means nothing more)."""

    source: str
    target: str
    label: str


def edges(spec: JourneySpec) -> list[Edge]:
    """Every (step, successor) pair once, in the spec's order, successors in the step's order;
    two ways to the same step share an edge and their labels."""
    known = spec.positions
    found: list[Edge] = []
    for index, step in enumerate(spec.steps):
        if known[step.id] != index:
            continue  # an id repeated: the first step of that id is the one runs go to
        labels: dict[str, list[str]] = {}
        for target, label in _labelled_successors(spec, step):
            if target in known:
                labels.setdefault(target, [])
                if label and label not in labels[target]:
                    labels[target].append(label)
        found += [Edge(step.id, target, ", ".join(names)) for target, names in labels.items()]
    return found


def _labelled_successors(spec: JourneySpec, step: Step) -> list[tuple[str, str]]:
    """The steps `step` leads to (as `JourneySpec.graph` has them), each with when it does."""
    match step:
        case WaitForStep():
            return [(step.on_event, step.event), (step.on_timeout, "timeout")]
        case BranchStep():
            chosen = [(c.next, c.when) for c in step.conditions]
            return [*chosen, (step.otherwise, "otherwise")]
        case SplitStep():
            return [(arm.next, f"weight {arm.weight}") for arm in step.arms]
        case GotoStep():
            return [(step.target, "")]
        case EndStep():
            return []
    after = spec.next_of(step, None)
    default = ""
    extra: list[tuple[str, str]] = []
    if isinstance(step, SendStep) and step.on_failure:
        extra = [(step.on_failure, "on failure")]
    if isinstance(step, TaskStep):
        # The outcomes `on` does not send elsewhere go on with `next`.
        default = ", ".join(o for o in (*step.outcomes, OVERDUE, UNASSIGNED) if o not in step.on)
        extra = [(target, outcome) for outcome, target in step.on.items()]
    return ([(after, default)] if after else []) + extra


def outline(spec: JourneySpec) -> str:
    """The graph as text, a line per step (id, kind, what it does) and one per edge under it:
    for a terminal or a CI log."""
    out = edges(spec)
    by_source: dict[str, list[Edge]] = {}
    for e in out:
        by_source.setdefault(e.source, []).append(e)
    reached = _reachable(spec.first_step, _successors(spec, out))
    lines = [f"{spec.id} v{spec.version}: {len(spec.positions)} steps, trigger {spec.trigger}"]
    for step in spec.steps:
        unreachable = "" if step.id in reached else "  (unreachable)"
        lines.append(f"{step.id}  {step.kind}  {step.describe()}{unreachable}")
        for e in by_source.get(step.id, []):
            lines.append(f"    -> {e.target}" + (f" ({e.label})" if e.label else ""))
    return "\n".join(lines) + "\n"


def _successors(spec: JourneySpec, out: list[Edge]) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {step_id: [] for step_id in spec.positions}
    for e in out:
        succ[e.source].append(e.target)
    return succ


def _reachable(first: str, succ: Mapping[str, list[str]]) -> set[str]:
    seen, todo = {first}, [first]
    while todo:
        for nxt in succ[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _layers(first: str, succ: Mapping[str, list[str]]) -> dict[str, int]:
    """Each step's layer: the longest path from `first` without the back edges of a depth-first
    search from it; unreachable steps one layer below the rest. The search keeps its own stack,
    so a journey of thousands of steps in a row does not exhaust Python's recursion."""
    on_path, finished, back = {first}, [], set()
    stack: list[tuple[str, Iterator[str]]] = [(first, iter(succ[first]))]
    seen = {first}
    while stack:
        node, successors = stack[-1]
        nxt = next(successors, None)
        if nxt is None:
            stack.pop()
            on_path.discard(node)
            finished.append(node)
        elif nxt in on_path:
            back.add((node, nxt))
        elif nxt not in seen:
            seen.add(nxt)
            on_path.add(nxt)
            stack.append((nxt, iter(succ[nxt])))
    layer = {first: 0}
    for node in reversed(finished):  # a topological order once the back edges are left out
        for nxt in succ[node]:
            if (node, nxt) not in back:
                layer[nxt] = max(layer.get(nxt, 0), layer[node] + 1)
    last = max(layer.values()) + 1
    return {step_id: layer.get(step_id, last) for step_id in succ}


@dataclass
class _Node:
    """A step's box, or a placeholder an edge passes through (step "")."""

    step: str
    layer: int
    width: float
    x: float = 0.0  # its centre
    up: list[int] = field(default_factory=list)  # neighbours in the layer above
    down: list[int] = field(default_factory=list)


@dataclass
class _Route:
    edge: Edge
    forward: bool
    hops: list[int]  # forward: node indexes from source to target; else [source, target]
    figure: str  # "412 · 61%", or "" without figures
    width: float
    lane_x: float = 0.0
    out_y: float = 0.0  # a back edge's runs across the gaps under its source, above its target
    in_y: float = 0.0
    start_x: float = 0.0
    end_x: float = 0.0


def _place(
    desired: list[float], gaps: list[float], weights: list[float] | None = None
) -> list[float]:
    """x for a row in a fixed order, each as close to its desired x as it can be (least squares,
    by weight) while `gaps[i]` apart from the next: pool-adjacent-violators on the gap-shifted
    targets."""
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # weighted sum, weight, members
    for d, off, w in zip(desired, offsets, weights or [1.0] * len(desired), strict=True):
        blocks.append([(d - off) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight, members = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight
            blocks[-1][2] += members
    fitted = [total / weight for total, weight, members in blocks for _ in range(int(members))]
    return [y + off for y, off in zip(fitted, offsets, strict=True)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


class _Layout:
    """Where every box, placeholder and lane goes."""

    def __init__(
        self,
        spec: JourneySpec,
        out: list[Edge],
        heights: Mapping[str, float],
        looks: list[tuple[str, float]],
    ) -> None:
        succ = _successors(spec, out)
        layer_of = _layers(spec.first_step, succ)
        self.count = max(layer_of.values()) + 1
        self.nodes: list[_Node] = []
        self.box: dict[str, int] = {}
        for step_id in spec.positions:
            self.box[step_id] = len(self.nodes)
            self.nodes.append(_Node(step_id, layer_of[step_id], BOX_WIDTH))
        self.routes: list[_Route] = []
        # Edges that pass layers on the way to one step share one placeholder per layer: a
        # step many reach from afar (an exit on failure) is one trunk, not a hundred lines.
        trunks: dict[tuple[int, int], int] = {}
        for e, (figure, width) in zip(out, looks, strict=True):
            source, target = self.box[e.source], self.box[e.target]
            if layer_of[e.target] <= layer_of[e.source]:
                self.routes.append(_Route(e, False, [source, target], figure, width))
                continue
            hops = [source]
            for layer in range(layer_of[e.source] + 1, layer_of[e.target]):
                if (target, layer) not in trunks:
                    trunks[target, layer] = len(self.nodes)
                    self.nodes.append(_Node("", layer, 0.0))
                hops.append(trunks[target, layer])
            hops.append(target)
            for a, b in itertools.pairwise(hops):
                if b not in self.nodes[a].down:
                    self.nodes[a].down.append(b)
                    self.nodes[b].up.append(a)
            self.routes.append(_Route(e, True, hops, figure, width))
        # The trunks more than one edge joins, by the step they lead to.
        self.trunks: dict[int, list[_Route]] = {}
        for r in self.routes:
            if r.forward and len(r.hops) > 2:
                self.trunks.setdefault(r.hops[-1], []).append(r)
        self.trunks = {t: routes for t, routes in self.trunks.items() if len(routes) > 1}
        self.box_heights = heights
        self.rows = self._order(spec.first_step)
        self._place_x()
        self._lanes()
        self._place_y()
        self._ports()

    def _order(self, first: str) -> list[list[int]]:
        """Each layer's nodes, left to right: first as a depth-first walk meets them (a branch's
        arms in the order written), then barycentre passes down and up."""
        rank: dict[int, int] = {}
        todo = [self.box[first]]
        while todo:
            walked = todo.pop()
            if walked not in rank:
                rank[walked] = len(rank)
                todo += reversed(self.nodes[walked].down)
        rows: list[list[int]] = [[] for _ in range(self.count)]
        for index, node in enumerate(self.nodes):
            rows[node.layer].append(index)
        unranked = len(self.nodes)
        for row in rows:
            row.sort(key=lambda n: rank.get(n, unranked + n))
        position = {n: float(i) for row in rows for i, n in enumerate(row)}
        for side in ("up", "down", "up", "down"):
            # Down the layers by the neighbours above, then up by those below.
            layers = range(1, self.count) if side == "up" else range(self.count - 2, -1, -1)
            for layer in layers:
                row = rows[layer]
                keys = {}
                for n in row:
                    near = getattr(self.nodes[n], side)
                    keys[n] = _mean([position[m] for m in near]) if near else position[n]
                row.sort(key=keys.__getitem__)  # stable: ties keep their order
                for i, n in enumerate(row):
                    position[n] = float(i)
        return rows

    def _gaps(self, row: list[int]) -> list[float]:
        gaps = []
        for a, b in itertools.pairwise(row):
            wa, wb = self.nodes[a].width, self.nodes[b].width
            gaps.append((wa + wb) / 2 + (BOX_GAP if wa and wb else PASS_GAP))
        return gaps

    def _place_x(self) -> None:
        for row in self.rows:
            for n, x in zip(row, _place([0.0] * len(row), self._gaps(row)), strict=True):
                self.nodes[n].x = x
        up_then_down = [*range(1, self.count), *range(self.count - 2, -1, -1)]
        for sides in (("up",), ("down",), ("up", "down"), ("up", "down")):
            for layer in up_then_down:
                row = self.rows[layer]
                desired = []
                for n in row:
                    node = self.nodes[n]
                    near = [self.nodes[m] for side in sides for m in getattr(node, side)]
                    # A box lines up with the boxes next to it rather than with edges passing
                    # by, and moves less than they do: a column of boxes stays straight
                    # instead of drifting a little at every layer an edge passes.
                    if node.step and any(m.step for m in near):
                        near = [m for m in near if m.step]
                    desired.append(_mean([m.x for m in near]) if near else node.x)
                weights = [1.0 if self.nodes[n].step else 0.05 for n in row]
                placed = _place(desired, self._gaps(row), weights)
                for n, x in zip(row, placed, strict=True):
                    self.nodes[n].x = x

    def _lanes(self) -> None:
        """Edges going back run beside the drawing, on the side nearer to their ends, the
        shortest nearest; then everything shifts right of the left lanes."""
        left = min(n.x - n.width / 2 for n in self.nodes)
        right = max(n.x + n.width / 2 for n in self.nodes)
        middle = (left + right) / 2
        back = [r for r in self.routes if not r.forward]
        sides: dict[bool, list[_Route]] = {True: [], False: []}
        for r in back:
            source, target = (self.nodes[h] for h in r.hops)
            sides[(source.x + target.x) / 2 < middle].append(r)
        for on_left, routes in sides.items():
            routes.sort(key=lambda r: self.nodes[r.hops[0]].layer - self.nodes[r.hops[1]].layer)
            for k, r in enumerate(routes):
                r.lane_x = left - LANE * (k + 1) if on_left else right + LANE * (k + 1)
        shift = MARGIN + LANE * len(sides[True]) - left
        for node in self.nodes:
            node.x += shift
        for r in back:
            r.lane_x += shift
        self.width = right - left + 2 * MARGIN + LANE * len(back)

    def _place_y(self) -> None:
        """Layer tops and bottoms, each gap tall enough for the runs of back edges through it
        and the labels of the edges that leave the layer above it."""
        outs = [0] * (self.count + 1)  # back edges leaving through gap g (under layer g - 1)
        ins = [0] * (self.count + 1)  # back edges arriving through gap g (above layer g)
        label_room = [0.0] * (self.count + 1)
        for r in self.routes:
            source = self.nodes[r.hops[0]].layer
            if lines := _label_lines(r):
                label_room[source + 1] = max(label_room[source + 1], _label_height(lines))
            if not r.forward:
                outs[source + 1] += 1
                ins[self.nodes[r.hops[1]].layer] += 1
        self.gap_top: list[float] = []
        self.tops: list[float] = []
        self.bottoms: list[float] = []
        y: float = LEGEND_HEIGHT + MARGIN
        for layer in range(self.count + 1):
            self.gap_top.append(y)
            channels = CHANNEL * (outs[layer] + ins[layer] + 2)
            y += max(MIN_GAP if 0 < layer < self.count else CHANNEL, channels + label_room[layer])
            if layer == self.count:
                break
            self.tops.append(y)
            tallest = max(self.box_heights.get(self.nodes[n].step, 0.0) for n in self.rows[layer])
            y += tallest
            self.bottoms.append(y)
        self.height = y + MARGIN
        # Labels go between the runs leaving through a gap and those arriving through it.
        self.label_y = [
            (self.gap_top[g] + CHANNEL * (outs[g] + 1) + self.tops[g] - CHANNEL * (ins[g] + 1)) / 2
            for g in range(1, self.count)
        ]
        outs_used = [0] * (self.count + 1)
        ins_used = [0] * (self.count + 1)
        for r in self.routes:
            if r.forward:
                continue
            gap_out = self.nodes[r.hops[0]].layer + 1
            outs_used[gap_out] += 1
            r.out_y = self.gap_top[gap_out] + CHANNEL * outs_used[gap_out]
            gap_in = self.nodes[r.hops[1]].layer
            ins_used[gap_in] += 1
            r.in_y = self.tops[gap_in] - CHANNEL * ins_used[gap_in]

    def _ports(self) -> None:
        """Where each edge leaves its source's bottom and enters its target's top: spread along
        the box, ordered by where the edge goes (or comes from), so sibling edges do not cross
        at the box."""
        leaving: dict[int, list[tuple[float, int, _Route]]] = {}
        arriving: dict[int, dict[int, tuple[float, list[_Route]]]] = {}
        for i, r in enumerate(self.routes):
            if r.forward:
                towards, last = self.nodes[r.hops[1]].x, r.hops[-2]
                # The edges of a trunk arrive as one.
                came = last if not self.nodes[last].step else len(self.nodes) + i
                source_of = self.nodes[last].x
            else:
                towards = source_of = r.lane_x
                came = len(self.nodes) + i
            leaving.setdefault(r.hops[0], []).append((towards, i, r))
            arriving.setdefault(r.hops[-1], {}).setdefault(came, (source_of, []))[1].append(r)
        for box, items in leaving.items():
            for k, (_, _, r) in enumerate(sorted(items, key=lambda t: t[:2])):
                r.start_x = self._spread(box, k, len(items))
        for box, groups in arriving.items():
            ordered = sorted(groups.items(), key=lambda g: (g[1][0], g[0]))
            for k, (_, (_, routes)) in enumerate(ordered):
                for r in routes:
                    r.end_x = self._spread(box, k, len(groups))

    def _spread(self, box: int, k: int, count: int) -> float:
        node = self.nodes[box]
        usable = node.width * 0.7
        return node.x - usable / 2 + usable * (k + 1) / (count + 1)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _attr(value: str) -> str:
    return escape(_NOT_XML.sub("", value), {'"': "&quot;"})


def _width(text: str, size: float, bold: bool = False) -> float:
    """How wide `text` is drawn, at most (see _EM)."""
    return sum(_EM.get(c, _EM_OTHER) for c in text) * size * (_BOLD if bold else 1.0)


def _short(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text`, cut with an ellipsis to fit `width`."""
    if _width(text, size, bold) <= width:
        return text
    room = width - _width("…", size, bold)
    kept = 0
    for c in text:
        room -= _width(c, size, bold)
        if room < 0:
            break
        kept += 1
    return text[:kept].rstrip() + "…"


def _wrapped(text: str, width: float, size: float, lines: int) -> list[str]:
    """`text` in at most `lines` lines of `width`, by words; the last cut if it goes on."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and _width(f"{line} {words[0]}", size) <= width:
            line += " " + words.pop(0)
        if len(out) == lines - 1 and words:
            line = _short(f"{line} {' '.join(words)}", width, size)
        out.append(_short(line, width, size))
    return out


def _share(count: int, total: int) -> str:
    if not total:
        return "0%"
    share = count / total
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


@dataclass
class _Box:
    """What a step's box says: its lines (text, size, bold, colour) and its hover text."""

    lines: list[tuple[str, float, bool, str]]
    title: str

    @property
    def height(self) -> float:
        return 2 * BOX_PAD + LINE * len(self.lines) + 2


def _box(step: Step, figures: StepFigures | None, counted: bool) -> _Box:
    inner = BOX_WIDTH - 2 * BOX_PAD
    described = _wrapped(step.describe(), inner, TEXT_SIZE, 2)
    lines = [
        (_short(step.id, inner, ID_SIZE, True), ID_SIZE, True, INK),
        (step.kind, TEXT_SIZE, False, MUTED),
        *((line, TEXT_SIZE, False, INK) for line in described),
    ]
    if counted:
        f = figures or StepFigures(step_id=step.id, kind=step.kind)
        seen = f"{f.entered:,} entered"
        if f.visits > f.entered:
            seen += f" · {f.visits:,} visits"
        said = [seen]
        if f.waiting is not None:
            said.append(f"{f.waiting:,} waiting now")
        sends = [
            f"{value:,} {name}"
            for name, value in (("sent", f.sent), ("opens", f.opens), ("clicks", f.clicks))
            if value is not None
        ]
        if sends:
            said.append(" · ".join(sends))
        lines += [(_short(line, inner, TEXT_SIZE, True), TEXT_SIZE, True, INK) for line in said]
    title = f"{step.id} ({step.kind}): {step.describe()}"
    if step.note:
        title += f"\n{step.note}"
    return _Box(lines, title)


def _look(e: Edge, figures: Mapping[str, StepFigures] | None) -> tuple[str, float]:
    """An edge's count and share ("412 · 61%"; "" without them) and its stroke's width, which
    grows with the share."""
    f = figures.get(e.source) if figures is not None else None
    if f is None or not f.next:
        return "", 1.5
    total = sum(f.next.values())
    count = f.next.get(e.target, 0)
    return f"{count:,} · {_share(count, total)}", 1.25 + 6 * (count / total if total else 0.0)


def _label_lines(route: _Route) -> list[str]:
    lines = [_short(route.edge.label, LABEL_WIDTH, LABEL_SIZE)] if route.edge.label else []
    return lines + ([route.figure] if route.figure else [])


def _label_height(lines: list[str]) -> float:
    return LABEL_LINE * len(lines) + 6


def _label_width(lines: list[str]) -> float:
    return max(_width(line, LABEL_SIZE, bold=True) for line in lines) + 8


def draw(spec: JourneySpec, figures: Mapping[str, StepFigures] | None = None) -> str:
    """The journey's graph as an SVG document: a box per step (id, kind, what it does, and with
    `figures` how many entered it and wait there now), an arrow per (step, successor) pair
    labelled with when it is taken and, with figures, how many took it and their share."""
    out = edges(spec)
    boxes = {
        step.id: _box(step, figures.get(step.id) if figures else None, figures is not None)
        for i, step in enumerate(spec.steps)
        if spec.positions[step.id] == i
    }
    looks = [_look(e, figures) for e in out]
    layout = _Layout(spec, out, {k: b.height for k, b in boxes.items()}, looks)
    width = max(layout.width, _legend_width())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_num(width)} '
        f'{_num(layout.height)}" width="{_num(width)}" height="{_num(layout.height)}" '
        f'role="img" aria-label="{_attr(f"Journey {spec.id} v{spec.version}")}" '
        f'font-family="DejaVu Sans, Arial, Helvetica, sans-serif" fill="{INK}">',
        f"<title>{_text(f'{spec.id} v{spec.version}: {spec.description}')}</title>",
        f'<rect width="{_num(width)}" height="{_num(layout.height)}" fill="#ffffff"/>',
        *_legend(),
        '<g class="edges">',
        *(_edge(layout, r) for r in layout.routes),
        *(_trunk(layout, target, routes) for target, routes in layout.trunks.items()),
        "</g>",
        '<g class="edge-labels">',
        *_labels(layout, width),
        "</g>",
        '<g class="steps">',
        *(_step_box(layout, spec.step(step_id), box) for step_id, box in boxes.items()),
        "</g>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _legend_width() -> float:
    return 2 * MARGIN + sum(36 + _width(name, LABEL_SIZE) for name in _PALETTE)


def _legend() -> list[str]:
    parts = ['<g class="legend">']
    x = float(MARGIN)
    for name, (fill, stroke) in _PALETTE.items():
        parts.append(
            f'<rect x="{_num(x)}" y="{MARGIN}" width="16" height="12" rx="2" fill="{fill}" '
            f'stroke="{stroke}"/><text x="{_num(x + 22)}" y="{MARGIN + 10}" '
            f'font-size="{LABEL_SIZE}" fill="{MUTED}">{name}</text>'
        )
        x += 36 + _width(name, LABEL_SIZE)
    parts.append("</g>")
    return parts


def _rounded(points: list[tuple[float, float]], radius: float = 6.0) -> str:
    """A path through right-angled corners, each rounded."""
    d = [f"M{_num(points[0][0])},{_num(points[0][1])}"]
    for (ax, ay), (bx, by), (cx, cy) in zip(points, points[1:], points[2:], strict=False):
        r = min(radius, (abs(bx - ax) + abs(by - ay)) / 2, (abs(cx - bx) + abs(cy - by)) / 2)

        def toward(px: float, py: float, r: float = r, bx: float = bx, by: float = by) -> str:
            length = abs(px - bx) + abs(py - by)
            t = r / length if length else 0.0
            return f"{_num(bx + (px - bx) * t)},{_num(by + (py - by) * t)}"

        d.append(f"L{toward(ax, ay)}Q{_num(bx)},{_num(by)} {toward(cx, cy)}")
    d.append(f"L{_num(points[-1][0])},{_num(points[-1][1])}")
    return "".join(d)


def _descent(layout: _Layout, x: float, y: float, hops: list[int], end: tuple[float, float]) -> str:
    """A path down from (x, y), at the bottom of a layer's band, through the placeholders
    `hops` (straight through each one's layer, curving across each gap) to `end`."""
    d = []
    for hop in hops:
        node = layout.nodes[hop]
        last = hop == hops[-1]
        nx, ny = end if last else (node.x, layout.tops[node.layer])
        middle = (y + ny) / 2
        d.append(f"C{_num(x)},{_num(middle)} {_num(nx)},{_num(middle)} {_num(nx)},{_num(ny)}")
        x, y = nx, ny
        if not last:
            y = layout.bottoms[node.layer]
            d.append(f"L{_num(x)},{_num(y)}")
    return "".join(d)


def _arrow(x: float, top: float, width: float) -> str:
    half, length = 3.5 + width * 0.8, 7 + width
    return (
        f'<path d="M{_num(x - half)},{_num(top - length)}L{_num(x)},{_num(top)}'
        f'L{_num(x + half)},{_num(top - length)}Z" fill="{EDGE}"/>'
    )


def _line(path: str, width: float) -> str:
    return f'<path d="{path}" fill="none" stroke="{EDGE}" stroke-width="{_num(width)}"/>'


def _edge(layout: _Layout, r: _Route) -> str:
    """An edge's path with its arrowhead; one that joins a trunk ends where it joins it."""
    nodes = layout.nodes
    source, target = nodes[r.hops[0]], nodes[r.hops[-1]]
    box_bottom = layout.tops[source.layer] + layout.box_heights[source.step]
    top = layout.tops[target.layer]
    tip = top - (7 + r.width)
    joins = r.forward and len(r.hops) > 2 and r.hops[-1] in layout.trunks
    if r.forward:
        band_bottom = layout.bottoms[source.layer]
        path = f"M{_num(r.start_x)},{_num(box_bottom)}L{_num(r.start_x)},{_num(band_bottom)}"
        if joins:
            joined = nodes[r.hops[1]]
            end = (joined.x, layout.tops[joined.layer])
            path += _descent(layout, r.start_x, band_bottom, r.hops[1:2], end)
        else:
            path += _descent(layout, r.start_x, band_bottom, r.hops[1:], (r.end_x, tip))
    else:
        path = _rounded(
            [
                (r.start_x, box_bottom),
                (r.start_x, r.out_y),
                (r.lane_x, r.out_y),
                (r.lane_x, r.in_y),
                (r.end_x, r.in_y),
                (r.end_x, tip),
            ]
        )
    said = f"{r.edge.source} → {r.edge.target}"
    if r.edge.label:
        said += f": {r.edge.label}"
    if r.figure:
        said += f" ({r.figure})"
    return (
        f'<g class="edge" data-from="{_attr(r.edge.source)}" data-to="{_attr(r.edge.target)}">'
        f"<title>{_text(said)}</title>{_line(path, r.width)}"
        f"{'' if joins else _arrow(r.end_x, top, r.width)}</g>"
    )


def _trunk(layout: _Layout, target: int, routes: list[_Route]) -> str:
    """The one line down to a step that edges from several layers above join, drawn once."""
    hops = sorted({h for r in routes for h in r.hops[1:-1]}, key=lambda h: layout.nodes[h].layer)
    first = layout.nodes[hops[0]]
    node = layout.nodes[target]
    width = max(r.width for r in routes)
    top = layout.tops[node.layer]
    x, y = first.x, layout.bottoms[first.layer]
    path = f"M{_num(x)},{_num(layout.tops[first.layer])}L{_num(x)},{_num(y)}"
    path += _descent(layout, x, y, [*hops[1:], target], (routes[0].end_x, top - (7 + width)))
    return (
        f'<g class="trunk" data-to="{_attr(node.step)}"><title>'
        f"{_text(f'{len(routes)} edges to {node.step}')}</title>{_line(path, width)}"
        f"{_arrow(routes[0].end_x, top, width)}</g>"
    )


def _labels(layout: _Layout, drawing_width: float) -> list[str]:
    """Each edge's label under its source: on the curve's middle in the gap for an edge going
    down (labels in one gap pushed apart so none covers another), on its first run for one
    going back; all within the drawing."""
    parts: list[str] = []
    by_gap: dict[int, list[tuple[float, float, _Route, list[str]]]] = {}
    for r in layout.routes:
        lines = _label_lines(r)
        if not lines:
            continue
        width = _label_width(lines)
        source = layout.nodes[r.hops[0]]
        if r.forward:
            towards = r.end_x if len(r.hops) == 2 else layout.nodes[r.hops[1]].x
            by_gap.setdefault(source.layer, []).append(((r.start_x + towards) / 2, width, r, lines))
        else:
            side = 1 if r.lane_x > r.start_x else -1
            x = r.start_x + side * (width / 2 + 4)
            x = min(max(x, width / 2 + 2), drawing_width - width / 2 - 2)
            parts.append(_label(r, lines, x, r.out_y + LABEL_LINE * len(lines) / 2 - 2, width))
    for layer, items in sorted(by_gap.items()):
        items.sort(key=lambda item: item[0])
        gaps = [(a[1] + b[1]) / 2 + 4 for a, b in itertools.pairwise(items)]
        xs = _place([item[0] for item in items], gaps)
        # The row as a whole moves in from an edge of the drawing it would stick out of.
        shift = max(0.0, 2 + items[0][1] / 2 - xs[0])
        shift -= max(0.0, xs[-1] + shift + items[-1][1] / 2 + 2 - drawing_width)
        for x, (_, width, r, lines) in zip(xs, items, strict=True):
            parts.append(_label(r, lines, x + shift, layout.label_y[layer], width))
    return parts


def _label(r: _Route, lines: list[str], x: float, y: float, width: float) -> str:
    height = LABEL_LINE * len(lines) + 2
    top = y - height / 2
    texts = "".join(
        f'<text x="{_num(x)}" y="{_num(top + LABEL_LINE * (i + 1) - 3)}" text-anchor="middle" '
        # The count under the condition, in bold.
        f'font-size="{LABEL_SIZE}"{BOLD if r.figure and i == len(lines) - 1 else ""}>'
        f"{_text(line)}</text>"
        for i, line in enumerate(lines)
    )
    return (
        f'<g class="edge-label" data-from="{_attr(r.edge.source)}" '
        f'data-to="{_attr(r.edge.target)}"><rect x="{_num(x - width / 2)}" y="{_num(top)}" '
        f'width="{_num(width)}" height="{_num(height)}" rx="3" fill="#ffffff" '
        f'fill-opacity="0.92"/>{texts}</g>'
    )


def _step_box(layout: _Layout, step: Step, box: _Box) -> str:
    node = layout.nodes[layout.box[step.id]]
    fill, stroke = _PALETTE[_FAMILY[step.kind]]
    left, top = node.x - node.width / 2, layout.tops[node.layer]
    texts = []
    for i, (line, size, bold, colour) in enumerate(box.lines):
        texts.append(
            f'<text x="{_num(left + BOX_PAD)}" y="{_num(top + BOX_PAD + LINE * (i + 1) - 3)}" '
            f'font-size="{_num(size)}"{BOLD if bold else ""} fill="{colour}">{_text(line)}</text>'
        )
    return (
        f'<g class="step" data-step="{_attr(step.id)}" data-kind="{step.kind}">'
        f"<title>{_text(box.title)}</title>"
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(node.width)}" '
        f'height="{_num(box.height)}" rx="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{2 if step.kind == "end" else 1.25}"/>{"".join(texts)}</g>'
    )
