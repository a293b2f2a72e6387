"""Background mode's polling learns from the responses it has seen: once a generation time is known, the first
quarter-less-than-that is not polled at all, so later calls ask the API fewer times for the same image. Judged
by the retrieves the emulator received, never by time."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator, ResponsesBackend
from imagegen_tool.backends import _Body, _Poller
from imagegen_tool.errors import APIError
from imagegen_tool.parse import ParsedResponse
from imagegen_tool.testing import Emulator


def _retrieves(api: Emulator) -> int:
    return sum(1 for r in api.requests if r.method == "GET" and r.path.startswith("/v1/responses/"))


def test_later_calls_poll_less_once_the_generation_time_is_known(
    imagegen_emulator: Emulator, openai_client: OpenAI, tmp_path: Path
) -> None:
    imagegen_emulator.set_latency(0.4)
    generator = ImageGenerator(store=tmp_path / "images", client=openai_client)
    counts = []
    for number in range(3):
        before = _retrieves(imagegen_emulator)
        result = generator.generate(f"a lighthouse {number}")
        assert result.images and Path(result.images[0].path).exists()
        counts.append(_retrieves(imagegen_emulator) - before)
    # Without history: a look after 20 ms, then pauses of a fifth of the time waited (about 10 looks for 0.4 s).
    assert counts[0] >= 5
    # Then nothing during three quarters of the quickest generation seen, a few looks after that.
    assert counts[1] < counts[0] and counts[2] < counts[0]
    assert len(imagegen_emulator.generations) == 3  # each image generated (and billed) once


async def test_the_async_path_learns_the_same_way(
    imagegen_emulator: Emulator, async_openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    imagegen_emulator.set_latency(0.4)
    generator = ImageGenerator(store=tmp_path / "images", async_client=async_openai_client)
    counts = []
    for number in range(2):
        before = _retrieves(imagegen_emulator)
        await generator.agenerate(f"a harbour {number}")
        counts.append(_retrieves(imagegen_emulator) - before)
    assert counts[1] < counts[0]


def test_recovering_a_response_does_not_teach_the_schedule(
    imagegen_emulator: Emulator, openai_client: OpenAI, tmp_path: Path
) -> None:
    # A recovered response may have finished long ago: how long its lookup took says nothing about generation
    # times, so it must not make later calls wait before their first look.
    backend = ResponsesBackend(client=openai_client)
    generator = ImageGenerator(store=tmp_path / "images", backend=backend)
    first = generator.generate("a mill")
    assert first.response_id is not None
    learned = list(backend._durations)
    generator.recover(first.response_id)
    assert list(backend._durations) == learned


def test_a_response_found_by_the_first_look_teaches_half_the_time_waited(openai_client: OpenAI) -> None:
    # A response no look saw running may have been done long before: the time waited is only an upper bound.
    # Learning it whole would hold the quiet period at its own fixed point (three quarters of itself plus the time
    # a look takes to be sent, ~4 ms on an event loop when responses are done at once); learning half lets it
    # shrink. A response found by a later look was still pending one look before: that time is learned whole.
    done = openai_client.responses.with_raw_response.create(
        model="gpt-5.4-mini", input="a buoy", tools=[{"type": "image_generation"}]
    ).http_response.json()
    pending = {**done, "status": "in_progress", "output": []}
    backend = ResponsesBackend(client=openai_client)
    backend._durations.extend([0.4, 0.08])

    first = _Poller(backend, done["id"], once=False, cause=None, learn=True)
    assert first.quiet == pytest.approx(0.06)  # three quarters of the quickest generation seen
    assert isinstance(first.step(_Body(pending)), float)  # the create's own answer (queued) is not a look
    first.started -= 0.1  # as if the first look went out 100 ms after the create
    first.asking()
    assert isinstance(first.step(_Body(error=APIError("bad gateway", retryable=True))), float)  # a failed look
    first.asking()
    assert isinstance(first.step(_Body(done)), ParsedResponse)
    assert backend._durations[-1] == pytest.approx(0.05, abs=0.005)

    later = _Poller(backend, done["id"], once=False, cause=None, learn=True)
    later.started -= 0.1
    later.asking()
    assert isinstance(later.step(_Body(pending)), float)  # still running: wait, look again
    later.asking()
    assert isinstance(later.step(_Body(done)), ParsedResponse)
    assert backend._durations[-1] == pytest.approx(0.1, abs=0.01)
