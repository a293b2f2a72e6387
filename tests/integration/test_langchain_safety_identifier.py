"""One tool instance, many end users: a run's ``configurable.safety_identifier`` is sent as that call's
``safety_identifier`` (OpenAI asks for one per end user to attribute abuse), instead of the tool's own. Checked on
the wire, through the real SDK and the emulator, for ``invoke``, ``ainvoke`` and a LangGraph agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageOptions
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.request import MAX_SAFETY_IDENTIFIER_CHARS
from imagegen_tool.testing import Emulator
from imagegen_tool.testing.agents import ScriptedChatModel

APP_DEFAULT = "app-default-user"


def _tool(tmp_path: Path, client: OpenAI, async_client: AsyncOpenAI, **kwargs: Any) -> ImageGenerationTool:
    return ImageGenerationTool(
        store=tmp_path / "images",
        client=client,
        async_client=async_client,
        options=ImageOptions(quality="low"),
        **kwargs,
    )


def _creates(api: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in api.requests if r.method == "POST" and r.path == "/v1/responses"]


def _call(prompt: str, call_id: str = "c1") -> dict[str, Any]:
    return {"type": "tool_call", "name": "generate_image", "args": {"prompt": prompt}, "id": call_id}


def test_each_run_sends_its_own_end_user(
    imagegen_emulator: Emulator, openai_client: OpenAI, async_openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    tool = _tool(tmp_path, openai_client, async_openai_client, safety_identifier=APP_DEFAULT)
    first = tool.invoke(_call("a kite"), config={"configurable": {"safety_identifier": "user-a-hash"}})
    second = tool.invoke(_call("a boat"))  # no end user for this run: the tool's own identifier
    assert first.status == second.status == "success"
    assert [body.get("safety_identifier") for body in _creates(imagegen_emulator)] == ["user-a-hash", APP_DEFAULT]


async def test_the_async_path_sends_it_too(
    imagegen_emulator: Emulator, openai_client: OpenAI, async_openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    tool = _tool(tmp_path, openai_client, async_openai_client)
    message = await tool.ainvoke(_call("a lamp"), config={"configurable": {"safety_identifier": "user-b-hash"}})
    assert message.status == "success"
    [body] = _creates(imagegen_emulator)
    assert body["safety_identifier"] == "user-b-hash"


@pytest.mark.parametrize("value", ["sk-proj-" + "x" * 40, "", "u" * (MAX_SAFETY_IDENTIFIER_CHARS + 1), 42])
def test_a_bad_end_user_id_is_refused_before_anything_is_sent(
    imagegen_emulator: Emulator, openai_client: OpenAI, async_openai_client: AsyncOpenAI, tmp_path: Path, value: Any
) -> None:
    tool = _tool(tmp_path, openai_client, async_openai_client)
    message = tool.invoke(_call("a kite"), config={"configurable": {"safety_identifier": value}})
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert "safety_identifier" in str(message.content) and "tell the user" in str(message.content)
    assert "sk-proj-" not in str(message.content)  # a key passed by mistake is never echoed to the agent
    assert _creates(imagegen_emulator) == []


def test_a_langgraph_agent_passes_the_end_user_of_each_thread(
    imagegen_emulator: Emulator, openai_client: OpenAI, async_openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    tool = _tool(tmp_path, openai_client, async_openai_client, thread_sessions=True)

    def draw(messages: list[BaseMessage]) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": "generate_image", "args": {"prompt": "a fox"}, "id": "c1"}])

    agent = create_agent(
        ScriptedChatModel(steps=[draw, lambda messages: AIMessage("Done."), draw, lambda messages: AIMessage("Done.")]),
        tools=[tool],
        checkpointer=InMemorySaver(),
    )
    for thread, user in (("t-alice", "alice-hash"), ("t-bob", "bob-hash")):
        config: Any = {"configurable": {"thread_id": thread, "safety_identifier": user}}
        agent.invoke({"messages": [HumanMessage("draw a fox")]}, config)
    assert [body.get("safety_identifier") for body in _creates(imagegen_emulator)] == ["alice-hash", "bob-hash"]
