"""The structured tool result (``ToolOutput.structured()`` → ``ToolResult``): handles shown as ``display`` says,
errors with the agent message and type, a JSON schema every serialised result validates against, no bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from imagegen_tool import ImageOptions
from imagegen_tool.agent_tool import AgentImageTool, ImageResult, ToolOutput, ToolResult
from imagegen_tool.errors import APIError, ModerationBlockedError
from imagegen_tool.testing import Emulator


@pytest.fixture
def tool(tmp_path: Path, imagegen_emulator: Emulator) -> Any:
    def make(**kwargs: Any) -> AgentImageTool:
        kwargs.setdefault("options", ImageOptions(quality="low"))
        return AgentImageTool(store=tmp_path, base_url=imagegen_emulator.url, api_key="sk-test", **kwargs)

    return make


def _validate(result: ToolResult) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    jsonschema.Draft202012Validator.check_schema(ToolResult.json_schema())
    jsonschema.validate(data, ToolResult.json_schema())
    json.dumps(data)
    return data


@pytest.mark.parametrize("display", ["auto", "path", "id"])
def test_handles_follow_display(tool: Any, display: str) -> None:
    with tool(display=display) as core:
        output = core.call_safely({"prompt": "a red kite", "size": "1024x1536"})
        result = output.structured()
    image = output.images[0]
    assert isinstance(result, ToolResult) and not result.is_error and result.error is None
    [entry] = result.images
    assert isinstance(entry, ImageResult)
    assert (entry.id, entry.width, entry.height) == (image.id, 1024, 1536)
    assert (entry.format, entry.mime_type, entry.byte_size) == (image.format, image.mime_type, image.byte_size)
    assert entry.revised_prompt == image.revised_prompt and entry.model == image.model
    if display == "id":
        assert entry.path is None and entry.url is None
        assert image.path is not None and image.path not in json.dumps(_validate(result))
    else:
        assert entry.path == image.path and Path(entry.path or "").read_bytes()[:4] == b"\x89PNG"
        _validate(result)


def test_url_display_uses_the_store_url_only(tool: Any) -> None:
    with tool(display="url") as core:
        result = core.call_safely({"prompt": "a red kite"}).structured()
    # A local store without public_base_url gives no URL: nothing is shown rather than the path.
    assert result.images[0].url is None and result.images[0].path is None


def test_edit_records_inputs_and_previews_are_flagged(tool: Any) -> None:
    with tool(include_preview=True) as core:
        first = core.call_safely({"prompt": "a red kite"})
        edit = core.call_safely({"prompt": "make it blue", "image_ids": [first.images[0].id]}).structured()
    assert edit.images[0].input_ids == (first.images[0].id,)
    assert edit.images[0].preview is True
    data = _validate(edit)
    assert "b64" not in json.dumps(data) and len(json.dumps(data)) < 2000  # handles only, never image bytes


def test_invalid_arguments_give_an_error_result(tool: Any) -> None:
    with tool() as core:
        output = core.call_safely({"prompt": "a kite", "quality": "high"})  # locked: not an argument
    result = output.structured()
    assert result.is_error and not result.images
    assert result.error == output.text and "'quality' is not an argument" in (result.error or "")
    assert result.error_type == "ToolArgumentsError" and result.retryable is False
    _validate(result)


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (ModerationBlockedError("blocked by the safety system"), "ModerationBlockedError", False),
        (APIError("server error", retryable=True), "APIError", True),
    ],
)
def test_typed_errors_keep_type_and_retryability(error: Exception, kind: str, retryable: bool) -> None:
    result = ToolOutput.from_error(error, tool_name="generate_image").structured()
    assert (result.is_error, result.error_type, result.retryable) == (True, kind, retryable)
    assert result.error == ToolOutput.from_error(error).text
    _validate(result)


def test_output_schema_is_an_object_schema(tool: Any) -> None:
    with tool() as core:
        schema = core.output_schema()
    assert schema == ToolResult.json_schema() and schema["type"] == "object"
    image_props = schema["$defs"]["ImageResult"]["properties"]
    assert {"id", "path", "url", "width", "height", "format", "revised_prompt"} <= set(image_props)
    assert all(prop.get("description") for prop in image_props.values())
