"""Image options: the settings of the ``image_generation`` tool, validated against the capability table.

:class:`ImageOptions` mirrors the SDK's ``ImageGeneration`` tool parameter field for field. Constructing one
checks types, then (for models in ``models.toml``) the allowed values per model and the cross-field rules, and
raises :class:`~imagegen_tool.errors.InvalidOptionsError` naming the field, the value and what is allowed.
Unknown model names get type checks only, so a model released after this package still works.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Mapping
from typing import Any, Literal, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from .capabilities import (
    VALIDATION_MODES,
    ModelCapabilities,
    ValidationMode,
    capabilities_for,
    current_date,
    default_image_model,
    general_rules,
)
from .errors import InvalidInputError, InvalidOptionsError

__all__ = [
    "Action",
    "Background",
    "Complexity",
    "ImageMask",
    "ImageOptions",
    "ImageReference",
    "InputFidelity",
    "Moderation",
    "OutputFormat",
    "Quality",
    "SvgOptions",
    "ValidationMode",
    "check_options",
    "check_request",
    "parse_size",
]

Action = Literal["auto", "generate", "edit"]
Background = Literal["transparent", "opaque", "auto"]
Quality = Literal["low", "medium", "high", "xhigh", "max", "auto"]
OutputFormat = Literal["png", "webp", "jpeg", "gif", "svg"]
Moderation = Literal["auto", "low"]
Complexity = Literal["low", "medium", "high"]
InputFidelity = Literal["high", "low"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]

#: Validation context key: skip the capability table (used when reading stored handles, whose options were
#: valid when they were made even if a model has been retired since).
TRUSTED_CONTEXT = "imagegen_tool_trusted"
#: Validation context keys: the validation mode (``"strict" | "known" | "off"``) and the date lifecycle facts
#: are compared with (a ``datetime.date``; default today in UTC).
VALIDATION_CONTEXT = "imagegen_tool_validation"
TODAY_CONTEXT = "imagegen_tool_today"

logger = logging.getLogger(__name__)
_WARNED_DEPRECATED: set[str] = set()

_SIZE_RE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")


def parse_size(size: str) -> tuple[int, int] | None:
    """``"1536x864"`` → ``(1536, 864)``; ``None`` for ``"auto"``. Raises ``ValueError`` for anything else."""
    if size == "auto":
        return None
    match = _SIZE_RE.fullmatch(size)
    if match is None:
        raise ValueError(f"size must be 'auto' or WIDTHxHEIGHT such as '1024x1024', got {size!r}")
    return int(match.group(1)), int(match.group(2))


class ImageReference(BaseModel):
    """An image as the API takes it: an uploaded file id or a URL (``https://`` or a ``data:`` URL)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_id: str | None = None
    image_url: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.file_id is None) == (self.image_url is None):
            raise InvalidInputError("an image reference needs exactly one of file_id or image_url")
        return self

    def to_input_image(self) -> dict[str, Any]:
        """The ``input_image`` content part for the Responses API."""
        part: dict[str, Any] = {"type": "input_image", "detail": "auto"}
        part.update(self.model_dump(exclude_none=True))
        return part


class ImageMask(ImageReference):
    """An inpainting mask as the API takes it (``input_image_mask``): a file id or a (data) URL."""


