"""The framework-neutral agent tool: what an agent sees and sends, and what every adapter shares.

:class:`AgentImageTool` holds everything an adapter to an agent framework needs, so the adapter itself only
converts to its framework's types:

* the **argument schema**, built from the options the developer exposes and locks (:func:`build_args_schema`): a
  pydantic model that validates leniently (``null`` or ``""`` for an optional argument means "not given") and
  renders one portable JSON schema (:meth:`AgentImageTool.json_schema`) that is valid as an OpenAI strict
  function, an Anthropic ``input_schema``, a Gemini function declaration and an MCP ``inputSchema``;
* **argument parsing** (:meth:`AgentImageTool.parse_arguments`) with errors the agent can act on
  (:class:`ToolArgumentsError`);
* the **call** (:meth:`AgentImageTool.call` / :meth:`AgentImageTool.acall`) returning a :class:`ToolOutput`: the
  text the model reads (:func:`format_result`), the handles for the program, and optional **previews**
  (:func:`make_preview`, made within a pixel budget) with renderers for each provider's tool-result format, and
  the **structured result** (:meth:`ToolOutput.structured` → :class:`ToolResult`, JSON schema
  :meth:`AgentImageTool.output_schema`): the one model behind every adapter's typed output;
* the **agent error message** for any :class:`~imagegen_tool.errors.ImageGenerationError` or invalid arguments
  (:func:`agent_error_message`, :meth:`ToolOutput.from_error`);
* the **stream-event payloads** for UIs (:func:`stream_event_payload`, :func:`astream_event_payload`);
* **thread/session handling** (:meth:`AgentImageTool.session_for`) and the **lifecycle** (``close``/``aclose``;
  async clients made for an event loop are closed when ``asyncio.run`` shuts that loop down).

How each adapter is a thin shell over it (the LangChain one is :mod:`imagegen_tool.langchain`):

* **MCP server** (official ``mcp`` SDK): list the tool with ``name``, ``description`` and ``inputSchema =
  core.json_schema()``; on ``tools/call`` run ``output = await core.acall_safely(arguments, thread_id=session_id,
  on_event=...)`` (progress notifications from :func:`astream_event_payload`); reply with ``TextContent(output.text)``,
  an ``ImageContent`` per ``output.previews`` item (``preview.b64``, ``preview.mime_type``), structured content
  ``output.structured().model_dump(mode="json")`` (``outputSchema = core.output_schema()``) and
  ``isError=output.is_error`` (:mod:`imagegen_tool.mcp` is this adapter).
* **OpenAI Agents SDK** (:mod:`imagegen_tool.openai_agents` is this adapter): ``FunctionTool(name=core.name,
  description=core.description, params_json_schema=core.json_schema(strict=True), strict_json_schema=True,
  on_invoke_tool=...)`` whose handler calls ``core.acall(json_args)``; the model reads ``output.text`` (plus a
  ``ToolOutputImage`` per preview), the program ``output.structured()`` (the output item's ``custom_data``), and a
  typed error becomes ``agent_error_message(exc)`` through the SDK's ``failure_error_function``.
* **pydantic-ai** (:mod:`imagegen_tool.pydantic_ai` is this adapter): a ``Tool`` from ``core.json_schema()`` whose
  function calls ``core.acall(arguments)``; errors the agent can fix (invalid arguments, options or inputs) become
  ``ModelRetry(agent_error_message(exc))``, others ``ToolFailed``; the typed return is ``output.structured()`` (a
  :class:`ToolResult`); previews become ``BinaryContent(preview.data, media_type=preview.mime_type)`` when the
  developer asks.
* **CLI**: build the arguments from flags, ``core.parse_arguments(...)`` for validation with the same messages,
  ``core.call(...)`` and print ``output.text`` (or the handles as JSON); the typed error picks the exit code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import io
import logging
import os
import unicodedata
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, cast, get_args, get_origin

from openai import AsyncOpenAI, OpenAI
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from .backends import ImageBackend
from .capabilities import (
    ModelCapabilities,
    ValidationMode,
    capabilities_for,
    default_image_model,
    general_rules,
    offered_models,
)
from .costs import format_usd
from .errors import ConfigurationError, ImageGenerationError, InvalidInputError
from .generator import ImageGenerator
from .images import GeneratedImage
from .inputs import AGENT_INPUT_POLICY, InputPolicy, input_policy
from .options import ImageOptions
from .redact import redact
from .request import DEFAULT_TEXT_MODEL, MAX_PROMPT_CHARS
from .results import GenerationResult
from .store import ImageStore, is_valid_image_id
from .streaming import GenerationCompleted, PartialImageEvent, ProgressEvent, StreamEvent

__all__ = [
    "COMPLETED_EVENT",
    "DEFAULT_EXPOSED_OPTIONS",
    "DEFAULT_PREVIEW_SOURCE_PIXELS",
    "EXPOSABLE_OPTIONS",
    "MAX_INPUT_IMAGES",
    "PARTIAL_IMAGE_EVENT",
    "PROGRESS_EVENT",
    "AgentImageTool",
    "Display",
    "ImagePreview",
    "ImageResult",
    "PartialImageData",
    "ToolArguments",
    "ToolArgumentsError",
    "ToolOutput",
    "ToolResult",
    "agent_error_message",
    "agent_visible_text",
    "astream_event_payload",
    "build_args_schema",
    "describe_validation_error",
    "format_result",
    "make_preview",
    "portable_json_schema",
    "stream_event_payload",
]

logger = logging.getLogger(__name__)

#: Options the agent may set when the developer does not say otherwise (minus the ones the developer set).
DEFAULT_EXPOSED_OPTIONS: tuple[str, ...] = ("size", "quality", "background", "output_format")

#: Options that can be handed to the agent. ``mask`` and ``svg`` are not: masks are passed by handle id
#: (``mask_id``) and the SVG author model is a developer setting; ``partial_images`` needs a streaming
#: consumer the tool call does not have. ``n`` (several images per call) needs the Images API route.
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
    "n",
)

#: Input images one call may name (the API's own limit for image inputs).
MAX_INPUT_IMAGES = 16

#: How the model sees where an image is: its id only, the local file path, or a URL a browser can open
#: (``GeneratedImage.url``, from the store's ``public_base_url`` or a presigned URL). ``auto``: the URL when the
#: store gives one, else the path.
Display = Literal["auto", "id", "path", "url"]

_ENUM_FIELDS = ("action", "quality", "background", "output_format", "moderation", "complexity", "input_fidelity")

#: Upper bound on the text one image contributes to the tool message (revised prompts are cut to fit).
MAX_IMAGE_TEXT = 600
_MAX_REVISED_PROMPT = 300
_MAX_LOCATION = 240

# Characters an agent should never be handed from an API response: controls (terminal escapes), format
# characters (zero-width spaces and joiners, bidi overrides and isolates, the invisible "tag" letters that can
# smuggle instructions past a human reader), surrogates, private-use and unassigned code points, plus the
# Hangul fillers, which are letters that render as nothing.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_INVISIBLE_LETTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0"})


def agent_visible_text(text: str) -> str:
    """``text`` from an untrusted source (the API's ``revised_prompt``) as an agent may read it: control,
    zero-width, bidi and other invisible characters removed, any run of whitespace (line breaks included) one
    space. What is stored keeps the original; only what the model reads is cleaned."""
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif ch not in _INVISIBLE_LETTERS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES:
            kept.append(ch)
    return " ".join("".join(kept).split())


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
    "Ids of earlier images (as returned by this tool) to edit or use as references, at most "
    f"{MAX_INPUT_IMAGES}. The first one is the image to edit; others are references for style or content. "
    "Leave empty (or null) to draw a new image."
)
MASK_ID_DESCRIPTION = (
    "Optional id of a mask image (same size as the first image in image_ids) whose transparent areas mark "
    "where the image may change. Leave empty (or null) to let the model decide what to change."
)

# What each value of an enum option means, written for the agent. Descriptions are assembled from the values the
# schema really offers, so the text never mentions a value the enum excludes.
_LEADS: dict[str, str] = {
    "model": "GPT Image model that renders the image",
    "action": "What to do with the input images",
    "quality": "Rendering quality",
    "background": "Background of the image",
    "output_format": "File format",
    "moderation": "Content moderation strictness",
    "complexity": "How much planning goes into the image, independent of rendering quality",
    "input_fidelity": "How closely an edit keeps the style and features (especially faces) of the input images",
}
_VALUE_NOTES: dict[str, dict[str, str]] = {
    "action": {
        "generate": "always draw a new image",
        "edit": "edit the first input image",
        "auto": "let the model decide",
    },
    "quality": {
        "low": "for drafts and quick previews",
        "medium": "balanced",
        "high": "for final images",
        "xhigh": "more detail, slower and more expensive",
        "max": "the most detail, slowest and most expensive",
        "auto": "let the model choose",
    },
    "background": {
        "transparent": "for logos, stickers and cut-outs",
        "opaque": "a solid background",
        "auto": "let the model choose",
    },
    "output_format": {
        "png": "lossless",
        "webp": "smaller",
        "jpeg": "smallest, no transparency",
        "gif": "an animation",
        "svg": "a vector drawing",
    },
    "moderation": {"auto": "standard", "low": "less restrictive"},
    "complexity": {
        "low": "simple subjects",
        "medium": "ordinary scenes",
        "high": "detailed scenes, diagrams and text-heavy images",
    },
    "input_fidelity": {"high": "keep them closely", "low": "allow more change"},
}


# -- arguments --------------------------------------------------------------------------------------------


class ToolArgumentsError(InvalidInputError):
    """The agent's tool arguments do not fit the tool's schema. ``agent_message`` says what to fix."""

    def __init__(self, message: str, *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)

    @classmethod
    def from_validation_error(cls, error: ValidationError, *, tool_name: str = "the tool") -> ToolArgumentsError:
        return cls(describe_validation_error(error, tool_name=tool_name), errors=error.errors(include_url=False))

    @property
    def agent_message(self) -> str:
        return str(self)


def _check_image_id(value: str) -> str:
    if not is_valid_image_id(value):
        raise ValueError(
            "not an image id: pass the id of an image returned by this tool (letters, digits, _ and -), "
            "not a path, URL or image data"
        )
    return value


def _check_prompt(value: str) -> str:
    if not value.strip():
        raise ValueError("the prompt is empty: describe the image to draw")
    return value


#: A handle id. Checked here rather than with a JSON-schema ``pattern``, which some providers reject.
_ImageId = Annotated[str, AfterValidator(_check_image_id)]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def portable_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite pydantic's JSON schema of the tool arguments into the subset every provider accepts.

    Removed: ``title`` (names come from the tool; no argument is called "title"), ``default`` (OpenAI strict
    mode refuses it: "'default' is not permitted"), ``minLength``/``maxLength`` (outside OpenAI's strict subset
    for some models; the tool checks them itself and tells the agent). ``const`` becomes a one-value ``enum``.
    Kept: types, ``enum``, ``anyOf`` with ``null`` for optional arguments, ``items``, ``minimum``/``maximum``,
    ``maxItems``, descriptions, ``required`` (only ``prompt``) and ``additionalProperties: false``. Strict-mode
    converters make every property required, which the nullable optional arguments allow.
    """

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            cleaned = {
                key: clean(value)
                for key, value in node.items()
                if key not in ("title", "default", "minLength", "maxLength")
            }
            if "const" in cleaned:  # a one-value Literal: ``enum`` is understood by every provider, ``const`` not
                cleaned["enum"] = [cleaned.pop("const")]
            return cleaned
        if isinstance(node, list):
            return [clean(item) for item in node]
        return node

    properties = {name: clean(prop) for name, prop in schema.get("properties", {}).items()}
    result: dict[str, Any] = {"type": "object", "properties": properties}
    result["required"] = [name for name in schema.get("required", []) if name in properties]
    result["additionalProperties"] = False
    return result


def _schema_extra(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    portable = portable_json_schema(schema)
    schema.clear()
    schema.update(portable)


class ToolArguments(BaseModel):
    """Base of the generated argument models. Unknown (for instance developer-locked) arguments are refused;
    ``null`` or an empty string for an optional argument means "not given" (models often send them)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_schema_extra)

    #: The names of the option fields of this model (everything but prompt, image_ids and mask_id).
    option_fields: ClassVar[tuple[str, ...]] = ()

    prompt: str

    @model_validator(mode="before")
    @classmethod
    def _not_given(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            if key == "prompt":
                if value is not None:
                    cleaned[key] = value
                continue
            if _blank(value):
                continue
            if key == "image_ids":
                items = [value] if isinstance(value, str) else value
                if isinstance(items, list | tuple):
                    items = [item for item in items if not _blank(item)]
                    if not items:
                        continue
                value = items
            cleaned[key] = value
        return cleaned

    def options(self) -> dict[str, Any]:
        """The image options the agent set (not-given ones left out)."""
        return {name: value for name in self.option_fields if (value := getattr(self, name)) is not None}

    def inputs(self) -> tuple[list[str], str | None]:
        """The input image ids and the mask id the agent gave (empty and ``None`` when not given)."""
        images = list(getattr(self, "image_ids", None) or [])
        return images, cast("str | None", getattr(self, "mask_id", None))


def build_args_schema(
    options: ImageOptions,
    exposed: Sequence[str],
    *,
    allow_inputs: bool = True,
    name: str = "ImageGenerationInput",
    today: datetime.date | None = None,
) -> type[ToolArguments]:
    """The tool's argument model: ``prompt``, the ``exposed`` options, and (with ``allow_inputs``) the edit inputs.

    ``options`` are the developer's defaults. Types are narrowed to what the image model accepts next to the
    locked options: enums list only such values, and ``size`` is a fixed list when the model has no custom sizes.
    When ``model`` itself is exposed, a value is offered if *some* current model accepts it with the locked
    options (the generator checks the final combination), and the description says which models take the
    values not every model has. Current models are those neither deprecated nor shut down on ``today``
    (:func:`~imagegen_tool.capabilities.offered_models`), plus the developer's own default model while it
    still works. Options that are not exposed are absent, so a value the developer fixed is
    neither shown to nor settable by the agent. Descriptions are assembled from the offered values.
    """
    unknown = [field for field in exposed if field not in EXPOSABLE_OPTIONS]
    if unknown:
        raise ConfigurationError(
            f"cannot expose {', '.join(unknown)} to the agent; exposable options: {', '.join(EXPOSABLE_OPTIONS)}"
        )
    models = _candidate_models(options, exposed, today)
    prompt_description = PROMPT_DESCRIPTION + (EDIT_PROMPT_DESCRIPTION if allow_inputs else "")
    fields: dict[str, Any] = {
        "prompt": (
            Annotated[str, AfterValidator(_check_prompt)],
            Field(min_length=1, max_length=MAX_PROMPT_CHARS, description=prompt_description),
        ),
    }
    if allow_inputs:
        fields["image_ids"] = (
            list[_ImageId] | None,
            Field(default=None, max_length=MAX_INPUT_IMAGES, description=IMAGE_IDS_DESCRIPTION),
        )
        fields["mask_id"] = (_ImageId | None, Field(default=None, description=MASK_ID_DESCRIPTION))
    option_fields = [field for field in EXPOSABLE_OPTIONS if field in exposed]  # a stable order
    for field in option_fields:
        fields[field] = _option_field(field, options, models, exposed)
    model = cast("type[ToolArguments]", create_model(name, __base__=ToolArguments, **fields))
    model.option_fields = tuple(option_fields)
    return model


def _candidate_models(
    options: ImageOptions, exposed: Sequence[str], today: datetime.date | None = None
) -> list[ModelCapabilities | None]:
    """The capability entries the schema must admit: the configured model, or every current one if exposed.

    An agent is never offered a deprecated or shut-down model; a developer who chose a deprecated model as the
    default keeps it offered until its shutdown date (leaving ``model`` out means that model anyway)."""
    if "model" not in exposed:
        return [capabilities_for(options.effective_model)]
    names = list(offered_models(today))
    chosen = capabilities_for(options.model) if options.model else None
    if chosen is not None and chosen.name not in names and chosen.lifecycle(today) != "shutdown":
        names.append(chosen.name)
    current: list[ModelCapabilities | None] = [capabilities_for(name) for name in names]
    if options.model and chosen is None:
        current.append(None)  # a developer default the table does not know: type checks only
    return current


def _option_field(
    field: str, options: ImageOptions, models: list[ModelCapabilities | None], exposed: Sequence[str]
) -> tuple[Any, Any]:
    base = ImageOptions.model_fields[field]
    annotation: Any = base.annotation  # ``X | None`` as declared on ImageOptions
    constraints: list[Any] = list(base.metadata)
    known = [caps for caps in models if caps is not None]
    type_checks_only = len(known) < len(models)  # an unknown model: no table to narrow with
    model_exposed = "model" in exposed
    description = " ".join((base.description or "").split())

    if field == "model":
        names = [caps.name for caps in known] + ([options.model] if options.model and type_checks_only else [])
        names = list(dict.fromkeys(sorted(names)))
        annotation = _literal(names)
        description = _enum_description(field, names, {}, options)
    elif field in _ENUM_FIELDS:
        if type_checks_only:
            allowed = _literal_values(annotation)
            takers: dict[str, list[str]] = {}
        else:
            allowed, takers = _allowed_values(field, options, known, model_exposed)
            if not allowed:
                raise ConfigurationError(
                    f"{field} cannot be set for {', '.join(caps.name for caps in known)}: do not expose it"
                )
        annotation = _literal(allowed)
        description = _enum_description(field, allowed, takers, options, models=known, exposed=exposed)
    elif field == "size":
        description = _size_description(known, type_checks_only)
        if not type_checks_only and all(caps.custom_size is None for caps in known):
            sizes = _union([caps.sizes for caps in known]) or ()
            if any(caps.auto_size for caps in known):
                sizes = (*sizes, "auto")
            annotation = _literal(sizes)
    elif field == "output_compression":
        formats = _compression_formats(known, options, type_checks_only)
        description = (
            f"Compression level, 0 to 100, for {' and '.join(formats)} output only (100 = best quality, largest file)."
        )
    elif field in ("frame_count", "frame_duration_ms"):
        low, high = getattr(general_rules(), "gif_frame_count" if field == "frame_count" else "gif_frame_duration_ms")
        constraints = [*constraints, Field(ge=low, le=high)]
        # The range is in the text too: some converters (Gemini's) drop bounds from nullable numbers.
        if field == "frame_count":
            description = f"Number of animation frames, {low} to {high} (gif output only)."
        else:
            description = (
                f"Duration of each animation frame in milliseconds, {low} to {high}, rounded to 10 ms "
                "(gif output only)."
            )

    elif field == "n":
        bounds = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in base.metadata}
        description = (
            f"Number of images (variants) to make in one call, {bounds.get('Ge', 1)} to {bounds.get('Le', 10)}; "
            "each image costs as much as a call of its own."
        )

    default = getattr(options, field)
    if default is not None:
        description += f" Default: {default!r}."
    if constraints:
        annotation = Annotated[(annotation, *constraints)]
    return annotation, Field(default=None, description=description)


def _allowed_values(
    field: str, options: ImageOptions, known: list[ModelCapabilities], model_exposed: bool
) -> tuple[tuple[str, ...], dict[str, list[str]]]:
    """The values some candidate model accepts next to the locked options, and which models take each.

    One check covers every rule of the table: the merge re-validates the whole combination, so an agent is never
    offered a value it would then be told to change through an option it cannot see."""
    merged: dict[str, list[str]] = {}
    for caps in known:
        values = caps.allowed_values(field)
        for value in values if values is not None else _literal_values(ImageOptions.model_fields[field].annotation):
            change = {field: value, "model": caps.name} if model_exposed else {field: value}
            try:
                options.merge(change)
            except ImageGenerationError:
                continue
            merged.setdefault(value, []).append(caps.name)
    # The type's own order: typing treats Literals with the same values as equal whatever their order, and
    # pydantic reuses the schema of an equal type, so an order that depends on the models would leak across
    # schemas.
    canonical = _literal_values(ImageOptions.model_fields[field].annotation)
    ordered = sorted(merged, key=lambda value: canonical.index(value) if value in canonical else len(canonical))
    return tuple(ordered), merged


def _enum_description(
    field: str,
    allowed: Sequence[str],
    takers: Mapping[str, list[str]],
    options: ImageOptions,
    *,
    models: Sequence[ModelCapabilities] = (),
    exposed: Sequence[str] = (),
) -> str:
    notes = _VALUE_NOTES.get(field, {})
    everyone = {caps.name for caps in models}
    parts = []
    for value in allowed:
        text = f"'{value}'"
        if notes.get(value):
            text += f" ({notes[value]})"
        only = takers.get(value)
        if only is not None and everyone and set(only) != everyone:
            text += f" [only {', '.join(only[:4])}{', ...' if len(only) > 4 else ''}]"
        parts.append(text)
    description = f"{_LEADS.get(field, field)}: " + ", ".join(parts) + "."
    if field == "background" and "transparent" in allowed and options.output_format is None:
        formats = [fmt for fmt in general_rules().alpha_formats if _format_possible(fmt, models, options, exposed)]
        if formats:
            description += f" 'transparent' needs output_format {' or '.join(formats)}."
    if field == "model":
        if options.model is None:
            description += f" Leave it out for the default, {default_image_model()}."
        description += " Not every model accepts every option value."
    return description


def _format_possible(
    fmt: str, models: Sequence[ModelCapabilities], options: ImageOptions, exposed: Sequence[str]
) -> bool:
    if options.output_format is not None:
        return options.output_format == fmt
    if not models:
        return True
    return any(caps.output_format is None or fmt in caps.output_format for caps in models)


def _compression_formats(known: Sequence[ModelCapabilities], options: ImageOptions, type_only: bool) -> list[str]:
    formats = list(general_rules().compression_formats)
    if options.output_format is not None:
        return [fmt for fmt in formats if fmt == options.output_format] or formats
    if type_only or not known:
        return formats
    return [f for f in formats if any(caps.output_format is None or f in caps.output_format for caps in known)]


def _size_description(known: Sequence[ModelCapabilities], type_checks_only: bool) -> str:
    if type_checks_only or not known:
        return "Image size as WIDTHxHEIGHT such as 1024x1024, or 'auto'. Larger sizes cost more."
    standard = _union([caps.sizes for caps in known]) or ()
    labelled = ", ".join(f"'{size}' ({_orientation(size)})" for size in standard)
    text = f"Image size: {labelled}" if labelled else "Image size"
    if any(caps.auto_size for caps in known):
        text += ", or 'auto' (the model chooses)"
    rules = list(dict.fromkeys(caps.custom_size.describe() for caps in known if caps.custom_size is not None))
    if rules:
        text += "; also any " + " or any ".join(rules)
        if len(rules) < len(known) or any(caps.custom_size is None for caps in known):
            text += " (not every model)"
    return text + ". Larger sizes cost more."


def _orientation(size: str) -> str:
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return size
    w, h = int(width), int(height)
    return "square" if w == h else "landscape" if w > h else "portrait"


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


def agent_error_message(error: BaseException, *, tool_name: str = "the tool") -> str:
    """The text an agent reads when its call fails: what went wrong and what to do next.

    Typed errors carry their own ``agent_message``; invalid arguments are described field by field; anything
    else is reported without internals (the developer sees the exception in the logs)."""
    if isinstance(error, ValidationError):
        return describe_validation_error(error, tool_name=tool_name)
    if isinstance(error, ImageGenerationError):
        return error.agent_message
    return (
        f"{tool_name} failed unexpectedly ({type(error).__name__}). This is not caused by your arguments; "
        "tell the user the image could not be made."
    )


# -- previews ---------------------------------------------------------------------------------------------

#: Largest source image (in pixels, after JPEG draft scaling) decoded for a preview. Every real output fits
#: (3840x2160 is 8.3 MP; a gif sprite sheet about the same); a file declaring more is not decoded at all, so a
#: small file announcing huge dimensions cannot make the tool allocate gigabytes.
DEFAULT_PREVIEW_SOURCE_PIXELS = 4096 * 4096


class ImagePreview(BaseModel):
    """A small JPEG of a stored image for a vision-capable agent model. The bytes are not serialised."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    mime_type: str = "image/jpeg"
    width: int
    height: int
    data: bytes = Field(repr=False, exclude=True)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.b64}"


def make_preview(
    data: bytes,
    *,
    image_id: str = "",
    max_side: int = 512,
    max_source_pixels: int = DEFAULT_PREVIEW_SOURCE_PIXELS,
) -> ImagePreview | None:
    """A JPEG at most ``max_side`` px on its longer side, or ``None`` when the image cannot be previewed (SVG,
    unreadable bytes, or a source larger than ``max_source_pixels``).

    Only the header is read before the budget check; JPEG sources are decoded at a reduced scale (``draft``),
    and the image is shrunk before any mode conversion, so memory stays near the source size within budget."""
    from PIL import Image, UnidentifiedImageError  # on first preview: keeps Pillow out of the adapters' import

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format == "JPEG":
                opened.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale
            width, height = opened.size
            if width <= 0 or height <= 0 or width * height > max_source_pixels:
                logger.warning(
                    "no preview for image %s: %dx%d exceeds the preview budget of %d pixels",
                    image_id or "?",
                    width,
                    height,
                    max_source_pixels,
                )
                return None
            image = opened if opened.mode not in ("1", "P", "PA") else opened.convert("RGBA")
            image.thumbnail((max_side, max_side), reducing_gap=2.0)
            image = image.convert("RGBA")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        logger.info("no preview for image %s: %s", image_id or "?", exc)
        return None
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, format="JPEG", quality=80)
    return ImagePreview(image_id=image_id, width=flat.width, height=flat.height, data=buffer.getvalue())


