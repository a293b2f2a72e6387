"""LangChain adapter: :class:`ImageGenerationTool`, a ``BaseTool`` any LangChain or LangGraph agent can call.

The tool is a thin shell around :class:`~imagegen_tool.generator.ImageGenerator`. Its argument schema is derived
from the developer's default :class:`~imagegen_tool.options.ImageOptions` and the list of options the agent may
set, by one generic function (:func:`build_args_schema`): locked values never reach the schema, and enums list
only the values the configured image model accepts (from the capability table). Results follow LangChain's
``content_and_artifact`` convention: the model reads a short text with the image handles, the program gets the
:class:`~imagegen_tool.images.GeneratedImage` handles as the ``ToolMessage`` artifact. No base64 is put in the
text; an opt-in downscaled preview image block serves vision-capable agent models.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, cast, get_args, get_origin

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import ToolMessage
from langchain_core.messages.content import create_image_block
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ToolExceptionHandlerOutput
from openai import AsyncOpenAI, OpenAI
from PIL import Image, UnidentifiedImageError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from .backends import ImageBackend
from .capabilities import ModelCapabilities, capabilities_for, general_rules, known_models
from .errors import ConfigurationError, ImageGenerationError
from .generator import ImageGenerator
from .images import GeneratedImage
from .inputs import AGENT_INPUT_POLICY, InputPolicy, input_policy
from .options import TRUSTED_CONTEXT, ImageOptions
from .redact import redact
from .request import DEFAULT_TEXT_MODEL, MAX_PROMPT_CHARS
from .results import GenerationResult
from .store import ImageStore, is_valid_image_id
from .streaming import GenerationCompleted, PartialImageEvent, ProgressEvent, StreamEvent

__all__ = [
    "COMPLETED_EVENT",
    "DEFAULT_EXPOSED_OPTIONS",
    "EXPOSABLE_OPTIONS",
    "PARTIAL_IMAGE_EVENT",
    "PROGRESS_EVENT",
    "ImageGenerationTool",
    "build_args_schema",
    "describe_validation_error",
    "format_result",
    "images_from_message",
    "stream_event_payload",
]

logger = logging.getLogger(__name__)

#: Options the agent may set when the developer does not say otherwise (minus the ones the developer set).
DEFAULT_EXPOSED_OPTIONS: tuple[str, ...] = ("size", "quality", "background", "output_format")

#: Options that can be handed to the agent. ``mask`` and ``svg`` are not: masks are passed by handle id
#: (``mask_id``) and the SVG author model is a developer setting; ``partial_images`` needs a streaming
#: consumer the tool call does not have.
EXPOSABLE_OPTIONS: tuple[str, ...] = (
    "model",
    "action",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "input_fidelity",
    "complexity",
    "frame_count",
    "frame_duration_ms",
)

_ENUM_FIELDS = ("quality", "background", "output_format", "moderation", "complexity", "input_fidelity")

#: Upper bound on the text one image contributes to the tool message (revised prompts are cut to fit).
MAX_IMAGE_TEXT = 600
_MAX_REVISED_PROMPT = 300
_MAX_LOCATION = 240

PROMPT_DESCRIPTION = (
    "Describe the image to draw: subject, setting, style (photo, watercolor, flat vector, ...), composition, "
    "lighting and colours; put any text that must appear in the image in quotes. Write the full description "
    "each time: the image model does not see the conversation."
)
EDIT_PROMPT_DESCRIPTION = (
    " To edit, pass the id of an earlier image in image_ids and describe the change (what to add, remove or "
    "alter, and what must stay the same)."
)
IMAGE_IDS_DESCRIPTION = (
    "Ids of earlier images (as returned by this tool) to edit or use as references. The first one is the image "
    "to edit; others are references for style or content. Leave empty to draw a new image."
)
MASK_ID_DESCRIPTION = (
    "Optional id of a mask image (same size as the first image in image_ids) whose transparent areas mark "
    "where the image may change. Leave empty to let the model decide what to change."
)


def _check_image_id(value: str) -> str:
    if not is_valid_image_id(value):
        raise ValueError(
            "not an image id: pass the id of an image returned by this tool (letters, digits, _ and -), "
            "not a path, URL or image data"
        )
    return value


#: A handle id. Checked here rather than with a JSON-schema ``pattern``, which some providers reject.
_ImageId = Annotated[str, AfterValidator(_check_image_id)]


class _ToolArgs(BaseModel):
    """Arguments the agent passes; unknown (for instance developer-locked) arguments are refused."""

    model_config = ConfigDict(extra="forbid")


# -- schema -----------------------------------------------------------------------------------------------


def build_args_schema(
    options: ImageOptions,
    exposed: Sequence[str],
    *,
    allow_inputs: bool = True,
    name: str = "ImageGenerationInput",
) -> type[BaseModel]:
    """The tool's argument model: ``prompt``, the ``exposed`` options, and (with ``allow_inputs``) the edit inputs.

    ``options`` are the developer's defaults. An exposed option keeps its ``ImageOptions`` description (written
    for the agent), and its type is narrowed to what the image model accepts: enums list the model's values, and
    ``size`` is a fixed list when the model has no custom sizes. When ``model`` itself is exposed, the values of
    every current model are allowed and the generator checks the combination. Options that are not exposed are
    absent, so a value the developer fixed is neither shown to nor settable by the agent.
    """
    unknown = [field for field in exposed if field not in EXPOSABLE_OPTIONS]
    if unknown:
        raise ConfigurationError(
            f"cannot expose {', '.join(unknown)} to the agent; exposable options: {', '.join(EXPOSABLE_OPTIONS)}"
        )
    models = _candidate_models(options, exposed)
    prompt_description = PROMPT_DESCRIPTION + (EDIT_PROMPT_DESCRIPTION if allow_inputs else "")
    fields: dict[str, Any] = {
        "prompt": (str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, description=prompt_description)),
    }
    if allow_inputs:
        fields["image_ids"] = (list[_ImageId], Field(default_factory=list, description=IMAGE_IDS_DESCRIPTION))
        fields["mask_id"] = (_ImageId | None, Field(default=None, description=MASK_ID_DESCRIPTION))
    for field in EXPOSABLE_OPTIONS:  # a stable order, whatever the order of ``exposed``
        if field in exposed:
            fields[field] = _option_field(field, options, models)
    return cast("type[BaseModel]", create_model(name, __base__=_ToolArgs, **fields))


def _candidate_models(options: ImageOptions, exposed: Sequence[str]) -> list[ModelCapabilities | None]:
    """The capability entries the schema must admit: the configured model, or every current one if exposed."""
    if "model" not in exposed:
        return [capabilities_for(options.effective_model)]
    return [caps for name in known_models() if (caps := capabilities_for(name)) and not caps.retired]


def _option_field(field: str, options: ImageOptions, models: list[ModelCapabilities | None]) -> tuple[Any, Any]:
    base = ImageOptions.model_fields[field]
    description = base.description or ""
    annotation: Any = base.annotation  # ``X | None`` as declared on ImageOptions
    constraints: list[Any] = list(base.metadata)
    known = [caps for caps in models if caps is not None]
    type_checks_only = len(known) < len(models)  # an unknown model: no table to narrow with

    if field == "model":
        names = sorted({caps.name for caps in known} | ({options.model} if options.model else set()))
        annotation = _literal(names)
    elif field in _ENUM_FIELDS and not type_checks_only:
        allowed = _union(caps.allowed_values(field) for caps in known)
        if allowed is None:  # the table does not limit this field: every value of the type
            allowed = _literal_values(annotation)
        allowed = _narrow_by_locked_values(field, allowed, options)
        if not allowed:
            raise ConfigurationError(
                f"{field} cannot be set for {', '.join(caps.name for caps in known)}: do not expose it"
            )
        annotation = _literal(allowed)
    elif field == "size" and not type_checks_only:
        if all(caps.custom_size is None for caps in known):
            sizes = _union([caps.sizes for caps in known]) or ()
            if any(caps.auto_size for caps in known):
                sizes = (*sizes, "auto")
            annotation = _literal(sizes)
        else:
            description += " Accepted: " + "; ".join(dict.fromkeys(caps.describe_sizes() for caps in known)) + "."
    elif field in ("frame_count", "frame_duration_ms"):
        low, high = getattr(general_rules(), "gif_frame_count" if field == "frame_count" else "gif_frame_duration_ms")
        constraints = [*constraints, Field(ge=low, le=high)]

    default = getattr(options, field)
    if default is not None:
        description += f" Default: {default!r}."
    if constraints:
        annotation = Annotated[(annotation, *constraints)]
    return annotation, Field(default=None, description=" ".join(description.split()))


def _literal(values: Sequence[str]) -> Any:
    return Literal[tuple(values)] | None


def _literal_values(annotation: Any) -> tuple[str, ...]:
    """The values of the ``Literal`` in ``Literal[...] | None``."""
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is Literal:
            return tuple(value for value in get_args(arg) if isinstance(value, str))
    return ()


def _union(groups: Any) -> tuple[str, ...] | None:
    """Values in any group, first-seen order; ``None`` if a group is ``None`` (that model allows everything)."""
    merged: dict[str, None] = {}
    for group in groups:
        if group is None:
            return None
        merged.update(dict.fromkeys(group))
    return tuple(merged)


def _narrow_by_locked_values(field: str, allowed: tuple[str, ...], options: ImageOptions) -> tuple[str, ...]:
    """Keep the values that are valid next to the locked options: one check, every rule of the table (an agent
    is never offered a value it would then be told to change through an option it cannot see)."""
    kept = []
    for value in allowed:
        try:
            options.merge({field: value})
        except ImageGenerationError:
            continue
        kept.append(value)
    return tuple(kept)


def describe_validation_error(error: ValidationError, *, tool_name: str = "the tool") -> str:
    """An agent-facing account of invalid tool arguments: which argument, what was wrong, what to do."""
    problems = []
    for item in error.errors(include_url=False)[:5]:
        # Argument names come from the agent too: never echo control characters back to it.
        field = "".join(ch if ch.isprintable() else "?" for ch in ".".join(map(str, item["loc"]))[:80]) or "arguments"
        if item["type"] == "extra_forbidden":
            problems.append(
                f"'{field}' is not an argument of this tool (the developer may have fixed it); leave it out"
            )
        elif item["type"] == "missing":
            problems.append(f"'{field}' is required")
        else:
            shown = redact(repr(item.get("input")))
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            problems.append(f"{field}={shown}: {item['msg']}")
    return f"Invalid arguments for {tool_name}: " + "; ".join(problems) + ". Fix the arguments and call the tool again."


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


# -- result text ------------------------------------------------------------------------------------------


def format_result(result: GenerationResult, *, tool_name: str = "the tool", allow_inputs: bool = True) -> str:
    """The text the agent reads: one short block per image (id, file, size, format, revised prompt)."""
    count = len(result.images)
    lines = [f"Generated {count} image{'s' if count != 1 else ''} (stored; the image data is not shown here)."]
    lines.extend(_describe_image(index, image) for index, image in enumerate(result.images, start=1))
    if result.failures:
        lines.append(f"{len(result.failures)} further image call(s) of this request produced no image.")
    if allow_inputs:
        lines.append(f"To change an image, call {tool_name} again with its id in image_ids and describe the change.")
    return "\n".join(lines)


def _describe_image(index: int, image: GeneratedImage) -> str:
    location = image.path or image.uri
    if len(location) > _MAX_LOCATION:
        location = "..." + location[-(_MAX_LOCATION - 3) :]
    size = f"{image.width}x{image.height} " if image.width and image.height else ""
    text = f"{index}. id: {image.id} | file: {location} | {size}{image.format}"
    if image.revised_prompt:
        room = min(_MAX_REVISED_PROMPT, MAX_IMAGE_TEXT - 200 - len(text))
        prompt = " ".join(image.revised_prompt.split())
        if len(prompt) > room:
            prompt = prompt[: max(room - 3, 0)].rstrip() + "..."
        text += f" | revised prompt: {prompt}"
    return text


def _preview_block(data: bytes, max_side: int) -> dict[str, Any] | None:
    """A JPEG preview at most ``max_side`` px as a standard image content block; ``None`` if Pillow can't read
    the image (svg)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGBA")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None
    image.thumbnail((max_side, max_side))
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, format="JPEG", quality=80)
    block = create_image_block(base64=base64.b64encode(buffer.getvalue()).decode("ascii"), mime_type="image/jpeg")
    return cast("dict[str, Any]", block)


# -- the tool ---------------------------------------------------------------------------------------------

ToolContent = str | list[str | dict[str, Any]]


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
    thread_sessions: bool = False
    """Follow the conversation: when the agent passes no ``image_ids``, continue from the latest image of the
    same LangGraph thread (``configurable.thread_id``), so "now make it look realistic" edits that image. The
    image model still decides (``action="auto"``) whether a request is an edit or a new picture."""
    input_policy: InputPolicy = AGENT_INPUT_POLICY
    """What the agent may name as input images: by default only images this tool's store handed out (no
    OpenAI file ids, URLs or local file names); see :class:`~imagegen_tool.inputs.InputPolicy` to opt in."""
    partial_image_data: bool = True
    """Put each partial image's bytes (base64) into its custom event, so a UI can render it at once (preview
    files are removed when the call ends unless the generator has ``keep_partials=True``). Custom events never
    enter the conversation, the agent's context or checkpoints. ``False`` sends the file location only."""

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
                ``api``: ``"images"`` for the Images API route, see :class:`~imagegen_tool.ImageGenerator`).
            options: defaults for every call, merged over the generator's options.
            exposed_options: the options the agent may set. Default: size, quality, background and
                output_format, minus those set in ``options`` (which stay locked).
            allow_inputs: offer ``image_ids`` and ``mask_id`` so the agent can edit earlier images.
            include_image_block: add a small preview image block to the result (off by default).
            **kwargs: other ``BaseTool`` fields (``name``, ``description``, ``handle_tool_error``, ...).
        """
        if generator is None:
            generator = ImageGenerator(
                store=store,
                backend=backend,
                client=client,
                async_client=async_client,
                api_key=api_key,
                base_url=base_url,
                text_model=text_model or DEFAULT_TEXT_MODEL,
                api=api,
            )
        elif any(x is not None for x in (store, backend, client, async_client, api_key, base_url, text_model, api)):
            raise ConfigurationError("pass either generator=... or the settings to make one (store, client, ...)")
        merged = generator.options.merge(options)
        if exposed_options is None:
            exposed = tuple(f for f in DEFAULT_EXPOSED_OPTIONS if getattr(merged, f) is None)
        else:
            exposed = tuple(dict.fromkeys(exposed_options))
        tool_name = kwargs.get("name", type(self).model_fields["name"].default)
        kwargs.setdefault(
            "args_schema",
            build_args_schema(merged, exposed, allow_inputs=allow_inputs, name=_schema_name(tool_name)),
        )
        kwargs.setdefault("description", _tool_description(allow_inputs, include_image_block))
        kwargs.setdefault("handle_validation_error", functools.partial(describe_validation_error, tool_name=tool_name))
        super().__init__(
            generator=generator,
            options=merged,
            exposed_options=exposed,
            allow_inputs=allow_inputs,
            include_image_block=include_image_block,
            **kwargs,
        )

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
        relay = self._relay(options, run_manager)
        try:
            with input_policy(self.input_policy):
                result = self.generator.generate(
                    prompt,
                    options=self.options,
                    on_event=relay,
                    session=self._session(config),
                    **_inputs(image_ids, mask_id),
                    **options,
                )
        except ImageGenerationError as exc:
            if not self.handle_tool_error:
                raise
            raise self._tool_error(exc) from exc
        previews = self._previews(result) if self.include_image_block else []
        return self._content(result, previews), list(result.images)

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
        relay = self._arelay(options, run_manager)
        try:
            with input_policy(self.input_policy):
                result = await self.generator.agenerate(
                    prompt,
                    options=self.options,
                    on_event=relay,
                    session=self._session(config),
                    **_inputs(image_ids, mask_id),
                    **options,
                )
        except ImageGenerationError as exc:
            if not self.handle_tool_error:
                raise
            raise self._tool_error(exc) from exc
        previews = await asyncio.to_thread(self._previews, result) if self.include_image_block else []
        return self._content(result, previews), list(result.images)

    # -- internals ----------------------------------------------------------------------------------------

    def _session(self, config: RunnableConfig | None) -> str | None:
        """The conversation key (LangGraph ``thread_id``) when ``thread_sessions`` is on."""
        if not self.thread_sessions or not config:
            return None
        thread_id = (config.get("configurable") or {}).get("thread_id")
        return f"thread:{thread_id}" if thread_id is not None else None

    def _streams(self, options: Mapping[str, Any]) -> bool:
        partial = options.get("partial_images", self.options.partial_images)
        return bool(partial)

    def _relay(
        self, options: Mapping[str, Any], run_manager: CallbackManagerForToolRun | None
    ) -> Callable[[StreamEvent], None] | None:
        """With partial images on, forward stream events as custom events (``astream_events``) and to the
        LangGraph stream writer (``stream_mode="custom"``)."""
        if not self._streams(options):
            return None
        run_id = str(run_manager.run_id) if run_manager else None

        def relay(event: StreamEvent) -> None:
            payload = stream_event_payload(event, run_id=run_id, include_data=self.partial_image_data)
            if payload is not None:
                dispatch_custom_event(payload["event"], payload)
                _langgraph_write(payload)

        return relay

    def _arelay(
        self, options: Mapping[str, Any], run_manager: AsyncCallbackManagerForToolRun | None
    ) -> Callable[[StreamEvent], Awaitable[None]] | None:
        if not self._streams(options):
            return None
        run_id = str(run_manager.run_id) if run_manager else None

        async def relay(event: StreamEvent) -> None:
            payload = stream_event_payload(event, run_id=run_id, include_data=self.partial_image_data)
            if payload is not None:
                await adispatch_custom_event(payload["event"], payload)
                _langgraph_write(payload)

        return relay

    def _tool_error(self, exc: ImageGenerationError) -> ToolException:
        """A ``ToolException`` with the agent-facing text (the typed error stays its ``__cause__``)."""
        logger.info("%s failed: %s", self.name, exc)
        return ToolException(exc.agent_message)

    def _content(self, result: GenerationResult, previews: list[dict[str, Any]]) -> ToolContent:
        text = format_result(result, tool_name=self.name, allow_inputs=self.allow_inputs)
        if not previews:
            return text
        return [{"type": "text", "text": text}, *previews]

    def _previews(self, result: GenerationResult) -> list[dict[str, Any]]:
        blocks = []
        for image in result.images:
            try:
                data = self.generator.store.read_bytes(image.id)
            except ImageGenerationError:
                logger.warning("no preview for image %s: cannot read it back from the store", image.id)
                continue
            block = _preview_block(data, self.preview_max_side)
            if block is not None:
                blocks.append(block)
        return blocks


#: Names of the custom events the tool dispatches while an image streams (``partial_images`` > 0).
PARTIAL_IMAGE_EVENT = "imagegen_partial_image"
PROGRESS_EVENT = "imagegen_progress"
COMPLETED_EVENT = "imagegen_completed"


def stream_event_payload(
    event: StreamEvent, *, run_id: str | None = None, include_data: bool = False
) -> dict[str, Any] | None:
    """The JSON-friendly custom-event payload for a core stream event (``event`` holds the event name)."""
    payload: dict[str, Any]
    if isinstance(event, PartialImageEvent):
        partial = event.partial
        payload = {"event": PARTIAL_IMAGE_EVENT, **partial.model_dump(mode="json"), "response_id": event.response_id}
        if include_data:
            payload["b64"] = base64.b64encode(partial.data).decode("ascii")
    elif isinstance(event, ProgressEvent):
        payload = {"event": PROGRESS_EVENT, **event.model_dump(mode="json", exclude={"type"})}
    elif isinstance(event, GenerationCompleted):
        payload = {"event": COMPLETED_EVENT, "image_ids": [image.id for image in event.result.images]}
    else:
        return None
    payload["run_id"] = run_id
    return payload


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


def _inputs(image_ids: list[str] | None, mask_id: str | None) -> dict[str, Any]:
    """The generator's edit inputs (handle ids), only when the agent gave some."""
    inputs: dict[str, Any] = {}
    if image_ids:
        inputs["images"] = list(image_ids)
    if mask_id:
        inputs["mask"] = mask_id
    return inputs


def _schema_name(tool_name: str) -> str:
    return "".join(part.capitalize() for part in tool_name.replace("-", "_").split("_")) + "Input"


def _tool_description(allow_inputs: bool, include_image_block: bool) -> str:
    text = (
        "Generate an image from a text description"
        + (", or edit an earlier image by passing its id" if allow_inputs else "")
        + ". The image is saved to a file; the result gives each image's id, file location, size and the "
        "prompt the image model actually used."
    )
    if include_image_block:
        text += " A small preview of each image is attached so you can check it."
    else:
        text += " You do not see the image itself."
    if allow_inputs:
        text += " Use the id to refer to the image later, for instance to edit it."
    return text
