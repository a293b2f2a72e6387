"""Partial images reach LangChain consumers while the tool runs: astream_events and LangGraph custom streams."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool import ImageOptions
from imagegen_tool.langchain import COMPLETED_EVENT, PARTIAL_IMAGE_EVENT, PROGRESS_EVENT, ImageGenerationTool


def _tool(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI, **kwargs: Any
) -> ImageGenerationTool:
    return ImageGenerationTool(
        store=tmp_path,
        client=openai_client,
        async_client=async_openai_client,
        options=ImageOptions(quality="low", partial_images=2),
        **kwargs,
    )


async def test_astream_events_carries_partial_images_paths_only_when_asked(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
) -> None:
    tool = _tool(tmp_path, openai_client, async_openai_client, partial_image_data=False)
    custom = []
    async for event in tool.astream_events({"prompt": "a lantern"}, version="v2"):
        if event["event"] == "on_custom_event":
            custom.append((event["name"], event["data"]))
    names = [name for name, _ in custom]
    partials = [data for name, data in custom if name == PARTIAL_IMAGE_EVENT]
    assert [p["index"] for p in partials] == [0, 1]
    assert all(p["path"].endswith(f".partial-{p['index']}.png") for p in partials)
    assert all("b64" not in p and "data" not in p for p in partials)
    assert PROGRESS_EVENT in names
    assert names[-1] == COMPLETED_EVENT
    assert names.index(PARTIAL_IMAGE_EVENT) < names.index(COMPLETED_EVENT)
    json.dumps([data for _, data in custom])  # JSON-friendly


def test_sync_invoke_dispatches_previews_with_their_bytes_by_default(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    received: list[tuple[str, Any]] = []

    class Collect(BaseCallbackHandler):
        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            received.append((name, data))

    tool = _tool(tmp_path, openai_client, async_openai_client)
    message = tool.invoke(
        {"type": "tool_call", "id": "c1", "name": tool.name, "args": {"prompt": "a lantern"}},
        config={"callbacks": [Collect()]},
    )
    partials = [data for name, data in received if name == PARTIAL_IMAGE_EVENT]
    assert len(partials) == 2
    for partial in partials:  # renderable after the call, when the preview files are gone
        assert not Path(partial["path"]).exists()
        with Image.open(io.BytesIO(base64.b64decode(partial["b64"]))) as opened:
            assert opened.size == (partial["width"], partial["height"])
    assert "b64" not in str(message.content)


def test_no_custom_events_without_partial_images(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI, imagegen_emulator: Any
) -> None:
    tool = ImageGenerationTool(store=tmp_path, client=openai_client, async_client=async_openai_client)
    tool.invoke({"prompt": "a lantern"})
    assert "stream" not in imagegen_emulator.requests_to("/v1/responses")[0].json


def test_langgraph_custom_stream_mode_gets_previews(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
) -> None:
    tool = _tool(tmp_path, openai_client, async_openai_client)
    graph = StateGraph(MessagesState).add_node("tools", ToolNode([tool])).add_edge(START, "tools").compile()
    call = {"name": tool.name, "args": {"prompt": "a lantern"}, "id": "call_1", "type": "tool_call"}
    chunks = list(graph.stream({"messages": [AIMessage(content="", tool_calls=[call])]}, stream_mode="custom"))
    kinds = [chunk["event"] for chunk in chunks]
    assert kinds.count(PARTIAL_IMAGE_EVENT) == 2
    assert kinds[-1] == COMPLETED_EVENT