# -- result text ------------------------------------------------------------------------------------------


def format_result(
    result: GenerationResult,
    *,
    tool_name: str = "the tool",
    allow_inputs: bool = True,
    display: Display = "auto",
    previews: Sequence[ImagePreview] | None = None,
) -> str:
    """The text the agent reads: one short block per image (id, where it is, size, format, revised prompt).

    ``previews`` are the previews really sent with the text (``None``: previews are off); the text says which
    images have one, so the model is never told it sees an image it does not."""
    count = len(result.images)
    plural = "s" if count != 1 else ""
    shown = {preview.image_id for preview in previews or ()}
    if previews is None or not shown:
        note = "the image data is not shown here"
        if previews is not None:
            note = "no preview could be made, so the image data is not shown here"
    elif all(image.id in shown for image in result.images):
        note = "a small preview of each is attached" if count > 1 else "a small preview is attached"
    else:
        note = "small previews are attached for the images marked 'preview attached'"
    lines = [f"Generated {count} image{plural} (stored; {note})."]
    for index, image in enumerate(result.images, start=1):
        line = _describe_image(index, image, display)
        if previews is not None and shown and image.id in shown and len(shown) < count:
            line += " | preview attached"
        lines.append(line)
    if result.failures:
        lines.append(f"{len(result.failures)} further image call(s) of this request produced no image.")
    cost = _cost_text(result)
    if cost:
        lines.append(cost)
    if allow_inputs:
        lines.append(f"To change an image, call {tool_name} again with its id in image_ids and describe the change.")
    return "\n".join(lines)


