"""The emulator's per-request log line (``imagegen-emulator -v``): what it shows and what it never shows."""

from __future__ import annotations

import logging

import pytest

from imagegen_tool.testing.access_log import describe_request, log_request
from imagegen_tool.testing.state import RecordedFile, RecordedRequest


def _request(**kwargs: object) -> RecordedRequest:
    defaults: dict[str, object] = {"method": "POST", "path": "/v1/responses", "query": {}, "headers": {}}
    return RecordedRequest(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_responses_request_shows_models_prompt_options_and_stream() -> None:
    record = _request(
        json={
            "model": "gpt-5.4-mini",
            "stream": True,
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "make the kite\nred"},
                        {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 5000},
                    ],
                }
            ],
            "tools": [{"type": "image_generation", "model": "gpt-image-1", "quality": "high", "partial_images": 2}],
        },
        status=200,
    )
    line = describe_request(record)
    assert line.startswith("POST /v1/responses -> 200 model=gpt-5.4-mini image_model=gpt-image-1 stream")
    assert "prompt='make the kite red'" in line
    assert "quality=high" in line and "partial_images=2" in line
    assert "base64" not in line and "AAAA" not in line


def test_multipart_edit_shows_fields_and_file_sizes_only() -> None:
    record = _request(
        path="/v1/images/edits",
        form={"model": "gpt-image-1", "prompt": "x" * 200, "n": "2"},
        files=(RecordedFile("image[]", "a.png", "image/png", 1234),),
        status=400,
    )
    line = describe_request(record)
    assert "-> 400" in line and "n=2" in line and "files[image[]=1234 B]" in line
    assert len(line) < 200 and "…" in line


def test_nothing_is_built_when_the_logger_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="imagegen_tool.testing.requests")
    log_request(_request(status=200), 0.01)
    assert caplog.records == []
    caplog.set_level(logging.INFO, logger="imagegen_tool.testing.requests")
    log_request(_request(status=200, json={"prompt": "a kite"}), 0.012)
    assert [r.getMessage() for r in caplog.records] == ["POST /v1/responses -> 200 prompt='a kite' (12 ms)"]
