"""The pydantic-ai adapter end to end: real ``Agent`` runs with pydantic-ai's own ``FunctionModel`` (a scripted model
that reads the conversation) and ``TestModel``, the image tool talking to the emulator over real HTTP through the
real ``openai`` clients."""

from __future__ import annotations

import asyncio
import gc
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, BinaryContent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from imagegen_tool import GeneratedImage
from imagegen_tool.agent_tool import AgentImageTool, ToolResult
from imagegen_tool.pydantic_ai import ImageToolset, image_tool
from imagegen_tool.testing import Emulator

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{400,}")


@pytest.fixture(autouse=True)
def _collect() -> Iterator[None]:
    yield
    gc.collect()  # an unclosed transport warns now, inside the test (and fails it)


def toolset(emulator: Emulator, store: Path, **settings: Any) -> ImageToolset:
    settings.setdefault("options", {"quality": "low"})
    return ImageToolset(store=store, base_url=emulator.url, api_key="sk-test", **settings)


def tool_parts(messages: list[ModelMessage]) -> list[ToolReturnPart | RetryPromptPart]:
    return [
        part
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart | RetryPromptPart)
    ]


def latest(messages: list[ModelMessage]) -> Any:
    """The part of the latest request the model answers (a tool return or a retry prompt)."""
    return messages[-1].parts[-1]


def binary_parts(messages: list[ModelMessage]) -> list[BinaryContent]:
    return [
        item
        for message in messages
        for part in message.parts
        if isinstance(part, UserPromptPart) and not isinstance(part.content, str)
        for item in part.content
        if isinstance(item, BinaryContent)
    ]


def turn(messages: list[ModelMessage]) -> int:
    return sum(isinstance(message, ModelResponse) for message in messages)


def call(args: dict[str, Any], call_id: str) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart("generate_image", args, tool_call_id=call_id)])