def _cost_text(result: GenerationResult) -> str | None:
    """``Cost: $0.0123.`` when the actual cost of the call is known (the agent may be asked to stay frugal)."""
    usd = call_cost_usd(result)
    if usd is None:
        return None
    return f"Cost of this call: {format_usd(usd)}."


def call_cost_usd(result: GenerationResult | None) -> Decimal | None:
    """The actual cost of a call in US dollars, when its prices are known."""
    if result is None or result.cost is None or result.cost.actual is None:
        return None
    return result.cost.actual.usd


def _location(image: GeneratedImage, display: Display) -> tuple[str, str] | None:
    url = image.url
    if display == "id":
        return None
    if display in ("url", "auto") and url:
        return "url", str(url)
    if display == "url":
        return None  # the store gives no URL: the id is all the agent can use
    return "file", image.path or image.uri


def _describe_image(index: int, image: GeneratedImage, display: Display = "auto") -> str:
    size = f"{image.width}x{image.height} " if image.width and image.height else ""
    text = f"{index}. id: {image.id}"
    location = _location(image, display)
    if location is not None:
        label, value = location
        if len(value) > _MAX_LOCATION:
            value = "..." + value[-(_MAX_LOCATION - 3) :]
        text += f" | {label}: {value}"
    text += f" | {size}{image.format}"
    # Only the start can be shown: clean no more of a (possibly huge) revised prompt than could fit.
    revised = image.revised_prompt or ""
    prompt = agent_visible_text(revised[: 8 * _MAX_REVISED_PROMPT])
    if prompt:
        room = min(_MAX_REVISED_PROMPT, MAX_IMAGE_TEXT - 200 - len(text))
        if len(prompt) > room or len(revised) > 8 * _MAX_REVISED_PROMPT:
            prompt = prompt[: max(room - 3, 0)].rstrip() + "..."
        text += f" | revised prompt: {prompt}"
    return text


# -- the outcome of one call ------------------------------------------------------------------------------


class ImageResult(BaseModel):
    """One image of a :class:`ToolResult`: the handle an agent or a program keeps, never the bytes.

    Where the image is (``path``, ``url``) follows the tool's ``display`` setting, exactly as in the result text:
    with ``display="id"`` neither is given, so no file system layout reaches the model."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The image's id: pass it in image_ids to edit the image or use it as a reference.")
    path: str | None = Field(
        default=None,
        description="Where the image file is: a local file path, or the store's URI when the store is not a local "
        "folder. Absent when the tool does not show locations.",
    )
    url: str | None = Field(default=None, description="A URL a browser can open, when the store provides one.")
    width: int | None = Field(default=None, description="Width in pixels (absent when unknown, e.g. for SVG).")
    height: int | None = Field(default=None, description="Height in pixels (absent when unknown).")
    format: str = Field(description="File format detected from the bytes: png, webp, jpeg, gif, svg (or bin).")
    mime_type: str = Field(description="Media type detected from the bytes, e.g. image/png.")
    byte_size: int = Field(description="File size in bytes.")
    revised_prompt: str | None = Field(
        default=None, description="The prompt the image model actually used, when it rewrote the request."
    )
    model: str | None = Field(default=None, description="The image model that rendered the image.")
    input_ids: tuple[str, ...] = Field(default=(), description="Ids of the images this one was edited from.")
    preview: bool = Field(default=False, description="Whether a small preview of this image is attached.")

    @classmethod
    def from_image(cls, image: GeneratedImage, *, display: Display = "auto", preview: bool = False) -> ImageResult:
        """The result entry of a stored image, with its location shown as ``display`` says."""
        location = _location(image, display)
        return cls(
            id=image.id,
            path=location[1] if location is not None and location[0] == "file" else None,
            url=location[1] if location is not None and location[0] == "url" else None,
            width=image.width,
            height=image.height,
            format=image.format,
            mime_type=image.mime_type,
            byte_size=image.byte_size,
            # What the agent reads: invisible and control characters removed (the stored record keeps them).
            revised_prompt=agent_visible_text(image.revised_prompt) if image.revised_prompt else None,
            model=image.model,
            input_ids=image.input_ids,
            preview=preview,
        )


class ToolResult(BaseModel):
    """The structured result of one tool call: the one model behind MCP ``structuredContent`` (and its declared
    ``outputSchema``), the OpenAI Agents SDK tool output and pydantic-ai's typed return.

    Small and JSON-friendly: handles, never image bytes. An error result has ``is_error`` set, ``error`` holding
    the message the agent can act on and no images. Get one with :meth:`ToolOutput.structured`; its JSON schema
    with :meth:`json_schema` (or :meth:`AgentImageTool.output_schema`). Fields are only ever added, so clients
    that validate against an older schema keep working."""

    model_config = ConfigDict(frozen=True)

    images: tuple[ImageResult, ...] = Field(default=(), description="The images made by this call, in order.")
    failed_calls: int = Field(default=0, description="Further image calls of the same request that produced no image.")
    is_error: bool = Field(default=False, description="Whether the call failed (then there are no images).")
    error: str | None = Field(default=None, description="What went wrong and what to do next, when the call failed.")
    error_type: str | None = Field(
        default=None,
        description="The kind of failure, e.g. InvalidOptionsError, ModerationBlockedError, QuotaExceededError.",
    )
    retryable: bool | None = Field(
        default=None, description="When the call failed: whether the same call may succeed later."
    )
    cost_usd: float | None = Field(
        default=None,
        description="What this call cost in US dollars, from the usage the API reported (absent when a price is "
        "not published).",
    )
    estimated_cost_usd: float | None = Field(
        default=None,
        description="The upper-bound estimate made before the call (absent when it could not be estimated).",
    )

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the serialised result (``model_dump(mode="json")``), usable as an MCP
        ``outputSchema``: an object at the top level, nested models under ``$defs``."""
        return cls.model_json_schema(mode="serialization")


