#!/usr/bin/env python3
"""One-command set-up and tasks for imagegen-tool, needing only Python 3.11+ with pip and venv.

    python3 dev.py demo    # create .venv, install, run the example agent (offline emulator by default)
    python3 dev.py test    # create .venv, install, run lint, type checks and the whole test suite

The virtual environment lives in ``.venv`` (override with ``IMAGEGEN_VENV``). It is re-installed only when
``pyproject.toml`` changes. Extra arguments after ``test`` are passed to pytest, after ``demo`` to the example.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("IMAGEGEN_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"imagegen-tool needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".imagegen-tool-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    ensure_environment()
    try:
        if task == "demo":
            _run(PYTHON, "examples/agent_generate_and_edit.py", *rest)
        elif task == "test":
            _run(PYTHON, "-m", "ruff", "check", "src", "tests", "examples", "benchmarks")
            _run(PYTHON, "-m", "mypy", "--strict", "src")
            _run(PYTHON, "-m", "pytest", *rest)
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
