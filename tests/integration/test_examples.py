"""Every example runs offline as written (CI runs them; they must never reach the real API)."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def missing_packages(example: Path) -> list[str]:
    """Top-level packages the example imports that are not installed (an optional framework's extra)."""
    tree = ast.parse(example.read_text("utf-8"))
    names = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return sorted({name.split(".")[0] for name in names if importlib.util.find_spec(name.split(".")[0]) is None})


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_offline(example: Path, tmp_path: Path) -> None:
    missing = missing_packages(example)
    if missing:  # e.g. the lowest-versions run, which installs no agent framework
        pytest.skip(f"{example.name} needs {', '.join(missing)} (its extra is not installed)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = "sk-must-not-be-used"  # set, but offline mode stays on unless IMAGEGEN_OFFLINE=0
    env.pop("IMAGEGEN_OFFLINE", None)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(example), "--out", str(out)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "offline" in done.stdout
    assert "sk-must-not-be-used" not in done.stdout + done.stderr
    images = [p for p in out.iterdir() if p.suffix in {".png", ".jpg", ".webp", ".gif", ".svg"}]
    assert images
    for path in images:
        if path.suffix != ".svg":
            with Image.open(path) as opened:
                opened.verify()
