"""The emulator's realistic payloads and latency model, through the real SDK and the generator."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator, PartialImageEvent, StreamEvent
from imagegen_tool.testing import Emulator
from imagegen_tool.testing.payloads import RECORDED_SECONDS, LatencyModel, Payload, noise_image


def _image_b64(client: OpenAI, **tool: object) -> str:
    response = client.responses.create(
        model="gpt-5.4-mini", input="a lighthouse", tools=[{"type": "image_generation", **tool}]
    )
    return next(item.result for item in response.output if item.type == "image_generation_call")  # type: ignore[union-attr,return-value]


@pytest.mark.parametrize(
    ("size", "fmt", "low", "high"),
    [
        ("1024x1024", "png", 1_550_000, 1_800_000),  # the recorded real 1024x1024 PNG is 1,653,343 bytes
        ("1536x1024", "png", 2_300_000, 2_700_000),
        ("1536x1024", "jpeg", 120_000, 160_000),  # the recorded real 1536x1024 JPEG is 140,908 bytes
    ],
)
def test_realistic_images_have_real_sizes_and_are_decodable(
    imagegen_emulator: Emulator, openai_client: OpenAI, size: str, fmt: str, low: int, high: int
) -> None:
    imagegen_emulator.set_payload(realistic=True)
    data = base64.b64decode(_image_b64(openai_client, size=size, output_format=fmt))
    assert low <= len(data) <= high
    with Image.open(io.BytesIO(data)) as image:
        assert f"{image.width}x{image.height}" == size
        assert image.format == fmt.upper()


def test_realistic_partials_are_about_a_megabyte_and_a_half(tmp_path: Path, imagegen_emulator: Emulator) -> None:
    imagegen_emulator.set_payload(realistic=True)
    sizes: list[int] = []

    def on_event(event: StreamEvent) -> None:
        if isinstance(event, PartialImageEvent):
            sizes.append(event.partial.byte_size)

    with ImageGenerator(store=tmp_path, base_url=imagegen_emulator.url, api_key="test") as generator:
        result = generator.generate("a lighthouse", size="1024x1024", partial_images=2, on_event=on_event)
    assert len(sizes) == 2
    assert all(1_400_000 <= size <= 1_650_000 for size in sizes)
    assert 1_550_000 <= result.image.byte_size <= 1_800_000
    assert (result.image.width, result.image.height) == (1024, 1024)


async def test_given_bytes_are_served_as_every_image_and_partial(
    tmp_path: Path, imagegen_emulator: Emulator, async_openai_client: AsyncOpenAI
) -> None:
    final, partial = noise_image(64, 48, "png"), noise_image(32, 24, "jpeg", partial=True)
    imagegen_emulator.set_payload(image_bytes=final, partial_image_bytes=partial)
    previews: list[bytes] = []

    async def on_event(event: StreamEvent) -> None:
        if isinstance(event, PartialImageEvent):
            previews.append(Path(event.partial.path).read_bytes())

    generator = ImageGenerator(store=tmp_path, async_client=async_openai_client)
    result = await generator.agenerate("anything", partial_images=2, on_event=on_event)
    assert Path(result.image.path).read_bytes() == final
    assert result.image.sha256 == hashlib.sha256(final).hexdigest()
    assert (result.image.width, result.image.height, result.image.format) == (64, 48, "png")
    assert previews == [partial, partial]
    plain = await generator.agenerate("anything else")
    assert Path(plain.image.path).read_bytes() == final


def test_reset_restores_the_constructor_payload_and_latency(openai_client: OpenAI, imagegen_emulator: Emulator) -> None:
    rendered = base64.b64decode(_image_b64(openai_client, size="1024x1024"))
    assert len(rendered) < 500_000  # the emulator's own picture
    imagegen_emulator.set_payload(image_bytes=b"\x89PNG not really")
    imagegen_emulator.set_latency(LatencyModel.fixed(0.0))
    assert base64.b64decode(_image_b64(openai_client)) == b"\x89PNG not really"
    imagegen_emulator.reset()
    assert base64.b64decode(_image_b64(openai_client, size="1024x1024")) == rendered


def test_constructor_options_survive_reset() -> None:
    given = noise_image(16, 16)
    with Emulator(image_bytes=given, latency=LatencyModel.fixed(0.0)) as api:
        client = OpenAI(base_url=api.url, api_key="test", max_retries=0)
        api.set_payload()
        assert base64.b64decode(_image_b64(client)) != given
        api.reset()
        assert base64.b64decode(_image_b64(client)) == given
        client.close()


def test_gif_output_keeps_the_rendered_animation(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    imagegen_emulator.set_payload(realistic=True)
    data = base64.b64decode(_image_b64(openai_client, model="gpt-image-2.6-sunburst", output_format="gif"))
    assert data.startswith(b"GIF8")


def test_latency_model_draws_within_the_recorded_range_repeatably() -> None:
    model = LatencyModel.recorded(scale=0.01, seed=7)
    draws = [model.draw() for _ in range(200)]
    assert min(RECORDED_SECONDS) * 0.01 <= min(draws)
    assert max(draws) <= max(RECORDED_SECONDS) * 0.01
    assert len(set(draws)) > 100  # drawn, not fixed
    again = LatencyModel.recorded(scale=0.01, seed=7)
    assert [again.draw() for _ in range(200)] == draws
    assert LatencyModel.fixed(0.25).draw() == 0.25


@pytest.mark.parametrize(
    "bad",
    [
        lambda: LatencyModel(0.5, 0.1),
        lambda: LatencyModel.fixed(-1),
        lambda: LatencyModel.recorded(scale=-0.1),
        lambda: Payload(partial_bytes=b"x"),
        lambda: Payload(image_bytes=b""),
        lambda: noise_image(10, 10, "gif"),
        lambda: noise_image(0, 10),
    ],
)
def test_bad_settings_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message is specific; the type is the contract
        bad()  # type: ignore[operator]


def test_noise_images_are_deterministic_and_distinct_per_partial_index() -> None:
    assert noise_image(128, 64) == noise_image(128, 64)
    payload = Payload(realistic=True)
    found = payload.b64(64, 64, "png", 3)
    assert found is not None
    final, partials = found
    assert len(set(partials)) == 3
    assert final not in partials
