"""The contact store's own rules: which database URLs it takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeys.store import open_store


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite+aiosqlite:///{dir}/journeys.db", "aiosqlite"),
        ("postgresql+asyncpg://u@h/db", "asyncpg"),
    ],
)
async def test_an_asyncio_driver_is_refused_by_name_before_anything_is_created(
    tmp_path: Path, url: str, driver: str
) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match=f"asyncio driver '{driver}'.*sqlite:///"):
        await open_store(url.format(dir=data_dir))
    assert not data_dir.exists()
