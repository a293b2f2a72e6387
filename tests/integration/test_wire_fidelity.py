"""Wire fidelity: each recorded stream variant replayed through the emulator and through the parser, the stream
endings a real server sends (failed, incomplete, in-stream error, queued), obfuscation, the reasoning item after
the image call, and ``auto`` resolved as the recordings show."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator
from imagegen_tool.errors import GenerationFailedError
from imagegen_tool.parse import parse_response
from imagegen_tool.streaming import ProgressEvent, ResponseStreamAccumulator, StreamEvent
from imagegen_tool.testing import Emulator
from tests.fixtures.recorded import AZURE_CHUNKS, VERCEL_CHUNKS, VERCEL_JSON, load_chunks, load_json


def _events(answer: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]


def _collapse(types: list[str]) -> list[str]:
    """Event types with runs of text deltas folded into one (the number of tokens differs by nature)."""
    out: list[str] = []
    for kind in types:
        if kind == "response.output_text.delta" and out and out[-1] == kind:
            continue
        out.append(kind)
    return out


@pytest.fixture
def http(imagegen_emulator: Emulator) -> httpx.Client:
    with httpx.Client(base_url=imagegen_emulator.url, headers={"authorization": "Bearer t"}, timeout=60) as client:
        yield client


def _stream_request(model: str, *, partial_images: int = 1, **extra: Any) -> dict[str, Any]:
    tool = {"type": "image_generation", "partial_images": partial_images, "quality": "low"}
    return {"model": model, "input": "Draw a raccoon waving hello.", "tools": [tool], "stream": True, **extra}


def _accumulate(events: list[dict[str, Any]]) -> Any:
    """Feed JSON events through the package's stream accumulator (attribute access like SDK events)."""
    from openai._models import construct_type  # what the SDK's own stream decoder uses: lenient
    from openai.types.responses import ResponseStreamEvent

    accumulator = ResponseStreamAccumulator()
    for event in events:
        accumulator.feed(construct_type(type_=ResponseStreamEvent, value=event))
    return accumulator


# -- the Azure variant, recorded and emulated -----------------------------------------------------------------


def test_azure_variant_matches_the_recording_event_for_event(http: httpx.Client, imagegen_emulator: Emulator) -> None:
    recorded = load_chunks(AZURE_CHUNKS)
    imagegen_emulator.shape_responses(style="azure")
    emulated = _events(http.post("/responses", json=_stream_request("gpt-4.1-mini")))

    assert _collapse([e["type"] for e in emulated]) == _collapse([e["type"] for e in recorded])
    assert "response.image_generation_call.completed" not in {e["type"] for e in emulated}
    (done,) = [
        e for e in emulated if e["type"] == "response.output_item.done" and e["item"]["type"] == "image_generation_call"
    ]
    assert done["item"]["status"] == "generating" and done["item"]["result"]
    final = emulated[-1]["response"]
    assert [item["status"] for item in final["output"]] == ["generating", "completed"]