class ToolOutput(BaseModel):
    """What one tool call gives back: the text for the model, the handles for the program, optional previews.

    The renderers give the same content in each provider's tool-result format, previews included where that
    format accepts images."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    text: str
    images: tuple[GeneratedImage, ...] = ()
    previews: tuple[ImagePreview, ...] = ()
    is_error: bool = False
    result: GenerationResult | None = None
    error: ImageGenerationError | None = Field(default=None, exclude=True, repr=False)
    """The typed error behind an error output (for the developer; the model reads ``text``)."""
    display: Display = "auto"
    """How :meth:`structured` shows where each image is (the tool's ``display`` setting)."""
    error_type: str | None = None
    """The class name of the error behind an error output (also set when the error was not a typed one)."""

    @classmethod
    def from_error(cls, error: BaseException, *, tool_name: str = "the tool") -> ToolOutput:
        typed = error if isinstance(error, ImageGenerationError) else None
        return cls(
            text=agent_error_message(error, tool_name=tool_name),
            is_error=True,
            error=typed,
            error_type=type(error).__name__,
        )

    def structured(self) -> ToolResult:
        """The :class:`ToolResult` of this output: the handles (locations as the tool's ``display`` says), or the
        agent error message for an error output."""
        if self.is_error:
            return ToolResult(
                is_error=True,
                error=self.text,
                error_type=self.error_type,
                retryable=self.error.retryable if self.error is not None else False,
            )
        shown = {preview.image_id for preview in self.previews}
        return ToolResult(
            images=tuple(
                ImageResult.from_image(image, display=self.display, preview=image.id in shown) for image in self.images
            ),
            failed_calls=len(self.result.failures) if self.result is not None else 0,
            cost_usd=_float(call_cost_usd(self.result)),
            estimated_cost_usd=_float(_estimated(self.result)),
        )

    def responses_output(self) -> str | list[dict[str, Any]]:
        """The ``output`` of a Responses API ``function_call_output`` item: the text, then each preview as an
        ``input_image`` (SDK type ``ResponseFunctionCallOutputItemListParam``)."""
        if not self.previews:
            return self.text
        return [
            {"type": "input_text", "text": self.text},
            *({"type": "input_image", "image_url": p.data_url, "detail": "low"} for p in self.previews),
        ]

    def chat_completions_messages(self, tool_call_id: str) -> list[dict[str, Any]]:
        """Chat Completions messages: the ``tool`` message (text only: the API types its content as text parts),
        then, when there are previews, a ``user`` message carrying them as ``image_url`` parts."""
        messages: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": tool_call_id, "content": self.text}]
        if self.previews:
            intro = f"Previews of the images returned by tool call {tool_call_id} (sent by the tool, not the user):"
            parts: list[dict[str, Any]] = [{"type": "text", "text": intro}]
            parts.extend(
                {"type": "image_url", "image_url": {"url": p.data_url, "detail": "low"}} for p in self.previews
            )
            messages.append({"role": "user", "content": parts})
        return messages

    def anthropic_tool_result(self, tool_use_id: str) -> dict[str, Any]:
        """An Anthropic Messages ``tool_result`` block: text and base64 ``image`` blocks, ``is_error`` set."""
        content: list[dict[str, Any]] = [{"type": "text", "text": self.text}]
        content.extend(
            {"type": "image", "source": {"type": "base64", "media_type": p.mime_type, "data": p.b64}}
            for p in self.previews
        )
        return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": self.is_error}

    def gemini_function_response(self, name: str, *, call_id: str | None = None) -> dict[str, Any]:
        """A Gemini ``FunctionResponse`` (google-genai dict form): ``output`` or ``error`` text, previews as inline
        image ``parts`` of the response."""
        response: dict[str, Any] = {"name": name, "response": {"error" if self.is_error else "output": self.text}}
        if call_id is not None:
            response["id"] = call_id
        if self.previews:
            response["parts"] = [{"inline_data": {"mime_type": p.mime_type, "data": p.data}} for p in self.previews]
        return response


def _estimated(result: GenerationResult | None) -> Decimal | None:
    if result is None or result.cost is None or result.cost.estimate is None:
        return None
    return result.cost.estimate.usd


def _float(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), 6)


