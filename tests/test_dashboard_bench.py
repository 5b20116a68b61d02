"""The journey reports' bench (bench/dashboard.py) in short: a small generated store, and the
overview's figures add up to the rows it was filled with."""

from __future__ import annotations

from pathlib import Path

from bench.dashboard import BUSIEST, run_bench


async def test_the_dashboard_bench_times_reports_that_count_what_it_generated(
    tmp_path: Path,
) -> None:
    figures = await run_bench(2000, 10_000, 1, tmp_path)
    print(*figures.lines(), sep="\n")
    rows, overview = figures.rows, figures.overview
    assert rows["deliveries"] == 2000 and rows["events"] == 10_000
    assert sum(f.entered for f in overview.journeys) == rows["journey_entries"]
    sent_or_failed = sum(c.sent + c.failed for f in overview.journeys for c in f.sends.values())
    assert 0.9 * rows["deliveries"] < sent_or_failed < rows["deliveries"]  # less the capped
    (busiest,) = [f for f in overview.journeys if f.journey_id == BUSIEST]
    assert busiest.conversions is not None and 0 < busiest.conversions < busiest.entered
    assert [t.what for t in figures.timings] == [
        "overview, 90 days",
        f"report of {BUSIEST}, 90 days",
        "overview, 7 days",
        f"report of {BUSIEST}, 7 days",
    ]
    assert all(t.median_s > 0 for t in figures.timings)
