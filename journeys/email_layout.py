"""One responsive layout for every email (`email_layout.html`): a hidden preheader, the brand,
the template's content block, its call to action as a button, and a footer with the sender's
postal address and, for marketing mail, the unsubscribe link. The plain-text part gets the same
call to action and footer.

The layout's CSS is inlined into each template's Jinja source once per version of the template
(and brand colour), not into each message: a send renders an already compiled template. The
inliner parses HTML, so the Jinja tags are swapped for placeholders while it runs; a tag the
parser would move (text between table rows is put before the table) is refused by the check that
every placeholder comes back once, and those in text in the order written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import css_inline

from journeys.settings import Settings

LAYOUT = Path(__file__).with_name("email_layout.html")
# Where a template's content block goes in the layout.
_CONTENT = "{# content #}"
# The plain-text part's lines are wrapped at this width (RFC 5322 recommends at most 78).
TEXT_WIDTH = 72

_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# Private-use characters: never in a template, kept as they are by the HTML parser.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
# An HTML tag, comment or doctype (a "<" followed by a space is text).
_MARKUP = re.compile(r"<[A-Za-z/!][^>]*>")
# What the layout writes itself: a content block holding one of these is a whole page.
_PAGE_TAG = re.compile(r"<\s*/?\s*(html|head|body)\b", re.IGNORECASE)


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class Brand:
    """What the layout shows of the sender, from settings."""

    name: str
    color: str
    logo_url: str | None
    postal_address: str
    site_url: str

    @classmethod
    def of(cls, settings: Settings) -> Brand:
        return cls(
            name=settings.brand_name,
            color=settings.brand_color,
            logo_url=settings.brand_logo_url,
            postal_address=settings.postal_address,
            site_url=settings.site_url,
        )


def content_problem(content: str) -> str | None:
    """Why an email template's html part cannot be laid out, or None."""
    if found := _PAGE_TAG.search(content):
        return (
            f"the html part is the content block only: the layout writes <{found[1].lower()}> "
            "(leave out <html>, <head> and <body>)"
        )
    try:
        laid_out(content, "#000000")  # whatever the colour, the tags stay where they are
    except LayoutError as e:
        return str(e)
    return None


@lru_cache(maxsize=1024)
def laid_out(content: str, color: str) -> str:
    """The Jinja source of a whole email: `content` (Jinja source of the content block) in the
    layout, with the CSS inlined in `color`. Keyed by the source, so an edited template is laid
    out again; rendered with `layout` (`layout_context`) beside the template's own context."""
    page = _layout().replace(_CONTENT, content)
    tags: list[str] = []

    def hold(tag: re.Match[str]) -> str:
        tags.append(tag[0])
        return f"{_OPEN}{len(tags) - 1}{_CLOSE}"

    held = _JINJA_TAG.sub(hold, page)
    inlined = _inliner(color).inline(held)
    # Each tag comes back once, and those in text in the order written (the attributes of an
    # element may come back in another order, which changes nothing).
    in_text = _in_text(held)
    if sorted(_held(inlined)) != list(range(len(tags))) or _in_text(inlined) != in_text:
        moved = next(
            (tags[n] for n, m in zip(in_text, _in_text(inlined), strict=False) if n != m),
            tags[-1],
        )
        raise LayoutError(
            f"the HTML parser moved the Jinja tag {moved!r}: keep tags inside an element "
            "(in a cell or a paragraph), not between table rows"
        )
    return _PLACEHOLDER.sub(lambda m: tags[int(m[1])], inlined)


def _held(html: str) -> list[int]:
    return [int(n) for n in _PLACEHOLDER.findall(html)]


def _in_text(html: str) -> list[int]:
    """The placeholders outside the markup, in order."""
    return _held(_MARKUP.sub("", html))


@cache
def _layout() -> str:
    return LAYOUT.read_text(encoding="utf-8")


@lru_cache(maxsize=16)
def _inliner(color: str) -> css_inline.CSSInliner:
    # The brand colour is a CSS variable the inliner resolves; media queries stay in <style>.
    return css_inline.CSSInliner(
        keep_at_rules=True,
        load_remote_stylesheets=False,
        resolve_css_variables=True,
        extra_css=f":root {{ --brand-color: {color}; }}",
    )


def layout_context(
    brand: Brand, parts: dict[str, str], unsubscribe: str | None
) -> dict[str, object]:
    """What the layout reads, under `layout`: the brand, the template's rendered `preheader`,
    `cta` and `cta_url`, and the unsubscribe link (None for work mail, which has none)."""
    return {
        "brand": brand,
        "preheader": parts.get("preheader", "").strip(),
        "cta": parts.get("cta", "").strip(),
        "cta_url": parts.get("cta_url", "").strip(),
        "unsubscribe": unsubscribe,
    }


def plain_text(brand: Brand, parts: dict[str, str], unsubscribe: str | None) -> str:
    """The plain-text part: the template's text with long lines wrapped (a URL is never broken),
    its call to action as "Label: URL" on a line of its own, and the footer."""
    body = "\n".join(_wrapped(line) for line in parts["text"].strip().splitlines())
    blocks = [body]
    if cta_url := parts.get("cta_url", "").strip():
        blocks.append(f"{parts.get('cta', '').strip()}: {cta_url}")
    footer = [_wrapped(f"{brand.name}, {brand.postal_address}")]
    if unsubscribe is not None:
        footer.append(f"Unsubscribe: {unsubscribe}")
    blocks.append("-- \n" + "\n".join(footer))
    return "\n\n".join(blocks) + "\n"


def _wrapped(line: str) -> str:
    """`line` broken at spaces into lines of at most TEXT_WIDTH, but a word longer than that (a
    URL) stays on the line before it: "Survey: https://..." keeps its label."""
    if len(line) <= TEXT_WIDTH:
        return line
    indent = line[: len(line) - len(line.lstrip())]
    lines: list[str] = []
    current = ""
    for word in line.split():
        fits = len(indent) + len(current) + 1 + len(word) <= TEXT_WIDTH
        if current and not fits and len(indent) + len(word) <= TEXT_WIDTH:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\n".join(indent + text for text in lines)
