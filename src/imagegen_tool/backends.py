"""The transport seam: a backend turns an :class:`ImageRequest` into a :class:`ParsedResponse`.

:class:`ResponsesBackend` calls the Responses API with the hosted ``image_generation`` tool through the real
``openai`` client (sync or async; the translation and parsing are shared, only the call differs). Other backends
(the Images API, a native route for agents already on Responses models) implement the same protocol. SDK
exceptions are translated here, once, into :mod:`imagegen_tool.errors` types.

Money rules this module enforces (a generated image is billed once it exists, whatever happens to the
connection afterwards):

- By default responses run in **background mode** (``background=True``, which needs ``store=True``): the API
  answers at once with a response id, then the backend polls ``responses.retrieve(id)`` (or, when streaming,
  follows the stream and resumes a cut one with ``starting_after`` the last sequence number). A dropped
  connection becomes a retrieve or a resume, never a second generation.
- A generation request is retried automatically only while no response id exists *and* the failure shows that
  nothing was generated: a refusal (429 rate limit, 5xx) honouring ``Retry-After``, or a connection that was
  never established. The SDK's own retries are turned off for generation requests (uploads and retrieves keep
  them). ``429 insufficient_quota`` is never retried.
- A body that cannot be read (not JSON, an HTML page, a cut body) is a :class:`MalformedResponseError`; if it
  names a response id, that response is retrieved once before giving up, and the error names the id so
  ``ImageGenerator.recover(response_id)`` can store the image later.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import inspect
import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx2
import openai
from openai import AsyncOpenAI, OpenAI
from openai.types import FileObject

from .errors import (
    APIError,
    ConfigurationError,
    ImageGenerationError,
    InvalidOptionsError,
    MalformedResponseError,
    ModerationBlockedError,
    QuotaExceededError,
)
from .inputs import InputImage
from .options import ImageMask, ImageReference
from .parse import ParsedResponse, find_response_id, parse_response
from .redact import redact, redact_payload, scrub_exception
from .request import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TEXT_MODEL,
    ImageRequest,
    WireInputs,
    build_responses_request,
    split_continuation,
)
from .streaming import BackendEvent, ResponseStreamAccumulator, StreamInterruptedError, StreamOutcome, stream_error

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UPLOAD_TTL",
    "ImageBackend",
    "ResponsesBackend",
    "UploadCache",
    "translate_openai_error",
    "upload_cache_key",
]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", OpenAI, AsyncOpenAI)
T = TypeVar("T")

#: Per-attempt timeout of the clients this package makes. A generation takes 20-90 s (recorded
#: ``openai-processing-ms`` 19-90 s), so a synchronous (non-background) call needs a read timeout well above
#: 90 s; the SDK's 600 s would let a dead connection hang for 10 minutes per attempt. Connecting is quick or
#: broken: 10 s.
DEFAULT_TIMEOUT = httpx2.Timeout(180.0, connect=10.0)
#: Timeout of the short requests of background mode (the create that returns at once, each poll).
SHORT_TIMEOUT = httpx2.Timeout(60.0, connect=10.0)
#: Automatic retries of a request that certainly generated nothing (see the module docstring), and the SDK's
#: retries of uploads and retrieves.
DEFAULT_MAX_RETRIES = 2
#: Longest pause between two polls of a background response, in seconds. The pause is a fifth of the time
#: already waited (at least 50 ms), so a fast answer is seen quickly and a 60 s generation costs about 75 polls.
DEFAULT_POLL_INTERVAL = 1.0
#: How long a background response is waited for before the call gives up (naming the response id, so the image
#: can still be recovered).
DEFAULT_MAX_WAIT = 900.0
#: How often a cut background stream is resumed before falling back to polling.
MAX_RESUMES = 5
#: A ``Retry-After`` longer than this is not waited for: the error goes to the caller with the delay.
MAX_RETRY_AFTER = 60.0

_FIRST_POLL = 0.02
_POLL_FRACTION = 0.2
# How many recent generation times the poll schedule learns from, and how much of the quickest of them passes
# before the first poll (see _Poller).
_LEARNED_DURATIONS = 16
_QUIET_FRACTION = 0.75
# A response no look saw running (the first look found it done, or the looks before it failed) may have been done
# long before: the time waited is only an upper bound. Learning a fraction of it lets the quiet period shrink until
# a look comes too early (otherwise it only ever converges on itself: three quarters of itself plus the time a look
# takes to be sent, about 4 ms on an event loop whose timers tick in milliseconds, when a response is done at once).
_UNSEEN_RUNNING_SHRINK = 0.5
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_PENDING = frozenset({"queued", "in_progress"})
# What a broken stream raises while it is read: SDK connection/timeout errors, an in-stream error object
# (openai.APIError), bad JSON in an event (ValueError), and raw transport errors.
_STREAM_ERRORS = (openai.OpenAIError, ValueError, httpx2.HTTPError)
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


@runtime_checkable
class ImageBackend(Protocol):
    """What :class:`~imagegen_tool.generator.ImageGenerator` needs from a back-end.

    ``recover(response_id)`` returns what an earlier response holds (a backend whose API keeps no responses
    raises :class:`ConfigurationError`); ``close``/``aclose`` release the clients the backend made. Every
    failure is an :class:`~imagegen_tool.errors.ImageGenerationError`."""

    name: str

    def run(self, request: ImageRequest) -> ParsedResponse: ...

    async def arun(self, request: ImageRequest) -> ParsedResponse: ...

    def stream(self, request: ImageRequest) -> Iterator[BackendEvent]: ...

    def astream(self, request: ImageRequest) -> AsyncIterator[BackendEvent]: ...

    def recover(self, response_id: str) -> ParsedResponse: ...

    async def arecover(self, response_id: str) -> ParsedResponse: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


#: How long an uploaded input image lives on OpenAI's side (``expires_after`` on upload; the Files API allows
#: 1 hour to 30 days). The upload cache stops reusing its id ``UPLOAD_REUSE_MARGIN`` before that, so a request
#: never names a file that expires while the image is being made.
DEFAULT_UPLOAD_TTL = timedelta(days=1)
UPLOAD_REUSE_MARGIN = timedelta(minutes=15)


@runtime_checkable
class UploadCache(Protocol):
    """Where uploaded input images are remembered: a key (sha256 hex) -> OpenAI file id, until the file expires.
    Every :class:`~imagegen_tool.store.ImageStore` is one; a shared store shares the cache between workers."""

    def get_upload(self, key: str) -> str | None: ...

    def put_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None: ...

    async def aget_upload(self, key: str) -> str | None: ...

    async def aput_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None: ...


class _MemoryUploadCache:
    """The upload cache of a backend used without a store: this process only, expired ids never returned."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, datetime | None]] = {}
        self._lock = threading.Lock()

    def get_upload(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is not None and entry[1] <= datetime.now(UTC):
                del self._entries[key]
                entry = None
        return entry[0] if entry else None

    def put_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        with self._lock:
            self._entries[key] = (file_id, expires_at)

    async def aget_upload(self, key: str) -> str | None:
        return self.get_upload(key)

    async def aput_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        self.put_upload(key, file_id, expires_at=expires_at)


def upload_cache_key(content_sha256: str, client: OpenAI | AsyncOpenAI) -> str:
    """The upload cache key of some bytes for one API endpoint, organization and project: a file id is valid
    only there (the key is never part of it)."""
    scope = f"{client.base_url}\n{client.organization or ''}\n{client.project or ''}\n{content_sha256}"
    return hashlib.sha256(scope.encode()).hexdigest()


class ResponsesBackend:
    """The Responses API with the hosted ``image_generation`` tool, forced through ``tool_choice``.

    Pass your own ``client`` / ``async_client`` (e.g. Azure OpenAI), or ``api_key`` / ``base_url`` /
    ``client_options`` for clients made on first use (with :data:`DEFAULT_TIMEOUT`; the SDK's automatic retries
    stay on for uploads and retrieves and are always off for generation requests, which this backend retries
    itself only when nothing can have been generated). Without an ``api_key`` the SDK reads ``OPENAI_API_KEY``.

    ``background`` (default: on whenever ``store`` is on) runs each response in background mode so a lost
    connection never loses or re-buys an image; see ``docs/reliability.md`` for the trade-off (OpenAI keeps the
    response, and the first event comes a little later than in a synchronous call).

    How input images travel, in order of preference:

    1. A leading run of handles whose responses were stored (``store=True``, the default) is referred to, not
       sent: ``previous_response_id`` for the first, ``item_reference`` for the others. If the API rejects the
       continuation (expired or unknown response), the call is made once more with the images sent.
    2. Images up to ``inline_max_bytes`` (default 0: never) go inline as ``data:`` URLs.
    3. Other bytes are uploaded once through the Files API (purpose ``vision``, expiring after ``upload_ttl``)
       and sent by file id. The file id is remembered in ``upload_cache`` (the generator's store: shared by
       every worker of that store) by content hash until shortly before the file expires.
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
        background: bool | None = None,
        client_options: Mapping[str, Any] | None = None,
        extra_request: Mapping[str, Any] | None = None,
        inline_max_bytes: int = 0,
        max_retries: int | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_wait: float = DEFAULT_MAX_WAIT,
        upload_cache: UploadCache | None = None,
        upload_ttl: timedelta | None = DEFAULT_UPLOAD_TTL,
        completion_window: str | None = None,
    ) -> None:
        if upload_ttl is not None and not timedelta(hours=1) <= upload_ttl <= timedelta(days=30):
            raise ConfigurationError("upload_ttl must be between 1 hour and 30 days (or None: files never expire)")
        if background and not store:
            raise ConfigurationError(
                "background mode needs stored responses: pass store=True, or background=False to run "
                "synchronous calls (a dropped connection then loses the image)"
            )
        if (max_retries is not None and max_retries < 0) or poll_interval <= 0 or max_wait <= 0:
            raise ConfigurationError("max_retries must be >= 0, poll_interval and max_wait > 0")
        self._client = client
        self._async_client = async_client
        self._owned_client: OpenAI | None = None
        self._owned_async: _LoopClient | None = None
        self._lock = threading.Lock()
        # (client, its copy without automatic retries), sync and async
        self._no_retry: list[tuple[object, Any] | None] = [None, None]
        self._client_kwargs: dict[str, Any] = dict(client_options or {})
        self._client_kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        self._client_kwargs.setdefault("max_retries", DEFAULT_MAX_RETRIES)
        if api_key is not None:
            self._client_kwargs["api_key"] = api_key
        if base_url is not None:
            self._client_kwargs["base_url"] = base_url
        self.text_model = text_model
        self.instructions = instructions
        self.store = store
        self.background = store if background is None else background
        self.extra_request = dict(extra_request or {})
        self.inline_max_bytes = inline_max_bytes
        self.max_retries = max_retries
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.upload_cache: UploadCache = upload_cache if upload_cache is not None else _MemoryUploadCache()
        self.upload_ttl = upload_ttl
        self.completion_window = _checked_completion_window(completion_window, self.background)
        # sha256 of the bytes -> the file id the request being built refers to (fresh from the upload cache).
        self._uploaded: dict[str, str] = {}
        # How long recent background responses took from create to seen finished: the poll schedule's guide.
        self._durations: deque[float] = deque(maxlen=_LEARNED_DURATIONS)

    def __repr__(self) -> str:  # never shows the key
        return f"ResponsesBackend(text_model={self.text_model!r}, store={self.store}, background={self.background})"

    # -- clients ------------------------------------------------------------------------------------------

    @property
    def client(self) -> OpenAI:
        """The sync client: the one passed in, or one made on first use (exactly one, even when many threads
        make their first call at the same time)."""
        if self._client is not None:
            return self._client
        owned = self._owned_client
        if owned is None:
            with self._lock:
                if self._owned_client is None:
                    self._owned_client = _make_client(OpenAI, self._client_kwargs)
                owned = self._owned_client
        return owned

    @property
    def async_client(self) -> AsyncOpenAI:
        """The async client. One made here belongs to the event loop that first used it: a backend used from a
        new loop (a second ``asyncio.run``) gets a new client, and the old one is closed. A client made here is
        also closed when its loop shuts down (``asyncio.run`` finalises async generators before closing the
        loop), so ``asyncio.run(generator.agenerate(...))`` leaves no open connection behind."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        with self._lock:
            current = self._owned_async
            if current is not None and current.loop is loop and not loop.is_closed():
                return current.client
            made = _LoopClient(loop, _make_client(AsyncOpenAI, self._client_kwargs))
            self._owned_async = made
        if current is not None:
            current.discard()
        return made.client

    def _generation_client(self, client: ClientT) -> ClientT:
        """``client`` without the SDK's automatic retries (which would pay again after a lost answer)."""
        slot = 0 if isinstance(client, OpenAI) else 1
        cached = self._no_retry[slot]
        if cached is not None and cached[0] is client:
            return cached[1]  # type: ignore[no-any-return]
        copy = client.with_options(max_retries=0)
        self._no_retry[slot] = (client, copy)
        return copy

    def close(self) -> None:
        """Close the clients this backend made (clients passed in are the caller's to close). An async client
        whose event loop has ended is released too; prefer :meth:`aclose` from async code."""
        with self._lock:
            owned, self._owned_client = self._owned_client, None
            self._no_retry = [None, None]
            loop_client, self._owned_async = self._owned_async, None
        if owned is not None:
            owned.close()
        if loop_client is not None:
            loop_client.discard()

    async def aclose(self) -> None:
        """Close the clients this backend made: the async one on the running loop, then the sync one."""
        with self._lock:
            loop_client, self._owned_async = self._owned_async, None
        if loop_client is not None:
            if loop_client.loop is asyncio.get_running_loop():
                await loop_client.aclose()
            else:
                loop_client.discard()
        self.close()

    # -- requests -----------------------------------------------------------------------------------------

    def build(self, request: ImageRequest, wire: WireInputs | None = None, *, stream: bool = False) -> dict[str, Any]:
        """The ``responses.create`` keyword arguments for ``request`` (inputs already planned in ``wire``)."""
        kwargs = build_responses_request(
            request,
            wire,
            text_model=self.text_model,
            instructions=self.instructions,
            store=self.store,
            stream=stream,
            extra=self.extra_request,
            completion_window=None if stream else self.completion_window,
        )
        if self.background:
            kwargs.setdefault("background", True)
        return fit_installed_sdk(kwargs)

    def run(self, request: ImageRequest) -> ParsedResponse:
        body = self._create(request, stream=False)
        return self._settle(body)

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        body = await self._acreate(request, stream=False)
        return await self._asettle(body)

    def recover(self, response_id: str) -> ParsedResponse:
        """What the stored response ``response_id`` holds (waiting for it while it still runs). Used to store
        the images of a call whose answer was lost, without generating (and paying for) them again."""
        return self._poll(response_id)

    async def arecover(self, response_id: str) -> ParsedResponse:
        return await self._apoll(response_id)

    # -- non-streaming: settle an answer into a finished response ----------------------------------------------

    def _settle(self, body: _Body) -> ParsedResponse:
        target = self._settle_target(body)
        return parse_response(body.data) if target is None else self._poll(*target)

    async def _asettle(self, body: _Body) -> ParsedResponse:
        target = self._settle_target(body)
        return parse_response(body.data) if target is None else await self._apoll(*target)

    def _settle_target(self, body: _Body) -> tuple[str, _Body | None, bool, MalformedResponseError | None] | None:
        """``None`` when ``body`` is the finished response; else what to poll: (id, first body, once, cause)."""
        if body.error is not None:
            error = body.error
            if isinstance(error, MalformedResponseError) and error.response_id and self.store:
                logger.warning("unreadable answer for response %s; retrieving it", error.response_id)
                return error.response_id, None, not self.background, error
            raise error
        assert body.data is not None
        if _pending(body.data):
            return str(body.data["id"]), body, False, None
        return None

    def _poll(
        self,
        response_id: str,
        first: _Body | None = None,
        once: bool = False,
        cause: MalformedResponseError | None = None,
    ) -> ParsedResponse:
        poller = _Poller(self, response_id, once=once, cause=cause, learn=first is not None)
        step = poller.step(first) if first is not None else 0.0
        while not isinstance(step, ParsedResponse):
            if step:
                time.sleep(step)
            poller.asking()
            step = poller.step(self._retrieve_body(response_id))
        return step

    async def _apoll(
        self,
        response_id: str,
        first: _Body | None = None,
        once: bool = False,
        cause: MalformedResponseError | None = None,
    ) -> ParsedResponse:
        poller = _Poller(self, response_id, once=once, cause=cause, learn=first is not None)
        step = poller.step(first) if first is not None else 0.0
        while not isinstance(step, ParsedResponse):
            if step:
                await asyncio.sleep(step)
            poller.asking()
            step = poller.step(await self._aretrieve_body(response_id))
        return step

    def _retrieve_body(self, response_id: str) -> _Body:
        try:
            raw = self.client.responses.with_raw_response.retrieve(response_id, timeout=SHORT_TIMEOUT)
        except openai.OpenAIError as exc:
            return _Body(error=translate_openai_error(exc), cause=exc)
        return _read_body(raw.http_response)

    async def _aretrieve_body(self, response_id: str) -> _Body:
        try:
            raw = await self.async_client.responses.with_raw_response.retrieve(response_id, timeout=SHORT_TIMEOUT)
        except openai.OpenAIError as exc:
            return _Body(error=translate_openai_error(exc), cause=exc)
        return _read_body(raw.http_response)

    # -- streaming ------------------------------------------------------------------------------------------

    def stream(self, request: ImageRequest) -> Iterator[BackendEvent]:
        """Stream the call: progress and partial images as they come, then the :class:`StreamOutcome`. A cut
        background stream is resumed after the last sequence number seen (then polled if resuming fails); the
        HTTP stream is closed when this generator is closed, also when the caller stops early."""
        accumulator = ResponseStreamAccumulator()
        stream: Any = self._create(request, stream=True)
        interrupted: BaseException | None = None
        resumes = 0
        while stream is not None:
            interrupted = None
            try:
                _check_event_stream(stream.response)
                for event in stream:
                    yield from accumulator.feed(event)
                    if accumulator.terminal:
                        break
            except (*_STREAM_ERRORS, MalformedResponseError) as exc:
                interrupted = _stream_failure(exc, accumulator)
            finally:
                stream.close()
            stream = None
            if not self._can_resume(accumulator, interrupted, resumes):
                break
            resumes += 1
            rid = accumulator.response_id
            assert rid is not None
            logger.info("image stream of %s cut (%s); resuming", rid, interrupted)
            try:
                stream = self.client.responses.retrieve(rid, stream=True, starting_after=accumulator.last_sequence or 0)
            except openai.OpenAIError as exc:
                logger.info("cannot resume the stream of %s (%s); polling it", rid, redact(str(exc)))
                yield StreamOutcome(parsed=self._poll(rid))
                return
        target = self._after_stream(accumulator, interrupted)
        if target is not None:
            yield StreamOutcome(parsed=self._poll(*target))
            return
        yield StreamOutcome(parsed=accumulator.finish(interrupted))

    async def astream(self, request: ImageRequest) -> AsyncIterator[BackendEvent]:
        accumulator = ResponseStreamAccumulator()
        stream: Any = await self._acreate(request, stream=True)
        interrupted: BaseException | None = None
        resumes = 0
        while stream is not None:
            interrupted = None
            events: Any = None
            try:
                _check_event_stream(stream.response)
                events = stream.__aiter__()
                async for event in events:
                    # Read on to the end after the terminal event (the service ends the stream right after it):
                    # a ``break`` would leave the SDK's event generators suspended for the event loop to finalize.
                    if accumulator.terminal:
                        continue
                    for item in accumulator.feed(event):
                        yield item
            except (*_STREAM_ERRORS, MalformedResponseError) as exc:
                interrupted = _stream_failure(exc, accumulator)
            finally:
                await aclose_sdk_stream(stream, events)
            stream = None
            if not self._can_resume(accumulator, interrupted, resumes):
                break
            resumes += 1
            rid = accumulator.response_id
            assert rid is not None
            logger.info("image stream of %s cut (%s); resuming", rid, interrupted)
            try:
                stream = await self.async_client.responses.retrieve(
                    rid, stream=True, starting_after=accumulator.last_sequence or 0
                )
            except openai.OpenAIError as exc:
                logger.info("cannot resume the stream of %s (%s); polling it", rid, redact(str(exc)))
                yield StreamOutcome(parsed=await self._apoll(rid))
                return
        target = self._after_stream(accumulator, interrupted)
        if target is not None:
            yield StreamOutcome(parsed=await self._apoll(*target))
            return
        yield StreamOutcome(parsed=accumulator.finish(interrupted))

    def _can_resume(
        self, accumulator: ResponseStreamAccumulator, interrupted: BaseException | None, resumes: int
    ) -> bool:
        if accumulator.terminal:
            return False
        if isinstance(interrupted, ImageGenerationError) and not isinstance(interrupted, MalformedResponseError):
            return False  # a typed refusal (quota, moderation) ended the stream: nothing to resume
        return self.background and accumulator.response_id is not None and resumes < MAX_RESUMES

    def _after_stream(
        self, accumulator: ResponseStreamAccumulator, interrupted: BaseException | None
    ) -> tuple[str, None, bool, MalformedResponseError | None] | None:
        """After the last stream: ``None`` to finish from what was received, or what to poll (a cut stream of
        a stored response is looked up before the image is reported lost: polled in background mode,
        retrieved once otherwise)."""
        if accumulator.terminal:
            return None
        if isinstance(interrupted, ImageGenerationError) and not isinstance(interrupted, MalformedResponseError):
            if accumulator.done_items:
                return None  # keep the images that did arrive
            raise interrupted
        rid = accumulator.response_id
        if rid is not None and self.store and not (accumulator.done_items and not self.background):
            cause = interrupted if isinstance(interrupted, MalformedResponseError) else None
            return rid, None, not self.background, cause
        if isinstance(interrupted, MalformedResponseError) and not accumulator.done_items:
            raise interrupted
        return None

    # -- create -------------------------------------------------------------------------------------------

    def _create(self, request: ImageRequest, *, stream: bool) -> Any:
        """``responses.create`` with inputs uploaded as needed, retried once without continuation if the API
        rejects it. Returns a :class:`_Body` for a plain call, a ``Stream`` when ``stream``."""
        continuation = self.store
        while True:
            for item in self._pending_uploads(request, continuation):
                self._uploaded[item.sha256 or ""] = self._cached_upload(item)
            wire = self._plan(request, continuation)
            kwargs = self.build(request, wire, stream=stream)
            _log_request(kwargs)
            if not stream and self.background:
                kwargs["timeout"] = SHORT_TIMEOUT
            base = self.client
            client = self._generation_client(base)
            try:
                if stream:
                    return self._with_retries(functools.partial(client.responses.create, **kwargs), base)
                raw = self._with_retries(functools.partial(client.responses.with_raw_response.create, **kwargs), base)
                return _read_body(raw.http_response)
            except openai.OpenAIError as exc:
                continuation = self._retry_without_continuation(exc, request, wire, continuation)

    async def _acreate(self, request: ImageRequest, *, stream: bool) -> Any:
        continuation = self.store
        while True:
            pending = self._pending_uploads(request, continuation)
            file_ids = await asyncio.gather(*(self._acached_upload(item) for item in pending))
            self._uploaded.update({item.sha256 or "": file_id for item, file_id in zip(pending, file_ids, strict=True)})
            wire = self._plan(request, continuation)
            kwargs = self.build(request, wire, stream=stream)
            _log_request(kwargs)
            if not stream and self.background:
                kwargs["timeout"] = SHORT_TIMEOUT
            base = self.async_client
            client = self._generation_client(base)
            try:
                if stream:
                    return await self._awith_retries(functools.partial(client.responses.create, **kwargs), base)
                raw = await self._awith_retries(
                    functools.partial(client.responses.with_raw_response.create, **kwargs), base
                )
                return _read_body(raw.http_response)
            except openai.OpenAIError as exc:
                continuation = self._retry_without_continuation(exc, request, wire, continuation)

    def _retry_budget(self, client: OpenAI | AsyncOpenAI) -> int:
        """Automatic retries of a generation request: ``max_retries`` if given, else the client's own setting
        (a client passed with ``max_retries=0`` is never retried), which the SDK itself must not apply."""
        return self.max_retries if self.max_retries is not None else max(0, int(client.max_retries))

    def _with_retries(self, call: Callable[[], T], client: OpenAI) -> T:
        attempt = 0
        budget = self._retry_budget(client)
        while True:
            try:
                return call()
            except openai.OpenAIError as exc:
                delay = _retry_delay(exc, attempt, budget)
                if delay is None:
                    raise
            attempt += 1
            logger.info("image request refused before any generation; retry %d in %.2f s", attempt, delay)
            time.sleep(delay)

    async def _awith_retries(self, call: Callable[[], Awaitable[T]], client: AsyncOpenAI) -> T:
        attempt = 0
        budget = self._retry_budget(client)
        while True:
            try:
                return await call()
            except openai.OpenAIError as exc:
                delay = _retry_delay(exc, attempt, budget)
                if delay is None:
                    raise
            attempt += 1
            logger.info("image request refused before any generation; retry %d in %.2f s", attempt, delay)
            await asyncio.sleep(delay)

    def _retry_without_continuation(
        self, exc: openai.OpenAIError, request: ImageRequest, wire: WireInputs, continuation: bool
    ) -> bool:
        """Return ``False`` (retry, sending the images) if the API rejected a continuation; else raise."""
        error = translate_openai_error(exc)
        if continuation and _continued_from_handles(request, wire) and _continuation_rejected(error):
            logger.info("continuation rejected (%s); sending the input images instead", error)
            return False
        if isinstance(error, APIError) and error.code is None and _maybe_generated(exc):
            error = APIError(
                f"{redact(str(exc))}: the connection was lost after the request was sent, so the image may have "
                "been generated (and billed); not retried automatically to avoid paying twice",
                retryable=False,
            )
        raise error from exc

    # -- inputs -------------------------------------------------------------------------------------------

    def _to_send(self, request: ImageRequest, continuation: bool) -> tuple[InputImage, ...]:
        _, _, rest = split_continuation(request, allowed=continuation)
        return rest + ((request.mask,) if request.mask is not None else ())

    def _pending_uploads(self, request: ImageRequest, continuation: bool) -> list[InputImage]:
        """Inputs whose bytes must go through the Files API first (not inlined, not uploaded before)."""
        pending: dict[str, InputImage] = {}
        for item in self._to_send(request, continuation):
            if item.data is None or self._inline(item):
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
        args: dict[str, Any] = {
            "file": (f"input-{(item.sha256 or '')[:16]}.{extension}", item.data, item.mime_type),
            "purpose": "vision",
        }
        if self.upload_ttl is not None:
            args["expires_after"] = {"anchor": "created_at", "seconds": int(self.upload_ttl.total_seconds())}
        return args

    def _cached_upload(self, item: InputImage) -> str:
        """The file id of ``item``'s bytes: from the upload cache while it is fresh, else uploaded now."""
        key = upload_cache_key(item.sha256 or "", self.client)
        try:
            cached = self.upload_cache.get_upload(key)
        except (ImageGenerationError, OSError) as exc:  # a cache problem costs an upload, never the call
            logger.warning("upload cache unreadable (%s); uploading again", exc)
            cached = None
        if cached is not None:
            return cached
        file_id, expires_at = self._upload(item)
        try:
            self.upload_cache.put_upload(key, file_id, expires_at=expires_at)
        except (ImageGenerationError, OSError) as exc:
            logger.warning("upload of %s not cached: %s", file_id, exc)
        return file_id

    async def _acached_upload(self, item: InputImage) -> str:
        key = upload_cache_key(item.sha256 or "", self.async_client)
        try:
            cached = await self.upload_cache.aget_upload(key)
        except (ImageGenerationError, OSError) as exc:
            logger.warning("upload cache unreadable (%s); uploading again", exc)
            cached = None
        if cached is not None:
            return cached
        file_id, expires_at = await self._aupload(item)
        try:
            await self.upload_cache.aput_upload(key, file_id, expires_at=expires_at)
        except (ImageGenerationError, OSError) as exc:
            logger.warning("upload of %s not cached: %s", file_id, exc)
        return file_id

    def _reuse_until(self, uploaded: FileObject) -> datetime | None:
        """Until when an uploaded file's id may be reused: its expiry less a margin (``None``: no expiry)."""
        expiry = getattr(uploaded, "expires_at", None)
        if isinstance(expiry, int | float) and expiry > 0:
            expires = datetime.fromtimestamp(expiry, UTC)
        elif self.upload_ttl is not None:
            expires = datetime.now(UTC) + self.upload_ttl
        else:
            return None
        return expires - UPLOAD_REUSE_MARGIN

    def _upload(self, item: InputImage) -> tuple[str, datetime | None]:
        try:
            uploaded: FileObject = self.client.files.create(**self._upload_args(item))
            file_id = _file_id(uploaded)
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
        logger.debug("uploaded %s as %s", item, file_id)
        return file_id, self._reuse_until(uploaded)

    async def _aupload(self, item: InputImage) -> tuple[str, datetime | None]:
        try:
            uploaded: FileObject = await self.async_client.files.create(**self._upload_args(item))
            file_id = _file_id(uploaded)
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
        logger.debug("uploaded %s as %s", item, file_id)
        return file_id, self._reuse_until(uploaded)


# --- helpers ---------------------------------------------------------------------------------------------


class _LoopClient:
    """An async client made for one event loop, closed deterministically when that loop shuts down.

    ``asyncio.run`` (and pytest-asyncio) finalise every live async generator before closing the loop; a small
    started generator whose ``finally`` closes the client hooks into exactly that moment."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: AsyncOpenAI) -> None:
        self.loop = loop
        self.client = client
        self.closed = False
        self._guard = self._close_at_loop_end()
        # Take the guard's first step now, synchronously: that registers it with the running loop's async
        # generator hooks, so the loop's shutdown finalises it (its first step only yields).
        step = self._guard.asend(None)
        with contextlib.suppress(StopIteration):
            step.send(None)

    async def _close_at_loop_end(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.client.close()
        except Exception as exc:  # closing must never mask the caller's result
            logger.debug("closing an async OpenAI client failed: %s", exc)

    def discard(self) -> None:
        """Close from outside the loop's running context: on the loop if it still runs, else best effort."""
        if self.closed:
            return
        loop = self.loop
        if not loop.is_closed() and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                asyncio.run_coroutine_threadsafe(self.aclose(), loop)
                return
            task = loop.create_task(self.aclose())
            task.add_done_callback(_ignore_result)
            return
        self.closed = True
        _close_transports(self.client)


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _close_transports(client: AsyncOpenAI) -> None:
    """Release the sockets of an async client whose loop is gone (its ``close()`` can no longer run)."""
    pool = getattr(getattr(client._client, "_transport", None), "_pool", None)
    for connection in list(getattr(pool, "_connections", None) or ()):
        stream = getattr(getattr(connection, "_connection", None), "_network_stream", None)
        sock = getattr(stream, "get_extra_info", lambda _name: None)("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class _Body:
    """A plain (non-streaming) answer: its JSON object, or the error that reading it gave."""

    __slots__ = ("cause", "data", "error")

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        error: ImageGenerationError | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.data = data
        self.error = error
        self.cause = cause


def _read_body(response: httpx2.Response) -> _Body:
    """Parse an answer's JSON ourselves, so a body that is not JSON (an HTML page, a cut body) becomes a typed
    error naming the response id found in it, instead of a raw ``JSONDecodeError`` or a string."""
    content = response.content
    try:
        data = json.loads(content)
    except ValueError:
        text = content[:8192].decode("utf-8", "replace")
        kind = "an HTML page" if "<html" in text[:500].lower() else "a body that is not valid JSON"
        return _Body(
            error=MalformedResponseError(
                f"the API answered {response.status_code} with {kind} ({len(content)} bytes)",
                response_id=find_response_id(text),
                request_id=response.headers.get("x-request-id"),
            )
        )
    if not isinstance(data, dict):
        return _Body(error=MalformedResponseError(f"the API answered with a JSON {type(data).__name__}"))
    return _Body(data)


def _pending(data: Mapping[str, Any]) -> bool:
    return data.get("status") in _PENDING and isinstance(data.get("id"), str)


class _Poller:
    """The decisions of polling one response, shared by the sync and async loops: each step takes the latest
    answer and returns the finished :class:`ParsedResponse` or how long to wait before the next retrieve.

    ``once``: a single look (a response not run in background mode is not waited for). ``learn``: the response
    was created just now by this backend, so how long it took teaches the schedule of later polls.

    The schedule adapts to what this backend has seen: with no history the first look comes after 20 ms and the
    pauses grow with the time waited (a fifth of it, at most ``poll_interval``), so a quick answer is seen
    quickly and a 60 s generation costs about 75 polls. Once responses have finished, nothing is polled during
    the first three quarters of the quickest recent one (it cannot be done sooner than that, typically), and the
    same proportional schedule runs from there: fewer polls, and the answer seen sooner after it exists. A response
    that no look saw running teaches half the time waited (it may have been done long before), so the
    quiet period also shrinks when generations get quicker. Every pause stays at most ``poll_interval``, so an
    unusually quick answer is never seen later than that."""

    def __init__(
        self,
        backend: ResponsesBackend,
        response_id: str,
        *,
        once: bool,
        cause: MalformedResponseError | None,
        learn: bool = False,
    ) -> None:
        self.response_id = response_id
        self.deadline = time.monotonic() + backend.max_wait
        self.started = self.asked = time.monotonic()
        self.max_delay = backend.poll_interval
        self.failures = 0
        self.max_failures = 0 if once else max(2, (backend.max_retries or 0) + 1)
        self.malformed = 0
        self.once = once
        self.cause = cause
        self.learned: deque[float] | None = backend._durations if learn else None
        self.quiet = _QUIET_FRACTION * min(backend._durations, default=0.0) if learn else 0.0
        self.looked = False  # a retrieve was sent (the create's own answer is not a look)
        self.seen_pending = False  # a look found the response still running

    def step(self, body: _Body) -> ParsedResponse | float:
        if body.error is not None:
            error = body.error
            transient = isinstance(error, MalformedResponseError) or (isinstance(error, APIError) and error.retryable)
            self.failures += 1
            if not transient or self.failures > self.max_failures:
                raise self._give_up(error)
            return self._next_delay()
        assert body.data is not None
        self.failures = 0
        if _pending(body.data):
            self.seen_pending = self.seen_pending or self.looked
            if self.once:
                raise self._give_up(
                    StreamInterruptedError(
                        "the answer was lost and the response has not finished; recover it later with "
                        "ImageGenerator.recover(response_id)",
                        response_id=self.response_id,
                    )
                )
            if time.monotonic() > self.deadline:
                raise APIError(
                    f"the response is still {body.data.get('status')} after the maximum wait; it keeps running on "
                    "the service: recover it later with ImageGenerator.recover(response_id)",
                    response_id=self.response_id,
                )
            return self._next_delay()
        try:
            parsed = parse_response(body.data)
        except MalformedResponseError as exc:
            self.malformed += 1
            if self.once or self.malformed > 1:
                raise _with_response_id(exc, self.response_id) from None
            return self._next_delay()
        if self.learned is not None:
            # When the look that found it finished was sent, not when its (multi-megabyte) answer was read.
            duration = self.asked - self.started
            self.learned.append(duration if self.seen_pending else duration * _UNSEEN_RUNNING_SHRINK)
        return parsed

    def asking(self) -> None:
        """A retrieve is being sent now."""
        self.asked = time.monotonic()
        self.looked = True

    def _next_delay(self) -> float:
        # Proportional to the time waited past the quiet period: a quick answer is seen within ~20% of its
        # duration, never more than `poll_interval` (1 s) late.
        waited = time.monotonic() - self.started
        if waited < self.quiet:
            return min(self.quiet - waited, self.max_delay)
        return min(max(_FIRST_POLL, (waited - self.quiet) * _POLL_FRACTION), self.max_delay)

    def _give_up(self, error: ImageGenerationError) -> ImageGenerationError:
        if self.cause is not None and not isinstance(error, QuotaExceededError):
            # The first (unreadable) answer is the real story; say so, with the id.
            return _with_response_id(self.cause, self.response_id)
        return _with_response_id(error, self.response_id)


def _with_response_id(error: ImageGenerationError, response_id: str) -> ImageGenerationError:
    """``error``, naming ``response_id`` (once a response exists, repeating the request would pay again)."""
    if getattr(error, "response_id", None) is None:
        error.response_id = response_id  # type: ignore[attr-defined]
        if error.args and isinstance(error.args[0], str):
            error.args = (f"{error.args[0]} | response id {response_id}", *error.args[1:])
    if isinstance(error, APIError):
        error.retryable = False
    return error


async def aclose_sdk_stream(stream: Any, *outer: Any) -> None:
    """Close an SDK ``AsyncStream`` whole: its event generators first, innermost last, then the HTTP response.

    Leaving ``async for`` early (``break`` after the terminal event, or the consumer closing us) leaves the SDK's
    event generator suspended inside the HTTP library's body iterator; ``stream.close()`` only closes the response.
    The suspended generators are then finalized by the event loop at shutdown, out of order, which some
    ``httpcore2`` releases report as "an error occurred during closing of asynchronous generator". Closing them
    here, outermost first (``outer``: the generators the caller iterated, such as ``stream.__aiter__()``), runs each
    layer's clean-up in order while the loop is alive."""
    for iterator in (*outer, getattr(stream, "_iterator", None)):
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
    await stream.close()


def _check_event_stream(response: httpx2.Response) -> None:
    """A 200 answer to a streaming request that is not an event stream (an HTML page from a proxy, a JSON
    body) is unreadable: say so with the response id found in it, instead of reading it as no events."""
    content_type = response.headers.get("content-type", "")
    if "text/event-stream" in content_type or not content_type:
        return
    try:
        text = response.read()[:8192].decode("utf-8", "replace")
    except httpx2.HTTPError:
        text = ""
    raise MalformedResponseError(
        f"the API answered a streaming request with {content_type.split(';')[0]} instead of an event stream",
        response_id=find_response_id(text),
        request_id=response.headers.get("x-request-id"),
    )


def _stream_failure(exc: BaseException, accumulator: ResponseStreamAccumulator) -> BaseException:
    """What ended a stream: an SDK in-stream error object becomes its typed error (moderation, quota); a
    response id found in an unreadable answer is remembered for the resume or the retrieve."""
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError | openai.APIStatusError):
        error = translate_openai_error(exc)
        if accumulator.response_id:
            _with_response_id(error, accumulator.response_id)
        return error
    if isinstance(exc, MalformedResponseError) and exc.response_id and accumulator.response_id is None:
        accumulator.response_id = exc.response_id
    if isinstance(exc, openai.OpenAIError):
        scrub_exception(exc)
    return exc


def _retry_delay(exc: openai.OpenAIError, attempt: int, max_retries: int) -> float | None:
    """Seconds to wait before retrying a generation request that failed with ``exc``, or ``None`` if it must
    not be retried (it may have generated an image, or retrying cannot help)."""
    if attempt >= max_retries:
        return None
    backoff = min(0.5 * 2.0**attempt, 8.0) * (0.75 + random.random() / 2)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code not in _RETRYABLE_STATUS or _error_code(exc) == "insufficient_quota":
            return None
        retry_after = _retry_after(exc.response.headers)
        if retry_after is not None:
            return retry_after if retry_after <= MAX_RETRY_AFTER else None
        return backoff
    if isinstance(exc, openai.APIConnectionError) and not _maybe_generated(exc):
        return backoff
    return None


def _maybe_generated(exc: BaseException) -> bool:
    """Whether a connection failure happened after the request was sent (the server may have generated)."""
    if not isinstance(exc, openai.APIConnectionError):
        return False
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        if isinstance(cause, _NOT_SENT):
            return False
        cause = cause.__cause__
    return True


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
    except openai.OpenAIError:
        raise ConfigurationError(
            "no OpenAI API key: set the OPENAI_API_KEY environment variable or pass api_key=... "
            "(or run offline against imagegen_tool.testing.Emulator)"
        ) from None


@functools.cache
def _sdk_create_parameters() -> frozenset[str]:
    """The keyword arguments the installed SDK's ``responses.create`` has (its signature, not its overloads)."""
    from openai.resources.responses import Responses

    return frozenset(inspect.signature(Responses.create).parameters) - {"self"}


def fit_installed_sdk(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``responses.create`` keyword arguments the installed SDK accepts: API parameters newer than the SDK (an
    older ``openai`` release than the one this package was checked against, e.g. ``background_options`` before
    the SDK typed it) travel in ``extra_body``, merged into the JSON body as the API expects them."""
    known = _sdk_create_parameters()
    newer = {key: value for key, value in kwargs.items() if key not in known}
    if not newer:
        return dict(kwargs)
    fitted = {key: value for key, value in kwargs.items() if key in known}
    fitted["extra_body"] = {**newer, **dict(kwargs.get("extra_body") or {})}
    return fitted


def _file_id(uploaded: Any) -> str:
    file_id = getattr(uploaded, "id", None)
    if not isinstance(file_id, str) or not file_id:
        raise MalformedResponseError("the Files API answered an upload without a file id")
    return file_id


def _log_request(kwargs: Mapping[str, Any]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("responses.create %s", redact_payload(dict(kwargs)))


def _error_object(exc: openai.APIError) -> Mapping[str, Any]:
    body = exc.body if isinstance(exc.body, Mapping) else {}
    error = body.get("error", body)
    return error if isinstance(error, Mapping) else {}


def _error_code(exc: openai.APIError) -> str | None:
    code = _error_object(exc).get("code")
    return code if isinstance(code, str) else None


def translate_openai_error(exc: openai.OpenAIError) -> ImageGenerationError:
    """The imagegen-tool error for an SDK exception: typed, sanitised (the SDK exception itself is scrubbed of
    credentials too, since it is chained as ``__cause__``), with status, request id and error code kept."""
    scrub_exception(exc)
    if isinstance(exc, openai.APIStatusError):
        error = _error_object(exc)
        code = _error_code(exc)
        message = redact(str(error.get("message") or exc.message))
        param = error.get("param") if isinstance(error.get("param"), str) else None
        if code == "moderation_blocked":
            return ModerationBlockedError(message)
        if code == "insufficient_quota":
            return QuotaExceededError(message, status_code=exc.status_code, request_id=exc.request_id, code=code)
        refused_option = _refused_option(exc.status_code, code, error, message, exc.request_id)
        if refused_option is not None:
            return refused_option
        return APIError(
            message,
            status_code=exc.status_code,
            request_id=exc.request_id,
            code=code,
            param=param,
            retryable=exc.status_code in _RETRYABLE_STATUS,
            retry_after=_retry_after(exc.response.headers),
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return MalformedResponseError(f"the API answered with data that does not fit its schema: {redact(str(exc))}")
    if isinstance(exc, openai.APITimeoutError):
        return APIError("the request to the OpenAI API timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return APIError(f"cannot reach the OpenAI API: {redact(str(exc))}", retryable=True)
    if isinstance(exc, openai.APIError):  # an error object inside a stream
        error = _error_object(exc)
        code = error.get("code") if isinstance(error.get("code"), str) else None
        return stream_error(str(error.get("message") or exc.message), code, None)
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


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def _checked_completion_window(window: str | None, background: bool) -> str | None:
    """``background_options.completion_window`` (openai 3.57 ``BackgroundOptions``: ``soonest``, ``2h``, ``8h``; the
    discounted ``2h``/``8h`` windows require background mode and no streaming)."""
    if window is None:
        return None
    if window not in ("soonest", "2h", "8h"):
        raise ConfigurationError(f"completion_window must be 'soonest', '2h' or '8h', not {window!r}")
    if window != "soonest" and not background:
        raise ConfigurationError(
            f"completion_window={window!r} needs background mode (store_responses=True and background not False)"
        )
    return window
