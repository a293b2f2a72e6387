"""LangChain adapter: :class:`ImageGenerationTool`, a ``BaseTool`` any LangChain or LangGraph agent can call.

A thin shell over the framework-neutral :class:`~imagegen_tool.agent_tool.AgentImageTool`, which builds the
argument schema from the developer's options (locked values never reach the schema), validates the agent's
arguments, calls the generator and writes the text the model reads. This module only converts to LangChain's
types: results follow the ``content_and_artifact`` convention (the model reads a short text with the image
handles, the program gets the :class:`~imagegen_tool.images.GeneratedImage` handles as the ``ToolMessage``
artifact), previews become standard image content blocks, stream events become custom events (``astream_events``)
and LangGraph ``stream_mode="custom"`` chunks, errors become ``ToolMessage`` objects with ``status="error"``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.content import create_image_block
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ArgsSchema, ToolExceptionHandlerOutput
from openai import AsyncOpenAI, OpenAI
from pydantic import Field, PrivateAttr, ValidationError

from .agent_tool import (
    COMPLETED_EVENT,
    DEFAULT_EXPOSED_OPTIONS,
    EXPOSABLE_OPTIONS,
    PARTIAL_IMAGE_EVENT,
    PROGRESS_EVENT,
    AgentImageTool,
    Display,
    PartialImageData,
    ToolOutput,
    astream_event_payload,
    build_args_schema,
    describe_validation_error,
    format_result,
    stream_event_payload,
)
from .backends import ImageBackend
from .errors import ImageGenerationError
from .generator import ImageGenerator
from .images import GeneratedImage
from .inputs import AGENT_INPUT_POLICY, InputPolicy
from .options import TRUSTED_CONTEXT, ImageOptions
from .store import ImageStore
from .streaming import StreamEvent

__all__ = [
    "COMPLETED_EVENT",
    "DEFAULT_EXPOSED_OPTIONS",
    "EXPOSABLE_OPTIONS",
    "PARTIAL_IMAGE_EVENT",
    "PROGRESS_EVENT",
    "ImageGenerationTool",
    "build_args_schema",
    "cost_metadata",
    "describe_validation_error",
    "format_result",
    "images_from_message",
    "previews_as_user_messages",
    "stream_event_payload",
]

logger = logging.getLogger(__name__)

ToolContent = str | list[str | dict[str, Any]]


def cost_metadata(images: Sequence[GeneratedImage]) -> dict[str, Any] | None:
    """What a tool call cost, JSON-friendly, for ``ToolMessage.response_metadata["imagegen"]``: ``cost_usd`` and
    ``estimated_cost_usd`` (decimal strings, absent when unknown), the image model, and ``usage_metadata`` in
    LangChain's shape (``input_tokens``, ``output_tokens``, ``total_tokens``: text and image tokens together)."""
    if not images or images[0].cost is None:
        return None
    first = images[0]
    cost = first.cost
    assert cost is not None
    data: dict[str, Any] = {"model": first.model, "images": len(images)}
    if cost.actual is not None and cost.actual.usd is not None:
        data["cost_usd"] = str(cost.actual.usd)
    if cost.estimate is not None and cost.estimate.usd is not None:
        data["estimated_cost_usd"] = str(cost.estimate.usd)
    usage = first.usage
    if usage is not None:
        parts = [p for p in (usage.text, usage.image) if p is not None]
        input_tokens = sum(p.input_tokens for p in parts)
        output_tokens = sum(p.output_tokens for p in parts)
        data["usage_metadata"] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
    return data


def _with_cost_metadata(output: Any) -> Any:
    if not isinstance(output, ToolMessage) or not isinstance(output.artifact, list):
        return output
    images = [item for item in output.artifact if isinstance(item, GeneratedImage)]
    metadata = cost_metadata(images)
    if metadata is not None:
        output.response_metadata = {**output.response_metadata, "imagegen": metadata}
    return output


