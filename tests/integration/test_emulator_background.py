"""The emulator's background mode through the raw SDK: queued at once, visible while it runs, resumable streams,
and a ledger of billed generations."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from imagegen_tool.testing import Emulator

TOOLS: Any = [{"type": "image_generation", "quality": "low"}]


def _create(client: OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("tools", TOOLS)
    return client.responses.create(model="gpt-5", input="a kite", **kwargs)


def _wait(client: OpenAI, response_id: str) -> Any:
    for _ in range(400):
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        time.sleep(0.02)
    raise AssertionError("the background response never finished")


def test_background_create_is_queued_then_visible_while_running(
    imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    imagegen_emulator.set_latency(3.0)  # the work takes it, not the answers (long enough for a loaded machine)
    created = _create(openai_client, background=True)
    assert created.status == "queued" and created.background is True and created.output == []
    running = openai_client.responses.retrieve(created.id)
    assert running.status in ("queued", "in_progress")
    done = _wait(openai_client, created.id)
    assert done.status == "completed"
    (call,) = [item for item in done.output if item.type == "image_generation_call"]
    assert call.result
    assert imagegen_emulator.generations_per_response() == {created.id: 1}


def test_background_stream_resumes_after_a_sequence_number(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    stream = _create(openai_client, background=True, stream=True, tools=[{**TOOLS[0], "partial_images": 2}])
    first = []
    for event in stream:
        first.append(event)
        if len(first) == 4:
            break
    stream.close()
    response_id = first[0].response.id
    assert [e.type for e in first[:2]] == ["response.created", "response.queued"]
    resumed = list(openai_client.responses.retrieve(response_id, stream=True, starting_after=3))
    assert [e.sequence_number for e in resumed] == list(range(4, 4 + len(resumed)))
    assert resumed[-1].type == "response.completed"
    assert sum(e.type == "response.image_generation_call.partial_image" for e in first + resumed) == 2
    assert imagegen_emulator.generations_per_response() == {response_id: 1}


def test_background_needs_store(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="store"):
        _create(openai_client, background=True, store=False)
    assert imagegen_emulator.generations == []


def test_only_background_responses_stream_again(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    plain = _create(openai_client)
    with pytest.raises(openai.BadRequestError):
        list(openai_client.responses.retrieve(plain.id, stream=True))
    with pytest.raises(openai.NotFoundError):
        list(openai_client.responses.retrieve("resp_unknown", stream=True))


def test_ledger_counts_every_render(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    a = _create(openai_client)
    b = _create(openai_client, background=True)
    _wait(openai_client, b.id)
    imagegen_emulator.block_next_with_moderation()
    blocked = _create(openai_client)  # moderated: nothing rendered, nothing billed
    counts = imagegen_emulator.generations_per_response()
    assert counts == {a.id: 1, b.id: 1} and blocked.id not in counts
    assert [g.prompt for g in imagegen_emulator.generations] == ["a kite", "a kite"]


def test_body_faults_damage_a_served_answer(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.answer_with_html()
    assert isinstance(openai_client.responses.create(model="gpt-5", input="x", tools=TOOLS), str)  # the SDK gives up
    imagegen_emulator.answer_with_bad_json()
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|delimiter"):  # the SDK's raw JSONDecodeError
        _create(openai_client)
    imagegen_emulator.drop_after_image()
    with pytest.raises(openai.APIConnectionError):
        _create(openai_client)
    imagegen_emulator.fail_next(429, code="insufficient_quota")
    with pytest.raises(openai.RateLimitError) as caught:
        _create(openai_client)
    assert caught.value.code == "insufficient_quota"
    assert len(imagegen_emulator.generations) == 3  # every damaged answer was still generated (and billed)
