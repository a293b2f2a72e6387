"""Streaming: the events callers see while an image renders, and the accumulator that derives them.

Backends translate their wire events into the neutral :data:`BackendEvent` values here; the generator turns
partial data into stored :class:`PartialImage` handles and emits :data:`StreamEvent` values to iterators and
callbacks. The final image is taken from the completed ``image_generation_call`` item (``output_item.done`` or
``response.completed``), never from the last partial.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import (
    APIError,
    GenerationFailedError,
    ImageGenerationError,
    ModerationBlockedError,
    QuotaExceededError,
)
from .images import PartialImage, ReportedSettings
from .parse import CallFailure, ParsedImage, ParsedResponse, parse_image_call, parse_response
from .redact import redact
from .results import GenerationResult

__all__ = [
    "AsyncImageEventStream",
    "BackendEvent",
    "GenerationCompleted",
    "ImageEventStream",
    "PartialImageData",
    "PartialImageEvent",
    "ProgressEvent",
    "ResponseStreamAccumulator",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamOutcome",
    "stream_error",
]

logger = logging.getLogger(__name__)

# In-stream error codes of transient server trouble (worth a new attempt later, not a wrong request).
_RETRYABLE_STREAM_CODES = frozenset({"server_error", "rate_limit_exceeded", "overloaded", "service_unavailable"})

ProgressStage = Literal["created", "queued", "in_progress", "generating", "completed"]


class StreamInterruptedError(APIError):
    """The stream ended before the image was complete (connection lost, server error mid-way).

    Nothing was stored as a final image; partial previews are removed unless ``keep_partials`` is set."""

    def __init__(self, message: str, *, response_id: str | None = None, recoverable: bool | None = None) -> None:
        # A stored response may still hold the image: recover it rather than pay again.
        self.recoverable = response_id is not None if recoverable is None else recoverable and bool(response_id)
        super().__init__(message, retryable=not self.recoverable, response_id=response_id)

    @property
    def agent_message(self) -> str:
        if self.recoverable:
            return (
                f"The connection to the image service was lost ({self}). The image may still be recoverable "
                "from that response: tell the user; do not repeat the same request, which would pay twice."
            )
        return super().agent_message


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
    b64: str = Field(default="", repr=False, exclude=True)
    """The preview's base64 exactly as the API sent it (not serialised), so relays to UIs need not encode the
    bytes again; empty when unknown."""


class GenerationCompleted(BaseModel):
    """The final images are stored: the same result the non-streaming call returns."""

    model_config = ConfigDict(frozen=True)

    type: Literal["completed"] = "completed"
    result: GenerationResult


StreamEvent = ProgressEvent | PartialImageEvent | GenerationCompleted


class ImageEventStream(Iterator[StreamEvent]):
    """The events of one streamed call (``ImageGenerator.stream_generate``): an iterator that is also a
    context manager. Leaving the ``with`` block, or :meth:`close`, closes the HTTP stream and removes the
    previews at once, also when the caller stops before the end."""

    def __init__(self, events: Generator[StreamEvent, None, None]) -> None:
        self._events = events

    def __iter__(self) -> ImageEventStream:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._events)

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> ImageEventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncImageEventStream(AsyncIterator[StreamEvent]):
    """The events of one streamed async call (``ImageGenerator.astream_generate``): an async iterator that is
    also an async context manager. Leaving the ``async with`` block, or ``await`` :meth:`aclose`, closes the
    HTTP stream and removes the previews before returning, also when the caller stops early (a bare ``break``
    out of ``async for`` would leave that to the garbage collector)."""

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> AsyncImageEventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> AsyncImageEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ResponseStreamAccumulator:
    """Feeds on Responses API stream events; yields :data:`BackendEvent` values; knows the final response.

    Pure and synchronous, shared by the sync and async streaming paths. It remembers the last
    ``sequence_number`` seen, so a cut stream can resume exactly after it (background mode), and ignores events
    it has already seen (a resumed stream never repeats a partial image or an item).
    """

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.final: Any = None
        # Keyed by output position, not item id: an item whose id is missing or empty still counts.
        self.done_items: dict[int, Any] = {}
        self.error: str | None = None
        self.error_code: str | None = None
        self.last_sequence: int | None = None
        self.stored: bool = False

    @property
    def terminal(self) -> bool:
        """Whether a terminal event arrived (completed, incomplete, failed, cancelled, or an ``error``)."""
        return self.final is not None or self.error is not None

    def feed(self, event: Any) -> list[BackendEvent]:
        sequence = getattr(event, "sequence_number", None)
        if isinstance(sequence, int) and not isinstance(sequence, bool):
            if self.last_sequence is not None and sequence <= self.last_sequence:
                return []  # already seen before a resume
            self.last_sequence = sequence
        try:
            return self._feed(event)
        except (AttributeError, TypeError, ValueError, ValidationError) as exc:
            # A malformed event is the service's fault; it must not kill the stream of a paid image.
            logger.warning("ignored a malformed stream event %r: %s", getattr(event, "type", "?"), type(exc).__name__)
            return []

    def _feed(self, event: Any) -> list[BackendEvent]:
        kind = getattr(event, "type", "")
        if not isinstance(kind, str):
            return []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._note_response(event.response)
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
                            size=_text(getattr(event, "size", None)),
                            quality=_text(getattr(event, "quality", None)),
                            background=_text(getattr(event, "background", None)),
                            output_format=_text(getattr(event, "output_format", None)),
                        ),
                        response_id=self.response_id,
                    )
                ]
            if step in ("in_progress", "generating", "completed"):
                return [ProgressEvent(stage=step, call_id=event.item_id, response_id=self.response_id)]
            return []
        if kind == "response.output_item.done" and getattr(event.item, "type", None) == "image_generation_call":
            index = getattr(event, "output_index", None)
            self.done_items[index if isinstance(index, int) else -1 - len(self.done_items)] = event.item
            return []
        if kind in ("response.completed", "response.incomplete", "response.failed", "response.cancelled"):
            self._note_response(event.response)
            self.final = event.response
            if kind in ("response.failed", "response.cancelled"):
                error = getattr(event.response, "error", None)
                self.error = _text(getattr(error, "message", None)) or f"the response {kind.rpartition('.')[2]}"
                self.error_code = _text(getattr(error, "code", None))
            return []
        if kind == "error":
            code = _text(getattr(event, "code", None))
            nested = getattr(event, "error", None)  # some servers nest the error object
            if code is None and nested is not None:
                code = _text(_get(nested, "code"))
            message = _text(getattr(event, "message", None)) or _text(_get(nested, "message")) or ""
            self.error_code = code
            self.error = f"{code or 'error'}: {message}"
        return []

    def _note_response(self, response: Any) -> None:
        response_id = getattr(response, "id", None)
        if isinstance(response_id, str) and response_id:
            self.response_id = response_id
        if getattr(response, "store", None) is True:
            self.stored = True

    def error_for_event(self) -> ImageGenerationError | None:
        """The typed error of an in-stream ``error`` event or a failed response, if that ended the stream."""
        if self.error is None:
            return None
        return stream_error(self.error, self.error_code, self.response_id)

    def finish(self, interrupted: BaseException | None = None) -> ParsedResponse:
        """The parsed response. Without a final event, completed image items already received still count
        (they are whole and paid for); with none, :class:`StreamInterruptedError` (or the typed error of an
        in-stream ``error`` event: a moderation block is a :class:`ModerationBlockedError`)."""
        if self.final is not None:
            parsed = parse_response(self.final)
            if self.stored and not parsed.stored:
                parsed = parsed.model_copy(update={"stored": True})
            if not parsed.images and self.done_items:
                parsed = self._from_items(parsed)
            if not parsed.images and self.error and not parsed.failures:
                raise stream_error(self.error, self.error_code or parsed.error_code, self.response_id)
            return parsed
        salvaged = self._from_items(
            ParsedResponse(response_id=self.response_id, status="interrupted", stored=self.stored)
        )
        if salvaged.images:
            return salvaged
        if self.error is not None:
            raise stream_error(self.error, self.error_code, self.response_id)
        cause = f": {redact(str(interrupted))}" if interrupted else ""
        raise StreamInterruptedError(
            f"the image stream ended before the image was complete{cause}",
            response_id=self.response_id,
            recoverable=self.stored,
        )

    def _from_items(self, parsed: ParsedResponse) -> ParsedResponse:
        calls = [
            parse_image_call(item, response_id=self.response_id, output_index=index if index >= 0 else None)
            for index, item in self.done_items.items()
        ]
        return parsed.model_copy(
            update={
                "images": tuple(c for c in calls if isinstance(c, ParsedImage)),
                "failures": tuple(c for c in calls if isinstance(c, CallFailure)),
            }
        )


def stream_error(message: str, code: str | None, response_id: str | None) -> ImageGenerationError:
    """The typed error for an in-stream ``error`` event or a failed response: a moderation block is never
    reported as a retryable service error; exhausted quota is not retryable; server errors are."""
    text = redact(message)
    if code == "moderation_blocked":
        return ModerationBlockedError(text, response_id=response_id)
    if code == "insufficient_quota":
        return QuotaExceededError(text, code=code, response_id=response_id)
    retryable = code in _RETRYABLE_STREAM_CODES
    return GenerationFailedError(
        f"the response failed ({text})", code=code or "response_failed", response_id=response_id, retryable=retryable
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
