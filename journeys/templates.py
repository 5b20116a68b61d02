"""Message templates: one YAML file per template under `<library>/templates/<channel>/<name>.yaml`.

The parts a template of each channel has are listed in journeys.channels. Each part is Jinja2,
rendered with `contact` (id, email, phone, locale, attributes), `links` (unsubscribe, site, ...)
and `step` / `journey` ids. An email's html part is the content block of the layout every email
shares (journeys.email_layout).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, ValidationError

from journeys.channels import CHANNELS, Channel
from journeys.email_layout import Brand, content_problem, laid_out, layout_context, plain_text

ONSITE_KINDS = ("chat", "nps_popup")

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateError(ValueError):
    pass


class MessageTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str
    name: str
    parts: dict[str, str]

    def render(self, context: dict[str, Any]) -> dict[str, str]:
        """Render every part; HTML parts escape what the contact supplied."""
        return {
            part: _compiled(part == "html", source).render(context)
            for part, source in self.parts.items()
        }

    def render_email(
        self, context: dict[str, Any], brand: Brand, unsubscribe: str | None
    ) -> dict[str, str]:
        """An email template's `subject`, `text` and `html` in the layout of every email, with
        the unsubscribe link in its footer (None: work mail, which has none)."""
        parts = {
            part: _compiled(False, source).render(context)
            for part, source in self.parts.items()
            if part != "html"
        }
        layout = layout_context(brand, parts, unsubscribe)
        page = _compiled(True, laid_out(self.parts["html"], brand.color))
        return {
            "subject": parts["subject"],
            "text": plain_text(brand, parts, unsubscribe),
            "html": page.render({**context, "layout": layout}),
        }


@lru_cache(maxsize=1024)
def _compiled(html: bool, source: str) -> Template:
    # Compiling is most of a render's cost; keyed by the source, so an edited file still counts.
    return (_html_env if html else _env).from_string(source)


def template_path(library_dir: Path, channel: str, name: str) -> Path:
    return library_dir / "templates" / channel / f"{name}.yaml"


def load_template(library_dir: Path, channel: Channel | str, name: str) -> MessageTemplate:
    """Read and check a template; TemplateError says which file and what is wrong."""
    path = template_path(library_dir, channel, name)
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        raise TemplateError(f"unknown {channel} template '{name}' (no file {path})") from None
    return _load(path, channel, name, modified)


@lru_cache(maxsize=1024)
def _load(path: Path, channel: str, name: str, modified: int) -> MessageTemplate:
    """Parsed once per version of the file (`modified` is part of the key): sends are hot."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TemplateError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: expected a mapping of parts")
    required = CHANNELS[channel].parts
    optional = CHANNELS[channel].optional_parts
    missing = [p for p in required if not isinstance(raw.get(p), str)]
    extra = [p for p in raw if p not in required and p not in optional]
    if missing or extra:
        optional_note = f" (and optionally {list(optional)})" if optional else ""
        raise TemplateError(
            f"{path}: a {channel} template has the parts {list(required)}{optional_note}"
            f"{f'; missing {missing}' if missing else ''}{f'; unknown {extra}' if extra else ''}"
        )
    if channel == "onsite" and raw.get("kind", ONSITE_KINDS[0]) not in ONSITE_KINDS:
        raise TemplateError(f"{path}: kind is one of {list(ONSITE_KINDS)}, not {raw['kind']!r}")
    for part, source in raw.items():
        try:
            _env.parse(source)
        except TemplateSyntaxError as e:
            raise TemplateError(f"{path}: part '{part}' line {e.lineno}: {e.message}") from None
    if channel == "email":
        if ("cta" in raw) != ("cta_url" in raw):
            raise TemplateError(f"{path}: a call to action has both parts, cta and cta_url")
        if problem := content_problem(raw["html"]):
            raise TemplateError(f"{path}: {problem}")
    try:
        return MessageTemplate(channel=channel, name=name, parts=raw)
    except ValidationError as e:
        raise TemplateError(f"{path}: {e}") from None
