"""docs/environment.md lists every environment variable the project reads.

The package, its examples, benchmarks, tests and ``dev.py`` are scanned for environment reads
(``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")``, ``environ.setdefault``) and, in the package
itself, for any ``IMAGEGEN_*`` / ``OPENAI_*`` name it mentions (messages that tell the user to set one). A
variable added anywhere without a row in the table fails here, naming the file that reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "environment.md"

_READ = re.compile(
    r"""(?:environ\.get|environ\.setdefault|getenv|environ\.pop)\(\s*["']([A-Z][A-Z0-9_]*)["']|environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)
_MENTION = re.compile(r"\b((?:IMAGEGEN|OPENAI)_[A-Z0-9_]*[A-Z0-9])\b")
# Read by the tests only to hide or fake a user's environment, or by pytest itself: not settings of this project.
_NOT_SETTINGS = {"PYTEST_CURRENT_TEST", "PYTHONPATH", "PATH", "HOME"}


def _sources(*folders: str) -> list[Path]:
    found = [ROOT / "dev.py"]
    for folder in folders:
        found += sorted((ROOT / folder).rglob("*.py"))
    return found


def read_variables() -> dict[str, set[str]]:
    """Variable name -> the files that read or mention it."""
    where: dict[str, set[str]] = {}
    for path in _sources("src", "examples", "benchmarks", "tests"):
        if path == Path(__file__).resolve():  # its own docstring shows the patterns
            continue
        text = path.read_text("utf-8")
        names = {a or b for a, b in _READ.findall(text)}
        if path.is_relative_to(ROOT / "src"):
            names |= set(_MENTION.findall(text))
        for name in names - _NOT_SETTINGS:
            where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return where


def documented() -> set[str]:
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", PAGE.read_text("utf-8")))


def test_the_scan_finds_the_known_reads() -> None:
    found = read_variables()
    assert "src/imagegen_tool/generator.py" in found["IMAGEGEN_STORE_DIR"]
    assert "IMAGEGEN_OFFLINE" in found and "OPENAI_API_KEY" in found


def test_every_variable_read_is_in_the_table() -> None:
    missing = {name: sorted(files) for name, files in read_variables().items() if name not in documented()}
    assert not missing, f"add a row to docs/environment.md for each of these (read by the files named): {missing}"
