"""Read image results out of a Responses API response. Pure functions, no I/O.

Items are picked by type (``image_generation_call``), never by position: a text model also emits reasoning and
message items. Base64 stays undecoded here so the caller can decode it off the event loop.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .decoding import b64decode
from .errors import GenerationFailedError, MalformedResponseError
from .images import ImageTokenUsage, ReportedSettings, SvgUsage, TokenUsage, Usage

__all__ = [
    "CallFailure",
    "ParsedImage",
    "ParsedResponse",
    "decode_b64",
    "find_response_id",
    "parse_image_call",
    "parse_response",
    "parse_usage",
    "synthesized_call_id",
]

logger = logging.getLogger(__name__)

_RESPONSE_ID = re.compile(r'"id"\s*:\s*"(resp_[A-Za-z0-9_-]{1,200})"')


class ParsedImage(BaseModel):
    """A completed ``image_generation_call``: the base64 result and what the API reported about it."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    b64: str
    revised_prompt: str | None = None
    reported: ReportedSettings = ReportedSettings()
    svg_usage: SvgUsage | None = None
    """The SVG author model's tokens for this call (``svg_usage`` of the item, svg output only)."""

    def decode(self, response_id: str | None = None) -> bytes:
        return decode_b64(self.b64, response_id=response_id, call_id=self.call_id)


