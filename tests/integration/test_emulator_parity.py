"""Parity with recorded OpenAI traffic: replay each recorded request against the emulator and compare the
structure of what comes back (keys, JSON types, item and event order) with what the real API sent.

Values differ by nature (ids, timestamps, base64, token counts, the `auto` choices): only the shape must
match. Keys the SDK added after a recording was made (``tool_usage``, ``action`` ...) may be extra on our
side; a key the recording has must never be missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from imagegen_tool.testing import Emulator
from tests.fixtures.recorded import RECORDED

FIXTURES = RECORDED
VERCEL = FIXTURES / "vercel-ai"
PYDANTIC = FIXTURES / "pydantic-ai"

pytestmark = [pytest.mark.recorded, pytest.mark.skipif(not FIXTURES.is_dir(), reason="recorded fixtures not available")]

# Recorded keys that only exist on one provider or in a hand-written cassette, never in OpenAI's own API.
AZURE_ONLY = {"content_filters", "obfuscation"}


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def assert_same_shape(recorded: Any, emulated: Any, where: str = "$", *, ignore: set[str] = frozenset()) -> None:
    """Every key of ``recorded`` is in ``emulated`` with the same JSON type, recursively. Lists of output
    items are matched by item ``type``; other lists element by element (up to the shorter)."""
    assert kind(emulated) == kind(recorded), f"{where}: recorded {kind(recorded)}, emulated {kind(emulated)}"
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            if key in ignore:
                continue
            assert key in emulated, f"{where}: key {key!r} missing (emulated keys: {sorted(emulated)})"
            assert_same_shape(value, emulated[key], f"{where}.{key}", ignore=ignore)
    elif isinstance(recorded, list) and recorded and all(isinstance(x, dict) and "type" in x for x in recorded):
        by_type = {item["type"]: item for item in emulated}
        for item in recorded:
            assert item["type"] in by_type, f"{where}: no {item['type']!r} item in {list(by_type)}"
            assert_same_shape(item, by_type[item["type"]], f"{where}[{item['type']}]", ignore=ignore)
    elif isinstance(recorded, list):
        for i, (rec, emu) in enumerate(zip(recorded, emulated, strict=False)):
            assert_same_shape(rec, emu, f"{where}[{i}]", ignore=ignore)


def unique_in_order(values: list[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def request_from_echo(response: dict[str, Any], *, stream: bool = False, partial_images: int = 0) -> dict[str, Any]:
    """The request behind a recorded response, rebuilt from what the response echoes (the vercel fixtures
    record only the response). Defaults the API filled in (``n``, ``output_compression=100``) are dropped, and
    the retired ``gpt-image-1`` the Azure recording names becomes ``gpt-image-1.5`` (replaying it as it is
    would be refused today, by OpenAI as by the emulator)."""
    tools = []
    for tool in response["tools"]:
        tool = {k: v for k, v in tool.items() if k != "n" and (k, v) != ("output_compression", 100)}
        if tool.get("model") == "gpt-image-1":
            tool["model"] = "gpt-image-1.5"
        if partial_images:
            tool["partial_images"] = partial_images
        tools.append(tool)
    return {"model": response["model"], "input": "Draw the recorded prompt.", "tools": tools, "stream": stream}


def read_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


def recorded_chunks(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def http(imagegen_emulator: Emulator) -> httpx.Client:
    with httpx.Client(base_url=imagegen_emulator.url, headers={"authorization": "Bearer test"}, timeout=30) as client:
        yield client


@pytest.mark.parametrize("name", ["openai-image-generation-tool.1.json", "azure-image-generation-tool.1.json"])
def test_non_streaming_response_has_the_recorded_shape(http: httpx.Client, name: str) -> None:
    recorded = json.loads((VERCEL / name).read_text())
    answer = http.post("/responses", json=request_from_echo(recorded))
    assert answer.status_code == 200, answer.text
    emulated = answer.json()

    assert_same_shape(recorded, emulated, ignore=AZURE_ONLY)
    recorded_types = unique_in_order([item["type"] for item in recorded["output"]])
    assert unique_in_order([item["type"] for item in emulated["output"]]) == recorded_types
    assert emulated["id"].startswith("resp_")
    prefixes = {"reasoning": "rs_", "image_generation_call": "ig_", "message": "msg_"}
    for item in emulated["output"]:
        assert item["id"].startswith(prefixes[item["type"]])
    # The tools echo keeps `auto` and the API defaults, as recorded.
    assert emulated["tools"] == recorded["tools"] or {k for t in emulated["tools"] for k in t} >= {
        k for t in recorded["tools"] for k in t if k != "model"
    }


def test_openai_stream_has_the_recorded_event_sequence(http: httpx.Client) -> None:
    recorded = recorded_chunks(VERCEL / "openai-image-generation-tool.1.chunks.txt")
    request = request_from_echo(recorded[0]["response"], stream=True, partial_images=1)
    answer = http.post("/responses", json=request)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    emulated = read_events(answer)

    # The recording's assistant text is empty, so it has no delta event; ours says one sentence.
    emulated_types = [e["type"] for e in emulated if e["type"] != "response.output_text.delta"]
    assert emulated_types == [e["type"] for e in recorded]
    assert [e["sequence_number"] for e in emulated] == list(range(len(emulated)))
    for rec, emu in zip(recorded, [e for e in emulated if e["type"] != "response.output_text.delta"], strict=True):
        assert_same_shape(rec, emu, rec["type"])
    partial = next(e for e in emulated if e["type"] == "response.image_generation_call.partial_image")
    assert partial["partial_image_index"] == 0
    assert (partial["size"], partial["quality"], partial["background"], partial["output_format"]) == (
        "1024x1024",
        "low",
        "opaque",
        "webp",
    )


def test_azure_stream_events_are_all_emulated_with_their_shape(http: httpx.Client) -> None:
    # Azure differs from OpenAI (no image_generation_call.completed, item status "generating", a model
    # without reasoning): its event types must appear in our stream in the same order, with the same shape.
    recorded = recorded_chunks(VERCEL / "azure-image-generation-tool.1.chunks.txt")
    request = request_from_echo(recorded[0]["response"], stream=True, partial_images=1)
    emulated = read_events(http.post("/responses", json=request))

    recorded_types = unique_in_order([e["type"] for e in recorded])
    assert is_subsequence(recorded_types, [e["type"] for e in emulated])
    for rec in recorded:
        match = next(
            e for e in emulated if e["type"] == rec["type"] and e.get("output_index") == rec.get("output_index")
        )
        assert_same_shape(rec, match, rec["type"], ignore=AZURE_ONLY)


def load_cassette(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((PYDANTIC / name).read_text())["interactions"]


def test_jpeg_cassette_replays_with_the_recorded_shape(http: httpx.Client) -> None:
    (interaction,) = load_cassette("test_openai_responses_image_generation_jpeg.yaml")
    answer = http.post("/responses", json=interaction["request"]["parsed_body"])
    assert answer.status_code == 200, answer.text
    emulated = answer.json()
    recorded = interaction["response"]["parsed_body"]

    assert_same_shape(recorded, emulated)
    assert [i["type"] for i in emulated["output"]] == [i["type"] for i in recorded["output"]]
    call = next(i for i in emulated["output"] if i["type"] == "image_generation_call")
    assert call["output_format"] == "jpeg"
    assert call["result"].startswith("/9j/")  # a JPEG, like the recorded one
    # Asked for `auto`: the call reports concrete values, the tools echo keeps `auto`.
    assert call["quality"] != "auto" and call["size"] != "auto" and call["background"] != "auto"
    assert emulated["tools"][0]["quality"] == "auto"


def test_function_tool_cassette_replays_both_turns(http: httpx.Client) -> None:
    first, second = load_cassette("test_openai_responses_image_generation_with_tools.yaml")

    answer = http.post("/responses", json=first["request"]["parsed_body"])
    assert answer.status_code == 200, answer.text
    emulated = answer.json()
    assert_same_shape(first["response"]["parsed_body"], emulated)
    assert [i["type"] for i in emulated["output"]] == ["reasoning", "function_call"]
    assert emulated["output"][1]["name"] == "get_animal"

    answer = http.post("/responses", json=second["request"]["parsed_body"])
    assert answer.status_code == 200, answer.text
    emulated = answer.json()
    recorded = second["response"]["parsed_body"]
    assert_same_shape(recorded, emulated)
    assert is_subsequence([i["type"] for i in recorded["output"]], [i["type"] for i in emulated["output"]])
    call = next(i for i in emulated["output"] if i["type"] == "image_generation_call")
    assert call["result"].startswith("iVBORw0KGgo")  # a PNG


def test_previous_response_id_cassette_chains(http: httpx.Client) -> None:
    # A hand-written cassette (status "complete", `tool_calls` ...): compare what the real API shares with it.
    first, second = load_cassette("test_openai_previous_response_id.yaml")
    one = http.post("/responses", json=first["request"]["parsed_body"]).json()
    replay = dict(second["request"]["parsed_body"], previous_response_id=one["id"])
    two = http.post("/responses", json=replay).json()

    for recorded, emulated in ((first, one), (second, two)):
        body = recorded["response"]["parsed_body"]
        assert_same_shape(body["output"], emulated["output"])
        assert_same_shape(body["usage"], emulated["usage"])
        assert_same_shape({k: body[k] for k in ("id", "object", "model", "created_at")}, emulated)
    assert two["previous_response_id"] == one["id"]
    assert one["output"][-1]["type"] == "message"


def test_unknown_parameter_error_has_the_recorded_shape(http: httpx.Client) -> None:
    recorded = json.loads((VERCEL / "gpt-image-response-format-error.json").read_text())
    answer = http.post(
        "/images/generations", json={"model": "gpt-image-1.5", "prompt": "a cat", "response_format": "b64_json"}
    )
    assert answer.status_code == 400
    assert answer.json() == recorded