# -- stream events ----------------------------------------------------------------------------------------

#: Names of the events sent while an image streams (``partial_images`` > 0).
PARTIAL_IMAGE_EVENT = "imagegen_partial_image"
PROGRESS_EVENT = "imagegen_progress"
COMPLETED_EVENT = "imagegen_completed"

#: How a partial image's bytes travel in its event: ``base64`` text (JSON-friendly), the raw ``bytes`` (for
#: in-process consumers: no encoding at all), or ``none`` (the preview file location only).
PartialImageData = Literal["base64", "bytes", "none"]

#: Base64 is encoded in slices of this many bytes (a multiple of 3), yielding to the event loop between them.
_B64_SLICE = 3 * 64 * 1024


def stream_event_payload(
    event: StreamEvent, *, run_id: str | None = None, data: PartialImageData | bool = "none"
) -> dict[str, Any] | None:
    """The JSON-friendly payload for a core stream event (``event`` holds the event name), or ``None`` for an
    event UIs do not need. For async code use :func:`astream_event_payload`, which never encodes on the loop in
    one piece."""
    payload = _payload(event, run_id)
    if payload is not None and isinstance(event, PartialImageEvent):
        mode = _data_mode(data)
        if mode == "base64":
            payload["b64"] = event.b64 or base64.b64encode(event.partial.data).decode("ascii")
        elif mode == "bytes":
            payload["data"] = event.partial.data
    return payload


async def astream_event_payload(
    event: StreamEvent, *, run_id: str | None = None, data: PartialImageData | bool = "none"
) -> dict[str, Any] | None:
    """Async :func:`stream_event_payload`. The base64 is the API's own when the event carries it (no encoding at
    all); otherwise a 1.5 MB partial image is encoded in slices with the loop free in between (encoding holds
    the GIL, so a worker thread would stall the loop just the same)."""
    payload = _payload(event, run_id)
    if payload is not None and isinstance(event, PartialImageEvent):
        mode = _data_mode(data)
        if mode == "base64":  # the API's own base64 when the event carries it: nothing to encode
            payload["b64"] = event.b64 or await _ab64encode(event.partial.data)
        elif mode == "bytes":
            payload["data"] = event.partial.data
    return payload


def _data_mode(data: PartialImageData | bool) -> PartialImageData:
    if data is True:
        return "base64"
    if data is False:
        return "none"
    return data


