"""Read image results out of a Responses API response. Pure functions, no I/O.

Items are picked by type (``image_generation_call``), never by position: a text model also emits reasoning and
message items. Base64 stays undecoded here so the caller can decode it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from openai.types.responses import Response
from pydantic import BaseModel, ConfigDict

from .errors import GenerationFailedError
from .images import ImageTokenUsage, ReportedSettings, TokenUsage, Usage

__all__ = [
    "CallFailure",
    "ParsedImage",
    "ParsedResponse",
    "decode_b64",
    "parse_image_call",
    "parse_response",
    "parse_usage",
]


class ParsedImage(BaseModel):
    """A completed ``image_generation_call``: the base64 result and what the API reported about it."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    b64: str
    revised_prompt: str | None = None
    reported: ReportedSettings = ReportedSettings()

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
    stored: bool = False
    """Whether the API stored the response (``store``), so later requests can continue from it."""


def parse_response(response: Response | Mapping[str, Any]) -> ParsedResponse:
    """Parse an SDK ``Response`` (or its JSON as a mapping, built leniently as the SDK itself does)."""
    if isinstance(response, Mapping):
        if "output" not in response and {"created", "data"} <= response.keys():
            # An Images API body read as a response would silently give "no image": it has its own parser.
            raise GenerationFailedError(
                "this is an Images API body, not a Responses API body: parse it with "
                "imagegen_tool.images_parse.parse_images_response",
                code="unexpected_body",
            )
        response = Response.construct(**response)
    images: list[ParsedImage] = []
    failures: list[CallFailure] = []
    texts: list[str] = []
    for item in response.output or ():
        kind = getattr(item, "type", None)
        if kind == "image_generation_call":
            parsed = parse_image_call(item)
            (images if isinstance(parsed, ParsedImage) else failures).append(parsed)  # type: ignore[arg-type]
        elif kind == "message":
            for part in getattr(item, "content", None) or ():
                text = getattr(part, "text", None) or getattr(part, "refusal", None)
                if text:
                    texts.append(text)
    error = getattr(response, "error", None)
    return ParsedResponse(
        response_id=response.id,
        text_model=response.model,
        status=response.status,
        images=tuple(images),
        failures=tuple(failures),
        usage=parse_usage(response),
        output_text="\n".join(texts),
        error_message=getattr(error, "message", None) if error else None,
        stored=bool(getattr(response, "store", False)),
    )


def parse_usage(response: Response) -> Usage | None:
    text = image = None
    usage = getattr(response, "usage", None)
    if usage is not None:
        text = TokenUsage(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            total_tokens=usage.total_tokens or 0,
            cached_input_tokens=_get(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_get(usage, "output_tokens_details", "reasoning_tokens"),
        )
    image_gen = _get(response, "tool_usage", "image_gen")
    if image_gen is not None:
        image = ImageTokenUsage(
            input_tokens=image_gen.input_tokens or 0,
            output_tokens=image_gen.output_tokens or 0,
            total_tokens=image_gen.total_tokens or 0,
            input_text_tokens=_get(image_gen, "input_tokens_details", "text_tokens"),
            input_image_tokens=_get(image_gen, "input_tokens_details", "image_tokens"),
            output_image_tokens=_get(image_gen, "output_tokens_details", "image_tokens"),
            output_text_tokens=_get(image_gen, "output_tokens_details", "text_tokens"),
            cached_tokens=getattr(image_gen, "cached_tokens", None),
        )
    if text is None and image is None:
        return None
    return Usage(text=text, image=image)


def decode_b64(data: str, *, response_id: str | None = None, call_id: str | None = None) -> bytes:
    """Strict base64 decoding with an error that says which response and call carried the bad data."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GenerationFailedError(
            f"the API returned image data that is not valid base64 ({len(data)} chars) in call {call_id} of "
            f"response {response_id}; if the response was stored, retrieve it with responses.retrieve",
            code="invalid_image_data",
            response_id=response_id,
            call_id=call_id,
        ) from exc


def parse_image_call(item: Any) -> ParsedImage | CallFailure:
    """One ``image_generation_call`` item: its image, or why it has none."""
    reported = ReportedSettings(
        action=getattr(item, "action", None),
        size=getattr(item, "size", None),
        quality=getattr(item, "quality", None),
        background=getattr(item, "background", None),
        output_format=getattr(item, "output_format", None),
    )
    result = getattr(item, "result", None)
    status = getattr(item, "status", None) or "unknown"
    if result:
        return ParsedImage(
            call_id=item.id, b64=result, revised_prompt=getattr(item, "revised_prompt", None), reported=reported
        )
    error = getattr(item, "error", None)
    details = getattr(error, "moderation_details", None)
    return CallFailure(
        call_id=item.id,
        status=status,
        code=getattr(error, "code", None),
        message=getattr(error, "message", None) or f"image generation call ended with status {status!r} and no image",
        categories=tuple(getattr(details, "categories", None) or ()),
        stage=getattr(details, "moderation_stage", None),
    )


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj
