"""Suite-wide reporting: how many tests ran on the real recorded OpenAI data, and how many were skipped.

Without ``../shared/fixtures`` (a clone outside the team workspace) those tests skip instead of failing; the
closing summary says so in one line, so a green run that skipped them is never mistaken for a full one.
``dev.py`` sets ``IMAGEGEN_RECORDED_REPORT`` to a file path to get the same counts as JSON for its summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from imagegen_tool.capabilities import TODAY_ENV
from tests.fixtures.lowest import LOWEST, missing_imports
from tests.fixtures.recorded import RECORDED, SKIP_MARK, USED_BY

#: The suite's "today" for every lifecycle check, the package's and the emulator's, in this process and in every
#: subprocess it starts (the CLI, the MCP server, the examples): the day the capability table was last reviewed.
#: A model's shutdown date passing on the calendar must not turn the suite red (on 2026-12-06, 153 tests that use
#: gpt-image-1.5 failed for that reason alone). Tests about dates pass ``today=`` themselves;
#: ``tests/unit/test_lifecycle_today.py`` checks what users copy (the default model, the examples, the code in the
#: docs) against the table without any date. Keep this date before the shutdowns of the models the tests use.
SUITE_TODAY = "2026-11-25"
os.environ[TODAY_ENV] = SUITE_TODAY  # not setdefault: a value left in the developer's shell must not change answers

_ran: set[str] = set()
_skipped: set[str] = set()
_left_out: dict[str, list[str]] = {}
# Tests marked ``browser`` (headless Chromium) that ran, and that skipped because Chromium is not installed.
_browser_ran: set[str] = set()
_browser_skipped: set[str] = set()


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if LOWEST and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        missing = missing_imports(collection_path)
        if missing:
            _left_out[collection_path.name] = missing
            return True
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    # USED_BY fills in the process that ran the test; under pytest-xdist that is a worker, so the report (which
    # xdist sends to the controlling process, where the tally is made) carries the fact.
    outcome = yield
    if item.nodeid in USED_BY:
        outcome.get_result().user_properties.append(("imagegen_recorded", True))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "browser" in report.keywords:
        if report.skipped:
            _browser_skipped.add(report.nodeid)
        elif report.when == "call":
            _browser_ran.add(report.nodeid)
    if report.skipped:
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        if SKIP_MARK in reason.lower():
            _skipped.add(report.nodeid)
    elif report.when == "call" and (
        report.nodeid in USED_BY
        or "recorded" in report.keywords
        or ("imagegen_recorded", True) in report.user_properties
    ):
        _ran.add(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LOWEST and not _left_out and getattr(terminalreporter.config.option, "numprocesses", None):
        # Under pytest-xdist the workers collect, not this process: find the modules they left out the same way.
        for path in sorted(Path(str(terminalreporter.config.rootpath), "tests").rglob("test_*.py")):
            if missing := missing_imports(path):
                _left_out[path.name] = missing
    ran, skipped = len(_ran), len(_skipped - _ran)
    where = RECORDED if RECORDED.is_dir() else f"{RECORDED} (missing)"
    line = f"recorded-fixture tests: {ran} ran, {skipped} skipped (recordings: {where})"
    terminalreporter.write_sep("-", line, yellow=bool(skipped), green=not skipped)
    browser_ran, browser_skipped = len(_browser_ran), len(_browser_skipped - _browser_ran)
    if browser_ran or browser_skipped:
        line = f"browser tests: {browser_ran} ran, {browser_skipped} skipped (Chromium: /usr/bin/chromium)"
        terminalreporter.write_sep("-", line, yellow=bool(browser_skipped), green=not browser_skipped)
    for name, missing in sorted(_left_out.items()):
        terminalreporter.write_line(f"lowest versions: {name} left out (needs {', '.join(missing)})")
    report_file = os.environ.get("IMAGEGEN_RECORDED_REPORT")
    if report_file:
        tally = {
            "ran": ran,
            "skipped": skipped,
            "present": RECORDED.is_dir(),
            "where": str(RECORDED),
            "left_out": sorted(_left_out),
            "browser_ran": browser_ran,
            "browser_skipped": browser_skipped,
        }
        Path(report_file).write_text(json.dumps(tally))
