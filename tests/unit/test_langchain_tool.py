"""The LangChain adapter with an in-process backend: schema generation, result text and artifact, errors."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image
from pydantic import BaseModel

from imagegen_tool import (
    APIError,
    ConfigurationError,
    GeneratedImage,
    GenerationResult,
    ImageGenerator,
    ImageOptions,
    ImageRequest,
    ModerationBlockedError,
)
from imagegen_tool.capabilities import offered_models
from imagegen_tool.langchain import (
    DEFAULT_EXPOSED_OPTIONS,
    ImageGenerationTool,
    build_args_schema,
    images_from_message,
)
from imagegen_tool.parse import CallFailure, ParsedImage, ParsedResponse, parse_response
from tests.fixtures.recorded import AZURE_JSON, load_json

LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{100,}={0,2}")


def png_b64(width: int = 64, height: int = 48, mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 60, 128) if mode == "RGBA" else (200, 30, 60)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class FakeBackend:
    """Answers with the recorded Azure response (optionally with another image or revised prompt), or raises."""

    name = "fake"

    def __init__(
        self,
        *,
        b64: str | None = None,
        revised_prompt: str | None = None,
        error: Exception | None = None,
        response: ParsedResponse | None = None,
    ) -> None:
        parsed = response or parse_response(load_json(AZURE_JSON))
        if b64 is not None or revised_prompt is not None:
            image = parsed.images[0]
            image = image.model_copy(
                update={"b64": b64 or image.b64, "revised_prompt": revised_prompt or image.revised_prompt}
            )
            parsed = parsed.model_copy(update={"images": (image,)})
        self.parsed = parsed
        self.error = error
        self.requests: list[ImageRequest] = []

    def run(self, request: ImageRequest) -> ParsedResponse:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.parsed

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        return self.run(request)


def make_tool(tmp_path: Path, backend: FakeBackend | None = None, **kwargs: Any) -> ImageGenerationTool:
    return ImageGenerationTool(store=tmp_path, backend=backend or FakeBackend(), **kwargs)


def call(args: dict[str, Any], name: str = "generate_image") -> dict[str, Any]:
    return {"type": "tool_call", "id": "call_1", "name": name, "args": args}


def properties(schema: type[BaseModel]) -> dict[str, Any]:
    props: dict[str, Any] = schema.model_json_schema()["properties"]
    return props


def enum_of(prop: dict[str, Any]) -> list[str]:
    for option in prop.get("anyOf", [prop]):
        if "enum" in option:
            return list(option["enum"])
    raise AssertionError(f"no enum in {prop}")


def assert_no_base64(text: str) -> None:
    assert not LONG_BASE64.search(text), "base64 data found in text meant for the agent"


# -- schema -----------------------------------------------------------------------------------------------


def test_default_exposed_options_leave_out_what_the_developer_set(tmp_path: Path) -> None:
    tool = make_tool(tmp_path, options=ImageOptions(quality="low", model="gpt-image-1.5"))
    assert tool.exposed_options == ("size", "background", "output_format")
    props = tool.tool_call_schema.model_json_schema()["properties"]  # type: ignore[union-attr]
    assert set(props) == {"prompt", "image_ids", "mask_id", "size", "background", "output_format"}
    rendered = json.dumps(convert_to_openai_tool(tool))
    assert '"quality"' not in rendered and "gpt-image-1.5" not in rendered
    assert set(DEFAULT_EXPOSED_OPTIONS) <= set(props) | {"quality"}


def test_locked_values_are_absent_from_the_schema_even_when_other_fields_mention_them() -> None:
    options = ImageOptions(quality="low", model="gpt-image-2", moderation="low")
    schema = build_args_schema(options, ("size", "background"), allow_inputs=True)
    assert set(properties(schema)) == {"prompt", "image_ids", "mask_id", "size", "background"}
    rendered = json.dumps(schema.model_json_schema())
    for locked in ('"quality"', '"model"', '"moderation"', "gpt-image-2"):
        assert locked not in rendered


def test_enums_are_limited_to_the_values_of_the_configured_model() -> None:
    exposed = ("quality", "output_format", "background")
    mini = properties(build_args_schema(ImageOptions(model="gpt-image-1-mini"), exposed))
    assert enum_of(mini["quality"]) == ["low", "medium", "high", "auto"]
    assert enum_of(mini["output_format"]) == ["png", "webp", "jpeg"]
    sunburst = properties(build_args_schema(ImageOptions(model="gpt-image-2.5-sunburst"), exposed))
    assert enum_of(sunburst["quality"]) == ["low", "medium", "high", "xhigh", "max", "auto"]
    assert enum_of(sunburst["output_format"]) == ["png", "webp", "jpeg"]  # gif and svg arrived with 2.6
    default = properties(build_args_schema(ImageOptions(), exposed))
    assert enum_of(default["output_format"]) == ["png", "webp", "jpeg", "gif", "svg"]


def test_size_is_a_fixed_list_or_a_described_rule_depending_on_the_model() -> None:
    fixed = properties(build_args_schema(ImageOptions(model="gpt-image-1.5"), ("size",)))["size"]
    assert enum_of(fixed) == ["1024x1024", "1536x1024", "1024x1536", "auto"]
    custom = properties(build_args_schema(ImageOptions(model="gpt-image-2"), ("size",)))["size"]
    assert {"type": "string"} in custom["anyOf"]
    assert "enum" not in json.dumps(custom)
    assert "divisible by 16" in custom["description"] and "8,294,400 pixels" in custom["description"]


def test_unknown_model_gets_type_checks_only() -> None:
    props = properties(build_args_schema(ImageOptions(model="gpt-image-9"), ("quality", "size")))
    assert enum_of(props["quality"]) == ["low", "medium", "high", "xhigh", "max", "auto"]
    assert {"type": "string"} in props["size"]["anyOf"]


def test_exposed_model_lists_current_models_only() -> None:
    props = properties(build_args_schema(ImageOptions(), ("model",)))
    models = enum_of(props["model"])
    assert "gpt-image-2.6-sunburst" in models
    assert "gpt-image-1" not in models  # retired
    assert models == sorted(offered_models())  # deprecated ones (shutting down soon) are not offered either


def test_transparent_background_is_not_offered_when_the_format_is_locked_to_jpeg() -> None:
    props = properties(build_args_schema(ImageOptions(output_format="jpeg"), ("background",)))
    assert enum_of(props["background"]) == ["opaque", "auto"]


def test_every_argument_has_a_description_written_for_the_agent() -> None:
    schema = build_args_schema(ImageOptions(), ("size", "quality", "background", "output_format", "complexity"))
    props = properties(schema)
    assert all(len(prop.get("description", "")) > 20 for prop in props.values()), props
    assert "describe" in props["prompt"]["description"].lower()
    assert "image_ids" in props["prompt"]["description"]
    assert "transparent" in props["background"]["description"]
    assert "\n" not in json.dumps(props)  # docstring line breaks are folded


def test_numeric_limits_reach_the_schema() -> None:
    props = properties(build_args_schema(ImageOptions(output_format="gif"), ("frame_count", "output_compression")))
    frame = next(o for o in props["frame_count"]["anyOf"] if o.get("type") == "integer")
    assert (frame["minimum"], frame["maximum"]) == (2, 16)
    compression = next(o for o in props["output_compression"]["anyOf"] if o.get("type") == "integer")
    assert (compression["minimum"], compression["maximum"]) == (0, 100)


def test_without_inputs_there_are_no_edit_arguments() -> None:
    props = properties(build_args_schema(ImageOptions(), ("size",), allow_inputs=False))
    assert set(props) == {"prompt", "size"}
    assert "image_ids" not in props["prompt"]["description"]


@pytest.mark.parametrize(
    ("exposed", "options", "match"),
    [
        (("mask",), ImageOptions(), "cannot expose mask"),
        (("nonsense",), ImageOptions(), "exposable options"),
        (("input_fidelity",), ImageOptions(model="gpt-image-2"), "input_fidelity cannot be set"),
    ],
)
def test_impossible_exposure_is_a_configuration_error(
    exposed: tuple[str, ...], options: ImageOptions, match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        build_args_schema(options, exposed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"exposed_options": ("model", "action", "size", "quality", "complexity")},
        {"options": ImageOptions(model="gpt-image-2"), "exposed_options": ("size", "output_compression")},
        {"allow_inputs": False, "name": "draw"},
    ],
)
def test_openai_tool_schema_is_self_contained(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    spec = convert_to_openai_tool(make_tool(tmp_path, **kwargs))
    rendered = json.dumps(spec)
    assert "$ref" not in rendered and "$defs" not in rendered
    assert spec["function"]["parameters"]["required"] == ["prompt"]
    assert spec["function"]["name"] == kwargs.get("name", "generate_image")
    assert spec["function"]["description"]


def test_generator_and_client_settings_are_exclusive(tmp_path: Path) -> None:
    generator = ImageGenerator(store=tmp_path, backend=FakeBackend())
    with pytest.raises(ConfigurationError):
        ImageGenerationTool(generator=generator, store=tmp_path)


def test_tool_options_merge_over_the_generator_defaults(tmp_path: Path) -> None:
    backend = FakeBackend()
    generator = ImageGenerator(store=tmp_path, backend=backend, options=ImageOptions(quality="low"))
    tool = ImageGenerationTool(generator=generator, options={"background": "opaque"})
    assert tool.exposed_options == ("size", "output_format")
    tool.invoke({"prompt": "a kite", "size": "1536x1024"})
    sent = backend.requests[0].options
    assert (sent.quality, sent.background, sent.size) == ("low", "opaque", "1536x1024")


# -- results ----------------------------------------------------------------------------------------------


def test_result_is_a_short_text_and_the_handles_as_artifact(tmp_path: Path) -> None:
    b64 = png_b64(320, 200)
    tool = make_tool(tmp_path, FakeBackend(b64=b64))
    message = tool.invoke(call({"prompt": "a red kite", "size": "1536x1024"}))
    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    assert isinstance(message.artifact, list) and len(message.artifact) == 1
    image = message.artifact[0]
    assert isinstance(image, GeneratedImage)
    assert Path(image.path or "").is_file()
    assert isinstance(message.content, str)
    assert image.id in message.content and (image.path or "") in message.content
    assert "320x200 png" in message.content
    assert b64 not in message.content
    assert_no_base64(message.content)
    assert_no_base64(message.model_dump_json(exclude={"artifact"}))


def test_text_for_one_image_stays_short_whatever_the_revised_prompt(tmp_path: Path) -> None:
    huge = "an extremely detailed scene " * 5000
    tool = make_tool(tmp_path, FakeBackend(revised_prompt=huge))
    message = tool.invoke(call({"prompt": "x" * 30_000}))
    assert len(message.content) < 600
    assert "revised prompt: an extremely detailed scene" in message.content
    assert message.content.count("...") >= 1
    assert message.artifact[0].revised_prompt == huge  # the full text stays on the handle


def test_text_stays_short_with_a_long_store_path(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 12))
    tool = make_tool(deep, FakeBackend(revised_prompt="word " * 2000))
    message = tool.invoke(call({"prompt": "a kite"}))
    assert len(message.content) < 600
    assert message.artifact[0].id in message.content


def test_agent_options_and_locked_options_reach_the_request(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = make_tool(tmp_path, backend, options=ImageOptions(quality="low"), exposed_options=("size", "background"))
    tool.invoke(call({"prompt": "a logo", "size": "1024x1536", "background": "transparent"}))
    request = backend.requests[0]
    assert request.prompt == "a logo"
    assert request.options.to_tool_param() == {
        "type": "image_generation",
        "quality": "low",
        "size": "1024x1536",
        "background": "transparent",
    }


async def test_async_invoke_returns_the_same_shape(tmp_path: Path) -> None:
    backend = FakeBackend(b64=png_b64())
    tool = make_tool(tmp_path, backend)
    message = await tool.ainvoke(call({"prompt": "a red kite", "quality": "high"}))
    assert message.status == "success"
    assert [type(item) for item in message.artifact] == [GeneratedImage]
    assert backend.requests[0].options.quality == "high"
    assert Path(message.artifact[0].path).is_file()


def test_invoke_without_tool_call_returns_the_text(tmp_path: Path) -> None:
    result = make_tool(tmp_path).invoke({"prompt": "a red kite"})
    assert isinstance(result, str) and result.startswith("Generated 1 image")


def test_edit_inputs_are_passed_to_the_generator_by_handle_id(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    class RecordingGenerator(ImageGenerator):
        def generate(self, prompt: str, **kwargs: Any) -> GenerationResult:
            seen.append(kwargs)
            return super().generate(prompt, options=kwargs["options"])

    tool = ImageGenerationTool(generator=RecordingGenerator(store=tmp_path, backend=FakeBackend()))
    tool.invoke(call({"prompt": "make it blue", "image_ids": ["ig_1", "img_2"], "mask_id": "img_mask"}))
    tool.invoke(call({"prompt": "a new one"}))
    assert seen[0]["images"] == ["ig_1", "img_2"] and seen[0]["mask"] == "img_mask"
    assert "images" not in seen[1] and "mask" not in seen[1]


def test_image_ids_must_be_handle_ids_not_paths_or_urls(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = make_tool(tmp_path, backend)
    for bad in ("../../etc/passwd", "https://example.com/cat.png", "data:image/png;base64," + "A" * 500):
        message = tool.invoke(call({"prompt": "edit", "image_ids": [bad]}))
        assert message.status == "error"
        assert "not an image id" in message.content
        assert_no_base64(message.content)
    assert backend.requests == []


# -- preview block ----------------------------------------------------------------------------------------


def test_preview_block_is_off_by_default_and_a_small_jpeg_when_on(tmp_path: Path) -> None:
    b64 = png_b64(1024, 768, "RGBA")
    default = make_tool(tmp_path, FakeBackend(b64=b64)).invoke(call({"prompt": "a kite"}))
    assert isinstance(default.content, str)

    message = make_tool(tmp_path, FakeBackend(b64=b64), include_image_block=True).invoke(call({"prompt": "a kite"}))
    text, block = message.content
    assert text["type"] == "text" and text["text"].startswith("Generated 1 image")
    assert_no_base64(text["text"])
    assert (block["type"], block["mime_type"]) == ("image", "image/jpeg")
    preview = Image.open(io.BytesIO(base64.b64decode(block["base64"])))
    assert (preview.format, preview.size) == ("JPEG", (512, 384))
    assert Path(message.artifact[0].path).stat().st_size == len(base64.b64decode(b64))  # full image on disk


# -- errors -----------------------------------------------------------------------------------------------


def moderation_failure() -> ParsedResponse:
    return ParsedResponse(
        response_id="resp_1",
        status="completed",
        failures=(
            CallFailure(
                call_id="ig_1",
                status="failed",
                code="moderation_blocked",
                message="Rejected by the safety system.",
                categories=("violence",),
            ),
        ),
    )


def test_moderation_block_becomes_an_error_message_telling_the_agent_to_rephrase(tmp_path: Path) -> None:
    tool = make_tool(tmp_path / "store", FakeBackend(response=moderation_failure()))
    message = tool.invoke(call({"prompt": "something flagged"}))
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert "Rephrase" in message.content and "Do not retry" in message.content
    assert message.artifact is None
    assert not (tmp_path / "store").exists() or list((tmp_path / "store").iterdir()) == []


async def test_async_errors_are_handled_the_same_way(tmp_path: Path) -> None:
    tool = make_tool(tmp_path, FakeBackend(error=APIError("server error", status_code=503, retryable=True)))
    message = await tool.ainvoke(call({"prompt": "a kite"}))
    assert message.status == "error"
    assert "temporarily unavailable" in message.content and "Try again later" in message.content


def test_the_typed_error_stays_available_to_the_developer(tmp_path: Path) -> None:
    caught: list[ToolException] = []

    def handler(exc: ToolException) -> str:
        caught.append(exc)
        return str(exc)

    tool = make_tool(tmp_path, FakeBackend(response=moderation_failure()), handle_tool_error=handler)
    message = tool.invoke(call({"prompt": "something flagged"}))
    assert message.status == "error"
    assert isinstance(caught[0].__cause__, ModerationBlockedError)
    assert caught[0].__cause__.categories == ("violence",)


def test_handle_tool_error_false_raises_the_typed_error(tmp_path: Path) -> None:
    tool = make_tool(tmp_path, FakeBackend(response=moderation_failure()), handle_tool_error=False)
    with pytest.raises(ModerationBlockedError):
        tool.invoke(call({"prompt": "something flagged"}))


def test_invalid_option_combination_is_refused_before_any_request(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = make_tool(tmp_path, backend)
    message = tool.invoke(call({"prompt": "a logo", "background": "transparent", "output_format": "jpeg"}))
    assert message.status == "error"
    assert "background" in message.content and "Call the tool again" in message.content
    assert backend.requests == []


def test_size_outside_the_models_limits_is_refused_with_the_limits(tmp_path: Path) -> None:
    backend = FakeBackend()
    message = make_tool(tmp_path, backend).invoke(call({"prompt": "a kite", "size": "99x99"}))
    assert message.status == "error"
    for text in ("size='99x99'", "WIDTHxHEIGHT", "655,360", "Call the tool again"):
        assert text in message.content
    assert backend.requests == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"prompt": "a kite", "quality": "ultra"}, ["quality='ultra'", "'low'"]),
        ({"size": "auto"}, ["'prompt' is required"]),
        ({"prompt": ""}, ["prompt=''"]),
        ({"prompt": "a kite", "style": "vivid"}, ["'style' is not an argument"]),
    ],
)
def test_schema_validation_errors_tell_the_agent_what_to_fix(
    tmp_path: Path, args: dict[str, Any], expected: Sequence[str]
) -> None:
    backend = FakeBackend()
    message = make_tool(tmp_path, backend).invoke(call(args))
    assert message.status == "error"
    assert message.content.startswith("Invalid arguments for generate_image")
    for text in expected:
        assert text in message.content
    assert backend.requests == []


def test_locked_option_sent_anyway_is_refused(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = make_tool(tmp_path, backend, options=ImageOptions(quality="low"))
    message = tool.invoke(call({"prompt": "a kite", "quality": "high"}))
    assert message.status == "error" and "'quality' is not an argument" in message.content
    assert backend.requests == []


def test_partial_failures_are_mentioned(tmp_path: Path) -> None:
    parsed = parse_response(load_json(AZURE_JSON))
    failure = CallFailure(call_id="ig_2", status="failed", message="boom")
    tool = make_tool(tmp_path, FakeBackend(response=parsed.model_copy(update={"failures": (failure,)})))
    message = tool.invoke(call({"prompt": "two kites"}))
    assert message.status == "success"
    assert "1 further image call(s)" in message.content


def test_several_images_each_get_a_line(tmp_path: Path) -> None:
    parsed = parse_response(load_json(AZURE_JSON))
    images = tuple(
        ParsedImage(call_id=f"ig_{n}", b64=png_b64(16 * n, 16), revised_prompt=f"kite {n}") for n in (1, 2, 3)
    )
    tool = make_tool(tmp_path, FakeBackend(response=parsed.model_copy(update={"images": images})))
    message = tool.invoke(call({"prompt": "three kites"}))
    assert message.content.startswith("Generated 3 images")
    assert [image.id for image in message.artifact] == ["ig_1", "ig_2", "ig_3"]
    for image in message.artifact:
        assert image.id in message.content


def test_images_from_message_accepts_handles_and_their_dict_form(tmp_path: Path) -> None:
    message = make_tool(tmp_path).invoke(call({"prompt": "a kite"}))
    assert images_from_message(message) == message.artifact
    as_dicts = message.model_copy(update={"artifact": [image.model_dump() for image in message.artifact]})
    assert images_from_message(as_dicts) == message.artifact
    with pytest.raises(ValueError, match="not an image tool artifact"):
        images_from_message(ToolMessage("x", tool_call_id="1", artifact=[{"unrelated": True}]))


def test_schema_never_offers_values_the_locked_options_forbid(tmp_path: Path) -> None:
    from imagegen_tool.langchain import build_args_schema

    schema = build_args_schema(
        ImageOptions(output_format="webp", output_compression=60), ("output_format", "background")
    )
    formats = schema.model_json_schema()["properties"]["output_format"]
    assert set(_enum(formats)) == {"jpeg", "webp"}
    streaming = build_args_schema(ImageOptions(model="gpt-image-2.5-sunburst", partial_images=2), ("output_format",))
    assert set(_enum(streaming.model_json_schema()["properties"]["output_format"])) == {"png", "webp", "jpeg"}


def _enum(prop: dict[str, Any]) -> list[str]:
    for option in prop.get("anyOf", [prop]):
        if "enum" in option:
            return list(option["enum"])
    raise AssertionError(f"no enum in {prop}")


def test_typed_error_keeps_the_sdk_cause_when_not_handled(tmp_path: Path) -> None:
    import httpx
    import openai

    from imagegen_tool import APIError
    from imagegen_tool.langchain import ImageGenerationTool

    class Failing:
        name = "failing"

        def run(self, request: Any) -> Any:
            response = httpx.Response(503, json={}, request=httpx.Request("POST", "http://x/v1/responses"))
            try:
                raise openai.InternalServerError("down", response=response, body=None)
            except openai.OpenAIError as exc:
                raise APIError("down", status_code=503, retryable=True) from exc

        async def arun(self, request: Any) -> Any:
            return self.run(request)

    tool = ImageGenerationTool(generator=ImageGenerator(store=tmp_path, backend=Failing()), handle_tool_error=False)
    with pytest.raises(APIError) as caught:
        tool.invoke({"prompt": "x"})
    assert isinstance(caught.value.__cause__, openai.InternalServerError)


def test_gif_with_a_mask_id_is_refused_before_any_request(tmp_path: Path) -> None:
    """The gif/mask rule holds for the request as sent, also when the mask comes as the agent's mask_id."""
    backend = FakeBackend(b64=png_b64(mode="RGBA"))
    tool = make_tool(tmp_path, backend, exposed_options=("output_format", "size"))
    first = tool.invoke(call({"prompt": "a flag"}))
    image_id = first.artifact[0].id
    sent = len(backend.requests)
    message = tool.invoke(
        call({"prompt": "make it wave", "image_ids": [image_id], "mask_id": image_id, "output_format": "gif"})
    )
    assert message.status == "error" and "mask" in message.content and "gif" in message.content
    assert len(backend.requests) == sent


def test_validation_and_safety_identifier_reach_the_generator(tmp_path: Path) -> None:
    tool = make_tool(tmp_path, validation="strict", safety_identifier="end-user-hash")
    assert tool.generator.validation == "strict" and tool.generator.safety_identifier == "end-user-hash"
    message = tool.invoke(call({"prompt": "x", "size": "1024x1024"}))
    assert message.status != "error"
    with pytest.raises(ConfigurationError):
        ImageGenerationTool(generator=tool.generator, validation="off")
