"""Every ``pip install`` of imagegen-tool in README.md and docs/ runs as written: the package is not on PyPI, so
each names a checkout (``.``), a wheel ``python -m build`` makes, or a git URL whose one placeholder,
``<REPO_URL>``, the page says how to fill in. Extras named must exist; the wheel's file name must be the one the
build makes (the ``package`` stage of the test command builds and installs that wheel)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
EXTRAS = set(PROJECT["optional-dependencies"])
WHEEL = f"dist/imagegen_tool-{PROJECT['version']}-py3-none-any.whl"
_COMMAND = re.compile(r"pip install ([^`\n#]+)")
_EXTRAS = re.compile(r"^(?P<target>[^\[\]]*)(?:\[(?P<extras>[^\]]*)\])?$")


def install_commands(text: str) -> list[tuple[int, str]]:
    """``(line, arguments)`` of each ``pip install`` in a page, in shell blocks and inline code alike. Python
    blocks are left out (a message naming an extra is not an instruction), and so is a sentence quoting the
    command that does *not* work (``pip install imagegen-tool`` "finds nothing")."""
    found = []
    language = None
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"\s*(`{3,}|~{3,})\s*(\w*)", line)
        if fence:
            language = None if language is not None else (fence.group(2) or "text").lower()
            continue
        if language in ("python", "py") or "finds nothing" in line:
            continue
        for match in _COMMAND.finditer(line):
            found.append((number, match.group(1).strip()))
    return found


def problems(arguments: str, page_text: str) -> list[str]:
    """What keeps one ``pip install`` from running as written (empty when it runs)."""
    try:
        words = shlex.split(arguments)
    except ValueError as exc:
        return [f"cannot be parsed as a shell command: {exc}"]
    found = []
    for word in words:
        if word.startswith("-") or word in ("&&", "||", ";"):
            continue
        if "OWNER" in word or "/path/to" in word:
            found.append(f"{word!r} has a placeholder the reader cannot run; use '.' (a checkout) or <REPO_URL>")
            continue
        if " @ " in word:
            name, _, url = word.partition(" @ ")
            if not name.startswith("imagegen-tool"):
                continue
            if not url.startswith("git+<REPO_URL>"):
                found.append(f"{word!r}: a git install must use the <REPO_URL> placeholder the page explains")
            elif "<REPO_URL>" not in page_text.replace(word, "") or "substitut" not in page_text.lower():
                found.append(f"{word!r}: the page does not say what to substitute for <REPO_URL>")
            found += _extras_problems(name)
            continue
        if re.fullmatch(r"imagegen[-_]tool(\[.*\])?", word):
            found.append(f"{word!r} is looked up on PyPI, where the package is not published; install '.' instead")
            continue
        if word.startswith(("dist/", "./dist/")) or word.endswith(".whl") or ".whl[" in word:
            target, _ = _split(word)
            if target.removeprefix("./") != WHEEL:
                found.append(f"{word!r}: `python -m build` makes {WHEEL}")
            found += _extras_problems(word)
            continue
        if word == "." or word.startswith((".[", "./", "../")):
            found += _extras_problems(word)
    return found


def _split(word: str) -> tuple[str, str | None]:
    match = _EXTRAS.match(word)
    return (match["target"], match["extras"]) if match else (word, None)


def _extras_problems(word: str) -> list[str]:
    _, extras = _split(word.split(" @ ")[0])
    unknown = [e.strip() for e in (extras or "").split(",") if e.strip() and e.strip() not in EXTRAS]
    return [f"{word!r}: no such extra {unknown} (pyproject.toml has {sorted(EXTRAS)})"] if unknown else []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_install_instruction_runs_as_written(page: Path) -> None:
    text = page.read_text("utf-8")
    failures = [f"line {line}: {problem}" for line, args in install_commands(text) for problem in problems(args, text)]
    assert not failures, f"{page.relative_to(ROOT)}:\n" + "\n".join(failures)


def test_the_installation_page_shows_each_form() -> None:
    text = (ROOT / "docs" / "installation.md").read_text("utf-8")
    commands = [args for _, args in install_commands(text)]
    assert "." in commands and any(c.startswith('".[') for c in commands)
    assert any(WHEEL in c for c in commands) and "python -m build" in text
    assert any("git+<REPO_URL>" in c for c in commands)


@pytest.mark.parametrize(
    ("arguments", "bad"),
    [
        ('"imagegen-tool[emulator]"', True),
        ("imagegen-tool", True),
        ('"imagegen-tool @ git+https://github.com/OWNER/imagegen-tool.git@main"', True),
        ('"/path/to/imagegen-tool[emulator]"', True),
        ('".[nonexistent]"', True),
        ('"dist/imagegen_tool-9.9.9-py3-none-any.whl"', True),
        ('".[emulator]"', False),
        (".", False),
        ('-e ".[dev]"', False),
        (f'"{WHEEL}[emulator]"', False),
        ('"imagegen-tool[emulator] @ git+<REPO_URL>@main"', False),
        ("build", False),
    ],
)
def test_the_checker_itself(arguments: str, bad: bool) -> None:
    page = "Substitute `<REPO_URL>` with the URL you clone from."
    assert bool(problems(arguments, page)) is bad, problems(arguments, page)
