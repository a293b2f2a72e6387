"""ImageGenerator(api="images") through the real openai SDK against the emulator: generate, n > 1, edits with
masks by handle and path, streaming partials, every error class, crossing routes, and parity with the
Responses route."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from imagegen_tool import (
    APIError,
    ConfigurationError,
    GenerationFailedError,
    ImageGenerator,
    InvalidInputError,
    InvalidOptionsError,
    MalformedResponseError,
    ModerationBlockedError,
    StreamInterruptedError,
)
from imagegen_tool.images_api import ImagesBackend
from imagegen_tool.testing import Emulator
from tests.fixtures.recorded import ERROR_JSON, load_json
from tests.integration.conftest import image_files
from tests.integration.servers import serve_app

MODEL = "gpt-image-1.5"


def _png(size: tuple[int, int] = (64, 64), color: Any = "blue") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _mask(size: tuple[int, int] = (64, 64)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def images_generator(store_dir: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI) -> ImageGenerator:
    return ImageGenerator(store=store_dir, api="images", client=openai_client, async_client=async_openai_client)


def _calls(emulator: Emulator, path: str) -> list[Any]:
    return emulator.requests_to(path)


def test_generate_stores_one_handle_with_the_reported_settings_and_usage(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    result = images_generator.generate("a red kite", model=MODEL, size="1536x1024", quality="low")
    image = result.image
    assert (image.width, image.height, image.mime_type, image.backend) == (1536, 1024, "image/png", "images")
    assert (image.reported.size, image.reported.quality, image.reported.background) == ("1536x1024", "low", "opaque")
    assert image.response_id is None and image.response_stored is False and image.model == MODEL
    assert image.usage is not None and image.usage.text is None and image.usage.image is not None
    assert image.usage.image.output_tokens > 0 and image.usage.image.input_text_tokens
    assert image_files(store_dir) == [Path(image.path or "").name]
    [sent] = _calls(imagegen_emulator, "/v1/images/generations")
    assert sent.json == {"prompt": "a red kite", "model": MODEL, "size": "1536x1024", "quality": "low"}
    assert not _calls(imagegen_emulator, "/v1/responses")


def test_n_images_come_back_as_n_handles_from_one_call(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    result = images_generator.generate("three teapots", model=MODEL, n=3, quality="low")
    assert len(result.images) == 3 and len({i.id for i in result.images}) == 3
    assert len({i.sha256 for i in result.images}) == 3  # three different images
    assert len(image_files(store_dir)) == 3
    assert len(_calls(imagegen_emulator, "/v1/images/generations")) == 1
    # The usage of the one call is recorded on each of its images.
    assert result.usage is not None and all(i.usage == result.usage for i in result.images)
    assert result.usage.image is not None and result.usage.image.output_tokens == 3 * 272


async def test_async_generate_n(images_generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    result = await images_generator.agenerate("two owls", model=MODEL, n=2, output_format="webp")
    assert [i.format for i in result.images] == ["webp", "webp"]


def test_edit_a_responses_handle_by_id_with_a_mask_path(
    store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    responses = ImageGenerator(store=store_dir, client=openai_client)
    images = ImageGenerator(store=store_dir, client=openai_client, api="images", input_roots=[tmp_path])
    first = responses.generate("a cat on a sofa", model=MODEL, size="1024x1024", quality="low")
    mask_path = tmp_path / "mask.png"
    mask_path.write_bytes(_mask((1024, 1024)))
    edited = images.edit("make the sofa red", first.image.id, mask=str(mask_path), model=MODEL)
    [sent] = _calls(imagegen_emulator, "/v1/images/edits")
    fields = sorted((f.field, f.size) for f in sent.files)
    assert fields == sorted([("image[]", first.image.byte_size), ("mask", mask_path.stat().st_size)])
    assert "previous_response_id" not in sent.form and "action" not in sent.form  # no continuation here
    assert edited.image.input_ids == (first.image.id,) and edited.image.backend == "images"
    # Outside the mask the edit keeps the input image (the emulator edits only the transparent half).
    before = Image.open(io.BytesIO(responses.store.read_bytes(first.image.id))).convert("RGB")
    after = Image.open(io.BytesIO(images.store.read_bytes(edited.image.id))).convert("RGB")
    assert before.getpixel((1000, 500)) == after.getpixel((1000, 500))


def test_an_images_route_image_edits_through_the_responses_route(
    store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    images = ImageGenerator(store=store_dir, client=openai_client, api="images")
    responses = ImageGenerator(store=store_dir, client=openai_client)
    made = images.generate("a lighthouse", model=MODEL, quality="low")
    edited = responses.edit("at night", made.image.id)
    [body] = [r.json for r in _calls(imagegen_emulator, "/v1/responses")]
    assert "previous_response_id" not in body  # nothing stored to continue from: the bytes are uploaded
    assert _calls(imagegen_emulator, "/v1/files")
    assert edited.image.input_ids == (made.image.id,) and edited.image.backend == "responses"


def test_several_reference_images_are_sent_in_order(
    images_generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    inputs = [_png((64, 64), c) for c in ("red", "green", "blue")]
    result = images_generator.edit("a collage", inputs, model=MODEL)
    [sent] = _calls(imagegen_emulator, "/v1/images/edits")
    assert [f.field for f in sent.files] == ["image[]"] * 3
    assert [f.size for f in sent.files] == [len(i) for i in inputs]
    assert result.image.backend == "images"


def test_streaming_partials_then_every_image(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    events = list(images_generator.stream_generate("a comet", model=MODEL, partial_images=2, n=2))
    kinds = [e.type for e in events]
    assert kinds.count("partial_image") == 4 and kinds[-1] == "completed"
    partials = [e for e in events if e.type == "partial_image"]
    assert [p.partial.index for p in partials] == [0, 1, 0, 1]  # type: ignore[union-attr]
    result = events[-1].result  # type: ignore[union-attr]
    assert len(result.images) == 2
    # quality auto is reported (and billed) as high; each of the 4 partial images adds 100 output tokens
    assert result.usage.image.output_tokens == 2 * 4160 + 4 * 100
    [sent] = _calls(imagegen_emulator, "/v1/images/generations")
    assert sent.json["stream"] is True and sent.json["partial_images"] == 2
    assert len(image_files(store_dir)) == 2  # previews removed once the call ended


async def test_async_edit_stream_with_on_event(images_generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    seen: list[str] = []

    async def on_event(event: Any) -> None:
        seen.append(event.type)

    result = await images_generator.aedit("brighter", _png(), model=MODEL, partial_images=1, on_event=on_event)
    assert seen.count("partial_image") == 1 and seen[-1] == "completed"
    assert result.image.backend == "images"
    assert _calls(imagegen_emulator, "/v1/images/edits")[0].form["stream"] == "true"


def test_gif_output_does_not_stream_on_the_images_api(
    images_generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    events: list[Any] = []
    result = images_generator.generate(
        "a spinning top", model="gpt-image-2.6-sunburst", output_format="gif", frame_count=4, on_event=events.append
    )
    assert result.image.format == "gif" and events[-1].type == "completed"
    [sent] = _calls(imagegen_emulator, "/v1/images/generations")
    assert "stream" not in sent.json


# --- errors ------------------------------------------------------------------------------------------------


def test_moderation_is_a_moderation_error_and_nothing_is_stored(
    images_generator: ImageGenerator, store_dir: Path
) -> None:
    with pytest.raises(ModerationBlockedError) as caught:
        images_generator.generate("something forbidden", model=MODEL)
    assert "Rephrase" in caught.value.agent_message and not caught.value.retryable
    assert image_files(store_dir) == []


@pytest.mark.parametrize("streaming", [False, True])
def test_output_moderation_while_streaming_is_a_moderation_error(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, streaming: bool
) -> None:
    imagegen_emulator.block_next_with_moderation(["sexual"], stage="output")
    with pytest.raises(ModerationBlockedError):
        images_generator.generate("a portrait", model=MODEL, partial_images=1 if streaming else None)


def test_moderation_of_the_second_image_keeps_the_first(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    # Output moderation of a streamed n=2 call blocks the last image with an in-stream error event, after the
    # first image was delivered: that one was paid for and is kept; the blocked one is a failure.
    imagegen_emulator.block_next_with_moderation(stage="output")
    result = images_generator.generate("two portraits", model=MODEL, partial_images=1, n=2)
    assert len(result.images) == 1 and [f.code for f in result.failures] == ["moderation_blocked"]
    assert len(image_files(store_dir)) == 1


def test_an_option_the_api_refuses_is_a_non_retryable_api_error(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.fail_next(400, message="Invalid value for 'quality': not for this project.")
    with pytest.raises(APIError) as caught:
        images_generator.generate("a boat", model=MODEL)
    assert caught.value.status_code == 400 and not caught.value.retryable
    assert len(imagegen_emulator.requests) == 1 and image_files(store_dir) == []


def test_rate_limits_are_retried_by_the_backend_only_while_nothing_was_made(
    store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=store_dir, backend=ImagesBackend(client=openai_client, max_retries=2))
    imagegen_emulator.fail_next(429, retry_after=0)
    assert generator.generate("a boat", model=MODEL).image.backend == "images"
    assert len(_calls(imagegen_emulator, "/v1/images/generations")) == 2
    imagegen_emulator.reset()
    imagegen_emulator.fail_next(503, times=3, retry_after=0)
    with pytest.raises(APIError) as caught:
        generator.generate("a boat", model=MODEL)
    assert caught.value.status_code == 503 and caught.value.retryable
    assert len(_calls(imagegen_emulator, "/v1/images/generations")) == 3


def test_insufficient_quota_is_not_retried(store_dir: Path) -> None:
    calls: list[int] = []

    async def quota(request: Any) -> JSONResponse:
        calls.append(1)
        body = {
            "error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
        }
        return JSONResponse(body, status_code=429)

    app = Starlette(routes=[Route("/v1/images/generations", quota, methods=["POST"])])
    with serve_app(app) as url:
        backend = ImagesBackend(api_key="test", base_url=url + "/v1", max_retries=3)
        with pytest.raises(APIError) as caught:
            ImageGenerator(store=store_dir, backend=backend).generate("a boat", model=MODEL)
        backend.close()
    assert caught.value.code == "insufficient_quota" and not caught.value.retryable
    assert len(calls) == 1


def test_a_timeout_is_never_retried_because_the_image_may_be_paid(store_dir: Path, imagegen_emulator: Emulator) -> None:
    client = OpenAI(base_url=imagegen_emulator.url, api_key="test", timeout=0.3, max_retries=5)
    generator = ImageGenerator(store=store_dir, api="images", client=client)
    imagegen_emulator.set_latency(1.0)
    try:
        with pytest.raises(APIError, match="timed out") as caught:
            generator.generate("a slow boat", model=MODEL)
    finally:
        client.close()
    assert caught.value.retryable
    assert len(_calls(imagegen_emulator, "/v1/images/generations")) == 1  # the client's own 5 retries are off


def test_no_server_is_a_retryable_api_error(store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, api="images", api_key="test", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(APIError, match="cannot reach") as caught:
        generator.generate("a boat", model=MODEL)
    assert caught.value.retryable
    generator.close()


def test_a_stream_cut_before_any_image_is_an_interruption(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.cut_next_stream(after_events=1)
    with pytest.raises(StreamInterruptedError):
        images_generator.generate("a comet", model=MODEL, partial_images=2)
    assert image_files(store_dir) == []


def test_a_stream_cut_after_the_first_of_two_images_keeps_it(
    images_generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.cut_next_stream(after_events=2)  # partial + completed of image 1
    result = images_generator.generate("two comets", model=MODEL, partial_images=1, n=2)
    assert len(result.images) == 1 and [f.code for f in result.failures] == ["stream_interrupted"]
    assert len(image_files(store_dir)) == 1


def test_an_html_page_with_status_200_is_a_typed_error(store_dir: Path) -> None:
    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse("<html><body>Bad gateway</body></html>")

    app = Starlette(routes=[Route("/v1/images/generations", page, methods=["POST"])])
    with serve_app(app) as url:
        generator = ImageGenerator(store=store_dir, api="images", api_key="test", base_url=url + "/v1")
        with pytest.raises(MalformedResponseError, match="not an Images API body") as caught:
            generator.generate("a boat", model=MODEL)
        generator.close()
    assert caught.value.code == "malformed_response" and not caught.value.retryable


def test_invalid_options_and_inputs_send_nothing(images_generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    with pytest.raises(InvalidOptionsError):
        images_generator.generate("p", model=MODEL, input_fidelity="high")
    with pytest.raises(InvalidInputError):
        images_generator.edit("p", "https://example.com/cat.png")
    with pytest.raises(InvalidOptionsError):
        images_generator.generate("p", model=MODEL, n=11)
    assert imagegen_emulator.requests == []


def test_the_recorded_images_error_body_is_replayed(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.images.generate(model=MODEL, prompt="a cat", response_format="url")
    assert {"error": caught.value.body} == load_json(ERROR_JSON)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        ({"extra_body": {"action": "generate"}}, "action"),
        ({"extra_body": {"input_fidelity": "high"}}, "input_fidelity"),
    ],
)
def test_the_emulator_refuses_parameters_the_generations_endpoint_lacks(
    openai_client: OpenAI, call: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.images.generate(model=MODEL, prompt="a cat", **call)
    assert caught.value.code == "unknown_parameter" and caught.value.param == param


def test_the_emulator_checks_masks_and_input_counts(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="same dimensions"):
        openai_client.images.edit(model=MODEL, prompt="x", image=[_png()], mask=_mask((32, 32)))
    with pytest.raises(openai.BadRequestError, match="at most 16"):
        openai_client.images.edit(model=MODEL, prompt="x", image=[_png()] * 17)
    with pytest.raises(openai.BadRequestError, match="n=1"):
        openai_client.images.generate(model="gpt-image-2.6-sunburst", prompt="x", output_format="svg", n=2)


def test_safety_identifier_is_echoed(openai_client: OpenAI) -> None:
    answer = openai_client.images.generate(model=MODEL, prompt="a cat", extra_body={"safety_identifier": "user-hash-1"})
    assert answer.safety_identifier == "user-hash-1"


# --- parity --------------------------------------------------------------------------------------------


PARITY_FIELDS = ("width", "height", "mime_type", "format", "prompt", "model", "options", "input_ids")


@pytest.mark.parametrize(
    "options",
    [
        {"model": MODEL, "size": "1536x1024", "quality": "low"},
        {"model": MODEL, "size": "1024x1536", "quality": "high", "output_format": "jpeg", "output_compression": 60},
        {"model": MODEL, "background": "transparent", "output_format": "webp"},
    ],
    ids=["landscape", "jpeg", "transparent-webp"],
)
def test_same_options_give_the_same_handle_fields_on_both_routes(
    store_dir: Path, openai_client: OpenAI, options: dict[str, Any]
) -> None:
    responses = ImageGenerator(store=store_dir, client=openai_client).generate("a parity test", **options)
    images = ImageGenerator(store=store_dir, client=openai_client, api="images").generate("a parity test", **options)
    a, b = responses.image, images.image
    assert {f: getattr(a, f) for f in PARITY_FIELDS} == {f: getattr(b, f) for f in PARITY_FIELDS}
    reported = ("size", "quality", "background", "output_format")
    assert {f: getattr(a.reported, f) for f in reported} == {f: getattr(b.reported, f) for f in reported}
    assert set(type(a).model_fields) == set(type(b).model_fields)
    assert (a.backend, b.backend) == ("responses", "images")
    assert a.response_id and b.response_id is None  # no stored response on the Images route
    assert a.usage and b.usage and a.usage.image and b.usage.image and b.usage.text is None


async def test_concurrent_async_calls_share_one_backend(
    images_generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    results = await asyncio.gather(*(images_generator.agenerate(f"bird {i}", model=MODEL) for i in range(5)))
    assert len({r.image.id for r in results}) == 5


def test_the_langchain_tool_uses_the_images_route(
    store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    from imagegen_tool.langchain import ImageGenerationTool

    tool = ImageGenerationTool(store=store_dir, client=openai_client, api="images", options={"model": MODEL, "n": 2})
    message = tool.invoke({"type": "tool_call", "id": "call_1", "name": tool.name, "args": {"prompt": "two kites"}})
    assert len(message.artifact) == 2 and all(image.backend == "images" for image in message.artifact)
    assert "base64" not in str(message.content)
    assert _calls(imagegen_emulator, "/v1/images/generations")[0].json["n"] == 2


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (lambda: JSONResponse({"created": 1, "data": []}), "image_missing"),
        (lambda: Response('{"created": 1, "data": [', media_type="application/json"), "malformed_response"),
        (lambda: JSONResponse({"id": "resp_1", "object": "response", "output": []}), "unexpected_body"),
    ],
    ids=["no-images", "cut-json", "responses-body"],
)
def test_answers_without_a_usable_image_are_typed_errors(store_dir: Path, answer: Any, code: str) -> None:
    async def endpoint(request: Any) -> Response:
        return answer()  # type: ignore[no-any-return]

    app = Starlette(routes=[Route("/v1/images/generations", endpoint, methods=["POST"])])
    with serve_app(app) as url:
        generator = ImageGenerator(store=store_dir, api="images", api_key="test", base_url=url + "/v1")
        with pytest.raises((GenerationFailedError, MalformedResponseError)) as caught:
            generator.generate("a boat", model=MODEL)
        generator.close()
    assert caught.value.code == code  # type: ignore[union-attr]
    assert image_files(store_dir) == []


def test_no_api_key_is_a_configuration_error(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    generator = ImageGenerator(store=store_dir, api="images")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        generator.generate("a boat")
