"""The OpenAI Agents SDK adapter end to end: real ``Runner`` runs with the SDK's own ``ScriptedModel`` (agents.testing)
as the agent's model, the image tool talking to the emulator over real HTTP through the real ``openai`` clients.

The hosted-tool capture runs against the emulator too: the emulator answers the Responses API like a model that
uses the hosted ``image_generation`` tool, so the SDK's own ``OpenAIResponsesModel`` drives it.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    ImageGenerationTool,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    RunResult,
    SQLiteSession,
    UserError,
    set_tracing_disabled,
)
from agents.run_config import CallModelData, ModelInputData
from agents.strict_schema import ensure_strict_json_schema
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from openai import AsyncOpenAI

from imagegen_tool import ModerationBlockedError, QuotaExceededError
from imagegen_tool.agent_tool import AgentImageTool, ToolResult
from imagegen_tool.openai_agents import (
    CUSTOM_DATA_KEY,
    HostedImageCapture,
    image_function_tool,
    tool_results,
)
from imagegen_tool.testing import Emulator

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

ID = re.compile(r"\bid: ([A-Za-z0-9][A-Za-z0-9_-]*)")
# Any run of base64 long enough to be image data (a 1x1 PNG alone is ~90 characters).
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{400,}")


@pytest.fixture(autouse=True)
def _no_trace_export() -> Iterator[None]:
    # The SDK exports traces to OpenAI by default: never from tests.
    set_tracing_disabled(True)
    yield
    gc.collect()  # an unclosed transport warns now, inside the test (and fails it)


def make_tool(emulator: Emulator, store: Path, **settings: Any) -> Any:
    settings.setdefault("options", {"quality": "low"})
    return image_function_tool(store=store, base_url=emulator.url, api_key="sk-test", **settings)


def last_output(call: ModelCall) -> Any:
    """The output of the latest function call the model is shown."""
    outputs = [item for item in call.input if isinstance(item, dict) and item.get("type") == "function_call_output"]
    return outputs[-1]["output"]


def output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return " ".join(part.get("text", "") for part in output if part.get("type") == "input_text")


def no_base64(value: Any) -> bool:
    return BASE64_RUN.search(json.dumps(value, default=str)) is None


def test_schema_is_strict_under_the_sdks_own_checker(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    tool = make_tool(imagegen_emulator, tmp_path, exposed_options=("size", "quality", "background", "output_format"))
    schema = tool.params_json_schema
    assert tool.strict_json_schema is True
    # The SDK's checker leaves it unchanged (nothing it had to fix) and it stays valid for OpenAI strict mode.
    assert ensure_strict_json_schema(copy.deepcopy(schema)) == schema
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])
    assert {"prompt", "image_ids", "mask_id", "size", "quality"} <= set(schema["properties"])
    assert "default" not in json.dumps(schema)
    tool.close()


async def test_generate_then_edit_by_handle(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images")

    def edit(call: ModelCall) -> Any:
        image_id = ID.search(output_text(last_output(call)))
        assert image_id is not None, last_output(call)
        args = {"prompt": "make the kite blue", "image_ids": [image_id.group(1)], "mask_id": None, "size": ""}
        return [function_call("generate_image", args, call_id="call_edit")]

    model = ScriptedModel(
        [
            # Models send null and "" for optional arguments: both mean "not given".
            [function_call("generate_image", {"prompt": "a red kite", "image_ids": None, "mask_id": ""}, call_id="c1")],
            ModelStep.respond(edit),
            [assistant_message("Drawn and edited.")],
        ]
    )
    agent = Agent(name="artist", model=model, tools=[tool])
    result = await Runner.run(agent, "Draw a red kite, then make it blue.")
    await tool.aclose()

    assert result.final_output == "Drawn and edited."
    first, second = tool_results(result)
    assert not first.is_error and not second.is_error
    assert second.images[0].input_ids == (first.images[0].id,)
    assert Path(second.images[0].path or "").is_file()
    assert len(imagegen_emulator.generations) == 2  # one billed render per call, nothing more
    # The model saw handles and text only: no image bytes in any model call's input, nor in the run history.
    assert all(no_base64(call.input) for call in model.calls)
    assert no_base64(result.to_input_list())
    # The structured results are on the output items for the program, never in what the model is sent.
    outputs = [item for item in result.to_input_list() if item.get("type") == "function_call_output"]
    assert all(CUSTOM_DATA_KEY not in json.dumps(item) for item in outputs)


async def test_invalid_arguments_get_an_actionable_message_and_the_retry_works(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images", options={}, exposed_options=("quality",))

    def retry(call: ModelCall) -> Any:
        text = output_text(last_output(call))
        assert "quality" in text and "'low'" in text and "call the tool again" in text.lower(), text
        return [function_call("generate_image", {"prompt": "a red kite", "quality": "low"}, call_id="c2")]

    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": "a red kite", "quality": "ultra"}, call_id="c1")],
            ModelStep.respond(retry),
            [assistant_message("ok")],
        ]
    )
    result = await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Draw a kite")
    await tool.aclose()

    refused, made = tool_results(result)
    assert refused.is_error and refused.error_type == "ToolArgumentsError" and not refused.images
    assert len(made.images) == 1
    # Nothing was sent for the invalid call: one image request in all.
    assert len(imagegen_emulator.requests_to("/v1/responses", "POST")) == 1


async def test_bad_image_id_is_explained_to_the_model(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images")
    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": "edit", "image_ids": ["../etc/passwd"]}, call_id="c1")],
            [function_call("generate_image", {"prompt": "edit", "image_ids": ["img_unknown"]}, call_id="c2")],
            [assistant_message("gave up")],
        ]
    )
    result = await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Edit it")
    await tool.aclose()
    malformed, unknown = tool_results(result)
    assert malformed.is_error and "not an image id" in (malformed.error or "")
    assert unknown.is_error and "img_unknown" in (unknown.error or "")
    assert imagegen_emulator.requests_to("/v1/responses", "POST") == []


async def test_moderation_is_a_clear_failure_the_model_reads(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images")
    trigger = imagegen_emulator.moderation_trigger
    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": f"a {trigger} scene"}, call_id="c1")],
            ModelStep.respond(lambda call: [assistant_message(output_text(last_output(call)))]),
        ]
    )
    result = await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Draw it")
    await tool.aclose()
    assert "moderation" in result.final_output and "Do not retry the same prompt" in result.final_output
    (blocked,) = tool_results(result)
    assert blocked.is_error and blocked.error_type == "ModerationBlockedError" and blocked.retryable is False


async def test_typed_errors_reach_the_developer(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    seen: list[Exception] = []

    def record(ctx: Any, error: Exception) -> str:
        seen.append(error)
        return "The image service is out of credit: tell the user."

    tool = make_tool(imagegen_emulator, tmp_path / "images", failure_error_function=record)
    imagegen_emulator.fail_next(429, code="insufficient_quota", path="/v1/responses")
    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": "a kite"}, call_id="c1")],
            ModelStep.respond(lambda call: [assistant_message(output_text(last_output(call)))]),
        ]
    )
    result = await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Draw it")
    assert result.final_output == "The image service is out of credit: tell the user."
    assert len(seen) == 1 and isinstance(seen[0], QuotaExceededError)
    (failed,) = tool_results(result)
    assert failed.error_type == "QuotaExceededError"

    # failure_error_function=None: the typed error fails the run, as the SDK does for its own tools.
    raising = image_function_tool(tool.core, failure_error_function=None)
    trigger = imagegen_emulator.moderation_trigger
    model = ScriptedModel([[function_call("generate_image", {"prompt": f"{trigger} thing"}, call_id="c1")]])
    with pytest.raises(UserError) as caught:
        await Runner.run(Agent(name="artist", model=model, tools=[raising]), "Draw it")
    assert isinstance(caught.value.__cause__, ModerationBlockedError)
    await tool.aclose()


async def test_previews_only_when_asked_as_image_output_items(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images", include_preview=True, preview_max_side=64)
    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": "a kite"}, call_id="c1")],
            [assistant_message("ok")],
        ]
    )
    result = await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Draw it")
    await tool.aclose()
    output = last_output(model.calls[-1])
    assert [part["type"] for part in output] == ["input_text", "input_image"]
    assert output[1]["image_url"].startswith("data:image/jpeg;base64,") and output[1]["detail"] == "low"
    assert len(output[1]["image_url"]) < 20_000  # a small preview, not the image
    assert "preview is attached" in output[0]["text"]
    (made,) = tool_results(result)
    assert made.images[0].preview is True


@pytest.mark.parametrize("sync", [False, True], ids=["async-client", "sync-client"])
def test_run_sync(imagegen_emulator: Emulator, tmp_path: Path, sync: bool) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images", sync=sync, thread_sessions=True, thread_id=lambda c: "t1")
    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": "a kite"}, call_id="c1")],
            # thread_sessions: no image_ids, yet the call continues from this conversation's latest image.
            [function_call("generate_image", {"prompt": "make it blue"}, call_id="c2")],
            [assistant_message("ok")],
        ]
    )
    try:
        result: RunResult = Runner.run_sync(Agent(name="artist", model=model, tools=[tool]), "Draw it")
        tool.close()
    finally:
        # run_sync keeps the thread's default event loop open for the next run_sync: the test closes it.
        policy = asyncio.get_event_loop_policy()
        policy.get_event_loop().close()
        policy.set_event_loop(None)
    first, second = tool_results(result)
    assert second.images[0].input_ids == (first.images[0].id,)


async def test_streamed_runs(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images")
    model = ScriptedModel(
        [[function_call("generate_image", {"prompt": "a kite"}, call_id="c1")], [assistant_message("ok")]]
    )
    streamed = Runner.run_streamed(Agent(name="artist", model=model, tools=[tool]), "Draw it")
    kinds = [event.type async for event in streamed.stream_events()]
    await tool.aclose()
    assert "run_item_stream_event" in kinds and streamed.final_output == "ok"
    (made,) = tool_results(streamed)
    assert len(made.images) == 1


# -- the SDK's hosted image tool -----------------------------------------------------------------------------


@pytest.fixture
async def responses_client(imagegen_emulator: Emulator) -> Any:
    client = AsyncOpenAI(base_url=imagegen_emulator.url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


def hosted_agent(client: AsyncOpenAI, **settings: Any) -> Agent[Any]:
    return Agent(
        name="artist",
        model=OpenAIResponsesModel(model="gpt-5", openai_client=client),
        tools=[ImageGenerationTool(tool_config={"type": "image_generation", "quality": "low"})],
        **settings,
    )


async def test_hosted_tool_images_become_handles_and_leave_the_history(
    imagegen_emulator: Emulator, responses_client: AsyncOpenAI, tmp_path: Path
) -> None:
    seen: list[str] = []
    capture = HostedImageCapture(store=tmp_path / "images", on_image=lambda image: seen.append(image.id))
    agent = hosted_agent(responses_client)
    first = await Runner.run(agent, "Draw a red kite", hooks=capture.hooks, run_config=capture.run_config())
    assert len(capture.images) == 1 and seen == [capture.images[0].id]
    image = capture.images[0]
    assert Path(image.path or "").is_file() and image.response_stored
    # No base64 in the run's items, its history, or its raw responses.
    assert no_base64(first.to_input_list())
    assert no_base64([response.output for response in first.raw_responses])

    history = [*first.to_input_list(), {"role": "user", "content": "Now make the kite blue"}]
    second = await Runner.run(agent, history, hooks=capture.hooks, run_config=capture.run_config())
    # The next model call's input carries the earlier image as a reference, not as base64.
    request = imagegen_emulator.requests_to("/v1/responses", "POST")[-1].json
    assert no_base64(request["input"])
    references = [item for item in request["input"] if item.get("type") == "item_reference"]
    assert references == [{"type": "item_reference", "id": image.call_id}]
    # The model (the emulator) still saw the image through the reference: it edited it.
    assert "edited" in second.final_output
    assert len(capture.images) == 2
    await capture.aclose()


async def test_hosted_capture_cleans_a_history_from_before_the_capture(
    imagegen_emulator: Emulator, responses_client: AsyncOpenAI, tmp_path: Path
) -> None:
    agent = hosted_agent(responses_client)
    plain = await Runner.run(agent, "Draw a red kite")  # no capture: the history holds the base64
    assert not no_base64(plain.to_input_list())

    capture = HostedImageCapture(store=tmp_path / "images")
    session = SQLiteSession("conversation")  # in memory
    await session.add_items(plain.to_input_list())
    await Runner.run(agent, "Make it blue", session=session, hooks=capture.hooks, run_config=capture.run_config())
    request = imagegen_emulator.requests_to("/v1/responses", "POST")[-1].json
    assert no_base64(request["input"])
    # The old image was stored on the way (2 handles: the old one and the edit).
    assert len(capture.images) == 2 and capture.images[0].call_id in json.dumps(request["input"])
    stored_items = await session.get_items()
    assert no_base64(stored_items[len(plain.to_input_list()) :])
    session.close()
    await capture.aclose()


async def test_hosted_capture_in_a_streamed_run(
    imagegen_emulator: Emulator, responses_client: AsyncOpenAI, tmp_path: Path
) -> None:
    capture = HostedImageCapture(store=tmp_path / "images")
    streamed = Runner.run_streamed(
        hosted_agent(responses_client), "Draw a kite", hooks=capture.hooks, run_config=capture.run_config()
    )
    async for _event in streamed.stream_events():
        pass
    assert len(capture.images) == 1
    assert no_base64(streamed.to_input_list())
    await capture.aclose()


async def test_hosted_capture_keeps_the_developers_own_input_filter(
    imagegen_emulator: Emulator, responses_client: AsyncOpenAI, tmp_path: Path
) -> None:
    calls: list[int] = []

    def own_filter(data: CallModelData[Any]) -> ModelInputData:
        calls.append(len(data.model_data.input))
        return data.model_data

    capture = HostedImageCapture(store=tmp_path / "images")
    config = capture.run_config(RunConfig(call_model_input_filter=own_filter))
    await Runner.run(hosted_agent(responses_client), "Draw a kite", hooks=capture.hooks, run_config=config)
    assert calls and len(capture.images) == 1
    await capture.aclose()


async def test_hosted_capture_with_store_false_keeps_the_image_it_must_send(
    imagegen_emulator: Emulator, responses_client: AsyncOpenAI, tmp_path: Path
) -> None:
    from agents import ModelSettings

    capture = HostedImageCapture(store=tmp_path / "images")
    agent = hosted_agent(responses_client, model_settings=ModelSettings(store=False))
    first = await Runner.run(agent, "Draw a kite", hooks=capture.hooks, run_config=capture.run_config())
    # The image is stored as a handle either way; the API keeps no copy, so no reference replaces it.
    assert len(capture.images) == 1 and not capture.images[0].response_stored
    assert not any(item.get("type") == "item_reference" for item in first.to_input_list())
    await capture.aclose()


def test_tool_results_reads_only_image_results() -> None:
    assert tool_results([]) == []
    assert ToolResult.model_validate(ToolResult().model_dump(mode="json")) == ToolResult()


def test_core_or_settings_not_both(tmp_path: Path) -> None:
    core = AgentImageTool(store=tmp_path, api_key="sk-test")
    with pytest.raises(TypeError):
        image_function_tool(core, store=tmp_path)
    core.close()


@dataclass
class EndUser:
    user_hash: Any


@pytest.mark.parametrize("sync", [False, True], ids=["async-client", "sync-client"])
async def test_each_run_sends_the_end_user_from_its_context(
    imagegen_emulator: Emulator, tmp_path: Path, sync: bool
) -> None:
    tool = make_tool(
        imagegen_emulator, tmp_path / "images", sync=sync, safety_identifier_for=lambda c: c.context.user_hash
    )
    for user in ("alice-hash", "bob-hash"):
        model = ScriptedModel(
            [[function_call("generate_image", {"prompt": "a kite"}, call_id="c1")], [assistant_message("ok")]]
        )
        await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Draw it", context=EndUser(user))
    await tool.aclose()
    sent = [request.json["safety_identifier"] for request in imagegen_emulator.requests_to("/v1/responses", "POST")]
    assert sent == ["alice-hash", "bob-hash"]


@pytest.mark.parametrize("value", ["sk-proj-" + "x" * 40, 7])
async def test_a_bad_end_user_fails_the_call_before_anything_is_sent(
    imagegen_emulator: Emulator, tmp_path: Path, value: Any
) -> None:
    tool = make_tool(imagegen_emulator, tmp_path / "images", safety_identifier_for=lambda c: c.context.user_hash)
    model = ScriptedModel(
        [
            [function_call("generate_image", {"prompt": "a kite"}, call_id="c1")],
            ModelStep.respond(lambda call: [assistant_message(output_text(last_output(call)))]),
        ]
    )
    result = await Runner.run(Agent(name="artist", model=model, tools=[tool]), "Draw it", context=EndUser(value))
    await tool.aclose()
    (failed,) = tool_results(result)
    assert failed.is_error and failed.error_type == "ConfigurationError"
    assert "safety_identifier" in result.final_output and "sk-proj-" not in result.final_output
    assert imagegen_emulator.requests_to("/v1/responses", "POST") == []
