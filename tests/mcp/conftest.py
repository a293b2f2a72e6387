"""Fixtures of the MCP server tests: ``imagegen mcp`` as a real subprocess, driven by the ``mcp`` SDK's own clients.

The emulator runs in the test process (one per module); the server subprocess reaches it over loopback HTTP
through ``OPENAI_BASE_URL``, with a key that must never show up in any output. A stdio server is started per
client (the SDK's stdio client launches it); the streamable-HTTP server once per module on a free port.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP tests need the mcp extra")

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from imagegen_tool.testing import Emulator
from tests.fixtures.env import clean_environ

#: The key the server subprocesses get: it must never appear in anything they print.
SECRET_KEY = "sk-proj-mcptest" + "Z" * 40

SERVER_COMMAND = [sys.executable, "-m", "imagegen_tool.cli", "mcp"]
#: Every server streams two partial images, so progress notifications carry partials.
COMMON_FLAGS = ["--partial-images", "2", "--preview-size", "128", "--log-level", "INFO"]


def server_env(emulator_url: str, store: Path, **extra: str) -> dict[str, str]:
    env = clean_environ()
    env.update(OPENAI_API_KEY=SECRET_KEY, OPENAI_BASE_URL=emulator_url, IMAGEGEN_STORE_DIR=str(store))
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as api:
        yield api


@pytest.fixture
def api(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


@dataclass
class HttpServer:
    url: str
    store: Path
    process: subprocess.Popen[str]
    log: Path


def start_http_server(
    emulator_url: str, store: Path, log: Path, flags: Sequence[str] = (), env: dict[str, str] | None = None
) -> HttpServer:
    errlog = log.open("w")
    process = subprocess.Popen(
        [*SERVER_COMMAND, "--http", "--port", "0", *COMMON_FLAGS, *flags],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errlog,
        text=True,
        env=env or server_env(emulator_url, store),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"streamable HTTP on (http://\S+)", log.read_text())
        if match:
            return HttpServer(match.group(1), store, process, log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"the HTTP MCP server did not start: {log.read_text()}")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def http_server(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    root = tmp_path_factory.mktemp("mcp-http")
    server = start_http_server(emulator.url, root / "store", root / "server.log")
    try:
        yield server
    finally:
        stop(server.process)
        assert SECRET_KEY not in server.log.read_text()


@dataclass
class Connection:
    client: Client
    store: Path
    transport: str
    errlog: Path | None


@contextlib.asynccontextmanager
async def stdio_connection(
    emulator_url: str,
    store: Path,
    errlog: Path,
    flags: Sequence[str] = (),
    mode: str = "auto",
    message_handler: Any = None,
    **env: str,
) -> AsyncIterator[Connection]:
    params = StdioServerParameters(
        command=SERVER_COMMAND[0],
        args=[*SERVER_COMMAND[1:], *COMMON_FLAGS, *flags],
        env=server_env(emulator_url, store, **env),
    )
    with errlog.open("w") as log:
        async with Client(
            stdio_client(params, errlog=log), mode=mode, read_timeout_seconds=60, message_handler=message_handler
        ) as client:
            yield Connection(client, store, "stdio", errlog)
    assert SECRET_KEY not in errlog.read_text()


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest, api: Emulator, tmp_path: Path) -> Any:
    """``async with connect() as connection``: a connected ``mcp.Client`` over each transport (stdio: a server of
    its own; HTTP: the module's server). A context manager in the test's own task, not an async fixture: the
    SDK's task groups must be entered and left by the same task."""
    if request.param == "stdio":
        return lambda message_handler=None: stdio_connection(
            api.url, tmp_path / "store", tmp_path / "stdio.log", message_handler=message_handler
        )
    server: HttpServer = request.getfixturevalue("http_server")

    @contextlib.asynccontextmanager
    async def http(message_handler: Any = None) -> AsyncIterator[Connection]:
        async with Client(server.url, read_timeout_seconds=60, message_handler=message_handler) as client:
            yield Connection(client, server.store, "http", None)

    return http
