"""Every benchmark script runs in its quick mode and reports rows (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = [*sorted(BENCH.glob("bench_*.py")), BENCH / "gpu_check.py"]
sys.path.insert(0, str(BENCH))
import _timing  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_quick_mode_runs_and_reports(script, tmp_path):
    rows_file = tmp_path / "rows.jsonl"
    env = {**os.environ, _timing.ROWS_ENV: str(rows_file), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=BENCH,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = (
        [json.loads(line) for line in rows_file.read_text().splitlines()]
        if rows_file.exists()
        else []
    )
    if script.name == "gpu_check.py":
        return  # rows only where a CUDA device is present
    assert rows, f"{script.name} reported no rows"
    for row in rows:
        assert row["ours_s"] > 0 and row["baseline_s"] > 0
        assert row["ratio"] == pytest.approx(row["baseline_s"] / row["ours_s"])


def test_every_script_has_a_quick_mode():
    for script in SCRIPTS:
        assert "--quick" in script.read_text() or "options(__doc__)" in script.read_text()


def test_table_lists_every_row_with_its_ratio():
    rows = [
        {"workload": "w1", "ours_s": 0.5, "baseline": "loop", "baseline_s": 5.0, "ratio": 10.0,
         "limit": ""},
        {"workload": "w2", "ours_s": 2e-4, "baseline": "floor", "baseline_s": 1e-4, "ratio": 0.5,
         "limit": "memory-bound"},
    ]  # fmt: skip
    text = _timing.format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["workload", "ours"]
    assert "10x" in lines[2] and "500.0 ms" in lines[2] and "loop: 5.00 s" in lines[2]
    assert "200 µs" in lines[3] and "0.5x" in lines[3] and lines[3].endswith("memory-bound")