def _payload(event: StreamEvent, run_id: str | None) -> dict[str, Any] | None:
    payload: dict[str, Any]
    if isinstance(event, PartialImageEvent):
        partial = event.partial
        payload = {"event": PARTIAL_IMAGE_EVENT, **partial.model_dump(mode="json"), "response_id": event.response_id}
    elif isinstance(event, ProgressEvent):
        payload = {"event": PROGRESS_EVENT, **event.model_dump(mode="json", exclude={"type"})}
    elif isinstance(event, GenerationCompleted):
        payload = {"event": COMPLETED_EVENT, "image_ids": [image.id for image in event.result.images]}
    else:
        return None
    payload["run_id"] = run_id
    return payload


async def _ab64encode(data: bytes) -> str:
    if len(data) <= _B64_SLICE:
        return base64.b64encode(data).decode("ascii")
    view = memoryview(data)
    pieces = []
    for start in range(0, len(data), _B64_SLICE):
        pieces.append(base64.b64encode(view[start : start + _B64_SLICE]))
        await asyncio.sleep(0)
    return b"".join(pieces).decode("ascii")


# -- the tool ---------------------------------------------------------------------------------------------

EventCallback = Callable[[StreamEvent], object]


class AgentImageTool:
    """The image tool as any agent framework sees it, with no framework types (see the module docstring for
    how MCP, the OpenAI Agents SDK, pydantic-ai and a CLI wrap it).

    Example::

        core = AgentImageTool(store="images/", options=ImageOptions(quality="low"), display="id")
        schema = core.json_schema()                      # give it to the model with core.name / core.description
        output = core.call_safely({"prompt": "a red kite", "size": None})
        output.text                                      # what the model reads (or the error it can act on)
        output.images                                    # GeneratedImage handles for the program

    Args:
        generator: a ready :class:`ImageGenerator` (not closed by :meth:`close`); otherwise one is made from
            ``store`` and the client settings (``api="images"`` for the Images API route, see
            :class:`~imagegen_tool.ImageGenerator`) and owned by the tool.
        options: defaults for every call, merged over the generator's options. Set and not exposed = locked.
        exposed_options: the options the agent may set (default: size, quality, background, output_format,
            minus those set in ``options``).
        allow_inputs: offer ``image_ids`` and ``mask_id`` so the agent can edit earlier images.
        include_preview: attach a small JPEG preview of each image for vision-capable agent models.
        preview_max_side: longest side of a preview in pixels.
        preview_max_source_pixels: previews are made only for images up to this many pixels.
        display: what the model is told about where an image is (see :data:`Display`).
        thread_sessions: continue from the latest image of the same conversation when no ``image_ids`` are given.
        input_policy: what the agent may name as input images (default: only images this store handed out;
            see :class:`~imagegen_tool.inputs.InputPolicy` to allow file ids, URLs or file names).
        name, description: the tool's name and the description the model reads.
    """

    def __init__(
        self,
        *,
        generator: ImageGenerator | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        exposed_options: Sequence[str] | None = None,
        allow_inputs: bool = True,
        include_preview: bool = False,
        preview_max_side: int = 512,
        preview_max_source_pixels: int = DEFAULT_PREVIEW_SOURCE_PIXELS,
        display: Display = "auto",
        thread_sessions: bool = False,
        name: str = "generate_image",
        description: str | None = None,
        store: ImageStore | str | os.PathLike[str] | None = None,
        backend: ImageBackend | None = None,
        client: OpenAI | None = None,
        async_client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        text_model: str | None = None,
        api: Literal["responses", "images"] | None = None,
        input_policy: InputPolicy = AGENT_INPUT_POLICY,
        validation: ValidationMode | None = None,
        safety_identifier: str | None = None,
    ) -> None:
        if display not in get_args(Display):
            raise ConfigurationError(f"display must be one of {', '.join(get_args(Display))}, not {display!r}")
        if not 16 <= preview_max_side <= 2048:
            raise ConfigurationError(f"preview_max_side must be 16 to 2048 pixels, not {preview_max_side}")
        self.owns_generator = generator is None
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
                validation=validation or "known",
                safety_identifier=safety_identifier,
            )
        elif any(
            x is not None
            for x in (store, backend, client, async_client, api_key, base_url, text_model, api, validation)
        ) or (safety_identifier is not None):
            raise ConfigurationError("pass either generator=... or the settings to make one (store, client, ...)")
        self.generator = generator
        # The developer's defaults are checked in the generator's validation mode ("off" lets anything through).
        self.options = generator.options.merge(options, validation=generator.validation)
        if exposed_options is None:
            exposed = tuple(f for f in DEFAULT_EXPOSED_OPTIONS if getattr(self.options, f) is None)
        else:
            exposed = tuple(dict.fromkeys(exposed_options))
        if "n" in exposed and not callable(getattr(generator.backend, "check_request", None)):
            raise ConfigurationError(
                "n can be exposed only on the Images API route (api='images'): the Responses route makes one "
                "image per call"
            )
        self.exposed_options = exposed
        self.allow_inputs = allow_inputs
        self.include_preview = include_preview
        self.preview_max_side = preview_max_side
        self.preview_max_source_pixels = preview_max_source_pixels
        self.display: Display = display
        self.thread_sessions = thread_sessions
        self.input_policy = input_policy
        self.name = name
        self.args_model = build_args_schema(
            self.options, exposed, allow_inputs=allow_inputs, name=_schema_name(name), today=generator.today()
        )
        self.description = description or tool_description(allow_inputs, include_preview)
        self._loop_guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"AgentImageTool(name={self.name!r}, exposed_options={self.exposed_options!r})"

    # -- what the model sees ------------------------------------------------------------------------------

    def json_schema(self, *, strict: bool = False) -> dict[str, Any]:
        """The arguments' JSON schema. ``strict=True``: every property listed in ``required`` (optional ones are
        nullable), as OpenAI strict mode and the Agents SDK's strict function tools expect."""
        schema = self.args_model.model_json_schema()
        if strict:
            schema["required"] = list(schema["properties"])
        return schema

    def output_schema(self) -> dict[str, Any]:
        """The JSON schema of :meth:`ToolOutput.structured` results (an MCP ``outputSchema``)."""
        return ToolResult.json_schema()

    def session_for(self, thread_id: object | None) -> str | None:
        """The store session key of a conversation (LangGraph thread, MCP session, Agents SDK conversation), when
        ``thread_sessions`` is on."""
        if not self.thread_sessions or thread_id is None or thread_id == "":
            return None
        return f"thread:{thread_id}"

    # -- calls --------------------------------------------------------------------------------------------

    def parse_arguments(self, arguments: Mapping[str, Any] | str | BaseModel) -> ToolArguments:
        """Validate the agent's arguments (a mapping, a JSON string, or an argument model); raises
        :class:`ToolArgumentsError` with a message for the agent."""
        if isinstance(arguments, self.args_model):
            return arguments
        try:
            if isinstance(arguments, str):
                return self.args_model.model_validate_json(arguments or "{}")
            data = arguments.model_dump(exclude_none=True) if isinstance(arguments, BaseModel) else arguments
            return self.args_model.model_validate(data)
        except ValidationError as exc:
            raise ToolArgumentsError.from_validation_error(exc, tool_name=self.name) from None

    def call(
        self,
        arguments: Mapping[str, Any] | str | BaseModel,
        *,
        thread_id: object | None = None,
        on_event: EventCallback | None = None,
        safety_identifier: str | None = None,
    ) -> ToolOutput:
        """Validate, generate and describe. Raises :class:`ToolArgumentsError` or the typed
        :class:`~imagegen_tool.errors.ImageGenerationError`; :meth:`call_safely` returns them as error output.

        ``safety_identifier``: the end user of this call (a stable hash of their id, never a secret), sent instead
        of the generator's own; for a tool instance that serves many users."""
        args = self.parse_arguments(arguments)
        kwargs = self._generate_kwargs(args, thread_id, safety_identifier)
        with self.agent_inputs():
            result = self.generator.generate(args.prompt, on_event=on_event, **kwargs)
        previews = self.previews(result) if self.include_preview else None
        return self._output(result, previews)

    async def acall(
        self,
        arguments: Mapping[str, Any] | str | BaseModel,
        *,
        thread_id: object | None = None,
        on_event: Callable[[StreamEvent], object | Awaitable[object]] | None = None,
        safety_identifier: str | None = None,
    ) -> ToolOutput:
        """Async :meth:`call`. Previews are made in a worker thread."""
        await self.close_clients_with_loop()
        args = self.parse_arguments(arguments)
        kwargs = self._generate_kwargs(args, thread_id, safety_identifier)
        with self.agent_inputs():
            result = await self.generator.agenerate(args.prompt, on_event=on_event, **kwargs)
        previews = await asyncio.to_thread(self.previews, result) if self.include_preview else None
        return self._output(result, previews)

    def call_safely(self, arguments: Mapping[str, Any] | str | BaseModel, **kwargs: Any) -> ToolOutput:
        """:meth:`call`, with invalid arguments and image service errors returned as error output."""
        try:
            return self.call(arguments, **kwargs)
        except ImageGenerationError as exc:
            logger.info("%s failed: %s", self.name, exc)
            return ToolOutput.from_error(exc, tool_name=self.name)

    async def acall_safely(self, arguments: Mapping[str, Any] | str | BaseModel, **kwargs: Any) -> ToolOutput:
        """Async :meth:`call_safely`."""
        try:
            return await self.acall(arguments, **kwargs)
        except ImageGenerationError as exc:
            logger.info("%s failed: %s", self.name, exc)
            return ToolOutput.from_error(exc, tool_name=self.name)

    def result_text(self, result: GenerationResult, previews: Sequence[ImagePreview] | None = None) -> str:
        return format_result(
            result, tool_name=self.name, allow_inputs=self.allow_inputs, display=self.display, previews=previews
        )

    def previews(self, result: GenerationResult) -> list[ImagePreview]:
        """A preview per image that can be previewed (blocking: run it in a worker thread from async code)."""
        previews = []
        for image in result.images:
            try:
                data = self.generator.store.read_bytes(image.id)
            except ImageGenerationError:
                logger.warning("no preview for image %s: cannot read it back from the store", image.id)
                continue
            preview = make_preview(
                data,
                image_id=image.id,
                max_side=self.preview_max_side,
                max_source_pixels=self.preview_max_source_pixels,
            )
            if preview is not None:
                previews.append(preview)
        return previews

    def agent_inputs(self) -> contextlib.AbstractContextManager[object]:
        """The context in which the generator resolves the agent's input images: where the agent input policy
        (only images this store handed out, unless the developer opts in to more) applies to every adapter."""
        return input_policy(self.input_policy)

    def _generate_kwargs(
        self, args: ToolArguments, thread_id: object | None, safety_identifier: str | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"options": self.options, "session": self.session_for(thread_id)}
        if safety_identifier is not None:
            kwargs["safety_identifier"] = safety_identifier
        images, mask = args.inputs()
        if images:
            kwargs["images"] = images
        if mask:
            kwargs["mask"] = mask
        kwargs.update(args.options())
        return kwargs

    def _output(self, result: GenerationResult, previews: list[ImagePreview] | None) -> ToolOutput:
        return ToolOutput(
            text=self.result_text(result, previews),
            images=result.images,
            previews=tuple(previews or ()),
            result=result,
            display=self.display,
        )

    @property
    def streams(self) -> bool:
        """Whether calls stream partial images (``partial_images`` > 0), so adapters know to relay events."""
        return bool(self.options.partial_images)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP clients of the generator the tool made (a generator passed in is the caller's)."""
        if self.owns_generator:
            self.generator.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self.owns_generator:
            await self.generator.aclose()

    def __enter__(self) -> AgentImageTool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> AgentImageTool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def close_clients_with_loop(self) -> None:
        """Make sure the async clients the tool's generator makes for the running loop are closed when the loop
        shuts down (``asyncio.run`` and ``asyncio.Runner`` close pending async generators first), so a plain
        ``asyncio.run(tool.ainvoke(...))`` leaves no open connection behind. Called by :meth:`acall`."""
        if not self.owns_generator:
            return
        loop = asyncio.get_running_loop()
        if loop in self._loop_guards:
            return
        guard = _close_at_loop_end(self.generator)
        await anext(guard)  # started: the loop now finalises it in shutdown_asyncgens()
        self._loop_guards[loop] = guard


async def _close_at_loop_end(generator: ImageGenerator) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        try:
            await generator.aclose()
        except Exception:  # closing must never mask the loop's own shutdown
            logger.warning("closing the image tool's clients at event loop shutdown failed", exc_info=True)


def _schema_name(tool_name: str) -> str:
    return "".join(part.capitalize() for part in tool_name.replace("-", "_").split("_")) + "Input"


def tool_description(allow_inputs: bool, include_preview: bool) -> str:
    """The description the model reads, matching what the tool really returns."""
    text = (
        "Generate an image from a text description"
        + (", or edit an earlier image by passing its id" if allow_inputs else "")
        + ". The image is saved; the result gives each image's id, size and the prompt the image model "
        "actually used."
    )
    if include_preview:
        text += " A small preview of each image is attached where possible so you can check it."
    else:
        text += " You do not see the image itself."
    if allow_inputs:
        text += " Use the id to refer to the image later, for instance to edit it."
    return text
