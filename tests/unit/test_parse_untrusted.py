"""API replies are untrusted: odd field types are the service's fault, never the caller's, and never cost a paid
image; unreadable bodies are typed errors naming the response id when they contain one."""

from __future__ import annotations

import base64
import copy
import io
from typing import Any

import pytest
from PIL import Image

from imagegen_tool.errors import ImageGenerationError, MalformedResponseError
from imagegen_tool.parse import find_response_id, parse_response
from imagegen_tool.streaming import ResponseStreamAccumulator


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


BODY: dict[str, Any] = {
    "id": "resp_123",
    "object": "response",
    "status": "completed",
    "model": "gpt-5",
    "store": True,
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": []},
        {
            "id": "ig_1",
            "type": "image_generation_call",
            "status": "completed",
            "result": _png(),
            "revised_prompt": "a red square",
            "size": "1024x1024",
        },
    ],
    "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("output", 1, "revised_prompt"), 123),
        (("output", 1, "size"), ["1024x1024"]),
        (("output", 1, "quality"), {"q": 1}),
        (("output", 1, "status"), 5),
        (("usage",), {"input_tokens": "many"}),
        (("usage",), "lots"),
        (("model",), 42),
        (("store",), "yes"),
    ],
)
def test_odd_descriptive_fields_keep_the_image(path: tuple[Any, ...], value: Any) -> None:
    parsed = parse_response(_with(path, value))
    assert [image.call_id for image in parsed.images] == ["ig_1"]
    assert parsed.response_id == "resp_123"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("output", 1, "result"), 123),
        (("output",), "not a list"),
        (("id",), None),
        (("id",), 7),
    ],
)
def test_unusable_bodies_blame_the_service(path: tuple[Any, ...], value: Any) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        parse_response(_with(path, value))
    assert "not your arguments" in caught.value.agent_message


@pytest.mark.parametrize("body", ["<!DOCTYPE html><html><body>502</body></html>", b"", None, [1, 2], 3.5])
def test_non_objects_are_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_response(body)


def test_a_cut_body_still_names_its_response() -> None:
    text = '{"id": "resp_abc123", "object": "response", "output": [{"id": "ig_1", "result": "iVBORw0KG'
    assert find_response_id(text) == "resp_abc123"
    with pytest.raises(MalformedResponseError) as caught:
        parse_response(text)
    assert caught.value.response_id == "resp_abc123" and not caught.value.retryable


class _Event:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def test_stream_events_with_odd_fields_are_skipped_not_fatal() -> None:
    accumulator = ResponseStreamAccumulator()
    response = _Event(id="resp_1", store=True)
    assert accumulator.feed(_Event(type="response.created", response=response, sequence_number=0))
    assert (
        accumulator.feed(
            _Event(
                type="response.image_generation_call.partial_image",
                item_id="ig_1",
                partial_image_index="first",
                partial_image_b64=None,
                sequence_number=1,
            )
        )
        == []
    )
    assert accumulator.feed(_Event(type="response.created", response=response, sequence_number=0)) == []  # seen
    assert accumulator.last_sequence == 1


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("moderation_blocked", "ModerationBlockedError"),
        ("insufficient_quota", "QuotaExceededError"),
        ("server_error", "GenerationFailedError"),
    ],
)
def test_in_stream_error_events_are_typed(code: str, name: str) -> None:
    accumulator = ResponseStreamAccumulator()
    accumulator.feed(_Event(type="response.created", response=_Event(id="resp_9"), sequence_number=0))
    accumulator.feed(_Event(type="error", code=code, message="no", sequence_number=1))
    assert accumulator.terminal
    with pytest.raises(ImageGenerationError) as caught:
        accumulator.finish()
    assert type(caught.value).__name__ == name
    assert getattr(caught.value, "response_id", None) == "resp_9"
    assert caught.value.retryable == (code == "server_error")


def test_nested_in_stream_error_object_is_read() -> None:
    accumulator = ResponseStreamAccumulator()
    accumulator.feed(_Event(type="error", error={"code": "moderation_blocked", "message": "x"}, sequence_number=0))
    with pytest.raises(ImageGenerationError) as caught:
        accumulator.finish()
    assert type(caught.value).__name__ == "ModerationBlockedError"
