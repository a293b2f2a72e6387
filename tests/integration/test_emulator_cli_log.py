"""``imagegen-emulator -v`` logs every request it answers (the installed console script, as a user runs it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from openai import OpenAI

SCRIPT = Path(sys.executable).with_name("imagegen-emulator")


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [shutil.which("imagegen-emulator") or "imagegen-emulator"]
    process = subprocess.Popen(
        [*command, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), (
        f"no URL printed; stderr: {process.stderr.read() if process.stderr else ''}"
    )
    return process, url


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


def test_verbose_logs_each_request_with_prompt_and_options_but_no_key() -> None:
    process, url = _start("-v")
    try:
        with OpenAI(base_url=url, api_key="sk-secret-key-1234567890", max_retries=0) as client:
            client.responses.create(
                model="gpt-5.4-mini",
                input="a red kite over the sea",
                tools=[{"type": "image_generation", "quality": "low", "size": "1024x1536"}],
            )
            client.files.list()
    finally:
        err = _stop(process)
    lines = [line for line in err.splitlines() if "POST /v1/responses" in line]
    assert len(lines) == 1, err
    assert "-> 200" in lines[0]
    assert "a red kite over the sea" in lines[0]
    assert "quality=low" in lines[0] and "size=1024x1536" in lines[0]
    assert "model=gpt-5.4-mini" in lines[0]
    assert any("GET /v1/files -> 200" in line for line in err.splitlines()), err
    assert "sk-secret" not in err


def test_quiet_by_default() -> None:
    process, url = _start()
    try:
        with OpenAI(base_url=url, api_key="test", max_retries=0) as client:
            client.files.list()
    finally:
        err = _stop(process)
    assert "/v1/files" not in err


def test_stops_cleanly_on_sigterm_and_on_sigint_inherited_as_ignored() -> None:
    """A server started in the background by a non-interactive shell inherits SIGINT as ignored."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [shutil.which("imagegen-emulator") or "imagegen-emulator"]
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(
            [*command, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        assert process.stdout is not None
        assert process.stdout.readline().startswith("http://127.0.0.1:")
        process.send_signal(sig)
        process.communicate(timeout=60)
        assert process.returncode == 0, sig
