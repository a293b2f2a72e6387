"""Starting and stopping the emulator: context managers, several at once, no leaked threads, the CLI."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool.testing import Emulator
from imagegen_tool.testing.cli import main


def test_context_manager_serves_then_frees_its_thread_and_port() -> None:
    before = set(threading.enumerate())
    with Emulator() as api:
        assert api.url.startswith("http://127.0.0.1:") and api.url.endswith("/v1")
        assert api.running
        with OpenAI(base_url=api.url, api_key="test", max_retries=0) as client:
            response = client.responses.create(model="gpt-5", input="A cat", tools=[{"type": "image_generation"}])
        assert response.status == "completed"
        url = api.url
    assert not api.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = api.url
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/files")


async def test_async_context_manager() -> None:
    async with Emulator(seed=3) as api:
        async with AsyncOpenAI(base_url=api.url, api_key="test", max_retries=0) as client:
            uploaded = await client.files.create(file=("a.txt", b"hi"), purpose="user_data")
        assert api.files[uploaded.id].content == b"hi"
    assert not api.running


def test_two_emulators_are_independent() -> None:
    with Emulator() as one, Emulator() as two:
        assert one.url != two.url
        httpx.get(one.url + "/files")
        assert len(one.requests) == 1 and two.requests == []


def test_constructor_latency_survives_reset() -> None:
    with Emulator(latency=0.2) as api:
        api.reset()
        started = time.perf_counter()
        httpx.get(api.url + "/files")
        assert time.perf_counter() - started >= 0.2


def test_cannot_start_twice() -> None:
    with Emulator() as api, pytest.raises(RuntimeError, match="already running"):
        api.start()


def test_fixture_gives_a_clean_running_emulator(imagegen_emulator: Emulator) -> None:
    assert imagegen_emulator.running
    assert imagegen_emulator.requests == []


def test_cli_prints_a_working_base_url_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(main(["--port", "0", "--seed", "5"], stop=stop)))
    thread.start()
    url = ""
    deadline = time.monotonic() + 10
    while not url and time.monotonic() < deadline:
        time.sleep(0.02)
        url = capsys.readouterr().out.strip()
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert httpx.get(url + "/files").json()["object"] == "list"
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert status == [0]


def test_cli_rejects_negative_latency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--latency", "-1"]) == 2
    assert "latency" in capsys.readouterr().err
