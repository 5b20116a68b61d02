"""Keys the dev stack makes for itself on first use and keeps in its data dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def kept_key(path: Path, make: Callable[[], str]) -> str:
    """The key in `path`, made by `make` on first use: what was signed or encrypted with it in
    an earlier run of the stack stays valid across restarts."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make() + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()
