"""Models and dates: what users copy never names a model with an announced shutdown, and the suite's own date
(``IMAGEGEN_TODAY``) is honoured everywhere and refused when unreadable.

The suite runs on a pinned date (``tests/conftest.py``) so that a shutdown passing on the calendar turns no test
red. What users copy (the default model, the examples, the code in README.md and docs/) is checked here without
any date: a model that has a shutdown date in ``models.toml`` (announced or past) must not appear in it, so the
change that records a deprecation is the change that fails until the docs move on, never the calendar.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from imagegen_tool import ImageOptions
from imagegen_tool.capabilities import TODAY_ENV, capabilities_for, current_date, default_image_model, known_models
from imagegen_tool.errors import ConfigurationError, InvalidOptionsError
from imagegen_tool.testing import Emulator
from tests.conftest import SUITE_TODAY

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
# A model named only to show its lifecycle (``capabilities_for("gpt-image-1").retired``) is not a use of it.
_LIFECYCLE_LOOKUP = re.compile(r"capabilities_for\(")


def _dated_models() -> dict[str, datetime.date]:
    """Every model of the table with a shutdown date (announced or past), by name."""
    dated = {}
    for name in known_models():
        caps = capabilities_for(name)
        assert caps is not None
        if caps.shutdown is not None:
            dated[name] = caps.shutdown
    return dated


def _code_lines() -> list[tuple[str, int, str]]:
    """(file, line number, text) of every line of code users copy: the examples, and the fenced blocks of
    README.md and docs/ (the generated models and prices pages are tables of every model, not code to copy)."""
    lines: list[tuple[str, int, str]] = []
    for path in sorted((ROOT / "examples").rglob("*")):
        if path.suffix in {".py", ".json", ".toml", ".md", ".sh", ".html", ".js"}:
            for number, text in enumerate(path.read_text("utf-8").splitlines(), 1):
                lines.append((str(path.relative_to(ROOT)), number, text))
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        inside = False
        for number, text in enumerate(page.read_text("utf-8").splitlines(), 1):
            if _FENCE.match(text):
                inside = not inside
                continue
            if inside:
                lines.append((str(page.relative_to(ROOT)), number, text))
    return lines


def _named(text: str, model: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(model)}(?![\w.-])", text) is not None


def test_the_default_model_has_no_announced_shutdown() -> None:
    caps = capabilities_for(default_image_model())
    assert caps is not None
    assert caps.shutdown is None and caps.deprecated is None, caps


def test_nothing_users_copy_names_a_model_with_a_shutdown_date() -> None:
    dated = _dated_models()
    assert dated, "the table has no dated model: this test checks nothing"
    code = _code_lines()
    assert len(code) > 500, "no code found to check"
    found = [
        f"{where}:{number}: {model} (shutdown {dated[model]}): {text.strip()}"
        for where, number, text in code
        if not _LIFECYCLE_LOOKUP.search(text)
        for model in dated
        if _named(text, model)
    ]
    assert not found, "move these to a model without a shutdown date:\n" + "\n".join(found)


def test_the_check_finds_a_dated_model_where_one_is_used() -> None:
    # The matcher itself: a use is found, a longer name that merely starts the same way is not.
    assert _named('options = {"model": "gpt-image-1.5", "quality": "low"}', "gpt-image-1.5")
    assert _named("imagegen generate 'a kite' --model gpt-image-1-mini", "gpt-image-1-mini")
    assert not _named('model="gpt-image-1.5-2025-12-16"', "gpt-image-1.5")
    assert not _named('model="gpt-image-2.6-sunburst"', "gpt-image-2")


def test_the_suite_runs_on_its_own_date() -> None:
    assert current_date() == datetime.date.fromisoformat(SUITE_TODAY)


def test_the_pinned_date_decides_what_the_package_and_the_emulator_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    dated = _dated_models()
    model, shutdown = max(dated.items(), key=lambda item: item[1])
    monkeypatch.setenv(TODAY_ENV, (shutdown - datetime.timedelta(days=1)).isoformat())
    assert ImageOptions(model=model).model == model  # the day before: accepted (with a deprecation warning)
    monkeypatch.setenv(TODAY_ENV, shutdown.isoformat())
    with pytest.raises(InvalidOptionsError, match="shut down"):
        ImageOptions(model=model)
    with Emulator() as api:  # the emulator reads the same date: the model no longer exists there either
        from openai import OpenAI

        client = OpenAI(base_url=api.url, api_key="test", max_retries=0)
        with pytest.raises(Exception, match="does not exist"):
            client.responses.create(model="gpt-5.4-mini", input="x", tools=[{"type": "image_generation", "model": model}])
        client.close()


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "25/11/2026"])
def test_an_unreadable_date_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(TODAY_ENV, value)
    with pytest.raises(ConfigurationError, match=TODAY_ENV):
        current_date()


def test_without_the_variable_today_is_the_real_utc_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TODAY_ENV)
    before = datetime.datetime.now(datetime.UTC).date()
    today = current_date()
    assert before <= today <= datetime.datetime.now(datetime.UTC).date()


def test_the_emulator_refuses_an_unreadable_date_when_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TODAY_ENV, "next week")
    with pytest.raises(ValueError, match=TODAY_ENV), Emulator():
        pass