@pytest.mark.parametrize("source", ["recorded", "emulated"])
def test_azure_stream_parses_to_its_image(http: httpx.Client, imagegen_emulator: Emulator, source: str) -> None:
    if source == "recorded":
        events = load_chunks(AZURE_CHUNKS)
    else:
        imagegen_emulator.shape_responses(style="azure")
        events = _events(http.post("/responses", json=_stream_request("gpt-4.1-mini")))
    parsed = _accumulate(events).finish()
    (image,) = parsed.images
    assert base64.b64decode(image.b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert parsed.failures == ()


@pytest.mark.parametrize("source", ["recorded", "emulated"])
def test_openai_stream_parses_to_its_image(http: httpx.Client, source: str) -> None:
    events = (
        load_chunks(VERCEL_CHUNKS)
        if source == "recorded"
        else _events(http.post("/responses", json=_stream_request("gpt-5")))
    )
    parsed = _accumulate(events).finish()
    assert len(parsed.images) == 1 and parsed.stored is True


def test_generator_stores_the_image_of_an_azure_style_stream(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.shape_responses(style="azure")
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    seen: list[StreamEvent] = []
    result = generator.generate("a raccoon", partial_images=1, on_event=seen.append)
    assert result.image.path and Path(result.image.path).stat().st_size > 0
    assert any(isinstance(e, ProgressEvent) and e.stage == "generating" for e in seen)


# -- obfuscation ----------------------------------------------------------------------------------------------


def test_text_deltas_carry_obfuscation_padded_like_the_recording(http: httpx.Client) -> None:
    recorded = [e for e in load_chunks(AZURE_CHUNKS) if "obfuscation" in e]
    assert recorded and all((len(e["delta"]) + len(e["obfuscation"])) % 16 == 0 for e in recorded)
    emulated = [
        e for e in _events(http.post("/responses", json=_stream_request("gpt-5"))) if e["type"].endswith(".delta")
    ]
    assert len(emulated) > 1  # word by word, as the API streams tokens
    for event in emulated:
        assert event["obfuscation"] and (len(event["delta"]) + len(event["obfuscation"])) % 16 == 0


def test_obfuscation_can_be_turned_off(http: httpx.Client) -> None:
    request = _stream_request("gpt-5", stream_options={"include_obfuscation": False})
    deltas = [e for e in _events(http.post("/responses", json=request)) if e["type"].endswith(".delta")]
    assert deltas and all("obfuscation" not in e for e in deltas)


# -- endings ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["max_output_tokens", "content_filter"])
def test_incomplete_without_an_image_tells_the_caller_why(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator, reason: str
) -> None:
    imagegen_emulator.shape_responses(ending="incomplete", incomplete_reason=reason, keep_image=False)
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    for stream in (False, True):
        with pytest.raises(GenerationFailedError) as info:
            generator.generate("a kite", **({"partial_images": 1} if stream else {}))
        assert info.value.code == f"incomplete:{reason}" and reason in str(info.value)
        assert "contains no image" not in str(info.value)


def test_incomplete_after_the_image_still_delivers_it(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.shape_responses(ending="incomplete")
    result = ImageGenerator(store=tmp_path, client=openai_client, background=False).generate("a kite", partial_images=1)
    assert result.image.path


def test_failed_stream_after_the_image_keeps_the_paid_image(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.shape_responses(ending="failed")
    result = ImageGenerator(store=tmp_path, client=openai_client, background=False).generate("a kite", partial_images=1)
    assert result.image.path


def test_in_stream_error_after_the_image_salvages_it_as_stored(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.shape_responses(ending="error")
    result = ImageGenerator(store=tmp_path, client=openai_client, background=False).generate("a kite", partial_images=1)
    assert result.image.path
    # The request had store=True: the salvaged response is stored, so edits can continue from it.
    assert result.image.response_stored is True


def test_queued_event_is_reported_as_progress(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.shape_responses(queued=True)
    seen: list[StreamEvent] = []
    ImageGenerator(store=tmp_path, client=openai_client, background=False).generate("a kite", on_event=seen.append)
    stages = [e.stage for e in seen if isinstance(e, ProgressEvent)]
    assert stages[:2] == ["created", "queued"]


# -- the non-streaming body and auto ----------------------------------------------------------------------------


def test_reasoning_item_after_the_image_call_as_in_the_recorded_body(http: httpx.Client) -> None:
    recorded = load_json(VERCEL_JSON)
    body = {"model": recorded["model"], "input": "A cat", "tools": [{"type": "image_generation", "quality": "low"}]}
    emulated = http.post("/responses", json=body).json()
    assert [i["type"] for i in emulated["output"]] == [i["type"] for i in recorded["output"]]
    assert len(parse_response(emulated).images) == 1


def _size_of(b64: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as image:
        return image.size


@pytest.mark.parametrize(
    ("prompt", "size"),
    [("An axolotl", "1024x1024"), ("A wide landscape banner of hills", "1536x1024"), ("A tall poster", "1024x1536")],
)
def test_auto_resolves_quality_high_and_size_from_the_prompt(http: httpx.Client, prompt: str, size: str) -> None:
    body = {"model": "gpt-5", "input": prompt, "tools": [{"type": "image_generation"}]}
    (call,) = [i for i in http.post("/responses", json=body).json()["output"] if i["type"] == "image_generation_call"]
    assert (call["quality"], call["size"]) == ("high", size)
    assert _size_of(call["result"]) == tuple(int(x) for x in size.split("x"))


@pytest.mark.parametrize(
    ("width", "height", "size"), [(1536, 1024, "1536x1024"), (600, 900, "1024x1536"), (64, 64, "1024x1024")]
)
def test_an_edit_without_a_size_keeps_the_input_aspect(
    tmp_path: Path, openai_client: OpenAI, width: int, height: int, size: str
) -> None:
    source = tmp_path / "in.png"
    Image.new("RGB", (width, height), "green").save(source)
    generator = ImageGenerator(
        store=tmp_path / "images", client=openai_client, input_roots=[tmp_path], background=False
    )
    result = generator.edit("make it night", [source], quality="low")
    assert f"{result.image.width}x{result.image.height}" == size == result.image.reported.size
