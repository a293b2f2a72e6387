"""Installed without the ``emulator`` extra, the package must not break anyone's pytest, and says what to install.

The extra's modules are hidden from a fresh interpreter (a ``sitecustomize`` that maps them to ``None`` in
``sys.modules``, which makes every import of them fail as if they were not installed); the pytest plugin is
loaded through the real ``pytest11`` entry point of the installed package. The packaging stage of the test
command checks the same on the built wheel installed into a clean virtual environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HIDDEN = ("uvicorn", "starlette", "multipart", "python_multipart")


@pytest.fixture
def no_extra_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "hide-extra"
    site.mkdir()
    lines = ["import sys"] + [f"sys.modules[{name!r}] = None  # type: ignore" for name in HIDDEN]
    (site / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPENAI_"))}
    env["PYTHONPATH"] = str(site)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_extra_is_really_hidden(no_extra_env: dict[str, str], tmp_path: Path) -> None:
    done = _python("import uvicorn", no_extra_env, tmp_path)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


def test_importing_emulator_names_the_extra(no_extra_env: dict[str, str], tmp_path: Path) -> None:
    code = (
        "import imagegen_tool.testing as t\n"
        "assert not t.emulator_available()\n"
        "from imagegen_tool.testing import ScriptedChatModel, RecordedRequest, REDACTED\n"
        "try:\n"
        "    from imagegen_tool.testing import Emulator\n"
        "except ImportError as exc:\n"
        "    assert isinstance(exc, t.EmulatorNotInstalledError)\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('Emulator imported without its extra')\n"
    )
    done = _python(code, no_extra_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "imagegen-tool[emulator]" in done.stdout
    assert "'uvicorn'" in done.stdout or "'starlette'" in done.stdout


def test_users_pytest_runs_and_fixtures_say_what_to_install(no_extra_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "their-project"
    project.mkdir()
    (project / "test_theirs.py").write_text(
        "def test_trivial():\n    assert 1 + 1 == 2\n\ndef test_wants_the_emulator(imagegen_emulator):\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", "--rootdir", str(project)],
        env=no_extra_env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert "Error while loading plugin" not in out and "INTERNALERROR" not in out, out
    assert "1 passed" in out and ("1 failed" in out or "1 error" in out), out
    assert "pip install 'imagegen-tool[emulator]'" in out, out


def test_cli_says_what_to_install(no_extra_env: dict[str, str], tmp_path: Path) -> None:
    done = _python("from imagegen_tool.testing.cli import main; raise SystemExit(main([]))", no_extra_env, tmp_path)
    assert done.returncode == 1
    assert "imagegen-tool[emulator]" in done.stderr
