"""The framework-neutral agent tool: lenient arguments, schemas valid for every provider, descriptions that
match the enums, exposing ``model``, result text and display forms, provider renderers, errors."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from PIL import Image

from imagegen_tool import (
    APIError,
    GenerationResult,
    ImageGenerator,
    ImageOptions,
    ImageRequest,
    ModerationBlockedError,
)
from imagegen_tool.agent_tool import (
    EXPOSABLE_OPTIONS,
    MAX_INPUT_IMAGES,
    AgentImageTool,
    ToolArgumentsError,
    ToolOutput,
    agent_error_message,
    build_args_schema,
    format_result,
)
from imagegen_tool.capabilities import capabilities_for, known_models, offered_models
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.parse import CallFailure, ParsedImage, ParsedResponse

ENUM_FIELDS = ("action", "quality", "background", "output_format", "moderation", "complexity", "input_fidelity")
CURRENT_MODELS = [name for name in known_models() if not getattr(capabilities_for(name), "retired", None)]
# What an agent is offered when ``model`` is exposed: neither deprecated nor shut down.
OFFERED_MODELS = list(offered_models())


def png_bytes(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 60, 128) if mode == "RGBA" else (200, 30, 60)).save(buffer, "PNG")
    return buffer.getvalue()


class FakeBackend:
    """Answers with the given images (PNG bytes by default) and records every request; or raises."""

    name = "fake"

    def __init__(self, images: list[bytes] | None = None, *, error: Exception | None = None) -> None:
        self.images = images or [png_bytes()]
        self.error = error
        self.requests: list[ImageRequest] = []

    def parsed(self) -> ParsedResponse:
        images = tuple(
            ParsedImage(call_id=f"ig_{n}", b64=base64.b64encode(data).decode(), revised_prompt=f"image {n}")
            for n, data in enumerate(self.images, start=1)
        )
        return ParsedResponse(response_id="resp_1", status="completed", images=images)

    def run(self, request: ImageRequest) -> ParsedResponse:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.parsed()

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        return self.run(request)


def core(tmp_path: Path, backend: FakeBackend | None = None, **kwargs: Any) -> AgentImageTool:
    return AgentImageTool(store=tmp_path, backend=backend or FakeBackend(), **kwargs)


def enum_of(prop: dict[str, Any]) -> list[Any]:
    for option in prop.get("anyOf", [prop]):
        if "enum" in option:
            return list(option["enum"])
    return []


# -- null and "" mean "not given" -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"image_ids": None},
        {"image_ids": []},
        {"image_ids": ""},
        {"image_ids": [""]},
        {"image_ids": [None, "  "]},
        {"mask_id": ""},
        {"mask_id": None},
        {"size": ""},
        {"size": None},
        {"quality": None},
        {"quality": " "},
        {"background": ""},
        {"output_format": None},
        {"image_ids": None, "mask_id": None, "size": None, "quality": None, "background": None, "output_format": None},
    ],
)
def test_null_and_empty_optional_arguments_are_not_given(tmp_path: Path, extra: dict[str, Any]) -> None:
    backend = FakeBackend()
    output = core(tmp_path, backend).call({"prompt": "a red kite", **extra})
    assert not output.is_error and len(output.images) == 1
    request = backend.requests[0]
    assert request.inputs == () and request.mask is None
    assert request.options.to_tool_param() == {"type": "image_generation"}


def test_null_and_empty_arguments_through_the_langchain_tool(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = ImageGenerationTool(
        store=tmp_path, backend=backend, exposed_options=("size", "quality", "output_compression")
    )
    args = {
        "prompt": "a kite",
        "image_ids": None,
        "mask_id": "",
        "size": "",
        "quality": None,
        "output_compression": None,
    }
    message = tool.invoke({"type": "tool_call", "id": "c1", "name": tool.name, "args": args})
    assert message.status == "success", message.content
    assert backend.requests[0].inputs == ()


def test_a_single_id_string_is_a_one_item_list(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = core(tmp_path, backend)
    first = tool.call({"prompt": "a kite"})
    tool.call({"prompt": "make it blue", "image_ids": first.images[0].id})
    assert list(backend.requests[1].input_ids) == [first.images[0].id]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"prompt": None}, "'prompt' is required"),
        ({}, "'prompt' is required"),
        ({"prompt": "   "}, "the prompt is empty"),
        ({"prompt": "x", "image_ids": ["a"] * (MAX_INPUT_IMAGES + 1)}, "image_ids"),
        ({"prompt": "x", "image_ids": ["../etc/passwd"]}, "not an image id"),
        ({"prompt": "x", "quality": "ultra"}, "quality='ultra'"),
        ({"prompt": "x", "style": "vivid"}, "'style' is not an argument"),
    ],
)
def test_invalid_arguments_are_refused_with_a_message_for_the_agent(
    tmp_path: Path, args: dict[str, Any], expected: str
) -> None:
    backend = FakeBackend()
    tool = core(tmp_path, backend)
    with pytest.raises(ToolArgumentsError) as caught:
        tool.call(args)
    assert expected in caught.value.agent_message
    assert caught.value.agent_message.startswith("Invalid arguments for generate_image")
    output = tool.call_safely(args)
    assert output.is_error and expected in output.text
    assert backend.requests == []


def test_arguments_as_a_json_string(tmp_path: Path) -> None:
    backend = FakeBackend()
    output = core(tmp_path, backend).call(json.dumps({"prompt": "a kite", "size": None, "image_ids": None}))
    assert len(output.images) == 1
    assert core(tmp_path).call_safely("{not json").is_error


# -- exposing model ---------------------------------------------------------------------------------------


def models_with(field: str, value: str) -> list[str]:
    return [
        m for m in OFFERED_MODELS if (values := capabilities_for(m).allowed_values(field)) is None or value in values
    ]  # type: ignore[union-attr]


def test_exposing_model_does_not_narrow_other_options_to_the_default_model(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = core(tmp_path, backend, exposed_options=("model", "quality"))
    schema = tool.json_schema()
    xhigh_models = models_with("quality", "xhigh")
    assert xhigh_models, "the table has a model with xhigh"
    assert "xhigh" in enum_of(schema["properties"]["quality"])
    output = tool.call({"prompt": "a kite", "model": xhigh_models[0], "quality": "xhigh"})
    assert not output.is_error
    assert (backend.requests[0].options.model, backend.requests[0].options.quality) == (xhigh_models[0], "xhigh")


def test_the_generator_checks_the_final_combination_when_model_is_exposed(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = core(tmp_path, backend, exposed_options=("model", "quality"))
    without = [m for m in OFFERED_MODELS if m not in models_with("quality", "xhigh")]
    output = tool.call_safely({"prompt": "a kite", "model": without[0], "quality": "xhigh"})
    assert output.is_error and "quality" in output.text and "xhigh" in output.text
    assert backend.requests == []


@pytest.mark.parametrize("field", ENUM_FIELDS)
def test_with_model_exposed_every_value_some_model_accepts_is_offered(field: str) -> None:
    try:
        schema = build_args_schema(ImageOptions(), ("model", field)).model_json_schema()
    except Exception as exc:  # a field no model accepts cannot be exposed
        pytest.skip(str(exc))
    offered = set(enum_of(schema["properties"][field]))
    for model in OFFERED_MODELS:
        values = capabilities_for(model).allowed_values(field)  # type: ignore[union-attr]
        for value in values or ():
            try:
                ImageOptions(model=model, **{field: value})
            except Exception:
                continue
            assert value in offered, (model, field, value)


# -- descriptions derived from the enums ------------------------------------------------------------------


def option_configs() -> list[tuple[ImageOptions, tuple[str, ...]]]:
    configs: list[tuple[ImageOptions, tuple[str, ...]]] = []
    for model in CURRENT_MODELS:
        configs.append((ImageOptions(model=model), (*ENUM_FIELDS, "size", "output_compression")))
    configs.append((ImageOptions(), ("model", *ENUM_FIELDS)))
    configs.append((ImageOptions(output_format="jpeg"), ("background", "output_compression")))
    configs.append((ImageOptions(output_format="webp"), ("model", "background", "quality")))
    return configs


@pytest.mark.parametrize(("options", "exposed"), option_configs(), ids=lambda value: str(value)[:60])
def test_descriptions_never_mention_values_the_enum_excludes(options: ImageOptions, exposed: tuple[str, ...]) -> None:
    exposable = []
    for field in exposed:
        try:
            build_args_schema(options, (field,) if field != "model" else ("model",))
        except Exception:
            continue
        exposable.append(field)
    if "model" in exposed:
        exposable = ["model", *[f for f in exposable if f != "model"]]
    try:
        props = build_args_schema(options, tuple(exposable)).model_json_schema()["properties"]
    except Exception:
        props = {}
        for field in exposable:
            try:
                props.update(build_args_schema(options, (field,)).model_json_schema()["properties"])
            except Exception:
                continue
    formats = get_args(get_args(ImageOptions.model_fields["output_format"].annotation)[0])
    for field, prop in props.items():
        if field not in ENUM_FIELDS:
            continue
        offered = set(enum_of(prop))
        every = set(get_args(get_args(ImageOptions.model_fields[field].annotation)[0]))
        description = prop["description"]
        for value in offered:
            assert f"'{value}'" in description, (field, value, description)
        for value in every - offered:
            assert not re.search(rf"\b{re.escape(value)}\b", description), (field, value, description)
        if field in ("background",):  # the formats it names are offered formats
            named = set(re.findall(r"\b(" + "|".join(formats) + r")\b", description))
            allowed_formats = set(capabilities_for(options.effective_model).output_format or formats)  # type: ignore[union-attr]
            if "model" not in props:
                assert named <= allowed_formats, (description, allowed_formats)
    if "output_compression" in props:
        description = props["output_compression"]["description"]
        allowed = capabilities_for(options.effective_model).output_format or formats  # type: ignore[union-attr]
        for fmt in formats:
            if fmt not in allowed or (options.output_format and fmt != options.output_format):
                assert not re.search(rf"\b{fmt}\b", description), (fmt, description)


def test_output_format_description_leaves_out_gif_and_svg_when_the_enum_does(tmp_path: Path) -> None:
    without = [m for m in CURRENT_MODELS if "gif" not in (capabilities_for(m).output_format or ("gif",))]  # type: ignore[union-attr]
    assert without
    prop = build_args_schema(ImageOptions(model=without[0]), ("output_format",)).model_json_schema()["properties"]
    assert "gif" not in enum_of(prop["output_format"])
    assert "gif" not in prop["output_format"]["description"] and "svg" not in prop["output_format"]["description"]


def test_every_exposable_option_has_a_description(tmp_path: Path) -> None:
    schema = build_args_schema(ImageOptions(model="gpt-image-9-unknown"), EXPOSABLE_OPTIONS).model_json_schema()
    for name, prop in schema["properties"].items():
        assert len(prop.get("description", "")) > 20, name


# -- result text and display forms ------------------------------------------------------------------------


def test_display_id_shows_no_location(tmp_path: Path) -> None:
    output = core(tmp_path, display="id").call({"prompt": "a kite"})
    image = output.images[0]
    assert f"id: {image.id}" in output.text
    assert str(tmp_path) not in output.text and "file:" not in output.text
    assert image.path and Path(image.path).is_file()  # the program still has the path


def test_display_path_and_auto_show_the_file_without_a_url(tmp_path: Path) -> None:
    for display in ("path", "auto"):
        output = core(tmp_path, display=display).call({"prompt": "a kite"})
        assert f"file: {output.images[0].path}" in output.text


def test_display_url_without_a_store_url_falls_back_to_the_id(tmp_path: Path) -> None:
    output = core(tmp_path, display="url").call({"prompt": "a kite"})
    assert output.images[0].url is None
    assert str(tmp_path) not in output.text and f"id: {output.images[0].id}" in output.text


@pytest.mark.parametrize("display", ["url", "auto"])
def test_display_url_shows_the_public_url_and_not_the_server_path(tmp_path: Path, display: str) -> None:
    from imagegen_tool import LocalImageStore

    store = LocalImageStore(tmp_path, public_base_url="https://cdn.example.com/images/")
    output = AgentImageTool(store=store, backend=FakeBackend(), display=display).call({"prompt": "a kite"})  # type: ignore[arg-type]
    image = output.images[0]
    assert image.url and image.url.startswith("https://cdn.example.com/images/")
    assert f"url: {image.url}" in output.text
    assert str(tmp_path) not in output.text
    path_only = AgentImageTool(store=store, backend=FakeBackend(), display="path").call({"prompt": "a kite"})
    assert f"file: {path_only.images[0].path}" in path_only.text and "https://" not in path_only.text


def test_unknown_display_is_a_configuration_error(tmp_path: Path) -> None:
    from imagegen_tool import ConfigurationError

    with pytest.raises(ConfigurationError, match="display"):
        core(tmp_path, display="everything")  # type: ignore[arg-type]


# -- previews and the text about them ---------------------------------------------------------------------


def test_text_says_a_preview_is_attached_only_when_one_is(tmp_path: Path) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    backend = FakeBackend([png_bytes(800, 600), svg])
    output = core(tmp_path, backend, include_preview=True).call({"prompt": "two"})
    if len(output.images) != 2:
        pytest.skip("the store refused the SVG")
    assert [p.image_id for p in output.previews] == [output.images[0].id]
    lines = output.text.splitlines()
    assert "marked 'preview attached'" in lines[0]
    assert lines[1].endswith("preview attached") and "preview attached" not in lines[2]

    off = core(tmp_path, FakeBackend([png_bytes()])).call({"prompt": "one"})
    assert "not shown here" in off.text and off.previews == ()
    on = core(tmp_path, FakeBackend([png_bytes()]), include_preview=True).call({"prompt": "one"})
    assert "a small preview is attached" in on.text and len(on.previews) == 1
    assert "preview" in core(tmp_path, include_preview=True).description


def test_format_result_without_previews_keeps_the_old_wording(tmp_path: Path) -> None:
    output = core(tmp_path).call({"prompt": "a kite"})
    assert output.result is not None
    assert format_result(output.result).startswith("Generated 1 image (stored; the image data is not shown here).")


# -- provider renderers, checked against the providers' own SDK types -------------------------------------


@pytest.fixture
def with_preview(tmp_path: Path) -> ToolOutput:
    return core(tmp_path, FakeBackend([png_bytes(640, 480)]), include_preview=True).call({"prompt": "a kite"})


def test_responses_function_call_output_carries_the_preview(with_preview: ToolOutput) -> None:
    from openai.types.responses.response_input_item_param import FunctionCallOutput
    from pydantic import TypeAdapter

    item = {"type": "function_call_output", "call_id": "call_1", "output": with_preview.responses_output()}
    TypeAdapter(FunctionCallOutput).validate_python(item)
    kinds = [part["type"] for part in item["output"]]  # type: ignore[union-attr]
    assert kinds == ["input_text", "input_image"]
    assert item["output"][1]["image_url"].startswith("data:image/jpeg;base64,")  # type: ignore[index]


def test_chat_completions_gets_a_text_tool_message_and_the_preview_in_a_user_message(
    with_preview: ToolOutput,
) -> None:
    from openai.types.chat import ChatCompletionMessageParam
    from pydantic import TypeAdapter

    tool_message, user_message = with_preview.chat_completions_messages("call_1")
    for message in (tool_message, user_message):
        TypeAdapter(ChatCompletionMessageParam).validate_python(message)
    assert isinstance(tool_message["content"], str) and tool_message["role"] == "tool"
    assert [part["type"] for part in user_message["content"]] == ["text", "image_url"]
    text_only = ToolOutput(text="x").chat_completions_messages("call_2")
    assert len(text_only) == 1


def test_anthropic_tool_result_carries_image_blocks(with_preview: ToolOutput) -> None:
    anthropic = pytest.importorskip("anthropic")
    from pydantic import TypeAdapter

    block = with_preview.anthropic_tool_result("toolu_1")
    TypeAdapter(anthropic.types.ToolResultBlockParam).validate_python(block)
    assert [part["type"] for part in block["content"]] == ["text", "image"]
    assert block["is_error"] is False


def test_gemini_function_response_carries_inline_image_parts(with_preview: ToolOutput) -> None:
    genai_types = pytest.importorskip("google.genai.types")
    response = genai_types.FunctionResponse.model_validate(with_preview.gemini_function_response("generate_image"))
    assert response.response == {"output": with_preview.text}
    assert response.parts and response.parts[0].inline_data.mime_type == "image/jpeg"
    error = ToolOutput.from_error(ModerationBlockedError("blocked"))
    assert genai_types.FunctionResponse.model_validate(error.gemini_function_response("g")).response == {
        "error": error.text
    }


# -- errors -----------------------------------------------------------------------------------------------


def test_service_errors_become_error_output_with_the_typed_error_kept(tmp_path: Path) -> None:
    error = APIError("server error", status_code=503, retryable=True)
    output = core(tmp_path, FakeBackend(error=error)).call_safely({"prompt": "a kite"})
    assert output.is_error and output.error is error
    assert output.text == error.agent_message
    assert output.anthropic_tool_result("t")["is_error"] is True


def test_unexpected_errors_do_not_leak_internals() -> None:
    text = agent_error_message(KeyError("/srv/secret/path"))
    assert "/srv/secret" not in text and "KeyError" in text


async def test_async_call_matches_the_sync_one(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = core(tmp_path, backend, include_preview=True)
    output = await tool.acall({"prompt": "a kite", "size": None})
    assert len(output.images) == 1 and len(output.previews) == 1
    failed = await core(tmp_path, FakeBackend(error=ModerationBlockedError("no"))).acall_safely({"prompt": "x"})
    assert failed.is_error and "Rephrase" in failed.text


# -- sessions ---------------------------------------------------------------------------------------------


def test_thread_sessions_continue_from_the_latest_image_of_the_thread(tmp_path: Path) -> None:
    backend = FakeBackend()
    tool = core(tmp_path, backend, thread_sessions=True)
    first = tool.call({"prompt": "a kite"}, thread_id="t1")
    tool.call({"prompt": "make it blue"}, thread_id="t1")
    tool.call({"prompt": "something else"}, thread_id="t2")
    assert list(backend.requests[1].input_ids) == [first.images[0].id]
    assert backend.requests[2].inputs == ()
    assert core(tmp_path).session_for("t1") is None


def test_a_generator_passed_in_is_not_closed_by_the_tool(tmp_path: Path) -> None:
    closed: list[str] = []

    class Generator(ImageGenerator):
        def close(self) -> None:
            closed.append("closed")

    tool = AgentImageTool(generator=Generator(store=tmp_path, backend=FakeBackend()))
    tool.close()
    assert closed == []
    with core(tmp_path) as owned:
        assert owned.owns_generator


def test_result_with_failures_mentions_them(tmp_path: Path) -> None:
    result = GenerationResult(
        images=core(tmp_path).call({"prompt": "x"}).images,
        failures=(CallFailure(call_id="ig_2", status="failed", message="boom"),),
    )
    assert "1 further image call(s)" in format_result(result)


def test_n_is_exposable_on_the_images_route_only(tmp_path: Path) -> None:
    from imagegen_tool import ConfigurationError

    with pytest.raises(ConfigurationError, match="Images API route"):
        core(tmp_path, exposed_options=("n",))
    images = AgentImageTool(store=tmp_path, api="images", api_key="sk-test-not-a-real-key", exposed_options=("n",))
    prop = images.json_schema()["properties"]["n"]
    assert prop["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert images.parse_arguments({"prompt": "x", "n": None}).options() == {}
    assert images.parse_arguments({"prompt": "x", "n": 3}).options() == {"n": 3}


@pytest.mark.parametrize(
    "locked",
    [
        ImageOptions(),
        ImageOptions(output_format="jpeg"),
        ImageOptions(background="transparent"),
        ImageOptions(output_format="webp", output_compression=50),
        ImageOptions(partial_images=2),
    ],
    ids=lambda options: str(options) or "defaults",
)
@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_every_offered_value_is_accepted_for_the_configured_model(
    tmp_path: Path, model: str, locked: ImageOptions
) -> None:
    """An agent is never offered a value the generator would then refuse (checked without sending anything)."""
    try:
        options = locked.merge(model=model)
    except Exception:
        pytest.skip(f"{model} does not take {locked}")
    tool = core(tmp_path, options=options, exposed_options=())
    for field in ENUM_FIELDS:
        try:
            schema = build_args_schema(options, (field,)).model_json_schema()
        except Exception:
            continue  # not exposable for this model
        for value in enum_of(schema["properties"][field]):
            args = tool.parse_arguments({"prompt": "a kite"})
            tool.generator.request(args.prompt, options=options, **{field: value})
