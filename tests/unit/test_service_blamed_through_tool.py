"""An odd API reply reaches the agent as the service's problem, never as its own invalid tool arguments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from imagegen_tool.errors import MalformedResponseError
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.parse import ParsedResponse, parse_response
from imagegen_tool.request import ImageRequest
from tests.fixtures.recorded import AZURE_JSON, load_json


class RawBodyBackend:
    """Parses a given (possibly malformed) body the way the Responses backend does."""

    name = "raw"

    def __init__(self, body: Any) -> None:
        self.body = body

    def run(self, request: ImageRequest) -> ParsedResponse:
        return parse_response(self.body)

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        return self.run(request)


def _azure(**call_fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(load_json(AZURE_JSON))
    for item in body["output"]:
        if item["type"] == "image_generation_call":
            item.update(call_fields)
    return body


def _invoke(tmp_path: Path, body: Any) -> ToolMessage:
    tool = ImageGenerationTool(store=tmp_path, backend=RawBodyBackend(body))
    message = tool.invoke({"type": "tool_call", "id": "call_1", "name": "generate_image", "args": {"prompt": "a cat"}})
    assert isinstance(message, ToolMessage)
    return message


@pytest.mark.parametrize("fields", [{"revised_prompt": 123}, {"size": 1024}, {"quality": ["high"]}])
def test_odd_fields_keep_the_paid_image(tmp_path: Path, fields: dict[str, Any]) -> None:
    message = _invoke(tmp_path, _azure(**fields))
    assert message.status != "error", message.content
    assert message.artifact


@pytest.mark.parametrize(
    "body", [_azure(result=123), "<html><body>502 Bad Gateway</body></html>", {"id": 5, "output": "x"}]
)
def test_unusable_replies_blame_the_service(tmp_path: Path, body: Any) -> None:
    message = _invoke(tmp_path, body)
    assert message.status == "error"
    text = str(message.content)
    assert "not your arguments" in text
    assert "Invalid option" not in text and "validation error" not in text.lower()


def test_malformed_error_is_an_image_generation_error() -> None:
    with pytest.raises(MalformedResponseError):
        parse_response({"id": "resp_1", "output": [{"type": "image_generation_call", "id": "ig_1", "result": 9}]})
