"""Fault injection and the request log: each fault a test can plan, and what the client then sees."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Any

import openai
import pytest
from openai import OpenAI

from imagegen_tool.testing import REDACTED, Emulator

MODEL = "gpt-5"
TOOLS = [{"type": "image_generation", "quality": "low"}]


def create(client: OpenAI, prompt: str = "A cat", **kwargs: object) -> openai.types.responses.Response:
    return client.responses.create(model=MODEL, input=prompt, tools=TOOLS, **kwargs)  # type: ignore[arg-type]


def drain(stream: Iterable[Any], into: list[str]) -> None:
    for event in stream:
        into.append(event.type)


def test_latency_delays_every_answer(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.set_latency(0.3)
    started = time.perf_counter()
    openai_client.files.list()
    assert time.perf_counter() - started >= 0.3
    imagegen_emulator.reset()
    started = time.perf_counter()
    openai_client.files.list()
    assert time.perf_counter() - started < 0.3


def test_429_with_retry_after_reaches_a_client_without_retries(
    imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    imagegen_emulator.fail_next(429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as caught:
        create(openai_client)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert create(openai_client).status == "completed"  # one-shot
    assert [r.status for r in imagegen_emulator.requests] == [429, 200]


def test_client_retries_honor_retry_after(imagegen_emulator: Emulator) -> None:
    imagegen_emulator.fail_next(429, retry_after=0.5)
    with OpenAI(base_url=imagegen_emulator.url, api_key="k", max_retries=2) as client:
        started = time.perf_counter()
        assert create(client).status == "completed"
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.5
    assert [r.status for r in imagegen_emulator.requests_to("/responses")] == [429, 200]


@pytest.mark.parametrize(("status", "error"), [(500, openai.InternalServerError), (503, openai.InternalServerError)])
def test_server_errors(imagegen_emulator: Emulator, openai_client: OpenAI, status: int, error: type[Exception]) -> None:
    imagegen_emulator.fail_next(status, times=2)
    with pytest.raises(error) as caught:
        create(openai_client)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.body["type"] == "server_error"  # type: ignore[attr-defined]
    # The client with retries gets through once the planned failures are used up.
    with OpenAI(base_url=imagegen_emulator.url, api_key="k", max_retries=1) as client:
        client = client.with_options(timeout=10)
        assert create(client).status == "completed"
    assert [r.status for r in imagegen_emulator.requests] == [status, status, 200]


def test_fail_next_only_hits_its_path(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.fail_next(500, path="/images/generations")
    assert create(openai_client).status == "completed"
    with pytest.raises(openai.InternalServerError):
        openai_client.images.generate(model="gpt-image-1.5", prompt="x")


def test_moderation_trigger_word_fails_the_image_call(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    response = create(openai_client, "Draw something Forbidden please")
    (call,) = [i for i in response.output if i.type == "image_generation_call"]
    assert response.status == "completed"
    assert call.status == "failed" and call.result is None
    assert call.error is not None
    assert call.error.code == "moderation_blocked"
    assert call.error.type == "image_generation_user_error"
    assert call.error.moderation_details is not None
    assert call.error.moderation_details.moderation_stage == "input"
    assert call.error.moderation_details.categories

    imagegen_emulator.moderation_trigger = "banana"
    assert [i.status for i in create(openai_client, "forbidden fruit").output if i.type == "image_generation_call"] == [
        "completed"
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.images.generate(model="gpt-image-1.5", prompt="a banana")
    assert caught.value.body["code"] == "moderation_blocked"
    assert caught.value.body["type"] == "image_generation_user_error"


def test_planned_moderation_block_is_one_shot(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.block_next_with_moderation(categories=["sexual", "minors"], stage="output")
    events = list(create(openai_client, "A harmless tree", stream=True))
    done = [e for e in events if e.type == "response.output_item.done" and e.item.type == "image_generation_call"]
    assert done[0].item.status == "failed"
    assert done[0].item.error.moderation_details.categories == ["sexual", "minors"]
    assert done[0].item.error.moderation_details.moderation_stage == "output"
    assert "response.image_generation_call.completed" not in [e.type for e in events]
    assert events[-1].type == "response.completed"
    # Next request is fine again.
    again = create(openai_client, "A harmless tree")
    assert [i.status for i in again.output if i.type == "image_generation_call"] == ["completed"]


def test_stream_cut_breaks_the_connection_before_completion(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.cut_next_stream(after_events=5)
    received: list[str] = []
    stream = openai_client.responses.create(
        model=MODEL, input="A cat", tools=[{"type": "image_generation", "partial_images": 2}], stream=True
    )
    with pytest.raises(openai.APIConnectionError):
        drain(stream, received)
    assert len(received) == 5
    assert "response.completed" not in received
    # The helper notices too, and the next stream is whole.
    imagegen_emulator.cut_next_stream(after_events=3)
    with (
        pytest.raises(openai.APIConnectionError),
        openai_client.responses.stream(model=MODEL, input="x", tools=TOOLS) as stream,
    ):
        stream.get_final_response()
    events = list(create(openai_client, stream=True))
    assert events[-1].type == "response.completed"


def test_stream_cut_applies_to_images_streams(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.cut_next_stream(after_events=1)
    received: list[str] = []
    stream = openai_client.images.generate(model="gpt-image-1.5", prompt="x", stream=True, partial_images=2)
    with pytest.raises(openai.APIConnectionError):
        drain(stream, received)
    assert received == ["image_generation.partial_image"]


def test_partial_delay_spaces_the_partial_images(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.set_partial_delay(0.2)
    stamps = []
    for event in openai_client.responses.create(
        model=MODEL, input="A cat", tools=[{"type": "image_generation", "partial_images": 3}], stream=True
    ):
        if event.type == "response.image_generation_call.partial_image":
            stamps.append(time.perf_counter())
    assert len(stamps) == 3
    assert min(b - a for a, b in itertools.pairwise(stamps)) >= 0.15


def test_request_log_records_bodies_and_redacts_the_key(imagegen_emulator: Emulator) -> None:
    secret = "sk-proj-very-secret-key"
    with OpenAI(base_url=imagegen_emulator.url, api_key=secret, max_retries=0) as client:
        create(client, "A cat", metadata={"case": "log"})
        client.files.create(file=("a.png", b"12345"), purpose="user_data")
    first, second = imagegen_emulator.requests
    assert first.endpoint == "POST /v1/responses"
    assert first.json["input"] == "A cat" and first.json["tools"] == TOOLS
    assert first.headers["authorization"] == f"Bearer {REDACTED}"
    assert first.status == 200
    assert second.form == {"purpose": "user_data"}
    assert [(f.field, f.filename, f.size) for f in second.files] == [("file", "a.png", 5)]
    assert secret not in repr(imagegen_emulator.requests)
    assert all(secret not in str(r.headers) for r in imagegen_emulator.requests)


def test_reset_forgets_everything(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    create(openai_client)
    openai_client.files.create(file=("a.png", b"1"), purpose="vision")
    imagegen_emulator.fail_next(500)
    imagegen_emulator.block_next_with_moderation()
    imagegen_emulator.moderation_trigger = None
    imagegen_emulator.reset()
    assert imagegen_emulator.requests == [] and imagegen_emulator.responses == {} and imagegen_emulator.files == {}
    assert imagegen_emulator.moderation_trigger == "forbidden"
    assert create(openai_client, "A dog").status == "completed"
    (call,) = [i for i in create(openai_client, "A dog").output if i.type == "image_generation_call"]
    assert call.status == "completed"


def test_fault_arguments_are_checked(imagegen_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="status"):
        imagegen_emulator.fail_next(200)
    with pytest.raises(ValueError, match="latency"):
        imagegen_emulator.set_latency(-1)
    with pytest.raises(ValueError, match="stage"):
        imagegen_emulator.block_next_with_moderation(stage="later")
