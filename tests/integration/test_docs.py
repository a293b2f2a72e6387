"""Every Python example in README.md and docs/*.md runs offline as written.

Each page's ```python blocks are joined in order into one script, run in a fresh interpreter in an empty
directory with no OpenAI credentials (and ``OPENAI_BASE_URL`` pointing at a closed local port, so a stray
default client fails fast instead of reaching the real API). Blocks that must not run (online use, fragments)
are marked with an ``<!-- not-run -->`` line right before the fence. A page whose blocks define ``test_...``
functions is also collected by pytest, so the pytest examples of the testing guide really pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = "<!-- not-run -->"
TIMEOUT = 120

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class Block:
    line: int
    """1-based line of the opening fence."""
    code: str


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown page, in order, without those marked ``<!-- not-run -->``."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        language = opening["info"].strip().split(" ")[0].lower()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            line = lines[index]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            index += 1
        index += 1
        previous = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        if language in {"python", "py"} and previous != NOT_RUN:
            blocks.append(Block(line=start + 1, code="\n".join(body) + "\n"))
    return blocks


def page_script(blocks: list[Block], page: Path) -> str:
    parts = [f"# --- {page.name}, block at line {block.line}\n{block.code}" for block in blocks]
    return "\n".join(parts)


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI", "IMAGEGEN_"))}
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # discard port: nothing listens, nothing leaves the machine
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT)


def test_the_block_parser_honours_not_run_markers() -> None:
    text = "\n".join(
        [
            "Intro.",
            "```python",
            "a = 1",
            "```",
            "<!-- not-run -->",
            "```python",
            "online()",
            "```",
            "```bash",
            "ls",
            "```",
            "- item",
            "",
            "  ```python",
            "  b = 2",
            "  ```",
        ]
    )
    assert [block.code for block in python_blocks(text)] == ["a = 1\n", "b = 2\n"]


def test_every_page_is_listed_and_has_examples() -> None:
    names = {page.name for page in PAGES}
    expected = {"quickstart", "agents", "editing", "streaming", "storage", "configuration", "errors", "testing"}
    assert {f"{name}.md" for name in expected} <= names
    for page in PAGES:
        if page.name != "index.md":
            assert python_blocks(page.read_text("utf-8")), f"{page.name} has no runnable example"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_examples_run_offline(page: Path, tmp_path: Path) -> None:
    blocks = python_blocks(page.read_text("utf-8"))
    if not blocks:
        pytest.skip(f"{page.name} has no Python examples")
    script = tmp_path / f"test_doc_{page.stem.lower()}.py"
    script.write_text(page_script(blocks, page), "utf-8")
    work = tmp_path / "work"
    work.mkdir()

    done = run([sys.executable, str(script)], cwd=work)
    assert done.returncode == 0, f"{page.name} examples failed:\n{done.stdout}\n{done.stderr}"

    if re.search(r"^(async )?def test_", script.read_text("utf-8"), re.MULTILINE):
        fresh = tmp_path / "pytest-work"
        fresh.mkdir()
        collected = run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(script)],
            cwd=fresh,
        )
        assert collected.returncode == 0, (
            f"pytest on {page.name} examples failed:\n{collected.stdout}\n{collected.stderr}"
        )
