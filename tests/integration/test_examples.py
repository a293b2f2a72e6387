"""Every example runs offline as written (CI runs them; they must never reach the real API)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.lowest import LOWEST, missing_imports

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_offline(example: Path, tmp_path: Path) -> None:
    if LOWEST and (missing := missing_imports(example, import_time_only=True)):
        pytest.skip(f"lowest versions: {example.name} needs {', '.join(missing)}, not installable at the floors")
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
