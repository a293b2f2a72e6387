"""The OpenAI Agents SDK adapter: the image tool as a ``FunctionTool``, and handles for the SDK's hosted image tool.

Two ways to give an Agents SDK agent images, both keeping base64 out of the run history:

* :func:`image_function_tool` → :class:`ImageFunctionTool`, a ``FunctionTool`` for **any** model the SDK can
  drive (Responses, Chat Completions, LiteLLM, ...). Its strict JSON schema, argument parsing, result text,
  previews and agent error messages all come from the framework-neutral core
  (:class:`~imagegen_tool.agent_tool.AgentImageTool`); this module only converts to the SDK's types. The model
  reads the result text (plus an ``input_image`` per preview when the developer turns previews on); the program
  gets the structured handles (:class:`~imagegen_tool.agent_tool.ToolResult`) as the tool output item's
  ``custom_data``, which the SDK never sends to the model (:func:`tool_results`).
* :class:`HostedImageCapture`, for agents whose model is on OpenAI's Responses API and that use the SDK's own
  hosted ``ImageGenerationTool``: a ``RunHooks`` that stores each generated image in the store as a handle and
  drops the base64 from the run's items, and a ``call_model_input_filter`` that sends earlier images to the
  model as ``item_reference`` items instead of their bytes.

The SDK is an optional extra (``pip install 'imagegen-tool[openai-agents]'``); ``import imagegen_tool`` never
imports it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    FunctionToolCustomDataContext,
    ModelResponse,
    RunConfig,
    RunContextWrapper,
    RunHooks,
    ToolCallOutputItem,
    ToolOutputImage,
    ToolOutputText,
)
from agents.run_config import CallModelData, CallModelInputFilter, ModelInputData
from agents.tool_context import ToolContext

from .agent_tool import AgentImageTool, ToolOutput, ToolResult, agent_error_message
from .errors import ImageGenerationError
from .generator import ImageGenerator
from .images import GeneratedImage
from .store import ImageStore

__all__ = [
    "CUSTOM_DATA_KEY",
    "HostedImageCapture",
    "ImageFunctionTool",
    "image_function_tool",
    "tool_results",
]

logger = logging.getLogger(__name__)

#: The key of the structured result in a tool output item's ``custom_data`` (``ToolCallOutputItem.custom_data``).
CUSTOM_DATA_KEY = "imagegen"

#: What the tool reads a conversation/session key from (for ``thread_sessions``): the run context.
ThreadIdFunction = Callable[[RunContextWrapper[Any]], object]
#: Reads the end user of a run from its context, sent as the call's ``safety_identifier``.
SafetyIdentifierFunction = Callable[[RunContextWrapper[Any]], str | None]
#: The SDK's failure formatter shape: gets the exception, returns the text the model reads.
FailureFunction = Callable[[RunContextWrapper[Any], Exception], str | Awaitable[str]]


class _Default:
    """Marks "use the adapter's agent error message" for ``failure_error_function``."""


_AGENT_MESSAGE = _Default()


@dataclass
class ImageFunctionTool(FunctionTool):
    """A ``FunctionTool`` running :class:`~imagegen_tool.agent_tool.AgentImageTool`; make one with
    :func:`image_function_tool`. ``core`` is the tool core (its store, generator, settings); :meth:`close` /
    :meth:`aclose` (or ``async with``) close the HTTP clients the core made."""

    core: AgentImageTool | None = field(default=None, kw_only=True, repr=False)

    def _core(self) -> AgentImageTool:
        if self.core is None:  # only a hand-made instance lacks it
            raise ValueError("ImageFunctionTool has no core: make it with image_function_tool()")
        return self.core

    def close(self) -> None:
        """Close the HTTP clients the core made (a generator passed in stays open: it is the caller's)."""
        self._core().close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self._core().aclose()

    def __enter__(self) -> ImageFunctionTool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ImageFunctionTool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def image_function_tool(
    tool: AgentImageTool | None = None,
    *,
    thread_id: ThreadIdFunction | None = None,
    safety_identifier_for: SafetyIdentifierFunction | None = None,
    failure_error_function: FailureFunction | _Default | None = _AGENT_MESSAGE,
    sync: bool = False,
    needs_approval: bool = False,
    is_enabled: bool = True,
    **core_settings: Any,
) -> ImageFunctionTool:
    """The image tool as an Agents SDK ``FunctionTool`` with a strict JSON schema, usable by any model.

    Example::

        from agents import Agent, Runner
        from imagegen_tool.openai_agents import image_function_tool

        images = image_function_tool(store="images/", options={"quality": "low"}, display="id")
        agent = Agent(name="Artist", instructions="Draw what the user asks for.", tools=[images])
        result = await Runner.run(agent, "Draw a red kite")
        await images.aclose()

    Args:
        tool: the tool core; without it one is made from ``core_settings`` (the keyword arguments of
            :class:`~imagegen_tool.agent_tool.AgentImageTool`: ``store``, ``options``, ``exposed_options``,
            ``include_preview``, ``display``, ``client``/``async_client``, ...).
        thread_id: reads a conversation key from the run context (e.g. ``lambda ctx: ctx.context.user_id``) for
            the core's ``thread_sessions``.
        safety_identifier_for: reads the end user of a run from its context (e.g. ``lambda ctx:
            ctx.context.user_hash``), sent as that call's ``safety_identifier`` instead of the core's own: one tool
            for many users. A value that is not a string, is empty or too long, or looks like an API key fails the
            call before anything is sent.
        failure_error_function: turns a failed call into the text the model reads. Default: the agent error
            message (what went wrong and what to do next; e.g. rephrase after a moderation block, pick an
            allowed value for an invalid option). It receives the typed exception
            (:class:`~imagegen_tool.errors.ImageGenerationError` subclasses), so a custom one can record it.
            ``None``: the exception propagates and the SDK fails the run (``agents.UserError`` whose
            ``__cause__`` is the typed error).
        sync: run the core's blocking path (the sync ``OpenAI`` client) in a worker thread, for a generator
            configured with a sync client only.
        needs_approval, is_enabled: as on ``FunctionTool`` (``needs_approval=True`` pauses the run before each
            billed call for a human's approval).

    Previews: with ``include_preview=True`` on the core the output is a list of ``ToolOutputText`` and one
    ``ToolOutputImage`` (a small JPEG data URL, ``detail="low"``) per image; the preview is then part of the
    run history, as any tool output is. Without it the output is the text only.
    """
    if tool is None:
        tool = AgentImageTool(**core_settings)
    elif core_settings:
        raise TypeError(f"pass either a tool core or its settings, not both: {', '.join(sorted(core_settings))}")
    core = tool
    structured: dict[str, ToolResult] = {}
    lock = threading.Lock()

    async def format_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
        if isinstance(failure_error_function, _Default):
            return agent_error_message(error, tool_name=core.name)
        assert failure_error_function is not None
        text = failure_error_function(ctx, error)
        return await text if inspect.isawaitable(text) else text

    async def invoke(ctx: ToolContext[Any], arguments: str) -> Any:
        key = thread_id(ctx) if thread_id is not None else None
        try:
            user = safety_identifier_for(ctx) if safety_identifier_for is not None else None
            if sync:
                output = await asyncio.to_thread(core.call, arguments, thread_id=key, safety_identifier=user)
            else:
                output = await core.acall(arguments, thread_id=key, safety_identifier=user)
        except Exception as exc:
            if failure_error_function is None:
                raise
            if isinstance(exc, ImageGenerationError):
                logger.info("%s failed: %s", core.name, exc)
            else:
                logger.exception("%s failed unexpectedly", core.name)
            text = await format_failure(ctx, exc)
            with lock:
                structured[ctx.tool_call_id] = ToolOutput.from_error(exc, tool_name=core.name).structured()
            return text
        with lock:
            structured[ctx.tool_call_id] = output.structured()
        return _model_output(output)

    def custom_data(data: FunctionToolCustomDataContext) -> Mapping[str, Any] | None:
        with lock:
            result = structured.pop(data.tool_context.tool_call_id, None)
        return {CUSTOM_DATA_KEY: result.model_dump(mode="json")} if result is not None else None

    return ImageFunctionTool(
        name=core.name,
        description=core.description,
        params_json_schema=core.json_schema(strict=True),
        on_invoke_tool=invoke,
        strict_json_schema=True,
        needs_approval=needs_approval,
        is_enabled=is_enabled,
        custom_data_extractor=custom_data,
        core=core,
    )


def _model_output(output: ToolOutput) -> str | list[ToolOutputText | ToolOutputImage]:
    """What the model reads: the result text, then an ``input_image`` per preview the developer asked for."""
    if not output.previews:
        return output.text
    return [
        ToolOutputText(text=output.text),
        *(ToolOutputImage(image_url=preview.data_url, detail="low") for preview in output.previews),
    ]


def tool_results(run_result: Any, *, tool_name: str | None = None) -> list[ToolResult]:
    """The structured results (:class:`~imagegen_tool.agent_tool.ToolResult`) of the image tool calls of a run,
    in order: pass a ``RunResult`` / ``RunResultStreaming`` (its ``new_items``) or a list of run items.

    They come from the tool output items' ``custom_data``, which the SDK keeps for the program and never sends to
    the model; they survive ``RunState`` serialisation."""
    items = getattr(run_result, "new_items", run_result)
    results = []
    for item in items:
        if not isinstance(item, ToolCallOutputItem) or not item.custom_data:
            continue
        data = item.custom_data.get(CUSTOM_DATA_KEY)
        if data is None:
            continue
        if tool_name is not None and _item_tool_name(item) not in (tool_name, None):
            continue
        results.append(ToolResult.model_validate(data))
    return results


def _item_tool_name(item: ToolCallOutputItem) -> str | None:
    raw = item.raw_item
    name = raw.get("name") if isinstance(raw, Mapping) else getattr(raw, "name", None)
    return name if isinstance(name, str) else None


# -- the SDK's hosted image tool ------------------------------------------------------------------------------


class HostedImageCapture:
    """Stores the images of the Agents SDK's hosted ``ImageGenerationTool`` as handles and keeps their base64 out of
    the run history (for agents whose model is on OpenAI's Responses API).

    The hosted tool puts each image into the model's output as an ``image_generation_call`` item whose ``result``
    is 2-4 MB of base64, and the SDK would send it back to the model on every later turn. With the capture:

    * :attr:`hooks` (a ``RunHooks``; ``on_llm_end``) stores each image in the store (a
      :class:`~imagegen_tool.GeneratedImage` handle, idempotent per image call) and empties the item's ``result``
      in place, so ``result.new_items``, ``result.to_input_list()``, ``raw_responses`` and sessions hold no image
      bytes. An image that cannot be stored keeps its base64 (it is paid for) and a warning is logged.
    * :meth:`input_filter` (a ``RunConfig.call_model_input_filter``) sends each earlier image call to the model as
      an ``item_reference`` (the API resolves it from the stored response, so the model can still edit it), and
      captures any base64 still in the input first (for a history from before the capture). With
      ``store=False`` in the agent's ``model_settings`` (the hooks see the agent, not the ``RunConfig``) the API
      keeps no copy: the image must travel, and the filter leaves such items alone.

    Example::

        capture = HostedImageCapture(store="images/")
        agent = Agent(name="Artist", model="gpt-5", tools=[ImageGenerationTool({"type": "image_generation"})])
        result = await Runner.run(agent, "Draw a kite", hooks=capture.hooks, run_config=capture.run_config())
        capture.images            # GeneratedImage handles, in order

    Args:
        store: where images go (an :class:`~imagegen_tool.ImageStore` or a directory); or
        generator: an :class:`~imagegen_tool.ImageGenerator` whose store is used (no request is sent through it).
        session: a store session key: each image becomes that session's latest (as the function tool's
            ``thread_sessions`` would record it), so a later call can continue from it.
        on_image: called with each stored handle (e.g. to show it in a UI).
    """

    def __init__(
        self,
        store: ImageStore | str | os.PathLike[str] | None = None,
        *,
        generator: ImageGenerator | None = None,
        session: str | None = None,
        on_image: Callable[[GeneratedImage], object] | None = None,
    ) -> None:
        if generator is not None and store is not None:
            raise TypeError("pass either store or generator, not both")
        self.owns_generator = generator is None
        # Only the store is used: the generator sends nothing, so its client needs no key until asked to.
        self.generator = generator if generator is not None else ImageGenerator(store=store, api_key="unused")
        self.session = session
        self.on_image = on_image
        self.images: list[GeneratedImage] = []
        self._by_call: dict[str, GeneratedImage] = {}
        self._lock = asyncio.Lock()
        self.hooks: RunHooks[Any] = _CaptureHooks(self)

    @property
    def by_call_id(self) -> Mapping[str, GeneratedImage]:
        """The stored handle of each captured image call (``ig_...``)."""
        return dict(self._by_call)

    def run_config(self, base: RunConfig | None = None) -> RunConfig:
        """A ``RunConfig`` with :meth:`input_filter` installed (after ``base``'s own filter, if it has one)."""
        config = base if base is not None else RunConfig()
        earlier = config.call_model_input_filter
        if earlier is None:
            config.call_model_input_filter = self.input_filter
        else:
            config.call_model_input_filter = _chained(earlier, self.input_filter)
        return config

    async def capture(self, items: Iterable[Any], *, response_id: str | None, stored: bool) -> list[GeneratedImage]:
        """Store the images of these output (or input) items and empty their ``result`` in place; returns the
        handles (images already captured are not stored twice)."""
        handles: list[GeneratedImage] = []
        async with self._lock:
            for item in items:
                if _field(item, "type") != "image_generation_call":
                    continue
                call_id = _field(item, "id")
                if not isinstance(call_id, str):
                    continue
                known = self._by_call.get(call_id)
                if known is None and _field(item, "result"):
                    known = await self._store(item, response_id=response_id, stored=stored)
                if known is not None:
                    _set_field(item, "result", None)
                    handles.append(known)
        return handles

    async def _store(self, item: Any, *, response_id: str | None, stored: bool) -> GeneratedImage | None:
        body = {
            # An item found in the input has lost its response id: the record then names a placeholder, and is
            # marked not stored so that nothing later tries to continue from a response that does not exist.
            "id": response_id or f"resp_unknown_{_field(item, 'id')}",
            "object": "response",
            "store": stored and response_id is not None,
            "output": [_as_mapping(item)],
        }
        try:
            result = await self.generator.astore_response(body, session=self.session)
        except ImageGenerationError as exc:
            logger.warning("hosted image %s kept in the run history: it could not be stored (%s)", item, exc)
            return None
        image = result.images[0]
        self._by_call[image.call_id or str(_field(item, "id"))] = image
        self.images.append(image)
        if self.on_image is not None:
            self.on_image(image)
        return image

    async def input_filter(self, data: CallModelData[Any]) -> ModelInputData:
        """The ``call_model_input_filter``: earlier image calls become ``item_reference`` items (no base64)."""
        stored = _stores_responses(data.agent)
        items = list(data.model_data.input)
        await self.capture(items, response_id=None, stored=stored)
        if stored:
            items = [_reference(item) for item in items]
        return ModelInputData(input=items, instructions=data.model_data.instructions)

    def close(self) -> None:
        """Close the store of a generator the capture made."""
        if self.owns_generator:
            self.generator.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self.owns_generator:
            await self.generator.aclose()


class _CaptureHooks(RunHooks[Any]):
    """``on_llm_end``: store the hosted tool's images before the run keeps (and re-sends) the items."""

    def __init__(self, capture: HostedImageCapture) -> None:
        self._capture = capture

    async def on_llm_end(self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse) -> None:
        await self._capture.capture(response.output, response_id=response.response_id, stored=_stores_responses(agent))


def _stores_responses(agent: Agent[Any]) -> bool:
    # The Responses API stores responses unless the request says store=false.
    return agent.model_settings.store is not False


def _reference(item: Any) -> Any:
    if _field(item, "type") == "image_generation_call" and not _field(item, "result") and _field(item, "id"):
        return {"type": "item_reference", "id": _field(item, "id")}
    return item


def _chained(first: CallModelInputFilter, second: CallModelInputFilter) -> CallModelInputFilter:
    async def both(data: CallModelData[Any]) -> ModelInputData:
        filtered = first(data)
        model_data = await filtered if inspect.isawaitable(filtered) else filtered
        again = second(CallModelData(model_data=model_data, agent=data.agent, context=data.context))
        return await again if inspect.isawaitable(again) else again

    return both


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _set_field(item: Any, name: str, value: Any) -> None:
    if isinstance(item, dict):
        item[name] = value
    else:
        setattr(item, name, value)


def _as_mapping(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    dump: Callable[..., dict[str, Any]] = item.model_dump
    return dump(mode="json")


_ = Sequence  # re-exported types only
