"""The tool releases what it opens: ``asyncio.run(tool.ainvoke(...))`` (once, twice: a new loop, a new client)
and ``close()``/``aclose()`` leave no unclosed transport or socket, checked in a fresh interpreter with
ResourceWarnings turned into errors, against the emulator over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = """
import asyncio, gc, sys, warnings
warnings.simplefilter("error", ResourceWarning)
from imagegen_tool.langchain import ImageGenerationTool

base_url, store, mode, api = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
tool = ImageGenerationTool(store=store, base_url=base_url, api_key="sk-test-not-a-real-key", api=api)
if mode == "asyncio.run":
    for prompt in ("a kite", "a second kite on a new event loop"):
        message = asyncio.run(tool.ainvoke({"prompt": prompt}))
        assert message.startswith("Generated 1 image"), message
elif mode == "aclose":
    async def main():
        async with tool:
            await tool.ainvoke({"prompt": "a kite"})
    asyncio.run(main())
elif mode == "sync":
    with tool:
        assert tool.invoke({"prompt": "a kite"}).startswith("Generated 1 image")
del tool
gc.collect()
print("clean")
"""


@pytest.mark.parametrize(
    ("mode", "api"),
    [("asyncio.run", "responses"), ("aclose", "responses"), ("sync", "responses"), ("asyncio.run", "images")],
)
def test_no_unclosed_transport_is_left_behind(tmp_path: Path, imagegen_emulator: Any, mode: str, api: str) -> None:
    script = [sys.executable, "-W", "error::ResourceWarning", "-c", SCRIPT, imagegen_emulator.url, str(tmp_path)]
    completed = subprocess.run(
        [*script, mode, api],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("clean")
    assert "ResourceWarning" not in completed.stderr and "unclosed" not in completed.stderr, completed.stderr
    endpoint = "/v1/responses" if api == "responses" else "/v1/images/generations"
    assert len(imagegen_emulator.requests_to(endpoint)) == (2 if mode == "asyncio.run" else 1)
