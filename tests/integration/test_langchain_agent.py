"""End to end: a real LangGraph agent (``langchain.agents.create_agent``) drives the tool against the emulator.

The agent's chat model is scripted but reads the conversation like a real one: its edit call uses the image id
it finds in the text of the previous ``ToolMessage`` (an agent model never sees artifacts), so the test proves
the text is enough to continue from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool import GeneratedImage, ImageOptions
from imagegen_tool.langchain import ImageGenerationTool, images_from_message
from imagegen_tool.testing import Emulator
from imagegen_tool.testing.agents import ScriptedChatModel

LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{100,}={0,2}")
IMAGE_ID = re.compile(r"\bid: ([A-Za-z0-9][A-Za-z0-9_-]*)")

Step = Callable[[list[BaseMessage]], AIMessage]


def generate_call(messages: list[BaseMessage]) -> AIMessage:
    args = {"prompt": "a red kite over green hills, flat illustration", "size": "1536x1024"}
    return AIMessage(content="", tool_calls=[{"name": "generate_image", "args": args, "id": "call_generate"}])


def edit_call(messages: list[BaseMessage]) -> AIMessage:
    last = messages[-1]
    assert isinstance(last, ToolMessage) and last.status == "success", last
    match = IMAGE_ID.search(str(last.content))
    assert match, f"no image id in the tool text: {last.content!r}"
    args = {"prompt": "make the kite blue, keep everything else", "image_ids": [match.group(1)]}
    return AIMessage(content="", tool_calls=[{"name": "generate_image", "args": args, "id": "call_edit"}])


def final_answer(messages: list[BaseMessage]) -> AIMessage:
    return AIMessage(content="Here is your blue kite.")


def make_tool(tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI) -> ImageGenerationTool:
    return ImageGenerationTool(
        store=tmp_path,
        client=openai_client,
        async_client=async_openai_client,
        options=ImageOptions(quality="low"),
    )


def tool_messages(state: dict[str, Any]) -> list[ToolMessage]:
    return [message for message in state["messages"] if isinstance(message, ToolMessage)]


def assert_valid_images(images: Sequence[GeneratedImage]) -> None:
    for image in images:
        assert isinstance(image, GeneratedImage)
        path = Path(image.path or "")
        assert path.is_file()
        with Image.open(path) as opened:
            opened.verify()
            assert opened.format.lower() == image.format


def assert_no_base64_in_messages(messages: Sequence[BaseMessage]) -> None:
    for message in messages:
        text = json.dumps(message.model_dump(exclude={"artifact"}), default=str)
        assert not LONG_BASE64.search(text), f"base64 in a {type(message).__name__}"


def test_agent_generates_then_edits_the_returned_handle(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    model = ScriptedChatModel(steps=[generate_call, edit_call, final_answer])
    tool = make_tool(tmp_path, openai_client, async_openai_client)
    agent = create_agent(model, tools=[tool])

    state = agent.invoke({"messages": [HumanMessage("Draw a red kite, then make it blue.")]})

    assert model.bound_tools[0]["function"]["name"] == "generate_image"
    generated, edited = tool_messages(state)
    assert (generated.status, edited.status) == ("success", "success")
    first, second = generated.artifact[0], edited.artifact[0]
    assert_valid_images([first, second])
    assert (first.width, first.height) == (1536, 1024)
    assert second.id != first.id
    assert second.input_ids == (first.id,)  # lineage: the edit came from the first handle
    assert state["messages"][-1].content == "Here is your blue kite."
    assert_no_base64_in_messages(state["messages"])
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 2


async def test_async_agent_streams_tool_events_with_handles(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
) -> None:
    model = ScriptedChatModel(steps=[generate_call, edit_call, final_answer])
    agent = create_agent(model, tools=[make_tool(tmp_path, openai_client, async_openai_client)])

    ended: list[ToolMessage] = []
    async for event in agent.astream_events(
        {"messages": [HumanMessage("Draw a red kite, then make it blue.")]}, version="v2"
    ):
        if event["event"] == "on_tool_end":
            ended.append(event["data"]["output"])

    assert [message.status for message in ended] == ["success", "success"]
    assert_valid_images([message.artifact[0] for message in ended])
    assert ended[1].artifact[0].input_ids == (ended[0].artifact[0].id,)


async def test_async_agent_ainvoke_keeps_handles_in_the_checkpointed_state(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
) -> None:
    model = ScriptedChatModel(steps=[generate_call, final_answer])
    agent = create_agent(
        model, tools=[make_tool(tmp_path, openai_client, async_openai_client)], checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "kites"}}
    result = await agent.ainvoke({"messages": [HumanMessage("Draw a red kite.")]}, config)
    (original,) = tool_messages(result)

    saved = await agent.aget_state(config)
    (message,) = tool_messages(saved.values)
    # Checkpointers may keep the artifact's handles as dicts; images_from_message gives handles back.
    images = images_from_message(message)
    assert images == original.artifact
    assert_valid_images(images)
    assert_no_base64_in_messages(saved.values["messages"])


def test_moderation_block_reaches_the_agent_which_rephrases(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    trigger = imagegen_emulator.moderation_trigger
    assert trigger

    def flagged(messages: list[BaseMessage]) -> AIMessage:
        args = {"prompt": f"a {trigger} scene"}
        return AIMessage(content="", tool_calls=[{"name": "generate_image", "args": args, "id": "call_1"}])

    def rephrase(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        assert isinstance(last, ToolMessage) and last.status == "error"
        assert "Rephrase" in str(last.content)
        args = {"prompt": "a calm meadow"}
        return AIMessage(content="", tool_calls=[{"name": "generate_image", "args": args, "id": "call_2"}])

    model = ScriptedChatModel(steps=[flagged, rephrase, final_answer])
    state = create_agent(model, tools=[make_tool(tmp_path, openai_client, async_openai_client)]).invoke(
        {"messages": [HumanMessage("Draw something.")]}
    )
    blocked, drawn = tool_messages(state)
    assert (blocked.status, drawn.status) == ("error", "success")
    assert blocked.artifact is None
    assert_valid_images(drawn.artifact)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".json") == [
        Path(drawn.artifact[0].path or "").name
    ]


@pytest.mark.parametrize("arguments", [{"prompt": "a kite", "quality": "high"}, {"prompt": "a kite", "size": "7x7"}])
def test_tool_node_turns_bad_arguments_into_error_messages(
    tmp_path: Path,
    openai_client: OpenAI,
    async_openai_client: AsyncOpenAI,
    imagegen_emulator: Emulator,
    arguments: dict[str, Any],
) -> None:
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([make_tool(tmp_path, openai_client, async_openai_client)]))
    graph.add_edge(START, "tools")
    call = AIMessage(content="", tool_calls=[{"name": "generate_image", "args": arguments, "id": "call_1"}])
    message = graph.compile().invoke({"messages": [call]})["messages"][-1]
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    # A schema-level refusal ("Invalid arguments ...") or the option check's ("Invalid option ..."): either way
    # the agent is told what to change and nothing is sent.
    assert str(message.content).startswith(("Invalid arguments for generate_image", "Invalid option size='7x7'"))
    assert imagegen_emulator.requests_to("/v1/responses") == []


def test_unknown_image_id_is_an_error_the_agent_can_act_on(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI
) -> None:
    tool: BaseTool = make_tool(tmp_path, openai_client, async_openai_client)
    call = {"type": "tool_call", "id": "c", "name": tool.name, "args": {"prompt": "blue", "image_ids": ["ig_nope"]}}
    message = tool.invoke(call)
    assert message.status == "error"
    assert "ig_nope" in message.content and "earlier image tool call" in message.content


def test_thread_sessions_continue_from_the_latest_image_of_the_thread(
    tmp_path: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    tool = ImageGenerationTool(
        store=tmp_path, client=openai_client, async_client=async_openai_client, thread_sessions=True
    )
    first = tool.invoke(
        {"type": "tool_call", "id": "c1", "name": tool.name, "args": {"prompt": "a cartoon owl"}},
        config={"configurable": {"thread_id": "t-1"}},
    )
    tool.invoke(
        {"type": "tool_call", "id": "c2", "name": tool.name, "args": {"prompt": "now make it look realistic"}},
        config={"configurable": {"thread_id": "t-1"}},
    )
    tool.invoke(
        {"type": "tool_call", "id": "c3", "name": tool.name, "args": {"prompt": "a cartoon fish"}},
        config={"configurable": {"thread_id": "t-2"}},
    )
    bodies = [r.json for r in imagegen_emulator.requests_to("/v1/responses")]
    assert bodies[1]["previous_response_id"] == first.artifact[0].response_id
    assert "previous_response_id" not in bodies[0]
    assert "previous_response_id" not in bodies[2]  # another thread starts fresh
