"""The benchmark suite runs: ``python -m benchmarks --quick`` produces every figure, as ratios against baselines
measured in the same run. Nothing here looks at the times themselves (they depend on the machine's load)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_mode_runs_every_benchmark_and_reports_ratios(tmp_path: Path) -> None:
    out, table = tmp_path / "figures.json", tmp_path / "figures.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out), "--markdown", str(table)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    for key in ("cores", "cpu", "python", "packages", "base64 decoder", "date"):
        assert report["machine"][key]
    benchmarks = {figure["benchmark"] for figure in report["figures"]}
    assert benchmarks == {"calls", "partial_latency", "decoders", "imports", "store_growth"}
    names = " | ".join(figure["name"] for figure in report["figures"])
    for expected in (
        "per call, sync",
        "per call, async",
        "concurrent async calls",
        "longest event-loop stall",
        "peak memory per in-flight call",
        "partial image to callback, sync",
        "partial image to callback, async",
        "import imagegen_tool.langchain",
        "LangChain astream_events custom event",
        "stream with",
        "edit with",
    ):
        assert expected in names
    for figure in report["figures"]:
        assert math.isfinite(figure["baseline"]) and math.isfinite(figure["ours"]), figure
        assert figure["ratio"] >= 0
    # The printed report names the baseline of every ratio and never fails the run on a missed target.
    assert "x  [ours" in done.stdout
    assert "Traceback" not in done.stderr
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ") and "x |" in line]
    assert len(rows) == len(report["figures"])


def test_the_suite_refuses_an_unknown_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "no_such_benchmark"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "unknown benchmark no_such_benchmark" in done.stderr