async def test_generate_then_edit_by_handle_with_a_typed_return(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    shown: list[str] = []

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        shown.append(json.dumps([m.parts for m in messages], default=str))
        if turn(messages) == 0:
            (tool_def,) = info.function_tools
            assert tool_def.parameters_json_schema["additionalProperties"] is False
            return call({"prompt": "a red kite", "image_ids": None, "mask_id": "", "size": None}, "c1")
        if turn(messages) == 1:
            result = latest(messages).content
            assert isinstance(result, ToolResult)  # the typed return, as the model's tool result
            return call({"prompt": "make the kite blue", "image_ids": [result.images[0].id]}, "c2")
        return ModelResponse(parts=[TextPart("Drawn and edited.")])

    images = toolset(imagegen_emulator, tmp_path / "images")
    result = await Agent(FunctionModel(script), toolsets=[images]).run("Draw a kite, then make it blue")
    assert result.output == "Drawn and edited."
    first, second = tool_parts(result.all_messages())
    assert isinstance(first, ToolReturnPart) and isinstance(second, ToolReturnPart)
    assert second.content.images[0].input_ids == (first.content.images[0].id,)
    # The full handles are metadata, for the program only.
    (handle,) = second.metadata
    assert isinstance(handle, GeneratedImage) and Path(handle.path or "").is_file()
    # No image bytes anywhere the model was shown, nor in the serialised history.
    assert all(BASE64_RUN.search(text) is None for text in shown)
    assert BASE64_RUN.search(result.all_messages_json().decode()) is None
    # The run left the toolset: the clients the core made are closed (the autouse gc check would fail otherwise).


async def test_invalid_options_ask_the_model_to_retry(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": "a kite", "quality": "ultra"}, "c1")
        if turn(messages) == 1:
            retry = latest(messages)
            # pydantic-ai 2.x: a ModelRetry from a tool comes back as the call's return with outcome "retried".
            assert isinstance(retry, ToolReturnPart) and retry.outcome == "retried"
            text = retry.model_response_str()
            assert "quality" in text and "'low'" in text
            return call({"prompt": "a kite", "quality": "low"}, "c2")
        return ModelResponse(parts=[TextPart("ok")])

    images = toolset(imagegen_emulator, tmp_path / "images", options={}, exposed_options=("quality",))
    result = await Agent(FunctionModel(script), toolsets=[images]).run("Draw")
    retried, made = tool_parts(result.all_messages())
    assert isinstance(retried, ToolReturnPart) and retried.outcome == "retried"
    assert isinstance(made, ToolReturnPart) and made.outcome == "success"
    assert len(imagegen_emulator.requests_to("/v1/responses", "POST")) == 1  # nothing sent for the bad call


async def test_unknown_image_id_is_a_retry_and_retries_are_bounded(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    from pydantic_ai.exceptions import UnexpectedModelBehavior

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return call({"prompt": "edit", "image_ids": ["img_missing"]}, f"c{turn(messages)}")

    images = toolset(imagegen_emulator, tmp_path / "images", max_retries=1)
    with pytest.raises(UnexpectedModelBehavior):
        await Agent(FunctionModel(script), toolsets=[images]).run("Edit it")
    assert imagegen_emulator.requests_to("/v1/responses", "POST") == []


async def test_moderation_is_a_plain_failure_not_a_retry(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    errors: list[Exception] = []
    trigger = imagegen_emulator.moderation_trigger

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": f"a {trigger} scene"}, "c1")
        failed = latest(messages)
        assert isinstance(failed, ToolReturnPart) and failed.outcome == "failed"
        return ModelResponse(parts=[TextPart(failed.model_response_str())])

    images = toolset(imagegen_emulator, tmp_path / "images", on_error=errors.append)
    result = await Agent(FunctionModel(script), toolsets=[images]).run("Draw")
    assert "moderation" in result.output and "Do not retry the same prompt" in result.output
    assert [type(e).__name__ for e in errors] == ["ModerationBlockedError"]
    assert len(imagegen_emulator.generations) <= 1  # never retried


async def test_quota_is_a_plain_failure(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    imagegen_emulator.fail_next(429, code="insufficient_quota", path="/v1/responses")

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": "a kite"}, "c1")
        return ModelResponse(parts=[TextPart(latest(messages).model_response_str())])

    result = await Agent(FunctionModel(script), toolsets=[toolset(imagegen_emulator, tmp_path)]).run("Draw")
    assert "quota" in result.output and "Retrying will not help" in result.output


async def test_previews_as_binary_content_only_when_asked(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": "a kite"}, "c1")
        return ModelResponse(parts=[TextPart("ok")])

    plain = await Agent(FunctionModel(script), toolsets=[toolset(imagegen_emulator, tmp_path / "a")]).run("Draw")
    assert binary_parts(plain.new_messages()) == []

    images = toolset(imagegen_emulator, tmp_path / "b", include_preview=True, preview_max_side=64)
    result = await Agent(FunctionModel(script), toolsets=[images]).run("Draw")
    previews = binary_parts(result.new_messages())
    assert len(previews) == 1 and previews[0].media_type == "image/jpeg" and len(previews[0].data) < 20_000
    (made,) = tool_parts(result.all_messages())
    assert made.content.images[0].preview is True


@dataclass
class Conversation:
    id: str


def test_deps_pick_the_session_and_sync_path(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": "a kite"}, "c1")
        if turn(messages) == 1:
            return call({"prompt": "make it blue"}, "c2")  # no image_ids: the session's latest image
        return ModelResponse(parts=[TextPart("ok")])

    core = AgentImageTool(
        store=tmp_path,
        base_url=imagegen_emulator.url,
        api_key="sk-test",
        options={"quality": "low"},
        thread_sessions=True,
    )
    tool = image_tool(core, thread_id=lambda ctx: ctx.deps.id, sync=True)
    agent = Agent(FunctionModel(script), tools=[tool], deps_type=Conversation)
    try:
        result = agent.run_sync("Draw", deps=Conversation("user-7"))
    finally:
        # run_sync runs on the thread's default event loop and leaves it open for the next call: close it here.
        policy = asyncio.get_event_loop_policy()
        policy.get_event_loop().close()
        policy.set_event_loop(None)
    first, second = tool_parts(result.all_messages())
    assert second.content.images[0].input_ids == (first.content.images[0].id,)
    assert core.generator.store.latest("thread:user-7") == second.content.images[0].id
    core.close()


async def test_test_model_calls_the_tool_with_schema_generated_arguments(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    # pydantic-ai's TestModel fills every argument from the JSON schema: the tool must accept what the schema
    # allows or tell the model what to fix.
    images = toolset(imagegen_emulator, tmp_path, exposed_options=("size", "quality"))
    result = await Agent(TestModel(), toolsets=[images]).run("Draw")
    parts = tool_parts(result.all_messages())
    assert parts and all(isinstance(p, ToolReturnPart | RetryPromptPart) for p in parts)


def test_ctx_first_tool_and_core_or_settings(tmp_path: Path) -> None:
    core = AgentImageTool(store=tmp_path, api_key="sk-test")
    tool = image_tool(core)
    assert tool.name == "generate_image" and tool.takes_ctx
    assert tool.tool_def.parameters_json_schema == core.json_schema()
    with pytest.raises(TypeError):
        image_tool(core, store=tmp_path)
    core.close()


@dataclass
class Tenant:
    images: AgentImageTool


async def test_a_core_per_run_from_deps(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    from imagegen_tool import ConfigurationError

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": "a kite"}, "c1")
        return ModelResponse(parts=[TextPart("ok")])

    def core(store: Path, **options: Any) -> AgentImageTool:
        options.setdefault("quality", "low")
        return AgentImageTool(store=store, base_url=imagegen_emulator.url, api_key="sk-test", options=options)

    template, alice, bob = core(tmp_path / "t"), core(tmp_path / "alice"), core(tmp_path / "bob")
    agent = Agent(
        FunctionModel(script), tools=[image_tool(template, core_for=lambda ctx: ctx.deps.images)], deps_type=Tenant
    )
    for tenant in (alice, bob):
        result = await agent.run("Draw", deps=Tenant(tenant))
        (made,) = tool_parts(result.all_messages())
        assert tenant.generator.store.exists(made.content.images[0].id)
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())
    assert not alice.generator.store.exists(made.content.images[0].id)  # bob's image stayed in bob's store

    # A core that takes other arguments than the model was shown is a configuration error, not a model retry.
    other = core(tmp_path / "other", quality=None, output_format="webp")
    with pytest.raises(ConfigurationError):
        await agent.run("Draw", deps=Tenant(other))
    for each in (template, alice, bob, other):
        await each.aclose()


@dataclass
class EndUser:
    user_hash: Any


def _creates(api: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in api.requests if r.method == "POST" and r.path == "/v1/responses"]


async def test_each_run_sends_the_end_user_from_its_deps(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return call({"prompt": "a kite"}, "c1") if turn(messages) == 0 else ModelResponse(parts=[TextPart("ok")])

    images = toolset(imagegen_emulator, tmp_path / "images", safety_identifier_for=lambda ctx: ctx.deps.user_hash)
    agent = Agent(FunctionModel(script), toolsets=[images], deps_type=EndUser)
    for user in ("alice-hash", "bob-hash"):
        await agent.run("Draw", deps=EndUser(user))
    assert [body["safety_identifier"] for body in _creates(imagegen_emulator)] == ["alice-hash", "bob-hash"]


@pytest.mark.parametrize("value", ["sk-proj-" + "x" * 40, 7])
async def test_a_bad_end_user_fails_the_call_before_anything_is_sent(
    imagegen_emulator: Emulator, tmp_path: Path, value: Any
) -> None:
    errors: list[Exception] = []

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if turn(messages) == 0:
            return call({"prompt": "a kite"}, "c1")
        failed = latest(messages)
        assert isinstance(failed, ToolReturnPart) and failed.outcome == "failed"  # not a retry: the developer's
        return ModelResponse(parts=[TextPart(failed.model_response_str())])

    images = toolset(
        imagegen_emulator,
        tmp_path / "images",
        safety_identifier_for=lambda ctx: ctx.deps.user_hash,
        on_error=errors.append,
    )
    result = await Agent(FunctionModel(script), toolsets=[images], deps_type=EndUser).run("Draw", deps=EndUser(value))
    assert "safety_identifier" in result.output and "sk-proj-" not in result.output
    assert [type(e).__name__ for e in errors] == ["ConfigurationError"]
    assert _creates(imagegen_emulator) == []
