"""The benchmark suite (bench/suite.py) at its quick sizes: every figure comes out, with a value
and a ratio against bare Temporal, and the table is appended to the results file. Its figures
say nothing about speed; the test is there so the suite cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The rows every run of the suite prints, by the start of their figure's name.
FIGURES = [
    "event latency p50",
    "event latency p99",
    "end-to-end throughput, 10 runs, 1 worker",
    "Temporal server CPU per run, 1 worker",
    "worker CPU per run, 1 worker",
    "end-to-end throughput, 10 runs, 1 worker(s), bare with the journey's sends",
    "Temporal server CPU per run, 1 worker(s), bare with the journey's sends",
    "worker CPU per run, 1 worker(s), bare with the journey's sends",
    "end-to-end throughput, 10 runs, 2 worker",
    "Temporal server CPU per run, 2 worker",
    "worker CPU per run, 2 worker",
    "end-to-end throughput, 10 runs, 2 worker(s), bare with the journey's sends",
    "Temporal server CPU per run, 2 worker(s), bare with the journey's sends",
    "worker CPU per run, 2 worker(s), bare with the journey's sends",
    "scaling: throughput with 2 workers / with 1",
    "bulk start, 50 contacts",
    "starter CPU per start",
    "Temporal server CPU per start",
    "worker RSS, 10 runs waiting",
    "worker RSS, 50 runs waiting",
    "worker RSS growth",
    "worker CPU while 50 wait",
    "gateway open pixel at p99 < 1 s, 1 process",
    "gateway open pixel at p99 < 1 s, 2 process",
    "gateway /v1 events at p99 < 1 s, 1 process",
    "gateway /v1 events at p99 < 1 s, 2 process",
]
# A worker holding 50 waiting runs may use no CPU at all in the quick run's one second; at the
# quick sizes' few seconds a rate, a busy machine may keep a gateway from holding any.
MAY_BE_ZERO = ("worker CPU while", "gateway ")


def test_the_quick_suite_appends_every_figure_beside_bare_temporal(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# earlier results\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--quick", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = results.read_text()
    assert text.startswith("# earlier results\n\n## ")
    assert "quick" in text and "Machine: " in text and "temporalio " in text
    rows = {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| figure")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for name in FIGURES:
        row = next((cells for figure, cells in rows.items() if figure.startswith(name)), None)
        assert row is not None, f"no figure {name!r} in\n{text}"
        journeys, bare, ratio = row[:3]
        if name.startswith(MAY_BE_ZERO):
            assert float(journeys.replace(",", "")) >= 0, row
            continue
        assert float(journeys.replace(",", "")) > 0, row
        assert float(bare.replace(",", "")) > 0, row
        assert ratio.endswith("x") and float(ratio[:-1]) > 0, row
    targets = {cells[3] for cells in rows.values() if cells[3]}
    assert targets == {">= 0.9x", "<= 1.5x", "<= 1.25x"}
    assert len(rows) == len(FIGURES)