class CallFailure(BaseModel):
    """An ``image_generation_call`` that produced no image, with the API's error details."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    status: str
    code: str | None = None
    message: str = ""
    categories: tuple[str, ...] = ()
    stage: str | None = None

    @property
    def is_moderation(self) -> bool:
        return self.code == "moderation_blocked"


class ParsedResponse(BaseModel):
    """What a response holds for us: images, failed calls, usage and any text the model added."""

    model_config = ConfigDict(frozen=True)

    response_id: str | None = None
    text_model: str | None = None
    status: str | None = None
    images: tuple[ParsedImage, ...] = ()
    failures: tuple[CallFailure, ...] = ()
    usage: Usage | None = None
    output_text: str = ""
    error_message: str | None = None
    error_code: str | None = None
    """The response-level error code (``response.failed``), e.g. ``moderation_blocked``."""
    incomplete_reason: str | None = None
    """Why an ``incomplete`` response stopped (``max_output_tokens``, ``content_filter``)."""
    stored: bool = False
    """Whether the API stored the response (``store``), so later requests can continue from it."""
    background: bool = False
    """Whether the response ran in background mode (it can be retrieved by id while and after it runs)."""

    @property
    def pending(self) -> bool:
        """Still running (``queued`` / ``in_progress``): poll it again."""
        return self.status in ("queued", "in_progress")


def parse_response(response: Any) -> ParsedResponse:
    """Parse an SDK ``Response`` or its JSON as a mapping. Never trusts field types.

    Anything that is not a response object (an HTML page the SDK returned as text, a list, ``None``) or a body
    whose fields have the wrong types raises :class:`MalformedResponseError` naming the response id when one
    can be read: the service's fault, never the caller's. Wrongly typed optional details (``revised_prompt:
    123``, an odd ``size``) are dropped with a warning rather than costing the paid image."""
    if isinstance(response, str | bytes):
        text = response.decode("utf-8", "replace") if isinstance(response, bytes) else response
        raise MalformedResponseError(
            f"the API answered with a body that is not a response object ({_describe_text(text)})",
            response_id=find_response_id(text),
        )
    if isinstance(response, Mapping) and "output" not in response and {"created", "data"} <= response.keys():
        # An Images API body read as a response would silently give "no image": it has its own parser.
        raise GenerationFailedError(
            "this is an Images API body, not a Responses API body: parse it with "
            "imagegen_tool.images_parse.parse_images_response",
            code="unexpected_body",
        )
    if not isinstance(response, Mapping) and not hasattr(response, "output"):
        raise MalformedResponseError(f"the API answered with a {type(response).__name__}, not a response object")
    response_id = _str(_field(response, "id"))
    try:
        return _parse(response, response_id)
    except MalformedResponseError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ValidationError) as exc:
        raise MalformedResponseError(
            f"the API answered with a response that cannot be read ({type(exc).__name__})", response_id=response_id
        ) from None


def _parse(response: Any, response_id: str | None) -> ParsedResponse:
    if response_id is None:
        raise MalformedResponseError("the API answered with a response object that has no id")
    images: list[ParsedImage] = []
    failures: list[CallFailure] = []
    texts: list[str] = []
    output = _field(response, "output")
    if output is not None and not isinstance(output, list | tuple):
        raise MalformedResponseError("the response's output is not a list", response_id=response_id)
    for index, item in enumerate(output or ()):
        kind = _field(item, "type")
        if kind == "image_generation_call":
            parsed = parse_image_call(item, response_id=response_id, output_index=index)
            if isinstance(parsed, ParsedImage):
                images.append(parsed)
            else:
                failures.append(parsed)
        elif kind == "message":
            content = _field(item, "content")
            for part in content if isinstance(content, list | tuple) else ():
                text = _str(_field(part, "text")) or _str(_field(part, "refusal"))
                if text:
                    texts.append(text)
    error = _field(response, "error")
    return ParsedResponse(
        response_id=response_id,
        text_model=_str(_field(response, "model")),
        status=_str(_field(response, "status")),
        images=tuple(images),
        failures=tuple(failures),
        usage=_safe_usage(response, response_id),
        output_text="\n".join(texts),
        error_message=_str(_field(error, "message")) if error else None,
        error_code=_str(_field(error, "code")) if error else None,
        incomplete_reason=_str(_field(_field(response, "incomplete_details"), "reason")),
        stored=_field(response, "store") is True,
        background=_field(response, "background") is True,
    )


def _safe_usage(response: Any, response_id: str) -> Usage | None:
    """Usage is bookkeeping: odd values are logged and dropped, never fatal to a paid image."""
    try:
        return parse_usage(response)
    except (TypeError, ValueError, AttributeError, ValidationError) as exc:
        logger.warning("ignored the unreadable usage of response %s: %s", response_id, type(exc).__name__)
        return None


def parse_usage(response: Any) -> Usage | None:
    text = image = None
    usage = _field(response, "usage")
    if usage is not None:
        text = TokenUsage(
            input_tokens=_field(usage, "input_tokens") or 0,
            output_tokens=_field(usage, "output_tokens") or 0,
            total_tokens=_field(usage, "total_tokens") or 0,
            cached_input_tokens=_get(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_get(usage, "output_tokens_details", "reasoning_tokens"),
        )
    image_gen = _get(response, "tool_usage", "image_gen")
    if image_gen is not None:
        image = ImageTokenUsage(
            input_tokens=_field(image_gen, "input_tokens") or 0,
            output_tokens=_field(image_gen, "output_tokens") or 0,
            total_tokens=_field(image_gen, "total_tokens") or 0,
            input_text_tokens=_get(image_gen, "input_tokens_details", "text_tokens"),
            input_image_tokens=_get(image_gen, "input_tokens_details", "image_tokens"),
            output_image_tokens=_get(image_gen, "output_tokens_details", "image_tokens"),
            output_text_tokens=_get(image_gen, "output_tokens_details", "text_tokens"),
            cached_tokens=_field(image_gen, "cached_tokens"),
            cached_text_tokens=_get(image_gen, "cached_tokens_details", "cached_text_tokens"),
            cached_image_tokens=_get(image_gen, "cached_tokens_details", "cached_image_tokens"),
        )
    if text is None and image is None:
        return None
    return Usage(text=text, image=image)


def decode_b64(data: str, *, response_id: str | None = None, call_id: str | None = None) -> bytes:
    """Strict base64 decoding with an error that says which response and call carried the bad data."""
    try:
        return b64decode(data)
    except (binascii.Error, ValueError) as exc:
        raise GenerationFailedError(
            f"the API returned image data that is not valid base64 ({len(data)} chars) in call {call_id} of "
            f"response {response_id}; if the response was stored, retrieve it with responses.retrieve",
            code="invalid_image_data",
            response_id=response_id,
            call_id=call_id,
        ) from exc


def parse_image_call(
    item: Any, *, response_id: str | None = None, output_index: int | None = None
) -> ParsedImage | CallFailure:
    """One ``image_generation_call`` item (an SDK object or a mapping): its image, or why it has none.

    A result that is not a string raises :class:`MalformedResponseError`; wrongly typed descriptive fields are
    dropped (logged). An item without a usable id (missing, empty, not a string) keeps its image under an id
    synthesized from the response id and the item's ``output_index`` (see :func:`synthesized_call_id`): the
    image was paid for, and the same response always gives the same id, so a recovery finds what was stored."""
    call_id = _field(item, "id")
    if not isinstance(call_id, str) or not call_id:
        call_id = synthesized_call_id(response_id, output_index, _field(item, "result"))
        logger.warning("an image_generation_call item of response %s has no valid id; using %s", response_id, call_id)
    reported = ReportedSettings(
        action=_detail(item, "action", call_id),
        size=_detail(item, "size", call_id),
        quality=_detail(item, "quality", call_id),
        background=_detail(item, "background", call_id),
        output_format=_detail(item, "output_format", call_id),
    )
    result = _field(item, "result")
    status = _str(_field(item, "status")) or "unknown"
    if result:
        if not isinstance(result, str):
            raise MalformedResponseError(
                f"the image result of call {call_id} is a {type(result).__name__}, not base64 text",
                response_id=response_id,
            )
        return ParsedImage(
            call_id=call_id,
            b64=result,
            revised_prompt=_detail(item, "revised_prompt", call_id),
            reported=reported,
            svg_usage=_svg_usage(_field(item, "svg_usage")),
        )
    error = _field(item, "error")
    details = _field(error, "moderation_details")
    categories = _field(details, "categories")
    return CallFailure(
        call_id=call_id,
        status=status,
        code=_str(_field(error, "code")),
        message=_str(_field(error, "message")) or f"image generation call ended with status {status!r} and no image",
        categories=tuple(c for c in categories if isinstance(c, str)) if isinstance(categories, list | tuple) else (),
        stage=_str(_field(details, "moderation_stage")),
    )


def synthesized_call_id(response_id: str | None, output_index: int | None, result: Any = None) -> str:
    """A stand-in call id for an ``image_generation_call`` item that has none: ``ig_missing_`` followed by a
    digest of the response id and the item's position in the output (or, when either is unknown, of the image
    data itself). Deterministic, so parsing the same response twice (a stream, then a recovery by id) names
    the image the same way; a digest, so an odd response id never becomes part of a file name."""
    if response_id is not None and output_index is not None:
        source = f"{response_id}\x00{output_index}"
    elif isinstance(result, str) and result:
        source = f"result\x00{result}"
    else:
        source = f"{response_id}\x00{output_index}"
    return "ig_missing_" + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def find_response_id(text: str) -> str | None:
    """The response id in a body that could not be parsed (cut, or not JSON): the first ``"id": "resp_..."``.
    Lets an unreadable answer still name the response whose image may be recoverable."""
    match = _RESPONSE_ID.search(text[:4096])
    return match.group(1) if match else None


def _describe_text(text: str) -> str:
    stripped = text.lstrip()[:200].lower()
    if stripped.startswith(("<!doctype html", "<html")) or "<html" in stripped:
        return "an HTML page"
    if not stripped:
        return "an empty body"
    return f"{len(text)} characters that are not JSON"


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        obj = _field(obj, name)
        if obj is None:
            return None
    return obj


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _detail(item: Any, name: str, call_id: str) -> str | None:
    value = _field(item, name)
    if value is None or isinstance(value, str):
        return value
    logger.warning("ignored %s of image call %s: a %s, not a string", name, call_id, type(value).__name__)
    return None


def _svg_usage(raw: Any) -> SvgUsage | None:
    """The per-call ``svg_usage`` (SDK ``ImageGenerationCallSvgUsage``); malformed counts are left out."""
    if raw is None:
        return None

    def count(name: str) -> int | None:
        value = _field(raw, name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    model = _field(raw, "model")
    return SvgUsage(
        model=model if isinstance(model, str) else None,
        input_tokens=count("input_tokens") or 0,
        output_tokens=count("output_tokens") or 0,
        total_tokens=count("total_tokens") or 0,
        reasoning_tokens=count("reasoning_tokens"),
    )
