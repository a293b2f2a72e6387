"""LangChain's standard integration suite for tools (``langchain-tests``), through the emulator over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import ToolsIntegrationTests
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageOptions
from imagegen_tool.langchain import ImageGenerationTool


class TestImageGenerationToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[ImageGenerationTool]:
        return ImageGenerationTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a watercolor fox in the snow", "size": "1536x1024"}

    @pytest.fixture
    def tool(  # the emulator's clients and a fresh store for every test
        self, tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
    ) -> ImageGenerationTool:
        return ImageGenerationTool(
            store=tmp_path,
            client=openai_client,
            async_client=async_openai_client,
            options=ImageOptions(quality="low"),
        )
