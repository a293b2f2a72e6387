"""The tool's schema through each provider's converter: OpenAI strict function (LangChain's converter and the
openai SDK's own strict rules), Anthropic ``input_schema`` (langchain-anthropic, anthropic SDK types) and Gemini
function declarations (langchain-google-genai, google-genai types)."""

from __future__ import annotations

import copy
import tempfile
from typing import Any

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import TypeAdapter

from imagegen_tool import ImageOptions, ImageRequest
from imagegen_tool.agent_tool import EXPOSABLE_OPTIONS
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.parse import ParsedResponse

#: Keywords of OpenAI's strict subset that the tool may use (types, enums, unions, object and array structure,
#: numeric bounds and array length); ``default``, ``minLength``/``maxLength``, ``$ref``, ``const`` are not among them.
STRICT_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "anyOf",
    "description",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
}


class UnusedBackend:
    name = "unused"

    def run(self, request: ImageRequest) -> ParsedResponse:
        raise AssertionError("schema tests send nothing")

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        raise AssertionError("schema tests send nothing")


CONFIGS: list[dict[str, Any]] = [
    {},
    {"exposed_options": ("model", "quality", "size", "background", "output_format", "output_compression")},
    {
        "options": ImageOptions(model="gpt-image-2.6-sunburst", output_format="gif"),
        "exposed_options": ("frame_count", "frame_duration_ms", "size"),
    },
    {"options": ImageOptions(model="gpt-image-1-mini"), "exposed_options": ("input_fidelity", "moderation", "action")},
    {
        "options": ImageOptions(model="gpt-image-9-unknown"),
        "exposed_options": tuple(option for option in EXPOSABLE_OPTIONS if option != "n"),
    },
    {"allow_inputs": False, "name": "draw"},
]


@pytest.fixture(params=range(len(CONFIGS)), ids=[str(sorted(c)) for c in CONFIGS])
def tool(request: pytest.FixtureRequest) -> ImageGenerationTool:
    return ImageGenerationTool(store=tempfile.gettempdir(), backend=UnusedBackend(), **CONFIGS[request.param])


def walk(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key in ("items",):
            if key in node:
                found.extend(walk(node[key], f"{path}.{key}"))
        for index, variant in enumerate(node.get("anyOf", [])):
            found.extend(walk(variant, f"{path}.anyOf[{index}]"))
        for name, prop in node.get("properties", {}).items():
            found.extend(walk(prop, f"{path}.{name}"))
    return found


def assert_openai_strict(parameters: dict[str, Any]) -> None:
    for path, node in walk(parameters):
        unknown = set(node) - STRICT_KEYWORDS
        assert not unknown, f"{path}: keywords outside the strict subset: {unknown}"
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, path
            assert node.get("required") == list(node.get("properties", {})), path
    for name, prop in parameters["properties"].items():
        if name != "prompt":  # optional arguments stay optional by accepting null
            assert {"type": "null"} in prop.get("anyOf", []), name


def test_openai_strict_function_through_langchain(tool: ImageGenerationTool) -> None:
    from openai.lib._pydantic import _ensure_strict_json_schema
    from openai.types.chat import ChatCompletionFunctionToolParam
    from openai.types.responses import FunctionToolParam

    spec = convert_to_openai_tool(tool, strict=True)
    parameters = spec["function"]["parameters"]
    assert spec["function"]["strict"] is True
    assert_openai_strict(parameters)
    # The SDK's own strict rewrite has nothing left to change (it strips ``default: null``, adds ``required``...).
    assert _ensure_strict_json_schema(copy.deepcopy(parameters), path=(), root={}) == parameters
    TypeAdapter(ChatCompletionFunctionToolParam).validate_python(spec)
    TypeAdapter(FunctionToolParam).validate_python({"type": "function", **spec["function"]})


def test_core_strict_schema_for_agents_sdk_style_tools(tool: ImageGenerationTool) -> None:
    strict = tool.core.json_schema(strict=True)
    assert_openai_strict(strict)
    relaxed = tool.core.json_schema()
    assert relaxed["required"] == ["prompt"]
    assert "'default':" not in str(relaxed) and "title" not in relaxed


def test_non_strict_openai_function_keeps_only_prompt_required(tool: ImageGenerationTool) -> None:
    parameters = convert_to_openai_tool(tool)["function"]["parameters"]
    assert parameters["required"] == ["prompt"]
    assert "$ref" not in str(parameters) and "'default'" not in str(parameters)


def test_anthropic_tool_input_schema(tool: ImageGenerationTool) -> None:
    langchain_anthropic = pytest.importorskip("langchain_anthropic")
    anthropic_types = pytest.importorskip("anthropic.types")

    converted = langchain_anthropic.chat_models.convert_to_anthropic_tool(tool)
    TypeAdapter(anthropic_types.ToolParam).validate_python(dict(converted))
    assert converted["name"] == tool.name and converted["description"] == tool.description
    assert converted["input_schema"] == tool.core.json_schema()
    assert converted["input_schema"]["type"] == "object"


def test_gemini_function_declaration(tool: ImageGenerationTool) -> None:
    function_utils = pytest.importorskip("langchain_google_genai._function_utils")
    genai_types = pytest.importorskip("google.genai.types")

    (declared,) = function_utils.convert_to_genai_function_declarations([tool])
    (declaration,) = declared.function_declarations
    assert isinstance(declaration, genai_types.FunctionDeclaration)
    assert declaration.name == tool.name
    parameters = declaration.parameters
    schema = tool.core.json_schema()
    assert set(parameters.properties) == set(schema["properties"])
    assert parameters.required == ["prompt"]
    for name, prop in schema["properties"].items():
        gemini = parameters.properties[name]
        assert gemini.description == prop["description"]
        variants = [v for v in prop.get("anyOf", [prop]) if v.get("type") != "null"]
        (variant,) = variants
        assert gemini.type.value.lower() == variant["type"], name
        if "enum" in variant:
            assert gemini.enum == [str(value) for value in variant["enum"]], name
        if name != "prompt":
            assert gemini.nullable is True, name
        if "maximum" in variant:  # kept as bounds, or (the converter drops them for nullable numbers) in the text
            bounds = (gemini.minimum, gemini.maximum) == (variant["minimum"], variant["maximum"])
            assert bounds or f"{variant['minimum']} to {variant['maximum']}" in gemini.description, name
        if variant["type"] == "array":
            assert gemini.items.type.value.lower() == "string"
