"""Parsing real recorded Responses API bodies: images picked by type, bytes decoded exactly, fields reported."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from openai.types.responses import Response
from PIL import Image

from imagegen_tool.errors import GenerationFailedError
from imagegen_tool.parse import parse_response
from tests.fixtures.recorded import (
    AZURE_JSON,
    JPEG_CASSETTE,
    TOOLS_CASSETTE,
    VERCEL_JSON,
    image_responses,
    load_interactions,
    load_json,
)


def _calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in body["output"] if item["type"] == "image_generation_call"]


@pytest.mark.parametrize(("name", "body"), image_responses())
def test_every_recorded_image_response_parses_with_reported_fields(name: str, body: dict[str, Any]) -> None:
    parsed = parse_response(body)
    calls = _calls(body)
    assert [image.call_id for image in parsed.images] == [call["id"] for call in calls]
    for image, call in zip(parsed.images, calls, strict=True):
        assert image.b64 == call["result"]
        assert image.revised_prompt == call.get("revised_prompt")
        assert image.reported.size == call.get("size")
        assert image.reported.quality == call.get("quality")
        assert image.reported.background == call.get("background")
        assert image.reported.output_format == call.get("output_format")
    assert parsed.response_id == body["id"]
    assert parsed.text_model == body["model"]
    assert parsed.usage is not None and parsed.usage.text is not None
    assert parsed.usage.text.total_tokens == body["usage"]["total_tokens"]


@pytest.mark.parametrize(
    ("name", "index", "fmt", "size"),
    [(JPEG_CASSETTE, 0, "JPEG", (1536, 1024)), (TOOLS_CASSETTE, 1, "PNG", (1024, 1024))],
)
def test_real_images_decode_to_the_recorded_bytes(name: str, index: int, fmt: str, size: tuple[int, int]) -> None:
    body = load_interactions(name)[index]["response"]["parsed_body"]
    recorded = _calls(body)[0]["result"]
    parsed = parse_response(body)
    data = parsed.images[0].decode(parsed.response_id)
    assert data == base64.b64decode(recorded)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt
        assert image.size == size


def test_auto_request_reports_resolved_values() -> None:
    interaction = load_interactions(JPEG_CASSETTE)[0]
    sent_tool = interaction["request"]["parsed_body"]["tools"][0]
    assert sent_tool.get("size", "auto") == "auto"
    reported = parse_response(interaction["response"]["parsed_body"]).images[0].reported
    assert (reported.size, reported.quality, reported.background) == ("1536x1024", "high", "opaque")


def test_sdk_response_object_and_mapping_parse_the_same() -> None:
    body = load_json(AZURE_JSON)
    assert parse_response(Response.construct(**body)) == parse_response(body)


def test_images_are_found_by_type_not_position() -> None:
    body = load_json(AZURE_JSON)
    body["output"] = list(reversed(body["output"]))
    parsed = parse_response(body)
    assert len(parsed.images) == 1
    assert parsed.output_text.startswith("Here is an anime-like image")


def test_truncated_base64_gives_a_clear_error_naming_the_response() -> None:
    body = load_json(VERCEL_JSON)  # its authors shortened the result with "..."
    parsed = parse_response(body)
    with pytest.raises(GenerationFailedError) as caught:
        parsed.images[0].decode(parsed.response_id)
    assert caught.value.code == "invalid_image_data"
    assert body["id"] in str(caught.value)
    assert "UklGR" not in str(caught.value)  # no payload in the message


def test_moderation_failure_is_parsed_with_categories_and_stage() -> None:
    body = load_json(AZURE_JSON)
    call = _calls(body)[0]
    call.update(
        status="failed",
        result=None,
        error={
            "type": "image_generation_user_error",
            "code": "moderation_blocked",
            "message": "Your request was rejected by the safety system.",
            "moderation_details": {"categories": ["violence"], "moderation_stage": "input"},
        },
    )
    parsed = parse_response(body)
    assert parsed.images == ()
    (failure,) = parsed.failures
    assert failure.is_moderation
    assert failure.categories == ("violence",)
    assert failure.stage == "input"


def test_tool_usage_image_gen_is_captured() -> None:
    body = load_json(AZURE_JSON)
    body["tool_usage"] = {
        "image_gen": {
            "input_tokens": 50,
            "input_tokens_details": {"image_tokens": 40, "text_tokens": 10},
            "output_tokens": 1056,
            "output_tokens_details": {"image_tokens": 1056, "text_tokens": 0},
            "total_tokens": 1106,
        },
        "web_search": {"num_requests": 0},
    }
    usage = parse_response(body).usage
    assert usage is not None and usage.image is not None
    assert (usage.image.input_image_tokens, usage.image.output_image_tokens, usage.image.total_tokens) == (
        40,
        1056,
        1106,
    )


def test_response_without_image_has_text_and_no_images() -> None:
    body = load_json(AZURE_JSON)
    body["output"] = [item for item in body["output"] if item["type"] != "image_generation_call"]
    parsed = parse_response(body)
    assert parsed.images == () and parsed.failures == ()
    assert "cute cat" in parsed.output_text
