"""The emulator's Files + Batch endpoints through the real ``openai`` SDK: the lifecycle, the refusals, and lines
answered exactly as the direct endpoints answer them."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from imagegen_tool.testing import Emulator


def upload(client: OpenAI, lines: list[dict[str, Any]] | bytes, purpose: str = "batch") -> str:
    content = lines if isinstance(lines, bytes) else "\n".join(json.dumps(line) for line in lines).encode()
    return client.files.create(file=("input.jsonl", content), purpose=purpose).id  # type: ignore[arg-type]


def line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/images/generations", "body": body}


def until_done(client: OpenAI, batch_id: str, seen: list[str] | None = None) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if seen is not None and (not seen or seen[-1] != batch.status):
            seen.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.02)
    raise AssertionError("the batch never ended")


def test_a_batch_goes_through_its_statuses_and_answers_like_the_direct_endpoint(
    imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    api = imagegen_emulator
    api.set_batch_clock(validating=0.2, per_line=0.2, finalizing=0.2)
    file_id = upload(openai_client, [line("ok", prompt="a kite", quality="low"), line("bad", prompt="x", size="3x3")])
    batch = openai_client.batches.create(
        input_file_id=file_id, endpoint="/v1/images/generations", completion_window="24h", metadata={"k": "v"}
    )
    assert batch.status == "validating" and batch.metadata == {"k": "v"}
    assert batch.expires_at is not None and batch.expires_at > batch.created_at
    seen: list[str] = []
    done = until_done(openai_client, batch.id, seen)
    assert seen[0] == "validating" and "in_progress" in seen and "finalizing" in seen and seen[-1] == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (2, 1, 1)
    assert done.usage is not None and done.usage.output_tokens > 0
    assert done.in_progress_at and done.finalizing_at and done.completed_at

    output = [json.loads(x) for x in openai_client.files.content(done.output_file_id).text.splitlines()]
    assert [(o["custom_id"], o["response"]["status_code"], o["error"]) for o in output] == [("ok", 200, None)]
    assert output[0]["response"]["body"]["data"][0]["b64_json"]
    errors = [json.loads(x) for x in openai_client.files.content(done.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "bad" and errors[0]["response"]["status_code"] == 400
    with pytest.raises(openai.BadRequestError) as direct:
        openai_client.images.generate(prompt="x", size="3x3")  # type: ignore[arg-type]
    assert errors[0]["response"]["body"]["error"]["message"] == direct.value.body["message"]  # type: ignore[index]
    assert openai_client.files.retrieve(done.output_file_id).purpose == "batch_output"
    assert openai_client.files.delete(done.output_file_id).deleted
    assert len(api.generations) == 1 and len(api.batch_executions) == 2


def test_bad_input_files_fail_the_batch_with_line_numbers(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    content = b"\n".join(
        [
            json.dumps(line("a", prompt="fine")).encode(),
            b"not json",
            json.dumps(line("a", prompt="duplicate id")).encode(),
            json.dumps({**line("c", prompt="x"), "url": "/v1/responses"}).encode(),
        ]
    )
    batch = openai_client.batches.create(
        input_file_id=upload(openai_client, content), endpoint="/v1/images/generations", completion_window="24h"
    )
    done = until_done(openai_client, batch.id)
    assert done.status == "failed" and done.failed_at
    assert [(e.line, e.code) for e in done.errors.data] == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "mismatched_url"),
    ]
    assert imagegen_emulator.generations == []


def test_create_refuses_what_the_api_refuses(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    vision_file = upload(openai_client, [line("a", prompt="x")], purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        openai_client.batches.create(input_file_id=vision_file, endpoint="/v1/responses", completion_window="24h")
    good = upload(openai_client, [line("a", prompt="x")])
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        openai_client.batches.create(input_file_id=good, endpoint="/v1/responses", completion_window="2h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        openai_client.batches.create(input_file_id=good, endpoint="/v1/images/variations", completion_window="24h")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        openai_client.batches.create(input_file_id="file-missing", endpoint="/v1/responses", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="metadata"):
        openai_client.batches.create(
            input_file_id=good,
            endpoint="/v1/responses",
            completion_window="24h",
            metadata={f"k{i}": "v" for i in range(17)},
        )
    with pytest.raises(openai.NotFoundError):
        openai_client.batches.retrieve("batch_unknown")
    assert imagegen_emulator.batches == []


def test_list_pages_newest_first_and_cancel_of_an_ended_batch_is_refused(
    imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    file_id = upload(openai_client, [line("a", prompt="x", quality="low")])
    ids = [
        openai_client.batches.create(
            input_file_id=file_id, endpoint="/v1/images/generations", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    first = openai_client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    assert [b.id for b in openai_client.batches.list(limit=2)] == ids[::-1]  # the SDK follows the pages
    until_done(openai_client, ids[0])
    with pytest.raises(openai.ConflictError):
        openai_client.batches.cancel(ids[0])


def test_a_streaming_or_background_line_is_refused_per_line(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    lines = [
        {
            "custom_id": "s",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-5.4-mini", "input": "x", "stream": True},
        },
        {
            "custom_id": "b",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-5.4-mini", "input": "x", "background": True},
        },
    ]
    batch = openai_client.batches.create(
        input_file_id=upload(openai_client, lines), endpoint="/v1/responses", completion_window="24h"
    )
    done = until_done(openai_client, batch.id)
    assert done.request_counts.failed == 2 and done.output_file_id is None
    codes = [
        json.loads(x)["response"]["body"]["error"]["param"]
        for x in openai_client.files.content(done.error_file_id).text.splitlines()
    ]
    assert codes == ["stream", "background"]
