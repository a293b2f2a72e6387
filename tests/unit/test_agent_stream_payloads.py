"""Stream-event payloads for UIs, and previews for Chat Completions models moved into a user message."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.messages.content import create_image_block

from imagegen_tool.agent_tool import (
    PARTIAL_IMAGE_EVENT,
    PROGRESS_EVENT,
    astream_event_payload,
    stream_event_payload,
)
from imagegen_tool.images import PartialImage
from imagegen_tool.langchain import previews_as_user_messages
from imagegen_tool.streaming import PartialImageEvent, ProgressEvent


def partial_event(size: int = 1_500_000) -> PartialImageEvent:
    data = os.urandom(size)  # a realistic partial image is about 1.5 MB
    partial = PartialImage(
        call_id="ig_1", index=0, uri="file:///x", path="/x", mime_type="image/png", byte_size=len(data), data=data
    )
    return PartialImageEvent(partial=partial, response_id="resp_1")


@pytest.mark.parametrize("data", ["base64", True])
async def test_async_payload_encodes_in_slices_and_leaves_the_loop_free(data: object) -> None:
    event = partial_event()
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    payload = await astream_event_payload(event, run_id="run_1", data=data)  # type: ignore[arg-type]
    done.set()
    await task
    assert payload is not None and payload["event"] == PARTIAL_IMAGE_EVENT
    assert payload["b64"] == base64.b64encode(event.partial.data).decode()
    assert ticks - before >= 5, "the loop ran other tasks while the image was encoded"
    json.dumps(payload)


async def test_bytes_mode_hands_over_the_bytes_without_encoding() -> None:
    event = partial_event(1000)
    payload = await astream_event_payload(event, data="bytes")
    assert payload is not None and payload["data"] is event.partial.data and "b64" not in payload
    sync = stream_event_payload(event, data="bytes")
    assert sync is not None and sync["data"] is event.partial.data


@pytest.mark.parametrize("data", ["none", False])
def test_location_only_mode(data: object) -> None:
    payload = stream_event_payload(partial_event(10), data=data)  # type: ignore[arg-type]
    assert payload is not None and "b64" not in payload and "data" not in payload
    assert payload["path"] == "/x" and payload["index"] == 0 and payload["response_id"] == "resp_1"


def test_progress_payload_and_sync_base64() -> None:
    progress = stream_event_payload(ProgressEvent(stage="in_progress", call_id="ig_1"), run_id="r")
    assert progress == {
        "event": PROGRESS_EVENT,
        "stage": "in_progress",
        "call_id": "ig_1",
        "response_id": None,
        "run_id": "r",
    }
    event = partial_event(3000)
    payload = stream_event_payload(event, data="base64")
    assert payload is not None and base64.b64decode(payload["b64"]) == event.partial.data


# -- Chat Completions -------------------------------------------------------------------------------------


def test_previews_move_to_a_user_message_after_the_tool_answers() -> None:
    image = create_image_block(base64="aGVsbG8=", mime_type="image/jpeg")
    calls = [{"name": "generate_image", "args": {"prompt": "x"}, "id": f"c{n}"} for n in (1, 2)]
    messages = [
        HumanMessage("draw two"),
        AIMessage("", tool_calls=calls),
        ToolMessage(
            [{"type": "text", "text": "Generated 1 image (a small preview is attached)."}, image], tool_call_id="c1"
        ),
        ToolMessage("Generated 1 image (the image data is not shown here).", tool_call_id="c2"),
        AIMessage("done"),
    ]
    moved = previews_as_user_messages(messages)
    assert [type(m).__name__ for m in moved] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert moved[2].content == "Generated 1 image (a small preview is attached)."
    assert moved[4].content[1] == image and "c1" in moved[4].content[0]["text"]
    assert isinstance(messages[2].content, list)  # the input is untouched


def test_chat_completions_conversion_has_text_only_tool_messages() -> None:
    from langchain_openai.chat_models.base import _convert_message_to_dict

    image = create_image_block(base64="aGVsbG8=", mime_type="image/jpeg")
    messages = previews_as_user_messages(
        [
            AIMessage("", tool_calls=[{"name": "g", "args": {}, "id": "c1"}]),
            ToolMessage([{"type": "text", "text": "t"}, image], tool_call_id="c1"),
        ]
    )
    tool, user = (_convert_message_to_dict(m) for m in messages[1:])
    assert tool["role"] == "tool" and tool["content"] == "t"
    assert user["role"] == "user" and user["content"][1]["type"] == "image_url"


def test_middleware_rewrites_the_model_request_only() -> None:
    pytest.importorskip("langchain.agents.middleware")
    from imagegen_tool.langchain import PreviewsAsUserMessages

    image = create_image_block(base64="aGVsbG8=", mime_type="image/jpeg")
    original = [
        AIMessage("", tool_calls=[{"name": "g", "args": {}, "id": "c1"}]),
        ToolMessage([image], tool_call_id="c1"),
    ]
    seen = []

    class Request:
        messages = original

        def override(self, **changes: object) -> object:
            seen.append(changes["messages"])
            return "handled"

    result = PreviewsAsUserMessages().wrap_model_call(Request(), lambda request: request)  # type: ignore[arg-type]
    assert result == "handled"
    assert isinstance(seen[0][-1], HumanMessage) and seen[0][1].content == ""


# -- the LangChain tool's previews through each provider package ------------------------------------------


@pytest.fixture
def preview_message(tmp_path: object) -> tuple[AIMessage, ToolMessage]:
    import io

    from PIL import Image

    from imagegen_tool.langchain import ImageGenerationTool
    from tests.unit.test_agent_tool import FakeBackend

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(buffer, "PNG")
    tool = ImageGenerationTool(store=tmp_path, backend=FakeBackend([buffer.getvalue()]), include_image_block=True)
    call = {"name": tool.name, "args": {"prompt": "a kite"}, "id": "c1", "type": "tool_call"}
    message = tool.invoke(call)
    assert "a small preview is attached" in message.content[0]["text"]
    return AIMessage("", tool_calls=[call]), message


def test_previews_reach_anthropic_tool_results(preview_message: tuple[AIMessage, ToolMessage]) -> None:
    chat_models = pytest.importorskip("langchain_anthropic.chat_models")
    _, formatted = chat_models._format_messages([HumanMessage("draw"), *preview_message], model="claude-sonnet-4-5")
    (result,) = formatted[-1]["content"]
    assert result["type"] == "tool_result" and [b["type"] for b in result["content"]] == ["text", "image"]


def test_previews_reach_responses_function_call_outputs(preview_message: tuple[AIMessage, ToolMessage]) -> None:
    from langchain_openai.chat_models.base import _construct_responses_api_input

    items = _construct_responses_api_input([HumanMessage("draw"), *preview_message])
    output = items[-1]
    assert output["type"] == "function_call_output"
    assert [part["type"] for part in output["output"]] == ["input_text", "input_image"]


def test_previews_reach_gemini_as_inline_parts(preview_message: tuple[AIMessage, ToolMessage]) -> None:
    chat_models = pytest.importorskip("langchain_google_genai.chat_models")
    _, contents = chat_models._parse_chat_history([HumanMessage("draw"), *preview_message])
    parts = contents[-1].parts
    assert any(part.inline_data and part.inline_data.mime_type == "image/jpeg" for part in parts)
    assert any(part.function_response for part in parts)


def test_middleware_in_a_real_agent_moves_previews_for_the_model_only(tmp_path: object) -> None:
    import io

    from langchain.agents import create_agent
    from PIL import Image

    from imagegen_tool.langchain import ImageGenerationTool, PreviewsAsUserMessages
    from imagegen_tool.testing.agents import ScriptedChatModel
    from tests.unit.test_agent_tool import FakeBackend

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(buffer, "PNG")
    tool = ImageGenerationTool(store=tmp_path, backend=FakeBackend([buffer.getvalue()]), include_image_block=True)
    seen: list[list[object]] = []

    def draw(messages: list[object]) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": tool.name, "args": {"prompt": "a kite"}, "id": "c1"}])

    def answer(messages: list[object]) -> AIMessage:
        seen.append(list(messages))
        return AIMessage("Here it is.")

    agent = create_agent(ScriptedChatModel(steps=[draw, answer]), tools=[tool], middleware=[PreviewsAsUserMessages()])
    state = agent.invoke({"messages": [HumanMessage("Draw a kite.")]})
    kinds = [type(m).__name__ for m in seen[0]]
    assert kinds[-2:] == ["ToolMessage", "HumanMessage"], kinds
    assert isinstance(seen[0][-2].content, str)  # type: ignore[attr-defined]
    stored = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert isinstance(stored.content, list)  # the agent's state keeps the original tool message


async def test_the_apis_own_base64_is_relayed_without_encoding() -> None:
    event = partial_event(2000)
    original = base64.b64encode(event.partial.data).decode()
    carried = event.model_copy(update={"b64": original})
    payload = await astream_event_payload(carried, data="base64")
    assert payload is not None and payload["b64"] is original
    sync = stream_event_payload(carried, data=True)
    assert sync is not None and sync["b64"] is original
    assert "b64" not in carried.model_dump()  # never serialised with the event


def test_generator_events_carry_the_apis_base64(tmp_path: object) -> None:
    from imagegen_tool.generator import ImageGenerator
    from imagegen_tool.streaming import PartialImageData as BackendPartial

    generator = ImageGenerator(store=tmp_path, api_key="sk-test-not-a-real-key")
    b64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(64)).decode()
    event = generator._store_partial(BackendPartial(call_id="ig_1", index=0, b64=b64))
    if event is None:
        pytest.skip("the store refused these preview bytes")
    assert event.b64 == b64
