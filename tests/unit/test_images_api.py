"""The Images API route without a server: its parser (recorded body shapes, stream events), request planning
(every option reaches the call, everything the endpoint refuses is refused before any request), its rule table
and the wiring into ImageGenerator."""

from __future__ import annotations

import base64
import inspect
import io
from pathlib import Path
from typing import Any

import pytest
from openai.types import ImagesResponse, image_edit_params, image_generate_params
from openai.types.image_edit_stream_event import ImageEditStreamEvent
from openai.types.image_gen_stream_event import ImageGenStreamEvent
from PIL import Image
from pydantic import TypeAdapter

from imagegen_tool import ImageGenerator, ImageOptions, InvalidInputError, InvalidOptionsError
from imagegen_tool.errors import (
    ConfigurationError,
    GenerationFailedError,
    ImageGenerationError,
    MalformedResponseError,
)
from imagegen_tool.images_api import ImagesBackend, images_api_rules, plan_images_call
from imagegen_tool.images_parse import ImagesStreamAccumulator, is_images_body, parse_images_response
from imagegen_tool.inputs import InputImage
from imagegen_tool.options import ImageReference
from imagegen_tool.parse import parse_response
from imagegen_tool.request import ImageRequest
from imagegen_tool.streaming import PartialImageData, ProgressEvent, StreamInterruptedError
from tests.fixtures import images_api as bodies
from tests.fixtures.recorded import ERROR_JSON, VERCEL_JSON, load_json


def _png(size: tuple[int, int] = (64, 64), mode: str = "RGB", color: Any = "blue") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _mask(size: tuple[int, int] = (64, 64), fmt: str = "PNG") -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _input(data: bytes, source: str = "bytes") -> InputImage:
    with Image.open(io.BytesIO(data)) as image:
        width, height, has_alpha = image.width, image.height, "A" in image.getbands()
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[image.format or "PNG"]
    return InputImage(source=source, data=data, mime_type=mime, width=width, height=height, has_alpha=has_alpha)


# --- parser --------------------------------------------------------------------------------------------


def test_recorded_generation_shape_gives_every_image_with_its_revised_prompt() -> None:
    body = bodies.generation_body()
    parsed = parse_images_response(body, expected=2)
    assert [image.b64 for image in parsed.images] == [entry["b64_json"] for entry in body["data"]]
    assert parsed.images[0].revised_prompt == body["data"][0]["revised_prompt"]
    assert parsed.images[1].revised_prompt is None
    assert parsed.failures == () and parsed.usage is None
    assert parsed.response_id is None and parsed.stored is False
    assert len({image.call_id for image in parsed.images}) == 2  # each image gets its own local id
    # The shortened recording still decodes to the PNG header of the recorded 1024x1024 image.
    assert parsed.images[0].decode().startswith(b"\x89PNG\r\n\x1a\n")


def test_recorded_edit_shape_reports_the_resolved_settings() -> None:
    parsed = parse_images_response(bodies.edit_body())
    reported = parsed.images[0].reported
    assert (reported.size, reported.quality, reported.background, reported.output_format) == (
        "1024x1024",
        "high",
        "opaque",
        "png",
    )


def test_sdk_images_response_and_its_json_parse_the_same() -> None:
    body = {**bodies.edit_body(), "usage": bodies.usage(input_text=31, input_image=323, output=4160)}
    from_json = parse_images_response(body)
    from_sdk = parse_images_response(ImagesResponse.model_validate(body))
    assert from_json.images[0].b64 == from_sdk.images[0].b64
    assert from_json.usage == from_sdk.usage
    image_usage = from_json.usage.image if from_json.usage else None
    assert image_usage is not None
    assert (image_usage.input_tokens, image_usage.output_tokens, image_usage.total_tokens) == (354, 4160, 4514)
    assert (image_usage.input_text_tokens, image_usage.input_image_tokens, image_usage.output_image_tokens) == (
        31,
        323,
        4160,
    )
    assert from_json.usage is not None and from_json.usage.text is None  # no text model on this route


def test_entries_without_image_data_and_missing_images_are_failures_not_dropped() -> None:
    body = {"created": 1, "data": [{"b64_json": bodies.png_header_b64()}, {"url": "https://example.com/x.png"}]}
    parsed = parse_images_response(body, expected=3)
    assert len(parsed.images) == 1
    assert [f.code for f in parsed.failures] == ["no_image_data", "image_missing"]