def images_from_message(message: ToolMessage) -> list[GeneratedImage]:
    """The image handles of a ``ToolMessage`` from this tool, also after a LangGraph checkpoint round trip
    (checkpointers store the artifact's handles as plain dicts). Raises ``ValueError`` for another artifact."""
    artifact = message.artifact or []
    if not isinstance(artifact, list):
        raise ValueError(f"not an image tool artifact: {type(artifact).__name__}")
    try:
        return [
            item
            if isinstance(item, GeneratedImage)
            else GeneratedImage.model_validate(item, context={TRUSTED_CONTEXT: True})
            for item in artifact
        ]
    except ValidationError as exc:
        raise ValueError(f"not an image tool artifact: {exc.error_count()} validation errors") from exc


class ImageGenerationTool(BaseTool):
    """Generate and edit images with OpenAI GPT Image models from any LangChain or LangGraph agent.

    The agent gets a short text with each image's id and file location; the program gets the
    :class:`~imagegen_tool.images.GeneratedImage` handles as the ``ToolMessage`` artifact. Images never travel
    as base64 through the conversation (unless ``include_image_block=True`` adds a small preview for a
    vision-capable agent model). The agent model can be any chat model that supports tool calling.

    Setup:
        Install ``imagegen-tool`` and set ``OPENAI_API_KEY`` (or pass a configured client)::

            pip install imagegen-tool
            export OPENAI_API_KEY="sk-..."

    Instantiate:
        .. code-block:: python

            from imagegen_tool import ImageOptions
            from imagegen_tool.langchain import ImageGenerationTool

            tool = ImageGenerationTool(
                store="images/",                          # or generator=ImageGenerator(...)
                options=ImageOptions(quality="low"),      # developer defaults; locked unless exposed
                exposed_options=("size", "background"),   # what the agent may choose
            )

    Invoke directly with args:
        .. code-block:: python

            tool.invoke({"prompt": "a watercolor fox in the snow", "size": "1536x1024"})
            # 'Generated 1 image ...\\n1. id: ig_... | file: /.../images/ig_....png | 1536x1024 png | ...'

    Invoke with a ToolCall (what agents do):
        .. code-block:: python

            message = tool.invoke(
                {"type": "tool_call", "id": "call_1", "name": tool.name, "args": {"prompt": "a red kite"}}
            )
            message.content       # the text above
            message.artifact      # [GeneratedImage(id=..., path=..., width=..., ...)]

    Use in an agent:
        .. code-block:: python

            from langchain.agents import create_agent

            agent = create_agent("anthropic:claude-sonnet-4-5", tools=[tool])

    Chat Completions: the Chat Completions API types a ``tool`` message as text only, so with
    ``include_image_block=True`` and ``ChatOpenAI`` on Chat Completions, move the previews into a following user
    message with :func:`previews_as_user_messages` (or the :class:`PreviewsAsUserMessages` agent middleware).
    The Responses API (``function_call_output`` images), Anthropic (``tool_result`` images) and Gemini
    (inline image parts) take the preview blocks as they are.

    Close the tool (``close()``/``aclose()`` or ``with``) to release the HTTP clients it made; async clients made
    for an event loop are also closed when ``asyncio.run`` shuts that loop down.

    Errors from the image service (moderation blocks, invalid options, unknown image ids, outages) become a
    ``ToolMessage`` with ``status="error"`` and a message that tells the agent what to do; the typed
    :class:`~imagegen_tool.errors.ImageGenerationError` is the ``__cause__`` of the ``ToolException``. Set
    ``handle_tool_error=False`` to have the typed exception raised instead.
    """

    name: str = "generate_image"
    description: str = ""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], ToolExceptionHandlerOutput] | None = True
    """``True`` (default): image service errors become an error ``ToolMessage`` the agent can act on.
    ``False``: the typed :class:`~imagegen_tool.errors.ImageGenerationError` is raised to the caller."""

    generator: ImageGenerator = Field(exclude=True)
    """The engine that validates, calls the API and stores the images."""
    options: ImageOptions = Field(default_factory=ImageOptions)
    """The developer's defaults for every call (merged over the generator's own). Options that are set here and
    not exposed are locked: the agent can neither see nor change them."""
    exposed_options: tuple[str, ...] = ()
    """The options the agent may set (see :data:`EXPOSABLE_OPTIONS`)."""
    allow_inputs: bool = True
    """Whether the agent may pass earlier images (``image_ids``, ``mask_id``) to edit them."""
    include_image_block: bool = False
    """Also return a downscaled JPEG preview as an image content block, for vision-capable agent models."""
    preview_max_side: int = Field(default=512, ge=16, le=2048)
    """Longest side in pixels of the preview image."""
    display: Display = "auto"
    """What the model is told about where each image is: ``"id"`` (nothing but the id), ``"path"`` (the local
    file path), ``"url"`` (the handle's URL from the store's ``public_base_url`` or a presigned URL), or
    ``"auto"`` (the URL when the store gives one, else the path)."""
    thread_sessions: bool = False
    """Follow the conversation: when the agent passes no ``image_ids``, continue from the latest image of the
    same LangGraph thread (``configurable.thread_id``), so "now make it look realistic" edits that image. The
    image model still decides (``action="auto"``) whether a request is an edit or a new picture."""
    partial_image_data: bool | PartialImageData = True
    """How each partial image's bytes travel in its custom event: ``True``/``"base64"`` (default; encoded in
    slices so the event loop stays free), ``"bytes"`` (raw bytes, no encoding: for in-process consumers), or
    ``False``/``"none"`` (the preview file location only; preview files are removed when the call ends unless
    the generator has ``keep_partials=True``). Custom events never enter the conversation, the agent's context
    or checkpoints."""

    input_policy: InputPolicy = AGENT_INPUT_POLICY
    """What the agent may name as input images: by default only images this tool's store handed out (no
    OpenAI file ids, URLs or local file names); see :class:`~imagegen_tool.inputs.InputPolicy` to opt in."""

    _core: AgentImageTool = PrivateAttr()

    def __init__(
        self,
        *,
        generator: ImageGenerator | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        exposed_options: Sequence[str] | None = None,
        allow_inputs: bool = True,
        include_image_block: bool = False,
        store: ImageStore | str | os.PathLike[str] | None = None,
        backend: ImageBackend | None = None,
        client: OpenAI | None = None,
        async_client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        text_model: str | None = None,
        api: Literal["responses", "images"] | None = None,
        **kwargs: Any,
    ) -> None:
        """Configure the tool.

        Args:
            generator: a ready :class:`ImageGenerator`; otherwise one is made from ``store`` and the client
                settings (``backend``, ``client``, ``async_client``, ``api_key``, ``base_url``, ``text_model``,
                ``api``: ``"images"`` for the Images API route, see :class:`~imagegen_tool.ImageGenerator`)
                and closed by :meth:`close`.
            options: defaults for every call, merged over the generator's options.
            exposed_options: the options the agent may set. Default: size, quality, background and
                output_format, minus those set in ``options`` (which stay locked).
            allow_inputs: offer ``image_ids`` and ``mask_id`` so the agent can edit earlier images.
            include_image_block: add a small preview image block to the result (off by default).
            **kwargs: other fields (``display``, ``thread_sessions``, ``partial_image_data``,
                ``preview_max_side``) and ``BaseTool`` fields (``name``, ``description``, ``handle_tool_error``).
        """
        tool_name = kwargs.get("name", type(self).model_fields["name"].default)
        # validation ("known" | "strict" | "off") and safety_identifier (a hash of the end user) go to the
        # generator the tool makes, see ImageGenerator.
        validation = kwargs.pop("validation", None)
        safety_identifier = kwargs.pop("safety_identifier", None)
        core = AgentImageTool(
            generator=generator,
            options=options,
            exposed_options=exposed_options,
            allow_inputs=allow_inputs,
            include_preview=include_image_block,
            preview_max_side=kwargs.get("preview_max_side", 512),
            display=kwargs.get("display", "auto"),
            thread_sessions=kwargs.get("thread_sessions", False),
            name=tool_name,
            description=kwargs.get("description") or None,
            store=store,
            backend=backend,
            client=client,
            async_client=async_client,
            api_key=api_key,
            base_url=base_url,
            text_model=text_model,
            api=api,
            input_policy=kwargs.get("input_policy", AGENT_INPUT_POLICY),
            validation=validation,
            safety_identifier=safety_identifier,
        )
        kwargs.setdefault("args_schema", core.args_model)
        kwargs["description"] = core.description
        kwargs.setdefault("handle_validation_error", functools.partial(describe_validation_error, tool_name=tool_name))
        super().__init__(
            generator=core.generator,
            options=core.options,
            exposed_options=core.exposed_options,
            allow_inputs=allow_inputs,
            include_image_block=include_image_block,
            **kwargs,
        )
        self._core = core

    @property
    def core(self) -> AgentImageTool:
        """The framework-neutral tool this adapter wraps."""
        return self._core

    @property
    def tool_call_schema(self) -> ArgsSchema:
        """The argument model itself: its JSON schema is already the portable one (no ``default``/``title``,
        nullable optional arguments), which LangChain's generic subset model would not keep."""
        return self.args_schema if self.args_schema is not None else super().tool_call_schema

    # -- lifecycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP clients of the generator the tool made (a generator passed in is the caller's)."""
        self._core.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self._core.aclose()

    def __enter__(self) -> ImageGenerationTool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ImageGenerationTool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- BaseTool -----------------------------------------------------------------------------------------

    def _run(
        self,
        prompt: str,
        image_ids: list[str] | None = None,
        mask_id: str | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
        *,
        config: RunnableConfig,  # injected by BaseTool (it matches this exact annotation)
        **options: Any,
    ) -> tuple[ToolContent, list[GeneratedImage]]:
        arguments = {"prompt": prompt, "image_ids": image_ids, "mask_id": mask_id, **options}
        try:
            output = self._core.call(
                arguments,
                thread_id=_thread_id(config),
                on_event=self._relay(run_manager),
                safety_identifier=_safety_identifier(config),
            )
        except ImageGenerationError as exc:
            if not self.handle_tool_error:
                raise
            raise self._tool_error(exc) from exc
        return self._content(output), list(output.images)

    async def _arun(
        self,
        prompt: str,
        image_ids: list[str] | None = None,
        mask_id: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        *,
        config: RunnableConfig,
        **options: Any,
    ) -> tuple[ToolContent, list[GeneratedImage]]:
        arguments = {"prompt": prompt, "image_ids": image_ids, "mask_id": mask_id, **options}
        try:
            output = await self._core.acall(
                arguments,
                thread_id=_thread_id(config),
                on_event=self._arelay(run_manager),
                safety_identifier=_safety_identifier(config),
            )
        except ImageGenerationError as exc:
            if not self.handle_tool_error:
                raise
            raise self._tool_error(exc) from exc
        return self._content(output), list(output.images)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """``BaseTool.run``; the ``ToolMessage`` also carries the call's cost and token usage in
        ``response_metadata["imagegen"]`` (see :func:`cost_metadata`)."""
        return _with_cost_metadata(super().run(*args, **kwargs))

    async def arun(self, *args: Any, **kwargs: Any) -> Any:
        """Async :meth:`run`."""
        return _with_cost_metadata(await super().arun(*args, **kwargs))

    # -- internals ----------------------------------------------------------------------------------------

    def _tool_error(self, exc: ImageGenerationError) -> ToolException:
        """A ``ToolException`` with the agent-facing text (the typed error stays its ``__cause__``)."""
        logger.info("%s failed: %s", self.name, exc)
        return ToolException(exc.agent_message)

    def _relay(self, run_manager: CallbackManagerForToolRun | None) -> Callable[[StreamEvent], None] | None:
        """With partial images on, forward stream events as custom events (``astream_events``) and to the
        LangGraph stream writer (``stream_mode="custom"``)."""
        if not self._core.streams:
            return None
        run_id = str(run_manager.run_id) if run_manager else None

        def relay(event: StreamEvent) -> None:
            payload = stream_event_payload(event, run_id=run_id, data=self.partial_image_data)
            if payload is not None:
                dispatch_custom_event(payload["event"], payload)
                _langgraph_write(payload)

        return relay

    def _arelay(
        self, run_manager: AsyncCallbackManagerForToolRun | None
    ) -> Callable[[StreamEvent], Awaitable[None]] | None:
        if not self._core.streams:
            return None
        run_id = str(run_manager.run_id) if run_manager else None

        async def relay(event: StreamEvent) -> None:
            payload = await astream_event_payload(event, run_id=run_id, data=self.partial_image_data)
            if payload is not None:
                await adispatch_custom_event(payload["event"], payload)
                _langgraph_write(payload)

        return relay

    @staticmethod
    def _content(output: ToolOutput) -> ToolContent:
        if not output.previews:
            return output.text
        blocks: list[str | dict[str, Any]] = [{"type": "text", "text": output.text}]
        blocks.extend(dict(create_image_block(base64=p.b64, mime_type=p.mime_type)) for p in output.previews)
        return blocks


