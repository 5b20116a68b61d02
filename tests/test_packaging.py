"""A production install (`pip install .`, no extras) imports every module it ships, and says what
to install when asked for the dev stack. The extras' packages are made unimportable in a fresh
interpreter, which is what a venv without them would be."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child: every name in argv[1] fails to import, then argv[2]'s code runs.
_CHILD = """
import importlib.abc, json, sys

blocked = set(json.loads(sys.argv[1]))

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
exec(sys.argv[2])
"""


def _with_dependencies(names: set[str]) -> set[str]:
    """`names` and every distribution they need (for this platform), as canonical names."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        found.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for line in needs:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def _extras_only_modules() -> set[str]:
    """Top-level modules of the distributions only an extra brings in, with what they need."""
    base, extra = set(), set()
    for line in requires("journeys") or []:
        req = Requirement(line)
        if req.name == "journeys":
            continue  # the dev extra names the other extras
        (extra if req.marker and "extra" in str(req.marker) else base).add(req.name)
    needed = _with_dependencies(base)
    extras_only = _with_dependencies(extra) - needed
    return {
        module
        for module, dists in packages_distributions().items()
        if {canonicalize_name(d) for d in dists} <= extras_only
    }


def _shipped_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.rstrip("*") for pattern in include]


def _without_extras(code: str) -> subprocess.CompletedProcess[str]:
    blocked = json.dumps(sorted(_extras_only_modules()))
    return subprocess.run(
        [sys.executable, "-c", _CHILD, blocked, code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_extras_are_really_kept_out() -> None:
    blocked = _extras_only_modules()
    # The extras' packages and what only they need (aiosmtpd's atpublic, pytest's pluggy).
    assert {"aiosmtpd", "public", "psycopg", "pytest", "pluggy", "httpx"} <= blocked
    assert not {"temporalio", "fastapi", "sqlalchemy", "twilio"} & blocked
    result = _without_extras("import aiosmtpd")
    assert "No module named 'aiosmtpd'" in result.stderr


def test_every_shipped_module_imports_without_the_extras() -> None:
    packages = _shipped_packages()
    assert {"journeys", "devstack"} <= set(packages)
    code = f"""
import importlib, pkgutil
for name in {packages!r}:
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(module.name)
        print(module.name)
"""
    result = _without_extras(code)
    assert result.returncode == 0, result.stderr
    imported = result.stdout.split()
    assert {"gateway.app", "workers.worker", "starters.cli", "devstack.stack"} <= set(imported)


def test_the_dev_stack_without_its_extra_says_what_to_install() -> None:
    code = "from starters.cli import app; app(['dev'])"
    result = _without_extras(code)
    assert result.returncode == 1
    assert "aiosmtpd is not installed: install the embedded extra: " in result.stderr
    assert "pip install 'journeys[embedded]'" in result.stderr
