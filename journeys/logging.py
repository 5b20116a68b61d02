"""structlog JSON logs with email addresses and phone numbers masked.

Masking runs last, over every value (and tracebacks, after they are formatted), so an address
that slips into a provider's error message is still not written in clear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_EMAIL = re.compile(r"([\w.!#$%&'*+/=?^`{|}~-]+)@([\w-]+(?:\.[\w-]+)+)")
# Phones are stored as E.164 (contacts.py normalizes them), so a leading '+' marks one; a bare
# run of 9-15 digits standing alone is treated as a national number typed without it.
_PHONE = re.compile(r"\+\d[\d ().-]{5,}\d|(?<![\w.+-])\d{9,15}(?![\w.-])")

_handler: logging.Handler | None = None


def _mask_email(m: re.Match[str]) -> str:
    return f"{m[1][0]}***@{m[2]}"


def _mask_phone(m: re.Match[str]) -> str:
    # Country code and last two digits are enough to tell numbers apart while debugging.
    return f"{m[0][:3]}***{m[0][-2:]}"


def mask(value: Any) -> Any:
    """Mask anything that looks like an email address or a phone number, recursively."""
    if isinstance(value, str):
        return _PHONE.sub(_mask_phone, _EMAIL.sub(_mask_email, value))
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return type(value)(mask(v) for v in value)
    return value


def mask_pii(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: `mask` over every value of the event."""
    return {k: mask(v) for k, v in event_dict.items()}


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on `stream` (stderr) for structlog and for the standard library's loggers
    (temporalio, aiosmtplib, twilio), all masked. Calling it again replaces the earlier setup."""
    global _handler
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_pii,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    # The twilio client logs four INFO lines per request; its errors still come through.
    logging.getLogger("twilio").setLevel(max(logging.WARNING, root.level))
    # aiosmtpd (the dev stack's mail sink) logs every SMTP command at INFO.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, root.level))