def test_the_two_parsers_refuse_each_others_bodies() -> None:
    responses_body = load_json(VERCEL_JSON)
    assert not is_images_body(responses_body) and is_images_body(bodies.generation_body())
    with pytest.raises(MalformedResponseError, match="not an Images API body"):
        parse_images_response(responses_body)
    with pytest.raises(ImageGenerationError, match="Images API body"):
        parse_response(bodies.generation_body())


def test_recorded_images_error_body_is_not_an_images_body() -> None:
    with pytest.raises(MalformedResponseError) as caught:
        parse_images_response(load_json(ERROR_JSON))
    assert not caught.value.retryable


# --- stream accumulator ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "adapter"),
    [("image_generation", TypeAdapter(ImageGenStreamEvent)), ("image_edit", TypeAdapter(ImageEditStreamEvent))],
)
def test_stream_events_of_several_images_map_to_partials_and_completed_images(kind: str, adapter: Any) -> None:
    events = [adapter.validate_python(e) for e in bodies.stream_events(kind, images=2, partials=2)]
    accumulator = ImagesStreamAccumulator(expected=2)
    out = accumulator.start()
    for event in events:
        out.extend(accumulator.feed(event))
    partials = [e for e in out if isinstance(e, PartialImageData)]
    done = [e for e in out if isinstance(e, ProgressEvent) and e.stage == "completed"]
    assert [p.index for p in partials] == [0, 1, 0, 1]
    # Partials share the id of the image they preview; the two images have different ids.
    assert partials[0].call_id == partials[1].call_id == done[0].call_id
    assert partials[2].call_id == partials[3].call_id == done[1].call_id != done[0].call_id
    parsed = accumulator.finish()
    assert [image.call_id for image in parsed.images] == [d.call_id for d in done]
    assert parsed.images[0].reported.quality == "medium"
    assert parsed.usage is not None and parsed.usage.image is not None
    assert parsed.usage.image.output_tokens == 2 * 1056  # each completed event reports its own image


def test_a_cut_stream_keeps_the_completed_images_and_reports_the_missing_ones() -> None:
    accumulator = ImagesStreamAccumulator(expected=3)
    for event in bodies.stream_events(images=1, partials=1):
        accumulator.feed(_Event(event))
    parsed = accumulator.finish(ConnectionError("peer closed"))
    assert len(parsed.images) == 1
    assert [f.code for f in parsed.failures] == ["stream_interrupted", "stream_interrupted"]


def test_a_stream_cut_before_any_image_is_an_interruption_error() -> None:
    accumulator = ImagesStreamAccumulator()
    accumulator.feed(_Event(bodies.stream_events(partials=1)[0]))
    with pytest.raises(StreamInterruptedError, match="cannot be recovered"):
        accumulator.finish(ConnectionError("peer closed"))


def test_a_responses_event_on_an_images_stream_is_refused() -> None:
    with pytest.raises(GenerationFailedError, match="Responses API event"):
        ImagesStreamAccumulator().feed(_Event({"type": "response.created"}))


class _Event:
    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


# --- planning ---------------------------------------------------------------------------------------------


def _sdk_keys(params: Any) -> set[str]:
    return set(params.__required_keys__ | params.__optional_keys__)


def test_every_option_set_reaches_the_generation_call_and_action_is_not_sent() -> None:
    options = ImageOptions(
        model="gpt-image-2.5-sunburst",
        action="generate",
        size="1536x864",
        quality="xhigh",
        background="opaque",
        output_format="webp",
        output_compression=70,
        moderation="low",
        partial_images=2,
        complexity="high",
        n=4,
    )
    call = plan_images_call(ImageRequest(prompt="a fox", options=options))
    assert call.endpoint == "generate" and call.n == 4
    expected = options.model_dump(exclude_none=True)
    del expected["action"]
    assert _flat(call.kwargs()) == {"prompt": "a fox", **expected}
    direct = set(call.kwargs(stream=True)) - {"extra_body"}
    assert direct <= _sdk_keys(image_generate_params.ImageGenerateParamsStreaming)


def _flat(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in kwargs.items() if k != "extra_body"}, **kwargs.get("extra_body", {})}


