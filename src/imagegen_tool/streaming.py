"""Streaming: the events callers see while an image renders, and the accumulator that derives them.

Backends translate their wire events into the neutral :data:`BackendEvent` values here; the generator turns
partial data into stored :class:`PartialImage` handles and emits :data:`StreamEvent` values to iterators and
callbacks. The final image is taken from the completed ``image_generation_call`` item (``output_item.done`` or
``response.completed``), never from the last partial.
"""

from __future__ import annotations

from typing import Any, Literal

from openai.types.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from .errors import APIError, GenerationFailedError
from .images import PartialImage, ReportedSettings
from .parse import CallFailure, ParsedImage, ParsedResponse, parse_image_call, parse_response
from .redact import redact
from .results import GenerationResult

__all__ = [
    "BackendEvent",
    "GenerationCompleted",
    "PartialImageData",
    "PartialImageEvent",
    "ProgressEvent",
    "ResponseStreamAccumulator",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamOutcome",
]

ProgressStage = Literal["created", "queued", "in_progress", "generating", "completed"]


class StreamInterruptedError(APIError):
    """The stream ended before the image was complete (connection lost, server error mid-way).

    Nothing was stored as a final image; partial previews are removed unless ``keep_partials`` is set."""

    def __init__(self, message: str, *, response_id: str | None = None) -> None:
        self.response_id = response_id
        super().__init__(message, retryable=True)


class ProgressEvent(BaseModel):
    """A lifecycle step of one image call (or of the whole response, ``call_id=None``)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["progress"] = "progress"
    stage: ProgressStage
    call_id: str | None = None
    response_id: str | None = None


class PartialImageData(BaseModel):
    """A partial image as a backend receives it (base64, not yet decoded)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["partial_data"] = "partial_data"
    call_id: str
    index: int
    b64: str = Field(repr=False)
    reported: ReportedSettings = ReportedSettings()
    response_id: str | None = None


class StreamOutcome(BaseModel):
    """The end of a backend stream: the parsed response, as the non-streaming call would have returned it."""

    model_config = ConfigDict(frozen=True)

    type: Literal["outcome"] = "outcome"
    parsed: ParsedResponse


BackendEvent = ProgressEvent | PartialImageData | StreamOutcome


class PartialImageEvent(BaseModel):
    """A partial image has arrived and is stored. Each one replaces the previous preview of the same call."""

    model_config = ConfigDict(frozen=True)

    type: Literal["partial_image"] = "partial_image"
    partial: PartialImage
    response_id: str | None = None


class GenerationCompleted(BaseModel):
    """The final images are stored: the same result the non-streaming call returns."""

    model_config = ConfigDict(frozen=True)

    type: Literal["completed"] = "completed"
    result: GenerationResult


StreamEvent = ProgressEvent | PartialImageEvent | GenerationCompleted


class ResponseStreamAccumulator:
    """Feeds on Responses API stream events; yields :data:`BackendEvent` values; knows the final response.

    Pure and synchronous, shared by the sync and async streaming paths.
    """

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.final: Response | None = None
        self.done_items: dict[str, Any] = {}
        self.error: str | None = None

    def feed(self, event: Any) -> list[BackendEvent]:
        kind = getattr(event, "type", "")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self.response_id = event.response.id
            stage: ProgressStage = "created" if kind == "response.created" else kind.rpartition(".")[2]  # type: ignore[assignment]
            return [ProgressEvent(stage=stage, response_id=self.response_id)]
        if kind.startswith("response.image_generation_call."):
            step = kind.rpartition(".")[2]
            if step == "partial_image":
                return [
                    PartialImageData(
                        call_id=event.item_id,
                        index=event.partial_image_index,
                        b64=event.partial_image_b64,
                        reported=ReportedSettings(
                            size=getattr(event, "size", None),
                            quality=getattr(event, "quality", None),
                            background=getattr(event, "background", None),
                            output_format=getattr(event, "output_format", None),
                        ),
                        response_id=self.response_id,
                    )
                ]
            if step in ("in_progress", "generating", "completed"):
                return [ProgressEvent(stage=step, call_id=event.item_id, response_id=self.response_id)]
            return []
        if kind == "response.output_item.done" and getattr(event.item, "type", None) == "image_generation_call":
            self.done_items[event.item.id] = event.item
            return []
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.response
            if kind == "response.failed":
                error = getattr(event.response, "error", None)
                self.error = getattr(error, "message", None) or "the response failed"
            return []
        if kind == "error":
            self.error = f"{getattr(event, 'code', None) or 'error'}: {getattr(event, 'message', '')}"
        return []

    def finish(self, interrupted: BaseException | None = None) -> ParsedResponse:
        """The parsed response. Without a final event, completed image items already received still count
        (they are whole and paid for); with none, :class:`StreamInterruptedError`."""
        if self.final is not None:
            parsed = parse_response(self.final)
            if not parsed.images and not parsed.failures and self.done_items:
                parsed = self._from_items(parsed)
            if not parsed.images and self.error and not parsed.failures:
                raise GenerationFailedError(redact(self.error), code="response_failed", response_id=self.response_id)
            return parsed
        salvaged = self._from_items(ParsedResponse(response_id=self.response_id, status="interrupted"))
        if salvaged.images:
            return salvaged
        cause = f": {redact(str(interrupted))}" if interrupted else ""
        reason = f" ({redact(self.error)})" if self.error else ""
        raise StreamInterruptedError(
            f"the image stream ended before the image was complete{reason}{cause}", response_id=self.response_id
        )

    def _from_items(self, parsed: ParsedResponse) -> ParsedResponse:
        calls = [parse_image_call(item) for item in self.done_items.values()]
        return parsed.model_copy(
            update={
                "images": tuple(c for c in calls if isinstance(c, ParsedImage)),
                "failures": tuple(c for c in calls if isinstance(c, CallFailure)),
            }
        )