class SvgOptions(BaseModel):
    """Settings of the model that authors SVG output (``output_format="svg"`` only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None
    reasoning_effort: ReasoningEffort | None = None


class ImageOptions(BaseModel):
    """Settings for one image generation or edit. Every field is optional: unset means the API default.

    The descriptions are written for the agent that picks the values (adapters show them in tool schemas).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = Field(
        default=None,
        min_length=1,
        description="GPT Image model that renders the image (e.g. gpt-image-2.6-sunburst, the API default).",
    )
    action: Action | None = Field(
        default=None,
        description="'generate' a new image, 'edit' the input image(s), or 'auto' to let the model decide.",
    )
    size: str | None = Field(
        default=None,
        description=(
            "Image size as WIDTHxHEIGHT: 1024x1024 (square), 1536x1024 (landscape), 1024x1536 (portrait), or "
            "'auto'. Larger sizes cost more."
        ),
    )
    quality: Quality | None = Field(
        default=None,
        description=(
            "Rendering quality: 'low' for drafts and quick previews, 'medium', 'high' for final images, or 'auto'."
        ),
    )
    background: Background | None = Field(
        default=None,
        description="'transparent' for logos, stickers and cut-outs (needs png or webp), 'opaque', or 'auto'.",
    )
    output_format: OutputFormat | None = Field(
        default=None,
        description=(
            "File format: png (default, lossless), webp or jpeg (smaller; can be compressed), gif (animation), "
            "svg (vector)."
        ),
    )
    output_compression: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Compression level 0-100 for jpeg and webp only (100 = best quality, largest file).",
    )
    moderation: Moderation | None = Field(
        default=None, description="Content moderation strictness: 'auto' (default) or 'low' (less restrictive)."
    )
    input_fidelity: InputFidelity | None = Field(
        default=None,
        description=(
            "How closely an edit keeps the style and features (especially faces) of the input images: 'high' or "
            "'low'. Not accepted by every model."
        ),
    )
    partial_images: int | None = Field(
        default=None,
        ge=0,
        le=3,
        description="Number of partial (preview) images streamed while the final image renders, 0-3.",
    )
    n: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description=(
            "Number of images to make in one call, 1-10 (Images API route only; the Responses route makes one)."
        ),
    )
    complexity: Complexity | None = Field(
        default=None,
        description=(
            "How much planning goes into the image ('low', 'medium', 'high'), independent of rendering quality. "
            "Use 'high' for detailed scenes, diagrams and text-heavy images."
        ),
    )
    frame_count: int | None = Field(
        default=None, description="Number of animation frames, 2-16 (gif output only; default 9)."
    )
    frame_duration_ms: int | None = Field(
        default=None,
        description=(
            "Duration of each animation frame in milliseconds, rounded to 10 ms (gif output only; default 200)."
        ),
    )
    svg: SvgOptions | None = Field(default=None, description="Settings of the SVG author model (svg output only).")
    mask: ImageMask | None = Field(
        default=None,
        description="Inpainting mask: the transparent areas of the mask mark where the input image is edited.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo) -> Self:
        if isinstance(data, cls):  # already validated when it was made (frozen since)
            return data
        try:
            options = handler(data)
        except ValidationError as exc:
            raise _options_error_from(exc) from None
        context = info.context or {}
        if context.get(TRUSTED_CONTEXT):
            return options
        _check_size_syntax(options)
        mode = context.get(VALIDATION_CONTEXT, "known")
        check_options(options, mode=mode, today=context.get(TODAY_CONTEXT))
        _check_ranges(options)
        return options

    @property
    def effective_model(self) -> str:
        """The image model the API will use: the configured one, else the API default."""
        return self.model or default_image_model()

    @property
    def effective_output_format(self) -> OutputFormat:
        return self.output_format or "png"

    @classmethod
    def from_tool_param(cls, param: Mapping[str, Any]) -> ImageOptions:
        """Options from an ``image_generation`` tool dict exactly as sent on the wire (the inverse of
        :meth:`to_tool_param`). Unknown keys raise :class:`InvalidOptionsError`."""
        data = dict(param)
        kind = data.pop("type", "image_generation")
        if kind != "image_generation":
            raise InvalidOptionsError("type", kind, "'image_generation'")
        if "n" in data:  # an ImageOptions field for the Images API route, not a parameter of this tool
            raise InvalidOptionsError("n", data["n"], "omit it", reason="unknown option")
        if "input_image_mask" in data:
            data["mask"] = data.pop("input_image_mask")
        svg = data.get("svg")
        if isinstance(svg, Mapping):
            reasoning = svg.get("reasoning") or {}
            data["svg"] = {
                "model": svg.get("model"),
                "reasoning_effort": reasoning.get("effort") if isinstance(reasoning, Mapping) else reasoning,
            }
        return cls(**data)

    def to_tool_param(self) -> dict[str, Any]:
        """The SDK's ``ImageGeneration`` tool parameter (``tools=[...]`` entry), unset fields omitted."""
        param: dict[str, Any] = {"type": "image_generation"}
        for name in _PLAIN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                param[name] = value
        if self.mask is not None:
            param["input_image_mask"] = self.mask.model_dump(exclude_none=True)
        if self.svg is not None:
            svg: dict[str, Any] = {}
            if self.svg.model is not None:
                svg["model"] = self.svg.model
            if self.svg.reasoning_effort is not None:
                svg["reasoning"] = {"effort": self.svg.reasoning_effort}
            param["svg"] = svg
        return param

    @classmethod
    def build(
        cls,
        data: Mapping[str, Any] | None = None,
        *,
        validation: ValidationMode = "known",
        today: datetime.date | None = None,
    ) -> ImageOptions:
        """Options from a mapping, validated in ``validation`` mode (``ImageOptions(...)`` uses ``"known"``)."""
        if validation not in VALIDATION_MODES:
            raise InvalidOptionsError("validation", validation, ", ".join(VALIDATION_MODES))
        return cls.model_validate(dict(data or {}), context={VALIDATION_CONTEXT: validation, TODAY_CONTEXT: today})

    def merge(
        self,
        other: ImageOptions | Mapping[str, Any] | None = None,
        /,
        *,
        validation: ValidationMode = "known",
        today: datetime.date | None = None,
        **changes: Any,
    ) -> ImageOptions:
        """A new, re-validated ``ImageOptions`` with the set fields of ``other`` and ``changes`` applied on top.

        ``None`` values in ``changes`` leave a field as it is (they do not unset it). ``validation`` and
        ``today`` are the validation mode and date (see :func:`check_options`).
        """
        data = self.model_dump(exclude_none=True)
        if isinstance(other, ImageOptions):
            data.update(other.model_dump(exclude_none=True))
        elif other is not None:
            data.update({k: v for k, v in other.items() if v is not None})
        data.update({k: v for k, v in changes.items() if v is not None})
        return ImageOptions.build(data, validation=validation, today=today)


_NESTED: dict[str, type[BaseModel]] = {"svg": SvgOptions, "mask": ImageMask}

# ``n`` is not a parameter of the Responses image_generation tool: only the Images API route sends it.
_PLAIN_FIELDS = tuple(name for name in ImageOptions.model_fields if name not in {"svg", "mask", "n"})


def _options_error_from(exc: ValidationError) -> InvalidOptionsError:
    """Turn pydantic's type error into our error: first problem, with field, value and the expectation."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "options"
    ctx = error.get("ctx") or {}
    if error["type"] == "literal_error":
        allowed = str(ctx.get("expected", "")).replace(" or ", ", ")
    elif error["type"] == "extra_forbidden":
        owner = _NESTED.get(str(error["loc"][0]), ImageOptions) if len(error["loc"]) > 1 else ImageOptions
        allowed = "the fields " + ", ".join(owner.model_fields)
        return InvalidOptionsError(field, error.get("input"), allowed, reason="unknown option")
    elif "ge" in ctx or "le" in ctx:
        allowed = _describe_range(str(error["loc"][0]))
    else:
        allowed = error["msg"]
    return InvalidOptionsError(field, error.get("input"), allowed)


def _describe_range(field: str) -> str:
    info = ImageOptions.model_fields.get(field)
    bounds = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in info.metadata} if info else {}
    if "Ge" in bounds and "Le" in bounds:
        return f"an integer from {bounds['Ge']} to {bounds['Le']}"
    if "Ge" in bounds:
        return f"an integer of at least {bounds['Ge']}"
    return "an integer in range"


def _check_ranges(options: ImageOptions) -> None:
    """Ranges the SDK states for every model (so unknown models get them too, as type checks)."""
    rules = general_rules()
    for field, (low, high) in (
        ("frame_count", rules.gif_frame_count),
        ("frame_duration_ms", rules.gif_frame_duration_ms),
    ):
        value = getattr(options, field)
        if value is not None and not low <= value <= high:
            raise InvalidOptionsError(field, value, f"an integer from {low} to {high}")


def _check_size_syntax(options: ImageOptions) -> None:
    if options.size is None:
        return
    try:
        parse_size(options.size)
    except ValueError:
        raise InvalidOptionsError("size", options.size, "'auto' or WIDTHxHEIGHT such as '1024x1024'") from None


def check_options(
    options: ImageOptions,
    *,
    mode: ValidationMode = "known",
    today: datetime.date | None = None,
    has_mask: bool | None = None,
    input_count: int = 0,
) -> None:
    """Check ``options`` against the capability table in ``mode``; raise :class:`InvalidOptionsError`.

    ``"known"`` refuses only what the table's evidence says the API refuses (a value the table does not know
    is sent, and a refusal by the API comes back as ``InvalidOptionsError(source="api")``); ``"strict"`` also
    refuses what the table does not positively know; ``"off"`` checks nothing here (types are still checked).
    ``has_mask`` / ``input_count`` describe the final request (a mask given outside the options, the number
    of input images) so every cross-field rule holds however the request was built.
    """
    if mode == "off":
        return
    if mode not in VALIDATION_MODES:
        raise InvalidOptionsError("validation", mode, ", ".join(VALIDATION_MODES))
    caps = capabilities_for(options.effective_model)
    if caps is not None:  # a model released after this package: type checks only, the API decides
        _check_lifecycle(caps, today or current_date())
        _check_fields(options, caps, mode)
        _check_cross_field(options, caps, mode, has_mask=options.mask is not None or bool(has_mask))
    rules = general_rules()
    if input_count > rules.max_input_images:
        raise InvalidOptionsError(
            "images",
            f"{input_count} images",
            f"at most {rules.max_input_images} input images",
            reason=f"the API takes up to {rules.max_input_images} input images per request",
        )


def check_request(
    options: ImageOptions,
    *,
    has_mask: bool,
    input_count: int,
    mode: ValidationMode = "known",
    today: datetime.date | None = None,
) -> None:
    """The final check of a request as it will be sent: options, mask (from any source) and inputs together."""
    check_options(options, mode=mode, today=today, has_mask=has_mask, input_count=input_count)


def _check_lifecycle(caps: ModelCapabilities, today: datetime.date) -> None:
    message = caps.lifecycle_message(today)
    if message is None:
        return
    replacements = ", ".join(caps.replacement) or "a current GPT Image model"
    if caps.lifecycle(today) == "shutdown":
        raise InvalidOptionsError("model", caps.name, replacements, reason=message)
    if caps.name not in _WARNED_DEPRECATED:
        _WARNED_DEPRECATED.add(caps.name)
        logger.warning("image model %s", message)


def _refused(verdict_status: str, mode: ValidationMode) -> bool:
    return verdict_status == "refuses" or (mode == "strict" and verdict_status == "unknown")


def _check_fields(options: ImageOptions, caps: ModelCapabilities, mode: ValidationMode) -> None:
    """Per-model allowed values and size rules. Order: the most basic problem first."""
    model = caps.name
    for field in ("quality", "background", "output_format", "moderation", "complexity", "input_fidelity", "action"):
        value = getattr(options, field)
        if value is None:
            continue
        verdict = caps.status(field, value)
        if not _refused(verdict.status, mode):
            continue
        allowed = caps.allowed_values(field, mode) or ()
        if not allowed:
            raise InvalidOptionsError(
                field, value, f"omit {field} for {model}", reason=_reason(f"{model} has no {field}", verdict, mode)
            )
        raise InvalidOptionsError(
            field, value, ", ".join(allowed), reason=_reason(f"not supported by {model}", verdict, mode)
        )
    if options.size is not None and options.effective_output_format != "gif":
        _check_size(options.size, caps, mode)


def _reason(text: str, verdict: Any, mode: ValidationMode) -> str:
    if verdict.status == "unknown":
        return f"{text} as far as the capability table knows (validation='strict' refuses unverified values)"
    return f"{text} (evidence: {verdict.cite()})"


def _check_cross_field(options: ImageOptions, caps: ModelCapabilities, mode: ValidationMode, *, has_mask: bool) -> None:
    """The rules the SDK states for every model, applied to the final request."""
    rules = general_rules()
    fmt = options.effective_output_format
    if options.background == "transparent" and fmt not in rules.alpha_formats:
        raise InvalidOptionsError(
            "background",
            "transparent",
            "opaque or auto with " + fmt,
            reason=f"transparent backgrounds need output_format {' or '.join(rules.alpha_formats)}",
        )
    custom_compression = options.output_compression not in (None, rules.default_compression)
    if custom_compression and fmt not in rules.compression_formats:
        raise InvalidOptionsError(
            "output_compression",
            options.output_compression,
            f"omit it, or use output_format {' or '.join(rules.compression_formats)}",
            reason=f"compression applies to {' and '.join(rules.compression_formats)} only, not {fmt}",
        )
    if options.partial_images and fmt in ("gif", "svg"):
        raise InvalidOptionsError(
            "partial_images",
            options.partial_images,
            f"0 with {fmt} output",
            reason=f"{fmt} output cannot stream partial images",
        )
    if has_mask and fmt == "gif":
        raise InvalidOptionsError("mask", "<mask>", "no mask with gif output", reason="gif output cannot use a mask")
    for field in ("frame_count", "frame_duration_ms"):
        value = getattr(options, field)
        if value is not None and fmt != "gif":
            raise InvalidOptionsError(
                field, value, "omit it, or set output_format='gif'", reason=f"{field} is for gif output"
            )
    if options.svg is not None and fmt != "svg":
        raise InvalidOptionsError(
            "svg",
            options.svg.model_dump(exclude_none=True),
            "omit it, or set output_format='svg'",
            reason="svg settings need svg output",
        )
    if fmt == "gif" and options.size not in (None, "auto"):
        _check_gif_size(options, caps, mode)


def _check_gif_size(options: ImageOptions, caps: ModelCapabilities, mode: ValidationMode) -> None:
    """GIF sizes are per frame; the frames share one sprite sheet with the image limits (third-party evidence)."""
    sheet = general_rules().gif_sheet
    width, height = cast("tuple[int, int]", parse_size(cast("str", options.size)))
    problem = sheet.problem(width, height, options.frame_count)
    if problem is None:
        return
    count = options.frame_count or sheet.default_frame_count
    edge = sheet.largest_square_frame(count)
    raise InvalidOptionsError(
        "size",
        options.size,
        f"frame sizes whose {count}-frame sprite sheet fits {sheet.max_edge} px per edge and "
        f"{sheet.max_pixels:,} pixels (e.g. up to {edge}x{edge} for {count} frames), or 'auto'",
        reason=problem,
    )


def _check_size(size: str, caps: ModelCapabilities, mode: ValidationMode) -> None:
    if size == "auto":
        if _refused(caps.status("size", "auto").status, mode):
            raise InvalidOptionsError("size", size, caps.describe_sizes(), reason=f"{caps.name} has no automatic size")
        return
    verdict = caps.status("size", size)
    if verdict.status == "accepts":
        return
    rule = caps.custom_size
    if rule is None:
        if verdict.status == "refuses" or _refused(caps.custom_sizes, mode):
            raise InvalidOptionsError(
                "size", size, caps.describe_sizes(), reason=f"{caps.name} supports fixed sizes only"
            )
        return
    width, height = cast("tuple[int, int]", parse_size(size))
    problem = rule.problem(width, height)
    if problem:
        raise InvalidOptionsError("size", size, caps.describe_sizes(), reason=problem)
