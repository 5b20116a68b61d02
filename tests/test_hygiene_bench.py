"""The hygiene bench (bench/hygiene.py) in short: 1000 contacts through a hygiene run on the dev
server, and the SQL floor, agree with what the generated list holds."""

from __future__ import annotations

from pathlib import Path

from bench.hygiene import run_bench


async def test_the_hygiene_run_and_the_sql_floor_find_what_the_list_holds(tmp_path: Path) -> None:
    figures = await run_bench(1000, 100, tmp_path)
    leads, counts = figures.leads, figures.hygiene.report.counts
    print(*figures.lines(), sep="\n")
    assert leads.duplicates == 20
    assert counts["merged"] == figures.floor_merged == leads.duplicates
    assert counts["phone_normalised"] == leads.phones_to_normalise
    assert counts["phone_invalid"] == leads.phones_invalid
    assert counts["sunset"] == leads.gone_quiet
    assert "email_invalid" not in counts
    assert 0 < figures.floor_seconds < figures.hygiene.seconds
