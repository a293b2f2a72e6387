"""Planning a batch job (pure: nothing is sent) and reading its result lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen_tool import ImageGenerator
from imagegen_tool.batch import (
    BATCH_ENDPOINTS,
    BatchRequest,
    BatchValidationError,
    _line_error,
    check_job_id,
    input_file,
    plan_job,
)
from imagegen_tool.errors import InvalidInputError


@pytest.fixture
def generator(tmp_path: Path) -> ImageGenerator:
    # A closed port: planning must never open a connection.
    return ImageGenerator(store=tmp_path, api_key="test", base_url="http://127.0.0.1:9/v1", options={"quality": "low"})


def test_the_input_file_has_one_request_line_per_prompt(generator: ImageGenerator) -> None:
    manifest = plan_job(
        generator,
        ["a fox", BatchRequest(prompt="a hare", options={"size": "1536x1024"}, custom_id="hare"), {"prompt": "é"}],
        "images",
    )
    lines = [json.loads(line) for line in input_file(manifest).decode().splitlines()]
    assert [line["custom_id"] for line in lines] == ["r00001", "hare", "r00003"]
    assert {line["method"] for line in lines} == {"POST"}
    assert {line["url"] for line in lines} == {BATCH_ENDPOINTS["images"]} == {"/v1/images/generations"}
    assert lines[1]["body"] == {"prompt": "a hare", "quality": "low", "size": "1536x1024"}
    assert lines[2]["body"]["prompt"] == "é"
    assert manifest.job_id == check_job_id(manifest.job_id) and manifest.status == "preparing"


def test_the_responses_route_forces_the_image_tool_and_never_streams(generator: ImageGenerator) -> None:
    manifest = plan_job(generator, ["a fox"], "responses", {"size": "1024x1536"})
    body = manifest.items[0].body
    assert manifest.endpoint == "/v1/responses"
    assert body["tool_choice"] == {"type": "image_generation"}
    assert body["tools"][0]["size"] == "1024x1536" and body["tools"][0]["quality"] == "low"
    assert "stream" not in body and "background" not in body
    assert body["model"] == manifest.text_model


def test_every_refused_request_is_listed_with_its_number(generator: ImageGenerator) -> None:
    with pytest.raises(BatchValidationError) as caught:
        plan_job(
            generator,
            [
                "ok",
                {"prompt": "x", "quality": "ultra"},
                {"prompt": "x", "n": 11},
                42,  # type: ignore[list-item]
                {"prompt": "x", "output_compression": 50},
                {"prompt": "x", "custom_id": "a" * 65},
            ],
            "images",
        )
    assert [number for number, _ in caught.value.problems] == [2, 3, 4, 5, 6]
    assert "quality" in dict(caught.value.problems)[2]


def test_more_than_twenty_problems_are_counted_not_all_printed(generator: ImageGenerator) -> None:
    with pytest.raises(BatchValidationError) as caught:
        plan_job(generator, [{"prompt": "x", "size": "1x1"}] * 25, "images")
    assert len(caught.value.problems) == 25 and "and 5 more" in str(caught.value)


@pytest.mark.parametrize("job_id", ["", "bj_", "bj_XYZ", "bj_0123456789abcdef0", "../bj_0123456789abcdef"])
def test_job_ids_are_checked(job_id: str) -> None:
    with pytest.raises(InvalidInputError):
        check_job_id(job_id)


def test_result_line_errors_become_typed_agent_messages() -> None:
    expired = _line_error({"custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "late"}})
    assert expired.code == "batch_expired" and expired.retryable and "Submit it again" in expired.agent_message
    blocked = _line_error(
        {
            "custom_id": "b",
            "response": {
                "status_code": 400,
                "request_id": "req_1",
                "body": {
                    "error": {"code": "moderation_blocked", "message": "no", "type": "image_generation_user_error"}
                },
            },
            "error": None,
        }
    )
    assert blocked.code == "moderation_blocked" and not blocked.retryable and "Rephrase" in blocked.agent_message
    overloaded = _line_error(
        {"custom_id": "c", "response": {"status_code": 503, "body": {"error": {"message": "busy"}}}, "error": None}
    )
    assert overloaded.retryable and overloaded.status_code == 503
    garbage = _line_error({"custom_id": "d", "response": "nonsense", "error": None})
    assert garbage.message and not garbage.retryable


def test_the_batch_discount_is_applied_only_where_it_is_published() -> None:
    from decimal import Decimal

    from imagegen_tool.batch import _discounted_cost, batch_discount
    from imagegen_tool.costs import Cost, ImageCost

    assert batch_discount("images", "gpt-image-1-mini") == Decimal("0.5")
    assert batch_discount("responses", "gpt-image-1-mini") == 0
    assert batch_discount("images", "an-unlisted-model") == 0
    cost = ImageCost(
        estimate=Cost(kind="estimate", usd=Decimal("0.04")), actual=Cost(kind="actual", usd=Decimal("0.02"))
    )
    half = _discounted_cost(cost, Decimal("0.5"))
    assert half is not None and half.estimate is not None and half.actual is not None
    assert (half.estimate.usd, half.actual.usd) == (Decimal("0.02"), Decimal("0.01"))
    assert "Batch API discount" in half.actual.assumptions[-1]
    assert _discounted_cost(cost, Decimal(0)) is cost
    unknown = ImageCost(actual=Cost(kind="actual", usd=None))
    assert _discounted_cost(unknown, Decimal("0.5")).actual.usd is None  # type: ignore[union-attr]
