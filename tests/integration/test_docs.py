"""Every Python example in README.md and docs/**/*.md runs offline as written, **on its own**.

Each ```python block is run alone, in a fresh interpreter in an empty directory with no OpenAI credentials (and
``OPENAI_BASE_URL`` pointing at a closed local port, so a stray default client fails fast instead of reaching
the real API): a reader copies one snippet, not the page, so a block that leans on an import or a variable
of an earlier block fails here (``NameError``). Blocks that must not run (online use, fragments) are marked
with an ``<!-- not-run -->`` line right before the fence. A block that defines ``test_...`` functions is also
collected by pytest, so the pytest examples of the testing guide really pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.env import clean_environ

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# The guide pages a user learns from: each must show runnable code.
GUIDES = {"quickstart", "agents", "editing", "streaming", "storage", "configuration", "errors", "testing"}
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


def offline_env() -> dict[str, str]:
    env = clean_environ()
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


def test_every_guide_is_listed_and_has_examples() -> None:
    names = {page.name for page in PAGES}
    assert {f"{name}.md" for name in GUIDES} <= names
    for page in PAGES:
        if page.stem in GUIDES:
            assert python_blocks(page.read_text("utf-8")), f"{page.name} has no runnable example"


def _label(page: Path) -> str:
    return str(page.relative_to(ROOT))


def all_blocks() -> list[object]:
    """One ``pytest.param(page, block)`` per runnable block of every page, id ``docs/x.md:LINE``."""
    return [
        pytest.param(page, block, id=f"{_label(page)}:{block.line}")
        for page in PAGES
        for block in python_blocks(page.read_text("utf-8"))
    ]


def test_a_block_leaning_on_an_earlier_one_is_caught(tmp_path: Path) -> None:
    """README's second snippet once used ``ImageOptions`` imported only by the first: alone, it must fail."""
    blocks = python_blocks("```python\nfrom math import pi\n```\n\n```python\nprint(pi)\n```\n")
    done = run_block(blocks[1], tmp_path, "demo")
    assert done.returncode != 0 and "NameError" in done.stderr


def run_block(block: Block, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / f"test_doc_{name}_{block.line}.py"
    script.write_text(block.code, "utf-8")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run([sys.executable, str(script)], cwd=work)


@pytest.mark.parametrize(("page", "block"), all_blocks())
def test_each_example_runs_offline_on_its_own(page: Path, block: Block, tmp_path: Path) -> None:
    name = re.sub(r"\W", "_", page.stem.lower())
    done = run_block(block, tmp_path, name)
    assert done.returncode == 0, (
        f"{_label(page)}, the block at line {block.line}, failed when run on its own "
        f"(each snippet must work copied alone: its imports and set-up included):\n{done.stdout}\n{done.stderr}"
    )

    if re.search(r"^(async )?def test_", block.code, re.MULTILINE):
        fresh = tmp_path / "pytest-work"
        fresh.mkdir()
        script = tmp_path / f"test_doc_{name}_{block.line}.py"
        collected = run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(script)],
            cwd=fresh,
        )
        assert collected.returncode == 0, (
            f"pytest on {_label(page)}:{block.line} failed:\n{collected.stdout}\n{collected.stderr}"
        )