def _thread_id(config: RunnableConfig | None) -> object | None:
    """The LangGraph ``thread_id`` of the run, if any."""
    if not config:
        return None
    return (config.get("configurable") or {}).get("thread_id")


#: The ``configurable`` key that names the end user of a run (``config={"configurable": {SAFETY_IDENTIFIER_KEY:
#: ...}}``): sent as the call's ``safety_identifier`` instead of the tool's own.
SAFETY_IDENTIFIER_KEY = "safety_identifier"


def _safety_identifier(config: RunnableConfig | None) -> str | None:
    """The run's end user (``configurable.safety_identifier``), if the application set one. The generator checks
    it before anything is sent (a string, not empty, not too long, no API key), as it checks every identifier."""
    if not config:
        return None
    value: str | None = (config.get("configurable") or {}).get(SAFETY_IDENTIFIER_KEY)
    return value


def _langgraph_write(payload: dict[str, Any]) -> None:
    """Send to LangGraph's ``stream_mode="custom"`` when running inside a graph (LangGraph is optional)."""
    try:
        from langgraph.config import get_stream_writer
    except ImportError:
        return
    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):  # not inside a graph run (the error differs between LangGraph versions)
        return
    writer(payload)


# -- Chat Completions -------------------------------------------------------------------------------------


