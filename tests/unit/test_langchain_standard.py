"""LangChain's standard unit suite for tools (``langchain-tests``), run against ImageGenerationTool."""

from __future__ import annotations

import tempfile
from typing import Any

from langchain_tests.unit_tests import ToolsUnitTests

from imagegen_tool import ImageOptions, ImageRequest
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.parse import ParsedResponse


class UnusedBackend:
    """The unit suite never invokes the tool; a request reaching this backend is a bug."""

    name = "unused"

    def run(self, request: ImageRequest) -> ParsedResponse:
        raise AssertionError("the standard unit tests must not call the backend")

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        raise AssertionError("the standard unit tests must not call the backend")


class TestImageGenerationToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[ImageGenerationTool]:
        return ImageGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {
            "store": tempfile.gettempdir(),  # never written: nothing is generated
            "backend": UnusedBackend(),
            "options": ImageOptions(quality="low"),
            "exposed_options": ("size", "background"),
        }

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"OPENAI_API_KEY": "sk-test-not-a-real-key", "IMAGEGEN_STORE_DIR": tempfile.gettempdir()}
        return env, {}, {"name": "generate_image", "response_format": "content_and_artifact"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a watercolor fox in the snow", "size": "1536x1024", "image_ids": []}
