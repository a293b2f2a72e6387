"""The transport seam: a backend turns an :class:`ImageRequest` into a :class:`ParsedResponse`.

:class:`ResponsesBackend` calls the Responses API with the hosted ``image_generation`` tool through the real
``openai`` client (sync or async; the translation and parsing are shared, only the call differs). Other backends
(the Images API, a native route for agents already on Responses models) implement the same protocol. SDK
exceptions are translated here, once, into :mod:`imagegen_tool.errors` types.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx
import openai
from openai import AsyncOpenAI, OpenAI
from openai.types import FileObject

from .errors import APIError, ConfigurationError, ImageGenerationError, InvalidOptionsError, ModerationBlockedError
from .inputs import InputImage
from .options import ImageMask, ImageReference
from .parse import ParsedResponse, parse_response
from .redact import redact, redact_payload
from .request import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TEXT_MODEL,
    ImageRequest,
    WireInputs,
    build_responses_request,
    split_continuation,
)
from .streaming import BackendEvent, ResponseStreamAccumulator, StreamOutcome

__all__ = ["ImageBackend", "ResponsesBackend", "translate_openai_error"]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", OpenAI, AsyncOpenAI)

_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@runtime_checkable
class ImageBackend(Protocol):
    """What :class:`~imagegen_tool.generator.ImageGenerator` needs from a back-end."""

    name: str

    def run(self, request: ImageRequest) -> ParsedResponse: ...

    async def arun(self, request: ImageRequest) -> ParsedResponse: ...

    def stream(self, request: ImageRequest) -> Iterator[BackendEvent]: ...

    def astream(self, request: ImageRequest) -> AsyncIterator[BackendEvent]: ...


class ResponsesBackend:
    """The Responses API with the hosted ``image_generation`` tool, forced through ``tool_choice``.

    Pass your own ``client`` / ``async_client`` (e.g. Azure OpenAI, custom retries), or ``api_key`` /
    ``base_url`` / ``client_options`` for clients made on first use. Without an ``api_key`` the SDK reads
    ``OPENAI_API_KEY``.

    How input images travel, in order of preference:

    1. A leading run of handles whose responses were stored (``store=True``, the default) is referred to, not
       sent: ``previous_response_id`` for the first, ``item_reference`` for the others. If the API rejects the
       continuation (expired or unknown response), the call is made once more with the images sent.
    2. Images up to ``inline_max_bytes`` (default 0: never) go inline as ``data:`` URLs.
    3. Other bytes are uploaded once through the Files API (purpose ``vision``) and sent by file id; uploads
       are cached by content hash for the life of the backend.
    4. URLs and file ids given by the caller are passed through unchanged.
    """

    name = "responses"

    def __init__(
        self,
        *,
        client: OpenAI | None = None,
        async_client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        text_model: str = DEFAULT_TEXT_MODEL,
        instructions: str | None = DEFAULT_INSTRUCTIONS,
        store: bool = True,
        client_options: Mapping[str, Any] | None = None,
        extra_request: Mapping[str, Any] | None = None,
        inline_max_bytes: int = 0,
    ) -> None:
        self._client = client
        self._async_client = async_client
        self._owned_client: OpenAI | None = None
        self._owned_async: tuple[asyncio.AbstractEventLoop, AsyncOpenAI] | None = None
        self._client_kwargs: dict[str, Any] = dict(client_options or {})
        if api_key is not None:
            self._client_kwargs["api_key"] = api_key
        if base_url is not None:
            self._client_kwargs["base_url"] = base_url
        self.text_model = text_model
        self.instructions = instructions
        self.store = store
        self.extra_request = dict(extra_request or {})
        self.inline_max_bytes = inline_max_bytes
        # sha256 of uploaded bytes -> file id: the same image is uploaded once per backend (and so per client).
        self._uploaded: dict[str, str] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"ResponsesBackend(text_model={self.text_model!r}, store={self.store})"

    @property
    def client(self) -> OpenAI:
        if self._client is not None:
            return self._client
        if self._owned_client is None:
            self._owned_client = _make_client(OpenAI, self._client_kwargs)
        return self._owned_client

    @property
    def async_client(self) -> AsyncOpenAI:
        """The async client. One made here belongs to the event loop that first used it, so a backend used from
        a new loop (a second ``asyncio.run``) gets a new client instead of one bound to a closed loop."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        if self._owned_async is None or self._owned_async[0] is not loop or loop.is_closed():
            self._owned_async = (loop, _make_client(AsyncOpenAI, self._client_kwargs))
        return self._owned_async[1]

    def close(self) -> None:
        """Close the sync client if this backend made it (clients passed in are the caller's to close)."""
        if self._owned_client is not None:
            self._owned_client.close()
            self._owned_client = None

    async def aclose(self) -> None:
        """Close the clients this backend made (async one first, on the running loop)."""
        if self._owned_async is not None and self._owned_async[0] is asyncio.get_running_loop():
            await self._owned_async[1].close()
        self._owned_async = None
        self.close()

    def build(self, request: ImageRequest, wire: WireInputs | None = None, *, stream: bool = False) -> dict[str, Any]:
        """The ``responses.create`` keyword arguments for ``request`` (inputs already planned in ``wire``)."""
        return build_responses_request(
            request,
            wire,
            text_model=self.text_model,
            instructions=self.instructions,
            store=self.store,
            stream=stream,
            extra=self.extra_request,
        )

    def run(self, request: ImageRequest) -> ParsedResponse:
        return parse_response(self._create(request, stream=False))

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        return parse_response(await self._acreate(request, stream=False))

    def stream(self, request: ImageRequest) -> Iterator[BackendEvent]:
        """Stream the call: progress and partial images as they come, then the :class:`StreamOutcome`."""
        accumulator = ResponseStreamAccumulator()
        interrupted: BaseException | None = None
        stream = self._create(request, stream=True)
        try:
            for event in stream:
                yield from accumulator.feed(event)
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            interrupted = exc
        finally:
            stream.close()
        yield StreamOutcome(parsed=accumulator.finish(interrupted))

    async def astream(self, request: ImageRequest) -> AsyncIterator[BackendEvent]:
        accumulator = ResponseStreamAccumulator()
        interrupted: BaseException | None = None
        stream = await self._acreate(request, stream=True)
        try:
            async for event in stream:
                for item in accumulator.feed(event):
                    yield item
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            interrupted = exc
        finally:
            await stream.close()
        yield StreamOutcome(parsed=accumulator.finish(interrupted))

    def _create(self, request: ImageRequest, *, stream: bool) -> Any:
        """``responses.create`` with inputs uploaded as needed, retried once without continuation if the API
        rejects it. Returns a ``Response``, or a ``Stream`` when ``stream``."""
        continuation = self.store
        while True:
            for item in self._pending_uploads(request, continuation):
                self._uploaded[item.sha256 or ""] = self._upload(item)
            wire = self._plan(request, continuation)
            kwargs = self.build(request, wire, stream=stream)
            _log_request(kwargs)
            try:
                return self.client.responses.create(**kwargs)
            except openai.OpenAIError as exc:
                continuation = self._retry_without_continuation(exc, request, wire, continuation)

    async def _acreate(self, request: ImageRequest, *, stream: bool) -> Any:
        continuation = self.store
        while True:
            pending = self._pending_uploads(request, continuation)
            file_ids = await asyncio.gather(*(self._aupload(item) for item in pending))
            self._uploaded.update({item.sha256 or "": file_id for item, file_id in zip(pending, file_ids, strict=True)})
            wire = self._plan(request, continuation)
            kwargs = self.build(request, wire, stream=stream)
            _log_request(kwargs)
            try:
                return await self.async_client.responses.create(**kwargs)
            except openai.OpenAIError as exc:
                continuation = self._retry_without_continuation(exc, request, wire, continuation)

    def _retry_without_continuation(
        self, exc: openai.OpenAIError, request: ImageRequest, wire: WireInputs, continuation: bool
    ) -> bool:
        """Return ``False`` (retry, sending the images) if the API rejected a continuation; else raise."""
        error = translate_openai_error(exc)
        if continuation and _continued_from_handles(request, wire) and _continuation_rejected(error):
            logger.info("continuation rejected (%s); sending the input images instead", error)
            return False
        raise error from exc

    # -- inputs -------------------------------------------------------------------------------------------

    def _to_send(self, request: ImageRequest, continuation: bool) -> tuple[InputImage, ...]:
        _, _, rest = split_continuation(request, allowed=continuation)
        return rest + ((request.mask,) if request.mask is not None else ())

    def _pending_uploads(self, request: ImageRequest, continuation: bool) -> list[InputImage]:
        """Inputs whose bytes must go through the Files API first (not inlined, not uploaded before)."""
        pending: dict[str, InputImage] = {}
        for item in self._to_send(request, continuation):
            if item.data is None or self._inline(item) or item.sha256 in self._uploaded:
                continue
            pending.setdefault(item.sha256 or "", item)
        return list(pending.values())

    def _plan(self, request: ImageRequest, continuation: bool) -> WireInputs:
        previous, item_ids, rest = split_continuation(request, allowed=continuation)
        mask = None
        if request.mask is not None:
            mask = ImageMask(**self._reference(request.mask).model_dump())
        return WireInputs(
            previous_response_id=previous,
            item_ids=item_ids,
            images=tuple(self._reference(item) for item in rest),
            mask=mask,
        )

    def _inline(self, item: InputImage) -> bool:
        return item.data is not None and len(item.data) <= self.inline_max_bytes

    def _reference(self, item: InputImage) -> ImageReference:
        if item.reference is not None:
            return item.reference
        if item.data is not None and self._inline(item):
            encoded = base64.b64encode(item.data).decode("ascii")
            return ImageReference(image_url=f"data:{item.mime_type};base64,{encoded}")
        return ImageReference(file_id=self._uploaded[item.sha256 or ""])

    def _upload_args(self, item: InputImage) -> dict[str, Any]:
        extension = (item.mime_type or "image/png").rpartition("/")[2]
        return {
            "file": (f"input-{(item.sha256 or '')[:16]}.{extension}", item.data, item.mime_type),
            "purpose": "vision",
        }

    def _upload(self, item: InputImage) -> str:
        try:
            uploaded: FileObject = self.client.files.create(**self._upload_args(item))
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
        logger.debug("uploaded %s as %s", item, uploaded.id)
        return uploaded.id

    async def _aupload(self, item: InputImage) -> str:
        try:
            uploaded: FileObject = await self.async_client.files.create(**self._upload_args(item))
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
        logger.debug("uploaded %s as %s", item, uploaded.id)
        return uploaded.id


