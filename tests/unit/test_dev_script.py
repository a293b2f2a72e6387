"""dev.py, the test command every developer and CI runs: its pieces that can be checked without running it."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("imagegen_dev_script", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def test_floors_are_read_from_pyproject_and_documented(dev: ModuleType) -> None:
    floors = dev.floors()
    assert set(floors) == {"openai", "pydantic", "langchain-core", "pillow", "httpx2"}
    page = (ROOT / "docs" / "installation.md").read_text("utf-8")
    for name, version in floors.items():
        assert re.search(rf"^\| `{re.escape(name)}` \| {re.escape(version)} \|", page, re.MULTILINE), (
            f"docs/installation.md's table of supported versions does not say {name} {version}"
        )


def test_junit_counts(dev: ModuleType, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite tests="10" failures="1" errors="1" skipped="3"/>'
        '<testsuite tests="2" failures="0" errors="0" skipped="0"/></testsuites>'
    )
    assert dev._junit_counts(report) == {"passed": 7, "failed": 2, "skipped": 3}
    assert dev._junit_counts(tmp_path / "missing.xml") == {}


def test_summary_fails_and_names_the_stage_to_rerun(dev: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = [
        dev.Outcome("tests", 1.0, None, ["suite: 5 passed, 0 failed, 1 skipped"]),
        dev.Outcome("docs", 2.0, "mkdocs exited with status 1"),
    ]
    assert dev._summary(outcomes) == 1
    out = capsys.readouterr().out
    assert "FAILED stage 'docs'" in out and "python3 dev.py docs" in out
    assert out.rstrip().splitlines()[-1] == "tests: 5 passed, 1 failed, 1 skipped"


def test_every_stage_is_documented_in_its_docstring_and_readme(dev: ModuleType) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for name in dev.STAGES:
        assert re.search(rf"^    {name} ", dev.__doc__, re.MULTILINE), name
        assert name in readme