def previews_as_user_messages(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Messages for a chat model on the Chat Completions API, whose ``tool`` messages take text only.

    Each ``ToolMessage`` with image blocks keeps its text, and the images follow in a ``HumanMessage`` right
    after the tool messages of the same turn (the API wants every tool answer before the next message). Other
    messages are returned unchanged; the input is not modified."""
    result: list[BaseMessage] = []
    pending: list[dict[str, Any] | str] = []
    for message in messages:
        if pending and not isinstance(message, ToolMessage):
            result.append(HumanMessage(content=pending))
            pending = []
        if isinstance(message, ToolMessage) and isinstance(message.content, list):
            texts = [block for block in message.content if not _is_image_block(block)]
            images = [block for block in message.content if _is_image_block(block)]
            if images:
                text = "\n".join(b if isinstance(b, str) else str(b.get("text", "")) for b in texts)
                result.append(message.model_copy(update={"content": text}))
                intro = f"Previews of the images returned by tool call {message.tool_call_id} (sent by the tool):"
                pending.extend([{"type": "text", "text": intro}, *images])
                continue
        result.append(message)
    if pending:
        result.append(HumanMessage(content=pending))
    return result


def _is_image_block(block: object) -> bool:
    return isinstance(block, dict) and block.get("type") in ("image", "image_url")


def __getattr__(name: str) -> Any:
    # The middleware needs the optional ``langchain`` package: defined on first use, so importing this module
    # does not import it.
    if name == "PreviewsAsUserMessages":
        from ._lc_middleware import PreviewsAsUserMessages

        return PreviewsAsUserMessages
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
