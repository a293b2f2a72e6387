"""Generation through the real SDK over HTTP against the emulator: wire shape, formats, errors, usage."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagegen_tool import (
    APIError,
    ImageGenerator,
    InvalidOptionsError,
    ModerationBlockedError,
)
from imagegen_tool.request import DEFAULT_TEXT_MODEL
from imagegen_tool.testing import Emulator
from tests.integration.conftest import image_files


def _sent_tool(emulator: Emulator) -> dict[str, Any]:
    (request,) = emulator.requests_to("/v1/responses")
    tool: dict[str, Any] = request.json["tools"][0]
    return tool


def test_generate_writes_a_real_image_and_a_handle(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    result = generator.generate("a lighthouse at dusk", quality="low", size="1536x1024")
    image = result.image
    with Image.open(image.path or "") as opened:
        assert opened.format == "PNG"
        assert opened.size == (1536, 1024) == (image.width, image.height)
    assert image.id.startswith("ig_")
    assert image.response_id == result.response_id
    assert image.response_id is not None
    assert image.response_id.startswith("resp_")
    assert image.reported.size == "1536x1024"
    assert image.revised_prompt
    (request,) = imagegen_emulator.requests_to("/v1/responses")
    assert request.json["model"] == DEFAULT_TEXT_MODEL
    assert request.json["tool_choice"] == {"type": "image_generation"}
    assert request.json["input"] == "a lighthouse at dusk"
    assert "test-key" not in str(request.headers)


def test_every_option_reaches_the_wire(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    options = {
        "model": "gpt-image-2.5-flare",
        "action": "generate",
        "size": "1536x864",
        "quality": "xhigh",
        "background": "opaque",
        "output_format": "webp",
        "output_compression": 80,
        "moderation": "low",
        "complexity": "high",
    }
    generator.generate("a wide banner", **options)
    assert _sent_tool(imagegen_emulator) == {"type": "image_generation", **options}


def test_gif_options_reach_the_wire_and_the_file_is_animated(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    result = generator.generate(
        "a spinning coin", model="gpt-image-2.6-sunburst", output_format="gif", frame_count=4, frame_duration_ms=120
    )
    assert _sent_tool(imagegen_emulator)["frame_count"] == 4
    with Image.open(result.image.path or "") as opened:
        assert opened.format == "GIF"
        assert opened.n_frames == 4
    assert result.image.mime_type == "image/gif"


@pytest.mark.parametrize(
    ("fmt", "mime", "suffix"),
    [("jpeg", "image/jpeg", ".jpg"), ("webp", "image/webp", ".webp"), ("svg", "image/svg+xml", ".svg")],
)
def test_formats_get_the_right_extension_and_mime_type(
    generator: ImageGenerator, fmt: str, mime: str, suffix: str
) -> None:
    image = generator.generate("a badge", output_format=fmt, size="1024x1024").image
    assert image.mime_type == mime
    assert Path(image.path or "").suffix == suffix
    assert (image.width, image.height) == (1024, 1024)


def test_transparent_background_is_really_transparent(generator: ImageGenerator) -> None:
    image = generator.generate("a sticker of a cat", background="transparent", output_format="png").image
    with Image.open(image.path or "") as opened:
        assert opened.mode == "RGBA"
        assert opened.getextrema()[3][0] == 0  # some pixels fully transparent


def test_invalid_options_send_no_request_and_write_nothing(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    with pytest.raises(InvalidOptionsError):
        generator.generate("a logo", background="transparent", output_format="jpeg")
    with pytest.raises(InvalidOptionsError):
        generator.generate("a logo", size="1000x1000", model="gpt-image-2")
    assert imagegen_emulator.requests == []
    assert image_files(store_dir) == []


def test_unknown_model_passes_with_type_checks_only(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    generator.generate("a fox", model="gpt-image-9-preview", size="2048x512")
    assert _sent_tool(imagegen_emulator)["model"] == "gpt-image-9-preview"


def test_moderation_by_trigger_word_is_typed_and_leaves_no_file(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    assert imagegen_emulator.moderation_trigger
    with pytest.raises(ModerationBlockedError) as caught:
        generator.generate(f"a {imagegen_emulator.moderation_trigger} scene")
    assert caught.value.response_id is not None
    assert image_files(store_dir) == []


def test_moderation_by_option_reports_categories(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    imagegen_emulator.block_next_with_moderation(["sexual"], stage="output")
    with pytest.raises(ModerationBlockedError) as caught:
        generator.generate("a portrait")
    assert (caught.value.categories, caught.value.stage) == (("sexual",), "output")


def test_rate_limit_is_retryable_api_error(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.fail_next(429, retry_after=3)
    with pytest.raises(APIError) as caught:
        generator.generate("a fox")
    error = caught.value
    assert (error.status_code, error.retryable, error.retry_after) == (429, True, 3.0)
    assert error.request_id
    assert image_files(store_dir) == []


def test_server_error_is_retryable(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    imagegen_emulator.fail_next(503)
    with pytest.raises(APIError) as caught:
        generator.generate("a fox")
    assert caught.value.status_code == 503
    assert caught.value.retryable


def test_usage_is_captured_on_every_call(generator: ImageGenerator) -> None:
    result = generator.generate("a fox", quality="low")
    assert result.usage is not None
    assert result.usage.text is not None
    assert result.usage.image is not None
    assert result.usage.text.total_tokens > 0
    assert result.usage.image.output_tokens > 0
    assert result.image.usage == result.usage


async def test_agenerate_through_async_client(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    result = await generator.agenerate("a calm lake", size="1024x1536")
    with Image.open(result.image.path or "") as opened:
        assert opened.size == (1024, 1536)
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1


def test_same_prompt_gives_identical_bytes_and_distinct_handles(generator: ImageGenerator) -> None:
    first = generator.generate("a red square", quality="low").image
    second = generator.generate("a red square", quality="low").image
    assert first.sha256 == second.sha256  # the emulator is deterministic for a prompt
    assert first.id != second.id
    assert Path(first.path or "").exists()
    assert Path(second.path or "").exists()


def test_no_base64_in_handles(generator: ImageGenerator) -> None:
    image = generator.generate("a fox").image
    dumped = image.model_dump_json()
    assert len(dumped) < 4000
    raw = Path(image.path or "").read_bytes()
    assert base64.b64encode(raw)[:64].decode() not in dumped
    assert len(raw) == image.byte_size


def test_a_generator_survives_a_new_event_loop(imagegen_emulator: Emulator, store_dir: Path) -> None:
    import asyncio

    generator = ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="k")
    first = asyncio.run(generator.agenerate("a fox"))
    second = asyncio.run(generator.agenerate("a fox"))  # a second loop: the first one's client is unusable
    assert first.image.id != second.image.id

    async def use_and_close() -> None:
        async with ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="k") as scoped:
            await scoped.agenerate("a fox")

    asyncio.run(use_and_close())
    generator.close()
