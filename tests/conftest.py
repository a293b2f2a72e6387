"""Suite-wide reporting: how many tests ran on the real recorded OpenAI data, and how many were skipped.

Without ``../shared/fixtures`` (a clone outside the team workspace) those tests skip instead of failing; the
closing summary says so in one line, so a green run that skipped them is never mistaken for a full one.
``dev.py`` sets ``IMAGEGEN_RECORDED_REPORT`` to a file path to get the same counts as JSON for its summary.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures.recorded import RECORDED, SKIP_MARK, USED_BY

_ran: set[str] = set()
_skipped: set[str] = set()
_left_out: dict[str, list[str]] = {}
# Tests marked ``browser`` (headless Chromium) that ran, and that skipped because Chromium is not installed.
_browser_ran: set[str] = set()
_browser_skipped: set[str] = set()
# The lowest-versions job of the test command (IMAGEGEN_LOWEST=1) installs only the core dependencies at their
# floors plus the emulator and the test tools; a test module that imports anything else is left out there.
_LOWEST = os.environ.get("IMAGEGEN_LOWEST") == "1"


_OWN = {"imagegen_tool", "tests"}


def _missing_imports(path: Path) -> list[str]:
    """What a test module imports from third-party packages that the installed versions lack: packages that are
    not installed, and names a package of the installed version does not have (the SDK-parity tests read types
    newer SDKs added). Imports of the package itself are never excused: those must work at the floors."""
    try:
        tree = ast.parse(path.read_text("utf-8"))
    except (OSError, SyntaxError):
        return []
    missing: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in _OWN and importlib.util.find_spec(alias.name.split(".")[0]) is None:
                    missing.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in _OWN:
                continue
            if importlib.util.find_spec(top) is None:
                missing.add(top)
                continue
            try:
                module = importlib.import_module(node.module)
            except ImportError:
                missing.add(node.module)
                continue
            missing |= {f"{node.module}.{a.name}" for a in node.names if not _provides(module, a.name)}
    return sorted(missing)


def _provides(module: ModuleType, name: str) -> bool:
    """Whether ``from module import name`` works: an attribute, or a submodule of a package."""
    if hasattr(module, name):
        return True
    try:
        return importlib.util.find_spec(f"{module.__name__}.{name}") is not None
    except ImportError:  # ``module`` is not a package
        return False


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if _LOWEST and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        missing = _missing_imports(collection_path)
        if missing:
            _left_out[collection_path.name] = missing
            return True
    return None


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
    elif report.when == "call" and (report.nodeid in USED_BY or "recorded" in report.keywords):
        _ran.add(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
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
