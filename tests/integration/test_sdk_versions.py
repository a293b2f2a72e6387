"""Whatever ``openai`` release is installed (the floor in the lowest-versions run, the newest in the main suite),
the API parameters and values the capability table knows reach the wire through the real SDK, and what the SDK
does not type comes back as data the parser reads. Through the emulator over real HTTP."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator
from imagegen_tool.backends import ResponsesBackend, fit_installed_sdk
from imagegen_tool.images_api import ImagesBackend
from imagegen_tool.testing import Emulator
from tests.fixtures.sdk_models import GPT_IMAGE_2_6, SDK_HINTS, SDK_OLDER_THAN_TABLE

NEWEST_MODEL = GPT_IMAGE_2_6[0]


def _tool(emulator: Emulator) -> dict[str, Any]:
    [request] = emulator.requests_to("/responses", "POST")
    [tool] = request.json["tools"]
    return dict(tool)


@pytest.mark.parametrize(
    ("options", "on_the_wire"),
    [
        ({"model": NEWEST_MODEL, "complexity": "high"}, {"model": NEWEST_MODEL, "complexity": "high"}),
        (
            {
                "model": NEWEST_MODEL,
                "output_format": "gif",
                "frame_count": 4,
                "frame_duration_ms": 120,
                "size": "512x512",
            },
            {"output_format": "gif", "frame_count": 4, "frame_duration_ms": 120},
        ),
        (
            {"model": NEWEST_MODEL, "output_format": "svg", "svg": {"reasoning_effort": "low"}},
            {"output_format": "svg", "svg": {"reasoning": {"effort": "low"}}},
        ),
    ],
    ids=["complexity", "gif", "svg"],
)
def test_newer_tool_parameters_reach_the_wire_and_deliver(
    tmp_path: Path,
    imagegen_emulator: Emulator,
    openai_client: OpenAI,
    options: dict[str, Any],
    on_the_wire: dict[str, Any],
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    result = generator.generate("a lighthouse", **options)
    assert len(result.images) == 1 and Path(result.images[0].path or "").stat().st_size > 0
    tool = _tool(imagegen_emulator)
    assert {key: tool.get(key) for key in on_the_wire} == on_the_wire
    # The installed SDK types these keys only from the release that added them; either way they were sent.
    assert SDK_OLDER_THAN_TABLE or set(on_the_wire) <= set(SDK_HINTS)


def test_an_api_parameter_the_installed_sdk_lacks_travels_in_extra_body(
    tmp_path: Path, imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    # A top-level parameter no SDK release has: passed as a keyword, any SDK would raise TypeError before sending.
    backend = ResponsesBackend(client=openai_client, background=False, extra_request={"imagegen_probe": "p-1"})
    result = ImageGenerator(store=tmp_path, backend=backend).generate("a kite")
    assert len(result.images) == 1
    [request] = imagegen_emulator.requests_to("/responses", "POST")
    assert request.json["imagegen_probe"] == "p-1"
    assert request.json["tools"][0]["type"] == "image_generation"


def test_fit_installed_sdk_keeps_known_arguments_and_merges_extra_body() -> None:
    fitted = fit_installed_sdk(
        {"model": "gpt-5", "input": "x", "store": True, "imagegen_probe": 1, "extra_body": {"other": 2}}
    )
    assert fitted == {"model": "gpt-5", "input": "x", "store": True, "extra_body": {"imagegen_probe": 1, "other": 2}}
    plain = {"model": "gpt-5", "input": "x", "tools": [], "stream": True}
    assert fit_installed_sdk(plain) == plain


def test_images_api_safety_identifier_is_sent_whatever_the_sdk(tmp_path: Path, imagegen_emulator: Emulator) -> None:
    backend = ImagesBackend(api_key="test", base_url=imagegen_emulator.url)
    try:
        generator = ImageGenerator(store=tmp_path, backend=backend, safety_identifier="user-42")
        generator.generate("a boat", model="gpt-image-1.5")
    finally:
        backend.close()
    [request] = imagegen_emulator.requests_to("/images/generations", "POST")
    assert request.json["safety_identifier"] == "user-42"


def test_untyped_response_fields_are_read_as_data(
    tmp_path: Path, imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    """``tool_usage`` is typed by newer SDKs only; older ones keep it as a dict. The usage is read either way."""
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    result = generator.generate("a lighthouse", model=NEWEST_MODEL, output_format="svg")
    [image] = result.images
    assert result.usage is not None and result.usage.image is not None and result.usage.image.output_tokens > 0
    assert image.format == "svg"
    raw = openai_client.responses.create(model="gpt-5", input="a cat", tools=[{"type": "image_generation"}])
    call = next(item for item in raw.output if item.type == "image_generation_call")
    with Image.open(io.BytesIO(base64.b64decode(call.result))) as picture:
        assert picture.size[0] > 0