def test_parameters_the_installed_sdk_lacks_travel_in_extra_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # An SDK older than the API (the package supports older openai releases) has no argument for newer
    # parameters: they must still reach the wire, never be dropped or raise a TypeError.
    monkeypatch.setattr("imagegen_tool.images_api._sdk_params", lambda endpoint: frozenset({"prompt", "model"}))
    options = ImageOptions(model="gpt-image-2.5-sunburst", complexity="high", quality="low")
    kwargs = plan_images_call(ImageRequest(prompt="p", options=options)).kwargs()
    assert kwargs == {
        "prompt": "p",
        "model": "gpt-image-2.5-sunburst",
        "extra_body": {"complexity": "high", "quality": "low"},
    }


def test_the_tables_parameter_lists_cover_the_installed_sdk() -> None:
    rules = images_api_rules()
    legacy = set(rules.legacy_parameters)
    assert _sdk_keys(image_generate_params.ImageGenerateParamsBase) - legacy <= rules.generate_parameters
    assert _sdk_keys(image_edit_params.ImageEditParamsBase) - legacy <= rules.edit_parameters
    assert not legacy & (rules.generate_parameters | rules.edit_parameters)


def test_svg_settings_take_the_wire_shape() -> None:
    options = ImageOptions(
        model="gpt-image-2.6-sunburst", output_format="svg", svg={"model": "m", "reasoning_effort": "low"}
    )
    call = plan_images_call(ImageRequest(prompt="a logo", options=options))
    assert call.params["svg"] == {"model": "m", "reasoning": {"effort": "low"}}


def test_inputs_make_an_edit_with_files_in_order_and_the_mask() -> None:
    first, second = _png((64, 64), color="red"), _png((32, 32), color="green")
    request = ImageRequest(
        prompt="merge them",
        options=ImageOptions(input_fidelity="high", model="gpt-image-1.5"),
        inputs=(_input(first), _input(second)),
        mask=_input(_mask()),
    )
    call = plan_images_call(request)
    kwargs = call.kwargs()
    assert call.endpoint == "edit"
    assert [data for _, data, _ in kwargs["image"]] == [first, second]
    assert kwargs["mask"][1] == request.mask.data if request.mask else False
    assert kwargs["input_fidelity"] == "high"
    assert set(kwargs) - {"extra_body"} <= _sdk_keys(image_edit_params.ImageEditParamsNonStreaming)


def test_an_inline_png_mask_in_the_options_is_sent_as_a_file() -> None:
    mask = _mask()
    url = "data:image/png;base64," + base64.b64encode(mask).decode()
    request = ImageRequest(prompt="edit", options=ImageOptions(mask={"image_url": url}), inputs=(_input(_png()),))
    assert plan_images_call(request).mask == ("mask.png", mask, "image/png")


@pytest.mark.parametrize(
    ("request_args", "error", "match"),
    [
        (
            {"options": ImageOptions(input_fidelity="high", model="gpt-image-1.5")},
            InvalidOptionsError,
            "input_fidelity",
        ),
        ({"options": ImageOptions(action="edit")}, InvalidInputError, "needs an input image"),
        ({"previous_response_id": "resp_1"}, InvalidInputError, "no stored responses"),
        (
            {"options": ImageOptions(model="gpt-image-2.6-sunburst", output_format="svg", n=2)},
            InvalidOptionsError,
            "svg output makes one image",
        ),
        (
            {"inputs": (InputImage(source="url", reference=ImageReference(image_url="https://x.test/a.png")),)},
            InvalidInputError,
            "image files only",
        ),
        (
            {"inputs": (InputImage(source="file file-abc", reference=ImageReference(file_id="file-abc")),)},
            InvalidInputError,
            "file id",
        ),
        ({"inputs": tuple(_input(_png()) for _ in range(17))}, InvalidInputError, "at most 16"),
        ({"mask": _input(_mask())}, InvalidInputError, "mask needs an image"),
        ({"inputs": (_input(_png()),), "mask": _input(_mask((32, 32)))}, InvalidInputError, "same size"),
        ({"inputs": (_input(_png()),), "mask": _input(_mask(fmt="WEBP"))}, InvalidInputError, "PNG mask"),
        ({"inputs": (_input(_png()),), "mask": _input(_png())}, InvalidInputError, "alpha channel"),
        (
            {"inputs": (_input(_png()),), "options": ImageOptions(mask={"file_id": "file-1"})},
            InvalidInputError,
            "not a URL or a file id",
        ),
    ],
    ids=[
        "input_fidelity-on-generate",
        "edit-without-input",
        "continuation",
        "svg-n2",
        "url-input",
        "file-id-input",
        "17-inputs",
        "mask-without-image",
        "mask-size",
        "mask-not-png",
        "mask-without-alpha",
        "mask-file-id",
    ],
)
def test_what_the_images_api_refuses_is_refused_before_any_request(
    request_args: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        plan_images_call(ImageRequest(prompt="p", **request_args))


def test_a_mask_of_4_mb_or_more_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = images_api_rules()
    monkeypatch.setattr(
        "imagegen_tool.images_api.images_api_rules", lambda: rules.model_copy(update={"mask_max_bytes": 100})
    )
    request = ImageRequest(prompt="p", inputs=(_input(_png()),), mask=_input(_mask()))
    with pytest.raises(InvalidInputError, match="masks under"):
        plan_images_call(request)


def test_legacy_parameters_in_extra_request_are_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="response_format"):
        plan_images_call(ImageRequest(prompt="p"), extra={"response_format": "url"})


