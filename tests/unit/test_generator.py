"""ImageGenerator logic with an in-process backend: validation before requests, failures, usage, storage."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from imagegen_tool import (
    APIError,
    ConfigurationError,
    GenerationFailedError,
    ImageGenerator,
    ImageOptions,
    ImageRequest,
    InvalidInputError,
    InvalidOptionsError,
    ModerationBlockedError,
    NoImageReturnedError,
    ResponsesBackend,
)
from imagegen_tool.backends import translate_openai_error
from imagegen_tool.parse import ParsedResponse, parse_response
from imagegen_tool.redact import redact
from tests.fixtures.recorded import AZURE_JSON, ERROR_JSON, load_json


class RecordedBackend:
    """Answers every request with a recorded body; remembers what it was asked."""

    name = "recorded"

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.requests: list[ImageRequest] = []
        self.threads: list[str] = []

    def run(self, request: ImageRequest) -> ParsedResponse:
        self.requests.append(request)
        return parse_response(copy.deepcopy(self.body))

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        self.threads.append(threading.current_thread().name)
        return self.run(request)


@pytest.fixture
def azure_body() -> dict[str, Any]:
    return load_json(AZURE_JSON)


def _calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in body["output"] if item["type"] == "image_generation_call"]


def test_generate_stores_the_image_with_the_response_metadata(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    backend = RecordedBackend(azure_body)
    generator = ImageGenerator(store=tmp_path, backend=backend, options=ImageOptions(quality="low"))
    result = generator.generate("a cat waving", size="1024x1024")
    image = result.image
    assert image.id == _calls(azure_body)[0]["id"]
    assert image.response_id == azure_body["id"] == result.response_id
    assert (image.format, image.mime_type, image.width, image.height) == ("png", "image/png", 1, 1)
    assert image.reported.quality == "medium"  # what the API says it used, not what we asked
    assert image.options == ImageOptions(quality="low", size="1024x1024")
    assert image.prompt == "a cat waving"
    assert image.usage == result.usage is not None
    assert image.backend == "recorded"
    assert Path(image.path or "").stat().st_size == image.byte_size
    assert backend.requests[0].options.to_tool_param() == {
        "type": "image_generation",
        "quality": "low",
        "size": "1024x1024",
    }


def test_invalid_options_fail_before_any_request(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    backend = RecordedBackend(azure_body)
    generator = ImageGenerator(store=tmp_path, backend=backend)
    with pytest.raises(InvalidOptionsError) as caught:
        generator.generate("a logo", background="transparent", output_format="jpeg")
    assert caught.value.field == "background"
    with pytest.raises(InvalidOptionsError):
        generator.generate("a logo", options={"quality": "ultra"})
    assert backend.requests == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prompt", ["", "x" * 32_001])
def test_bad_prompt_is_refused_before_any_request(tmp_path: Path, azure_body: dict[str, Any], prompt: str) -> None:
    backend = RecordedBackend(azure_body)
    with pytest.raises(InvalidInputError, match="prompt"):
        ImageGenerator(store=tmp_path, backend=backend).generate(prompt)
    assert backend.requests == []


def test_moderation_block_is_a_typed_error_telling_the_agent_to_rephrase(
    tmp_path: Path, azure_body: dict[str, Any]
) -> None:
    _calls(azure_body)[0].update(
        status="failed",
        result=None,
        error={
            "type": "image_generation_user_error",
            "code": "moderation_blocked",
            "message": "Rejected by the safety system.",
            "moderation_details": {"categories": ["violence"], "moderation_stage": "output"},
        },
    )
    with pytest.raises(ModerationBlockedError) as caught:
        ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body)).generate("x")
    error = caught.value
    assert (error.categories, error.stage, error.retryable) == (("violence",), "output", False)
    assert "Rephrase" in error.agent_message and "Do not retry" in error.agent_message
    assert list(tmp_path.iterdir()) == []


def test_response_with_only_text_is_no_image_returned(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    azure_body["output"] = [i for i in azure_body["output"] if i["type"] != "image_generation_call"]
    with pytest.raises(NoImageReturnedError) as caught:
        ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body)).generate("x")
    assert "cute cat" in caught.value.output_text
    assert caught.value.response_id == azure_body["id"]


def test_other_failure_is_generation_failed(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    _calls(azure_body)[0].update(
        status="failed", result=None, error={"type": "server_error", "code": "x", "message": "boom"}
    )
    with pytest.raises(GenerationFailedError, match="boom"):
        ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body)).generate("x")


def test_one_failed_call_does_not_lose_the_paid_image(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    failed = copy.deepcopy(_calls(azure_body)[0])
    failed.update(id="ig_failed", status="failed", result=None, error={"type": "e", "code": "c", "message": "m"})
    azure_body["output"].append(failed)
    result = ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body)).generate("x")
    assert len(result.images) == 1
    assert [f.call_id for f in result.failures] == ["ig_failed"]


async def test_agenerate_stores_off_the_event_loop(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    backend = RecordedBackend(azure_body)
    generator = ImageGenerator(store=tmp_path, backend=backend)
    save = generator.store.save
    saving_threads: list[int] = []

    def spying_save(*args: Any) -> Any:
        saving_threads.append(threading.get_ident())
        return save(*args)

    generator.store.save = spying_save  # type: ignore[method-assign]
    result = await generator.agenerate("a cat")
    assert saving_threads and threading.get_ident() not in saving_threads
    assert Path(result.image.path or "").exists()
    assert generator.store.get(result.image.id) == result.image


def test_backend_and_client_settings_conflict(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body), api_key="sk-x")


def test_missing_api_key_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        ImageGenerator(store=tmp_path).generate("a cat")


def test_store_dir_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, azure_body: dict[str, Any]
) -> None:
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", str(tmp_path / "from-env"))
    result = ImageGenerator(backend=RecordedBackend(azure_body)).generate("a cat")
    assert Path(result.image.path or "").parent == (tmp_path / "from-env").resolve()


def test_backend_repr_hides_the_key() -> None:
    backend = ResponsesBackend(api_key="sk-proj-secretsecretsecret")
    assert "secret" not in repr(backend)
    assert "secret" not in repr(ImageGenerator(api_key="sk-proj-secretsecretsecret", store="unused"))


# -- SDK exception translation ------------------------------------------------------------------------------


def _status_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    response = httpx.Response(
        status, json=body, headers={"x-request-id": "req_123", **(headers or {})}, request=request
    )
    cls = {400: openai.BadRequestError, 401: openai.AuthenticationError, 429: openai.RateLimitError}.get(
        status, openai.InternalServerError
    )
    return cls(message=str(body), response=response, body=body.get("error"))


def test_recorded_error_body_keeps_status_request_id_code_and_param() -> None:
    error = translate_openai_error(_status_error(400, load_json(ERROR_JSON)))
    assert isinstance(error, APIError)
    assert (error.status_code, error.request_id, error.code, error.param) == (
        400,
        "req_123",
        "unknown_parameter",
        "response_format",
    )
    assert not error.retryable
    assert "Unknown parameter: 'response_format'" in str(error)


def test_rate_limit_is_retryable_with_retry_after() -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    error = translate_openai_error(_status_error(429, body, {"retry-after": "7"}))
    assert isinstance(error, APIError)
    assert (error.retryable, error.retry_after, error.status_code) == (True, 7.0, 429)
    assert "Try again later" in error.agent_message


def test_images_api_moderation_400_is_moderation_error() -> None:
    body = {
        "error": {
            "message": "Your request was rejected",
            "type": "image_generation_user_error",
            "code": "moderation_blocked",
        }
    }
    assert isinstance(translate_openai_error(_status_error(400, body)), ModerationBlockedError)


def test_api_keys_never_appear_in_translated_errors() -> None:
    body = {
        "error": {"message": "Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwx.", "code": "invalid_api_key"}
    }
    error = translate_openai_error(_status_error(401, body))
    assert "abcdefghijklmnop" not in str(error)
    assert "abcdefghijklmnop" not in error.agent_message


def test_connection_errors_are_retryable() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/responses")
    assert translate_openai_error(openai.APIConnectionError(request=request)).retryable
    assert translate_openai_error(openai.APITimeoutError(request=request)).retryable


def test_redact_masks_keys_bearer_and_base64() -> None:
    blob = "A" * 500
    text = redact(
        f"key sk-proj-0123456789abcdefghij auth Bearer abc.def.ghijklmnop data:image/png;base64,{blob} raw {blob}"
    )
    assert "0123456789abcdefghij" not in text
    assert "ghijklmnop" not in text
    assert blob not in text
    assert "data:image/png;base64,<" in text
    assert "<base64 500 chars>" in text


# -- review regressions: paid images are never lost to a neighbour's failure --------------------------------


def test_a_bad_image_does_not_lose_the_good_one(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    bad = copy.deepcopy(_calls(azure_body)[0])
    bad.update(id="ig_bad", result="not base64 at all!")
    azure_body["output"].append(bad)
    result = ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body)).generate("x")
    assert [image.id for image in result.images] == [_calls(azure_body)[0]["id"]]
    (failure,) = result.failures
    assert (failure.call_id, failure.code) == ("ig_bad", "invalid_image_data")


class StreamingBackend(RecordedBackend):
    """Streams one undecodable partial image, then the recorded response."""

    def stream(self, request: ImageRequest) -> Any:
        from imagegen_tool.streaming import PartialImageData, StreamOutcome

        yield PartialImageData(call_id="ig_x", index=0, b64="%%%")
        yield StreamOutcome(parsed=self.run(request))


def test_a_broken_partial_image_is_skipped_not_fatal(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    events: list[Any] = []
    result = ImageGenerator(store=tmp_path, backend=StreamingBackend(azure_body)).generate(
        "x", partial_images=1, on_event=events.append
    )
    assert Path(result.image.path or "").exists()
    assert [e.type for e in events] == ["completed"]


def test_an_inline_mask_is_not_copied_into_handles(tmp_path: Path, azure_body: dict[str, Any]) -> None:
    data_url = "data:image/png;base64," + "A" * 4000
    result = ImageGenerator(store=tmp_path, backend=RecordedBackend(azure_body)).generate(
        "x", options={"mask": {"image_url": data_url}}
    )
    dumped = result.image.model_dump_json() + repr(result.image) + (tmp_path / f"{result.image.id}.json").read_text()
    assert "A" * 100 not in dumped
    assert (result.image.options.mask.image_url or "").startswith("data-url-omitted:sha256=")