def _continued_from_handles(request: ImageRequest, wire: WireInputs) -> bool:
    return bool(wire.item_ids) or wire.previous_response_id != request.previous_response_id


def _continuation_rejected(error: ImageGenerationError) -> bool:
    """An expired, unknown or unstored earlier response or item: the images must be sent again."""
    if not isinstance(error, APIError) or error.status_code not in (400, 404):
        return False
    text = f"{error.code or ''} {error.param or ''} {error}".lower()
    return "previous_response" in text or "not_found" in text or "not found" in text


def _make_client(factory: type[ClientT], kwargs: dict[str, Any]) -> ClientT:
    try:
        return factory(**kwargs)
    except openai.OpenAIError as exc:
        raise ConfigurationError(
            "no OpenAI API key: set the OPENAI_API_KEY environment variable or pass api_key=... "
            "(or run offline against imagegen_tool.testing.Emulator)"
        ) from exc


def _log_request(kwargs: Mapping[str, Any]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("responses.create %s", redact_payload(dict(kwargs)))


def translate_openai_error(exc: openai.OpenAIError) -> ImageGenerationError:
    """The imagegen-tool error for an SDK exception: typed, sanitised, with status and request id kept."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        error = body.get("error", body) if isinstance(body.get("error", body), Mapping) else {}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = redact(str(error.get("message") or exc.message))
        if code == "moderation_blocked":
            return ModerationBlockedError(message)
        refused_option = _refused_option(exc.status_code, code, error, message, exc.request_id)
        if refused_option is not None:
            return refused_option
        retry_after = _retry_after(exc.response.headers.get("retry-after"))
        return APIError(
            message,
            status_code=exc.status_code,
            request_id=exc.request_id,
            code=code,
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            retryable=exc.status_code in _RETRYABLE_STATUS,
            retry_after=retry_after,
        )
    if isinstance(exc, openai.APITimeoutError):
        return APIError("the request to the OpenAI API timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return APIError(f"cannot reach the OpenAI API: {redact(str(exc))}", retryable=True)
    return APIError(redact(str(exc)))


_OPTION_ERROR_CODES = frozenset({"invalid_value", "unknown_parameter", "invalid_type", "model_not_found"})
_WIRE_OPTION_NAMES = {"input_image_mask": "mask", "svg.reasoning.effort": "svg.reasoning_effort"}
_OPTION_PARAM = re.compile(r"^(?:tools\[\d+\]\.)?(?P<name>[a-z_]+(?:\.[a-z_]+)*)$")
_OPTION_FIELDS = frozenset(
    {
        "model", "action", "size", "quality", "background", "output_format", "output_compression", "moderation",
        "input_fidelity", "partial_images", "complexity", "frame_count", "frame_duration_ms", "svg", "mask",
        "svg.model", "svg.reasoning_effort",
    }
)  # fmt: skip


def _refused_option(
    status: int, code: str | None, error: Mapping[str, Any], message: str, request_id: str | None
) -> InvalidOptionsError | None:
    """An API refusal of an image option the capability table let through (unknown, or believed accepted):
    an :class:`InvalidOptionsError` with ``source="api"``, never retried, nothing stored."""
    param = error.get("param")
    if status != 400 or code not in _OPTION_ERROR_CODES or not isinstance(param, str):
        return None
    match = _OPTION_PARAM.match(param)
    if match is None or not (param.startswith("tools[") or error.get("type") == "image_generation_user_error"):
        return None
    name = _WIRE_OPTION_NAMES.get(match.group("name"), match.group("name"))
    if name not in _OPTION_FIELDS:
        return None
    shown = re.search(r"Invalid value: '([^']*)'", message)
    return InvalidOptionsError(
        name,
        shown.group(1) if shown else "(the value sent)",
        f"what the API accepts; it said: {message}",
        reason="refused by the OpenAI API (the capability table did not know it refuses this)",
        source="api",
        request_id=request_id,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