# --- the rule table ------------------------------------------------------------------------------------


def test_every_images_rule_carries_sdk_evidence_matching_the_sdk_docstrings() -> None:
    rules = images_api_rules()
    fields = set(type(rules).model_fields) - {"evidence"}
    assert set(rules.evidence) == fields
    assert all(e["kind"] == "sdk" and e["date"] for e in rules.evidence.values())
    edit_doc = inspect.getsource(image_edit_params)
    generate_doc = inspect.getsource(image_generate_params)
    assert rules.n == (1, 10) and "Must be between 1 and 10" in generate_doc
    assert rules.mask_max_bytes == 4 * 1024 * 1024 and "less than 4MB" in edit_doc
    assert rules.max_input_bytes == 50 * 1024 * 1024 and "less than 50MB" in edit_doc
    if "svg" in _sdk_keys(image_generate_params.ImageGenerateParamsBase):  # the SDK release the table cites
        assert rules.max_input_images == 16 and "up to 16 images" in edit_doc
        assert "SVG generation requires n=1" in generate_doc
        assert "GIF output does not support streaming" in generate_doc


# --- wiring ------------------------------------------------------------------------------------------------


def test_n_is_not_a_responses_tool_parameter() -> None:
    assert "n" not in ImageOptions(n=3).to_tool_param()


def test_n_above_one_on_the_responses_route_is_refused_before_any_request(tmp_path: Path) -> None:
    generator = ImageGenerator(store=tmp_path, api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidOptionsError, match="api='images'"):
        generator.request("three cats", n=3)
    assert generator.request("one cat", n=1).options.n == 1


@pytest.mark.parametrize("n", [0, 11])
def test_n_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(InvalidOptionsError, match="from 1 to 10"):
        ImageOptions(n=n)


def test_api_images_chooses_the_images_backend(tmp_path: Path) -> None:
    generator = ImageGenerator(store=tmp_path, api="images", api_key="sk-secret-key-123")
    assert isinstance(generator.backend, ImagesBackend) and generator.backend.name == "images"
    assert "secret" not in repr(generator.backend) and "secret" not in repr(generator)
    with pytest.raises(ConfigurationError, match="api must be"):
        ImageGenerator(store=tmp_path, api="chat")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="does not match"):
        ImageGenerator(store=tmp_path, api="responses", backend=ImagesBackend(api_key="k"))


def test_the_images_backend_cannot_recover_by_response_id() -> None:
    backend = ImagesBackend(api_key="k")
    with pytest.raises(ConfigurationError, match="stores no responses"):
        backend.recover("resp_123")


async def test_arecover_says_the_same() -> None:
    with pytest.raises(ConfigurationError, match="stores no responses"):
        await ImagesBackend(api_key="k").arecover("resp_123")


async def test_aclose_closes_the_clients_the_backend_made() -> None:
    backend = ImagesBackend(api_key="k", base_url="http://127.0.0.1:9/v1")
    sync_client, async_client = backend.client, backend.async_client
    await backend.aclose()
    assert sync_client.is_closed() and async_client.is_closed()


def test_clients_passed_in_are_used_without_sdk_retries_and_left_open() -> None:
    from openai import OpenAI

    mine = OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=5)
    backend = ImagesBackend(client=mine)
    assert backend.client.max_retries == 0 and mine.max_retries == 5
    backend.close()
    assert not mine.is_closed()
    mine.close()
