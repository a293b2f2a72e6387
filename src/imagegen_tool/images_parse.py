"""Read Images API results (``images.generate`` / ``images.edit``): bodies and stream events. Pure, no I/O.

The Images API answers with an ``ImagesResponse`` (``created``, ``data[]``, ``usage``, and the resolved
``size``/``quality``/``background``/``output_format`` once per call), or, streaming, with
``image_generation.*`` / ``image_edit.*`` events. It has no response id and no item ids, so every image gets a
local id here. Its body shape is not a Responses body: each parser refuses the other's (a Responses body read
as an Images body would silently yield "no image").

The results are the same neutral values the Responses route produces (:class:`ParsedResponse`, the stream's
:data:`BackendEvent` values), so storing, handles and events are shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types import ImagesResponse

from .errors import GenerationFailedError, MalformedResponseError
from .images import ImageTokenUsage, ReportedSettings, Usage
from .parse import CallFailure, ParsedImage, ParsedResponse
from .redact import redact
from .store import new_image_id
from .streaming import BackendEvent, PartialImageData, ProgressEvent, StreamInterruptedError

__all__ = [
    "IMAGES_BACKEND_NAME",
    "ImagesStreamAccumulator",
    "is_images_body",
    "parse_images_response",
    "parse_images_usage",
]

#: ``backend`` recorded on handles made through the Images API.
IMAGES_BACKEND_NAME = "images"

# Keys only an Images API body has, and keys only a Responses body has.
_IMAGES_KEYS = frozenset({"created", "data"})
_RESPONSES_KEYS = frozenset({"output", "object", "id"})


def is_images_body(body: Mapping[str, Any]) -> bool:
    """Whether a JSON body is an Images API answer (``created`` + ``data``) rather than a Responses one."""
    return body.keys() >= _IMAGES_KEYS and not ({"output", "object"} & body.keys())


def _local_id() -> str:
    # The Images API names no images: the handle id doubles as the image's id in records and partial files.
    return new_image_id("img")


def parse_images_response(
    response: ImagesResponse | Mapping[str, Any], *, expected: int | None = None
) -> ParsedResponse:
    """An Images API body (SDK ``ImagesResponse`` or its JSON) as a :class:`ParsedResponse`.

    Entries without ``b64_json`` (a URL answer of a legacy model, an empty entry) become failures, never
    silently dropped; ``expected`` (the ``n`` asked for) adds a failure for each image the API left out.
    Raises :class:`GenerationFailedError` for a body that is not an Images API body (e.g. a Responses body).
    """
    if isinstance(response, Mapping):
        if not is_images_body(response):
            keys = ", ".join(sorted(response.keys())[:8])
            raise MalformedResponseError(
                f"the API answer is not an Images API body (keys: {keys}); refusing to read it as one",
                code="unexpected_body",
                retryable=False,
            )
        response = ImagesResponse.construct(**response)
    elif _RESPONSES_KEYS & set(getattr(response, "model_extra", None) or {}):
        raise MalformedResponseError(
            "the API answer is not an Images API body", code="unexpected_body", retryable=False
        )
    reported = ReportedSettings(
        size=_str(getattr(response, "size", None)),
        quality=_str(getattr(response, "quality", None)),
        background=_str(getattr(response, "background", None)),
        output_format=_str(getattr(response, "output_format", None)),
    )
    images: list[ParsedImage] = []
    failures: list[CallFailure] = []
    for entry in response.data or ():
        b64 = getattr(entry, "b64_json", None) if not isinstance(entry, Mapping) else entry.get("b64_json")
        revised = (
            getattr(entry, "revised_prompt", None) if not isinstance(entry, Mapping) else entry.get("revised_prompt")
        )
        if isinstance(b64, str) and b64:
            images.append(ParsedImage(call_id=_local_id(), b64=b64, revised_prompt=_str(revised), reported=reported))
        else:
            failures.append(
                CallFailure(
                    call_id=_local_id(),
                    status="no_data",
                    code="no_image_data",
                    message="the Images API returned an entry without image data (b64_json)",
                )
            )
    missing = (expected or 0) - len(images) - len(failures)
    failures.extend(
        CallFailure(
            call_id=_local_id(),
            status="missing",
            code="image_missing",
            message=f"the Images API returned {len(images) + len(failures)} of the {expected} images asked for",
        )
        for _ in range(max(0, missing))
    )
    return ParsedResponse(
        response_id=None,
        status="completed",
        images=tuple(images),
        failures=tuple(failures),
        usage=parse_images_usage(getattr(response, "usage", None)),
        stored=False,
    )


def parse_images_usage(usage: Any) -> Usage | None:
    """The Images API ``usage`` (also on a stream's ``.completed`` event) as image-model token usage."""
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        usage = _Obj(usage)
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    input_tokens = _int(getattr(usage, "input_tokens", None))
    output_tokens = _int(getattr(usage, "output_tokens", None))
    total = _int(getattr(usage, "total_tokens", None))
    return Usage(
        image=ImageTokenUsage(
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            total_tokens=total if total is not None else (input_tokens or 0) + (output_tokens or 0),
            input_text_tokens=_int(getattr(input_details, "text_tokens", None)),
            input_image_tokens=_int(getattr(input_details, "image_tokens", None)),
            output_image_tokens=_int(getattr(output_details, "image_tokens", None)),
            output_text_tokens=_int(getattr(output_details, "text_tokens", None)),
        )
    )


def _sum_usage(first: Usage | None, second: Usage | None) -> Usage | None:
    """Usage of a streamed call with several images: each ``.completed`` event reports its own image."""
    if first is None or first.image is None:
        return second
    if second is None or second.image is None:
        return first
    a, b = first.image, second.image

    def add(x: int | None, y: int | None) -> int | None:
        return None if x is None and y is None else (x or 0) + (y or 0)

    return Usage(
        image=ImageTokenUsage(
            input_tokens=a.input_tokens + b.input_tokens,
            output_tokens=a.output_tokens + b.output_tokens,
            total_tokens=a.total_tokens + b.total_tokens,
            input_text_tokens=add(a.input_text_tokens, b.input_text_tokens),
            input_image_tokens=add(a.input_image_tokens, b.input_image_tokens),
            output_image_tokens=add(a.output_image_tokens, b.output_image_tokens),
            output_text_tokens=add(a.output_text_tokens, b.output_text_tokens),
        )
    )


class ImagesStreamAccumulator:
    """Feeds on Images API stream events; yields :data:`BackendEvent` values; knows the final images.

    The stream carries no image index: events arrive image by image (partials, then ``.completed``), so a
    partial belongs to the image in progress and each ``.completed`` closes it. Pure and synchronous, shared
    by the sync and async paths.
    """

    def __init__(self, *, expected: int = 1) -> None:
        self.expected = max(1, expected)
        self.images: list[ParsedImage] = []
        self.usage: Usage | None = None
        self._current = _local_id()
        self._started = False

    @property
    def current_id(self) -> str:
        """The local id of the image now rendering (partials and its final image share it)."""
        return self._current

    def start(self) -> list[BackendEvent]:
        """Events for an accepted stream, before the first wire event."""
        self._started = True
        return [ProgressEvent(stage="in_progress", call_id=self._current)]

    def feed(self, event: Any) -> list[BackendEvent]:
        kind = str(getattr(event, "type", "") or "")
        family, _, step = kind.partition(".")
        if family not in ("image_generation", "image_edit"):
            if kind.startswith("response."):
                raise GenerationFailedError(
                    f"a Responses API event ({kind}) arrived on an Images API stream", code="unexpected_event"
                )
            return []  # event types newer than this package: ignored, as the SDK's own unions would grow
        reported = ReportedSettings(
            size=_str(getattr(event, "size", None)),
            quality=_str(getattr(event, "quality", None)),
            background=_str(getattr(event, "background", None)),
            output_format=_str(getattr(event, "output_format", None)),
        )
        if step == "partial_image":
            b64 = getattr(event, "b64_json", None)
            if not isinstance(b64, str) or not b64:
                return []
            index = getattr(event, "partial_image_index", 0)
            return [
                PartialImageData(
                    call_id=self._current,
                    index=index if isinstance(index, int) and index >= 0 else 0,
                    b64=b64,
                    reported=reported,
                )
            ]
        if step == "completed":
            call_id = self._current
            b64 = getattr(event, "b64_json", None)
            self.usage = _sum_usage(self.usage, parse_images_usage(getattr(event, "usage", None)))
            if isinstance(b64, str) and b64:
                self.images.append(ParsedImage(call_id=call_id, b64=b64, reported=reported))
            self._current = _local_id()
            return [ProgressEvent(stage="completed", call_id=call_id)]
        return []

    def finish(self, interrupted: BaseException | None = None, *, code: str | None = None) -> ParsedResponse:
        """The parsed call. Images completed before a cut are kept (they are whole and paid for); the ones the
        stream never delivered are failures (with the error ``code`` that ended the stream, if known). With no
        image at all, :class:`StreamInterruptedError`."""
        missing = self.expected - len(self.images)
        if not self.images:
            cause = f": {redact(str(interrupted))}" if interrupted else ""
            raise StreamInterruptedError(
                "the Images API stream ended before an image was complete (the Images API stores nothing, so the "
                f"image cannot be recovered){cause}"
            )
        failures = tuple(
            CallFailure(
                call_id=_local_id(),
                status="interrupted" if interrupted else "missing",
                code=code or ("stream_interrupted" if interrupted else "image_missing"),
                message=f"the stream delivered {len(self.images)} of the {self.expected} images asked for",
            )
            for _ in range(max(0, missing))
        )
        return ParsedResponse(
            response_id=None,
            status="interrupted" if interrupted else "completed",
            images=tuple(self.images),
            failures=failures,
            usage=self.usage,
            stored=False,
        )


class _Obj:
    """Attribute access over a JSON mapping (usage read from a raw body)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return _Obj(value) if isinstance(value, Mapping) else value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
