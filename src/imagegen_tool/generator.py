"""The engine: validated options in, stored image handles out.

:class:`ImageGenerator` merges per-call options over its defaults (validating them before any request),
hands an :class:`ImageRequest` to its backend, then decodes, identifies and stores every returned image. The
sync and async paths share everything but the backend call. In the async path nothing large runs on the event
loop: base64 is decoded by :mod:`imagegen_tool.decoding` (a decoder that releases the GIL, or chunks on one
dedicated thread), and disk writes run in worker threads or the store's async methods.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import datetime
import functools
import hashlib
import inspect
import itertools
import logging
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from openai import AsyncOpenAI, OpenAI
from pydantic import ValidationError

from . import pricing, telemetry
from .backends import ImageBackend, ResponsesBackend
from .budget import Budget, BudgetGuard, Reservation, Spending, SpendingLedger
from .capabilities import VALIDATION_MODES, ValidationMode, current_date
from .costs import Cost, ImageCost
from .decoding import adecode_b64
from .errors import (
    APIError,
    ConfigurationError,
    GenerationFailedError,
    ImageGenerationError,
    InvalidInputError,
    InvalidOptionsError,
    MalformedResponseError,
    ModerationBlockedError,
    NoImageReturnedError,
    StorageError,
)
from .imageinfo import ImageDataError, check_image
from .images import GeneratedImage, ImageRecord, Usage
from .inputs import DEFAULT_MAX_INPUT_BYTES, ImageInput, InputPolicy, InputResolver, check_mask
from .options import ImageMask, ImageOptions, check_request
from .parse import CallFailure, ParsedImage, ParsedResponse, decode_b64, parse_response
from .request import DEFAULT_INSTRUCTIONS, DEFAULT_TEXT_MODEL, MAX_SAFETY_IDENTIFIER_CHARS, ImageRequest
from .results import GenerationResult
from .store import ImageStore, safe_image_id
from .store_factory import DEFAULT_STORE_DIR, open_store
from .streaming import (
    AsyncImageEventStream,
    GenerationCompleted,
    ImageEventStream,
    PartialImageData,
    PartialImageEvent,
    StreamEvent,
    StreamOutcome,
    stream_error,
)

if TYPE_CHECKING:
    from .batch import BatchJob, BatchProgress, BatchRequest

__all__ = ["DEFAULT_STORE_DIR", "GenerationResult", "ImageGenerator"]

logger = logging.getLogger(__name__)

StreamEventT = TypeVar("StreamEventT")


class ImageGenerator:
    """Generate and edit images with OpenAI GPT Image models; results are stored and returned as handles.

    Example::

        generator = ImageGenerator(store="images/", options=ImageOptions(quality="low"))
        result = generator.generate("a watercolor fox", size="1536x1024")
        print(result.image.path, result.image.revised_prompt)

    Args:
        store: an :class:`ImageStore`, a directory for a :class:`LocalImageStore`, or a store URL such as
            ``s3://bucket/prefix`` (see :func:`~imagegen_tool.store_factory.open_store`). Default:
            ``$IMAGEGEN_STORE_DIR`` (a directory or URL), else ``./generated-images``.
        storage_options: for a store URL, the fsspec file system options (endpoint, profile, ...).
        options: defaults for every call; per-call options override them field by field.
        backend: a ready backend; otherwise one is made from the client arguments for ``api``.
        api: ``"responses"`` (default): the Responses API's hosted image tool, driven by ``text_model``;
            ``"images"``: the Images API (``images.generate``/``images.edit``: no text model, ``n`` images per
            call, no continuation by response id). See :class:`~imagegen_tool.images_api.ImagesBackend`.
        client, async_client, api_key, base_url: passed to the :class:`ResponsesBackend`.
        text_model: the Responses model that drives the image tool.
        store_responses: keep responses on OpenAI's side (``store=True``) so edits can continue from them, and
            so a lost answer can be recovered.
        background: run responses in background mode (default: on when ``store_responses`` is on): a dropped
            connection is resumed or polled by response id instead of losing the paid image or paying again.
            ``background=False`` (or ``store_responses=False``) opts out; see ``docs/reliability.md``.
        client_options: keyword arguments for the clients made here (``timeout``, ``max_retries``, ...).
        keep_partials: keep streamed partial images in the store after the final image is stored (by default
            they are deleted once the call ends, successfully or not).
        input_roots: directories (besides the store) from which local input images may be read; any other
            path is refused, symlinks followed.
        max_input_bytes: size limit of an input image.
        allow_input_urls: whether ``http(s)`` image URLs may be passed through to the API (never fetched here).
        input_policy: which kinds of inputs callers may name (default: all, for your own Python calls; agent
            adapters apply :data:`~imagegen_tool.inputs.AGENT_INPUT_POLICY` to the calls they make).
        validation: how options are checked before a request: ``"known"`` (default) refuses only what the
            capability table's evidence says the API refuses and sends what it does not know (an API refusal
            then raises ``InvalidOptionsError(source="api")``); ``"strict"`` also refuses what the table does not
            positively know; ``"off"`` checks types only. See docs/models.md for the table and its evidence.
        today: the clock for model lifecycle dates (a deprecated model logs a warning once; from its shutdown
            date it is refused before any request); default: today's UTC date.
        safety_identifier: a stable id of the end user sent with every request (OpenAI asks for one on image
            requests to attribute abuse); hash your user id. Per call: ``generate(..., safety_identifier=...)``.
            Never derived from the API key or other secrets.
        budget: one :class:`~imagegen_tool.budget.Budget` or several (e.g. per session and per generator): each
            call is checked against them with its upper-bound cost estimate before anything is sent, and counted
            with its actual cost after; a call that does not fit raises ``BudgetExceededError``. See docs/cost.md.
        prices: the price table for estimates and actual costs (default: the packaged ``prices.toml``).
        completion_window: the Responses API's discounted background execution: ``"2h"`` or ``"8h"`` (the API
            aims to finish within that window, at a published discount on the text model's tokens), or
            ``"soonest"`` (default behaviour). Needs background mode and no streaming (no partial images).
    """

    def __init__(
        self,
        *,
        store: ImageStore | str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        backend: ImageBackend | None = None,
        client: OpenAI | None = None,
        async_client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        text_model: str = DEFAULT_TEXT_MODEL,
        instructions: str | None = DEFAULT_INSTRUCTIONS,
        store_responses: bool = True,
        background: bool | None = None,
        client_options: Mapping[str, Any] | None = None,
        keep_partials: bool = False,
        input_roots: Sequence[str | os.PathLike[str]] = (),
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        allow_input_urls: bool = True,
        input_policy: InputPolicy | None = None,
        api: Literal["responses", "images"] | None = None,
        validation: ValidationMode = "known",
        today: Callable[[], datetime.date] | None = None,
        safety_identifier: str | None = None,
        budget: Budget | Sequence[Budget] | None = None,
        prices: pricing.PriceTable | None = None,
        completion_window: str | None = None,
    ) -> None:
        if validation not in VALIDATION_MODES:
            raise ConfigurationError(f"validation must be one of {', '.join(VALIDATION_MODES)}, not {validation!r}")
        self.validation: ValidationMode = validation
        self.today: Callable[[], datetime.date] = today or current_date
        self.safety_identifier = _checked_safety_identifier(safety_identifier)
        settings = (client, async_client, api_key, base_url, background, client_options, completion_window)
        if backend is not None and any(x is not None for x in settings):
            raise ConfigurationError(
                "pass either backend=... or client settings (client, api_key, base_url, background, "
                "client_options, completion_window), not both"
            )
        if api not in (None, "responses", "images"):
            raise ConfigurationError(f"api must be 'responses' or 'images', not {api!r}")
        if backend is not None and api is not None and getattr(backend, "name", api) != api:
            raise ConfigurationError(f"api={api!r} does not match the backend passed ({backend.name!r})")
        self.store: ImageStore = open_store(store, storage_options=storage_options)
        self._owns_store = not isinstance(store, ImageStore)
        self.keep_partials = keep_partials
        self.inputs = InputResolver(
            self.store,
            input_roots=input_roots,
            max_bytes=max_input_bytes,
            allow_urls=allow_input_urls,
            policy=input_policy,
        )
        self.options = (
            options
            if isinstance(options, ImageOptions)
            else ImageOptions.build(options, validation=validation, today=self.today())
        )
        if backend is None and api == "images":
            if completion_window is not None:
                raise ConfigurationError(
                    "completion_window is an option of the Responses API's background mode; the Images API has none"
                )
            from .images_api import ImagesBackend  # only the Images route needs it

            backend = ImagesBackend(client=client, async_client=async_client, api_key=api_key, base_url=base_url)
        self.backend: ImageBackend = backend or ResponsesBackend(
            client=client,
            async_client=async_client,
            api_key=api_key,
            base_url=base_url,
            text_model=text_model,
            instructions=instructions,
            store=store_responses,
            background=background,
            client_options=client_options,
            upload_cache=self.store,  # uploaded inputs are shared by every worker of the store, until they expire
            completion_window=completion_window,
        )
        self.prices = prices or pricing.default_table()
        budgets = (budget,) if isinstance(budget, Budget) else tuple(budget or ())
        self.budgets = BudgetGuard(budgets, self.store)
        self.ledger = SpendingLedger()

    def __repr__(self) -> str:
        return f"ImageGenerator(store={self.store!r}, backend={self.backend!r})"

    def close(self) -> None:
        """Close the HTTP clients the generator made (not clients you passed in)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        _close_store(self)

    async def aclose(self) -> None:
        """Async :meth:`close`: closes the async client on the running loop, then the sync one."""
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            self.close()
        await _aclose_store(self)

    def __enter__(self) -> ImageGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ImageGenerator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- public API ---------------------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        images: ImageInput | Sequence[ImageInput] = (),
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        on_event: Callable[[StreamEvent], object] | None = None,
        **option_overrides: Any,
    ) -> GenerationResult:
        """Generate an image from ``prompt``, or edit ``images`` (handles, ids, paths, URLs, bytes; the first is
        the one to edit) with an optional ``mask``. With a ``session`` key and no ``images``, the latest image
        of that session is the input (unless ``action="generate"``). Options: ``options=`` and/or keyword
        overrides such as ``size="1536x1024"``.

        With ``partial_images`` > 0, or an ``on_event`` callback, the call streams: ``on_event`` receives
        progress, each stored partial image, and finally the completed result (which is also returned)."""
        request = self.request(prompt, images=images, mask=mask, session=session, options=options, **option_overrides)
        if not _wants_stream(request, on_event, self.backend):
            done = self._remember(session, self.run(request, session=session))
            if on_event is not None:
                on_event(GenerationCompleted(result=done))
            return done
        result = None
        with contextlib.closing(self._stream(request, session)) as events:
            for event in events:
                if on_event is not None:
                    on_event(event)
                if isinstance(event, GenerationCompleted):
                    result = event.result
        return _completed(result)

    async def agenerate(
        self,
        prompt: str,
        *,
        images: ImageInput | Sequence[ImageInput] = (),
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        on_event: Callable[[StreamEvent], object] | None = None,
        **option_overrides: Any,
    ) -> GenerationResult:
        """Async :meth:`generate`; reading inputs, decoding and storing run in worker threads. ``on_event`` may
        be a plain function or a coroutine function."""
        request = await self._arequest(
            prompt, images=images, mask=mask, session=session, options=options, **option_overrides
        )
        if not _wants_stream(request, on_event, self.backend):
            result = await self._aremember(session, await self.arun(request, session=session))
            if on_event is not None:
                outcome = on_event(GenerationCompleted(result=result))
                if inspect.isawaitable(outcome):
                    await outcome
            return result
        final = None
        async with contextlib.aclosing(self._astream(request, session)) as events:
            async for event in events:
                if on_event is not None:
                    outcome = on_event(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                if isinstance(event, GenerationCompleted):
                    final = event.result
        return _completed(final)

    def stream_generate(
        self,
        prompt: str,
        *,
        images: ImageInput | Sequence[ImageInput] = (),
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        **option_overrides: Any,
    ) -> ImageEventStream:
        """Like :meth:`generate`, as an iterator of events in order: :class:`ProgressEvent`,
        :class:`PartialImageEvent` (stored previews), then one :class:`GenerationCompleted` with the result.
        Problems with the arguments raise at the first ``next()``, before any request.

        Use it as a context manager (``with generator.stream_generate(...) as events:``) or call ``close()`` to
        stop early: the HTTP stream is closed and the previews removed at once, not when the iterator is
        garbage-collected."""

        def events() -> Generator[StreamEvent, None, None]:
            request = self.request(
                prompt, images=images, mask=mask, session=session, options=options, **option_overrides
            )
            yield from self._stream(request, session)

        return ImageEventStream(events())

    def astream_generate(
        self,
        prompt: str,
        *,
        images: ImageInput | Sequence[ImageInput] = (),
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        **option_overrides: Any,
    ) -> AsyncImageEventStream:
        """Async :meth:`stream_generate`: ``async for event in generator.astream_generate(...)``.

        To stop early, use it as an async context manager (``async with generator.astream_generate(...) as
        events: async for event in events: ... break``) or ``await events.aclose()``: the HTTP stream is closed
        and the previews are removed before the ``async with`` block ends. (A bare ``break`` out of ``async for``
        leaves that to the garbage collector and the event loop.)"""

        async def events() -> AsyncGenerator[StreamEvent, None]:
            request = await self._arequest(
                prompt, images=images, mask=mask, session=session, options=options, **option_overrides
            )
            async with contextlib.aclosing(self._astream(request, session)) as stream:
                async for event in stream:
                    yield event

        return AsyncImageEventStream(events())

    def edit(
        self,
        prompt: str,
        images: ImageInput | Sequence[ImageInput],
        *,
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        **option_overrides: Any,
    ) -> GenerationResult:
        """Edit ``images`` (one input or a list; the first is edited) as ``prompt`` says: ``action="edit"``."""
        option_overrides.setdefault("action", "edit")
        return self.generate(prompt, images=images, mask=mask, session=session, options=options, **option_overrides)

    async def aedit(
        self,
        prompt: str,
        images: ImageInput | Sequence[ImageInput],
        *,
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        **option_overrides: Any,
    ) -> GenerationResult:
        """Async :meth:`edit`."""
        option_overrides.setdefault("action", "edit")
        return await self.agenerate(
            prompt, images=images, mask=mask, session=session, options=options, **option_overrides
        )

    def request(
        self,
        prompt: str,
        *,
        images: ImageInput | Sequence[ImageInput] = (),
        mask: ImageInput | None = None,
        session: str | None = None,
        options: ImageOptions | Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        **option_overrides: Any,
    ) -> ImageRequest:
        """The validated request: options merged (defaults, ``options``, overrides) and inputs resolved and
        checked. Nothing is sent; every problem found here raises before any request. ``safety_identifier``
        (also accepted by :meth:`generate` and friends) overrides the generator's for this call."""
        today = self.today()
        merged = self.options.merge(options, validation=self.validation, today=today, **option_overrides)
        images = _as_list(images)
        if not images and session is not None and merged.action != "generate":
            latest = self.store.latest(session)
            # A deleted latest image just means the conversation has no image to continue from.
            images = [latest] if latest and self.store.exists(latest) else []
        # Stored images the backend can continue from are read only if it ends up sending them.
        inputs = self.inputs.resolve_all(images, continuable=_continues(self.backend))
        resolved_mask = None
        if mask is not None:
            if not inputs:
                raise InvalidInputError("a mask needs an image to edit: pass the image in images as well")
            if merged.mask is not None:
                raise InvalidInputError("pass the mask either as mask=... or in the options, not both")
            resolved_mask = self.inputs.resolve(mask)
            check_mask(resolved_mask, inputs[0])
        # Every cross-field rule holds for the request as it will be sent, however the mask and inputs came.
        check_request(
            merged,
            has_mask=resolved_mask is not None,
            input_count=len(inputs),
            mode=self.validation,
            today=today,
        )
        identifier = _checked_safety_identifier(safety_identifier) or self.safety_identifier
        try:
            request = ImageRequest(
                prompt=prompt, options=merged, inputs=inputs, mask=resolved_mask, safety_identifier=identifier
            )
        except ValidationError as exc:
            raise InvalidInputError(_prompt_problem(exc)) from None
        _check_for_backend(self.backend, request)
        return request

    async def _arequest(
        self,
        prompt: str,
        *,
        images: ImageInput | Sequence[ImageInput],
        mask: ImageInput | None,
        session: str | None,
        options: ImageOptions | Mapping[str, Any] | None,
        **option_overrides: Any,
    ) -> ImageRequest:
        """:meth:`request` for the async path: in a worker thread when it reads files (input images, a mask, a
        session's latest image); otherwise here, since validation alone takes microseconds and a thread hop can
        cost the event loop a wait for the GIL."""
        call = functools.partial(
            self.request, prompt, images=images, mask=mask, session=session, options=options, **option_overrides
        )
        if _as_list(images) or mask is not None or session is not None:
            return await asyncio.to_thread(call)
        return call()

    def run(self, request: ImageRequest, *, session: str | None = None) -> GenerationResult:
        """Send a prepared request and store its images (counted in the budgets of ``session``)."""
        with self._span(request) as span:
            reservation = self._reserve(request, session)
            try:
                parsed = self.backend.run(request)
                result = self._store_results(parsed, request)
            except BaseException as exc:
                self._settle_failure(reservation, exc)
                raise
            span.finish(result)
            return self._account(reservation, result, session)

    async def arun(self, request: ImageRequest, *, session: str | None = None) -> GenerationResult:
        """Async :meth:`run`."""
        with self._span(request) as span:
            reservation = await self._areserve(request, session)
            try:
                parsed = await self.backend.arun(request)
                result = await self._astore_results(parsed, request)
            except BaseException as exc:
                await self._asettle_failure(reservation, exc)
                raise
            span.finish(result)
            return await self._aaccount(reservation, result, session)

    # -- cost -------------------------------------------------------------------------------------------

    def estimate(self, request: ImageRequest) -> Cost:
        """An upper bound of what sending ``request`` costs (``usd=None`` when a price is not published), as the
        budgets see it. ``generator.estimate(generator.request(prompt, **options))`` sends nothing."""
        options = request.options
        backend = self.backend
        return pricing.estimate(
            options.effective_model,
            size=options.size,
            quality=options.quality,
            n=options.n or 1,
            partial_images=options.partial_images or 0,
            input_images=len(request.inputs),
            has_mask=request.mask is not None or options.mask is not None,
            prompt=request.prompt,
            instructions=getattr(backend, "instructions", None),
            output_format=options.output_format,
            api="images" if getattr(backend, "name", "") == "images" else "responses",
            text_model=getattr(backend, "text_model", None),
            completion_window=getattr(backend, "completion_window", None),
            table=self.prices,
        )

    def _span(self, request: ImageRequest) -> contextlib.AbstractContextManager[telemetry.CallSpan]:
        """The OpenTelemetry span of one call (a no-op without ``opentelemetry-api``)."""
        api = "images" if getattr(self.backend, "name", "") == "images" else "responses"
        estimate = self.estimate(request) if telemetry.tracing_available() else None
        return telemetry.call_span(
            request, api=api, text_model=getattr(self.backend, "text_model", None), estimate=estimate
        )

    def spending(self, session: str | None = None) -> Spending:
        """What this generator has spent (calls, images, actual dollars where known), or one session's part."""
        return self.ledger.total if session is None else self.ledger.session(session)

    def _actual(self, usage: Usage | None, request: ImageRequest | None, text_model: str | None, images: int) -> Cost:
        return pricing.actual_cost(
            usage,
            model=request.options.effective_model if request is not None else None,
            text_model=text_model,
            completion_window=getattr(self.backend, "completion_window", None),
            images=images,
            table=self.prices,
        )

    def _reserve(self, request: ImageRequest, session: str | None) -> Reservation | None:
        if not self.budgets:
            return None
        return self.budgets.reserve(self.estimate(request), request.options.n or 1, session)

    async def _areserve(self, request: ImageRequest, session: str | None) -> Reservation | None:
        if not self.budgets:
            return None
        return await self.budgets.areserve(self.estimate(request), request.options.n or 1, session)

    def _account(
        self, reservation: Reservation | None, result: GenerationResult, session: str | None
    ) -> GenerationResult:
        actual = result.cost.actual if result.cost is not None else None
        if reservation is not None:
            self.budgets.settle(reservation, actual, len(result.images))
        self.ledger.add(actual, len(result.images), session)
        return result

    async def _aaccount(
        self, reservation: Reservation | None, result: GenerationResult, session: str | None
    ) -> GenerationResult:
        actual = result.cost.actual if result.cost is not None else None
        if reservation is not None:
            await self.budgets.asettle(reservation, actual, len(result.images))
        self.ledger.add(actual, len(result.images), session)
        return result

    def _settle_failure(self, reservation: Reservation | None, exc: BaseException) -> None:
        # A call that failed after the image was paid for (the store failed) still spent its estimate.
        if reservation is None:
            return
        if _paid(exc):
            self.budgets.settle(reservation, None, 0)
        else:
            self.budgets.release(reservation)

    async def _asettle_failure(self, reservation: Reservation | None, exc: BaseException) -> None:
        if reservation is None:
            return
        if _paid(exc):
            await self.budgets.asettle(reservation, None, 0)
        else:
            await self.budgets.arelease(reservation)

    def recover(self, response_id: str, *, session: str | None = None) -> GenerationResult:
        """Store the images an earlier response holds, without generating (or paying for) anything again.

        For a call whose answer was lost or could not be stored: the error named the response id
        (``error.response_id``). Waits while the response still runs (background mode). Idempotent: images of
        that response already in the store are returned, not stored twice. Needs a backend that keeps
        responses (the Responses API with ``store_responses=True``, the default)."""
        parsed = _recoverer(self.backend).recover(_checked_response_id(response_id))
        return self._remember(session, self._store_results(parsed, None, recovering=True))

    async def arecover(self, response_id: str, *, session: str | None = None) -> GenerationResult:
        """Async :meth:`recover`."""
        parsed = await _recoverer(self.backend).arecover(_checked_response_id(response_id))
        result = await self._astore_results(parsed, None, recovering=True)
        return await self._aremember(session, result)

    def store_response(self, response: Any, *, session: str | None = None) -> GenerationResult:
        """Store the images of a Responses API response made elsewhere (an SDK ``Response`` or its JSON), for
        instance by an agent framework's own hosted ``image_generation`` tool; nothing is sent. Idempotent like
        :meth:`recover`: an image call of that response already in the store is returned, not stored twice.
        Raises the typed error of the response (e.g. moderation) when it holds no image."""
        parsed = parse_response(response)
        return self._remember(session, self._store_results(parsed, None, recovering=True))

    async def astore_response(self, response: Any, *, session: str | None = None) -> GenerationResult:
        """Async :meth:`store_response` (decoding off the loop, the store's async writes)."""
        parsed = parse_response(response)
        return await self._aremember(session, await self._astore_results(parsed, None, recovering=True))

    # -- batch jobs (the Batch API: imagegen_tool.batch) -----------------------------------------------

    def submit_batch(
        self,
        requests: Iterable[str | BatchRequest | Mapping[str, Any]],
        *,
        route: Literal["images", "responses"] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> BatchJob:
        """Submit many image requests as one job on OpenAI's Batch API (cheaper, done within 24 h).

        ``requests``: prompts, :class:`~imagegen_tool.batch.BatchRequest` values, or mappings such as
        ``{"prompt": "a fox", "size": "1536x1024", "custom_id": "fox"}``; ``options`` apply to every request
        (each request's own options win), over the generator's defaults. ``route``: ``"images"``
        (``/v1/images/generations``, up to 10 images per request with ``n``) or ``"responses"``
        (``/v1/responses`` with the image tool); default: the generator's API. Every request is validated
        before anything is uploaded (:class:`~imagegen_tool.batch.BatchValidationError` lists each refused one).
        Returns the :class:`~imagegen_tool.batch.BatchJob`; its ``job_id`` resumes it from any process sharing
        the store (:meth:`batch_job`)."""
        from . import batch

        return batch.submit(self, requests, route=route, options=options)

    async def asubmit_batch(
        self,
        requests: Iterable[str | BatchRequest | Mapping[str, Any]],
        *,
        route: Literal["images", "responses"] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> BatchJob:
        """Async :meth:`submit_batch`."""
        from . import batch

        return await batch.asubmit(self, requests, route=route, options=options)

    def batch_job(self, job_id: str) -> BatchJob:
        """The batch job ``job_id`` from this generator's store, to follow, collect or cancel it (after a restart
        too). Raises :class:`ImageNotFoundError` when the store has no such job."""
        from .batch import BatchJob

        return BatchJob.load(self, job_id)

    async def abatch_job(self, job_id: str) -> BatchJob:
        """Async :meth:`batch_job`."""
        from .batch import BatchJob

        return await BatchJob.aload(self, job_id)

    resume_batch = batch_job

    def batch_jobs(self) -> list[BatchProgress]:
        """Every batch job in this generator's store, newest first, as last saved (no request)."""
        from .batch import list_jobs

        return list_jobs(self.store)

    # -- internals ----------------------------------------------------------------------------------------

    def _stream(self, request: ImageRequest, session: str | None) -> Generator[StreamEvent, None, None]:
        calls: set[str] = set()
        events: Iterator[Any] = iter(())
        _check_streamable(self.backend)
        span_scope = contextlib.ExitStack()
        span = span_scope.enter_context(self._span(request))
        reservation: Reservation | None = None
        try:
            reservation = self._reserve(request, session)
            try:
                events = iter(self.backend.stream(request))
                first = next(events)
            except APIError as exc:
                if not _streaming_refused(exc, request):
                    raise
                logger.info("streaming refused without partial images (%s); calling without streaming", exc)
                self._settle_failure(reservation, exc)
                reservation = None
                yield GenerationCompleted(result=self._remember(session, self.run(request, session=session)))
                return
            for event in itertools.chain([first], events):
                if isinstance(event, PartialImageData):
                    calls.add(event.call_id)
                    preview = self._store_partial(event)
                    if preview is not None:
                        yield preview
                elif isinstance(event, StreamOutcome):
                    result = self._store_results(event.parsed, request)
                    span.finish(result)
                    result = self._remember(session, self._account(reservation, result, session))
                    reservation = None
                    span_scope.close()
                    yield GenerationCompleted(result=result)
                else:
                    yield event
        except BaseException as exc:
            self._settle_failure(reservation, exc)
            reservation = None
            if not span_scope.__exit__(type(exc), exc, exc.__traceback__):
                raise
        finally:
            if reservation is not None:  # stopped early by the caller: the call may have been billed
                self.budgets.settle(reservation, None, 0)
            span_scope.close()
            close = getattr(events, "close", None)
            if close is not None:
                close()  # the HTTP stream closes now, also when the caller stopped early
            if not self.keep_partials:
                _delete_partials(self.store, calls)

    async def _astream(self, request: ImageRequest, session: str | None) -> AsyncGenerator[StreamEvent, None]:
        calls: set[str] = set()
        events: AsyncIterator[Any] | None = None
        _check_streamable(self.backend)
        span_scope = contextlib.ExitStack()
        span = span_scope.enter_context(self._span(request))
        reservation: Reservation | None = None
        try:
            reservation = await self._areserve(request, session)
            events = self.backend.astream(request)
            try:
                first = await anext(events)
            except APIError as exc:
                if not _streaming_refused(exc, request):
                    raise
                logger.info("streaming refused without partial images (%s); calling without streaming", exc)
                await self._asettle_failure(reservation, exc)
                reservation = None
                result = await self.arun(request, session=session)
                yield GenerationCompleted(result=await self._aremember(session, result))
                return
            async for event in _prepend(first, events):
                if isinstance(event, PartialImageData):
                    calls.add(event.call_id)
                    preview = await self._astore_partial(event)
                    if preview is not None:
                        yield preview
                elif isinstance(event, StreamOutcome):
                    result = await self._astore_results(event.parsed, request)
                    span.finish(result)
                    result = await self._aaccount(reservation, result, session)
                    reservation = None
                    span_scope.close()
                    yield GenerationCompleted(result=await self._aremember(session, result))
                else:
                    yield event
        except BaseException as exc:
            await self._asettle_failure(reservation, exc)
            reservation = None
            if not span_scope.__exit__(type(exc), exc, exc.__traceback__):
                raise
        finally:
            if reservation is not None:  # stopped early by the caller: the call may have been billed
                await self.budgets.asettle(reservation, None, 0)
            span_scope.close()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()  # the HTTP stream closes now, also when the caller stopped early
            if not self.keep_partials and calls:
                await _adelete_partials(self.store, calls)

    def _store_partial(self, event: PartialImageData) -> PartialImageEvent | None:
        """Store a preview; a preview that cannot be decoded or stored is skipped, never fatal to the image."""
        try:
            data = decode_b64(event.b64, response_id=event.response_id, call_id=event.call_id)
            partial = self.store.save_partial(data, call_id=event.call_id, index=event.index)
        except (ImageGenerationError, OSError, ValueError, ValidationError) as exc:
            logger.warning("skipped partial image %s of %s: %s", event.index, event.call_id, exc)
            return None
        return PartialImageEvent(partial=partial, response_id=event.response_id, b64=event.b64)

    async def _astore_partial(self, event: PartialImageData) -> PartialImageEvent | None:
        """Async :meth:`_store_partial`: decoding off the loop (:func:`_adecode`), the write through the store's
        async API."""
        try:
            data = await _adecode(event.b64, response_id=event.response_id, call_id=event.call_id)
            partial = await self.store.asave_partial(data, call_id=event.call_id, index=event.index)
        except (ImageGenerationError, OSError, ValueError, ValidationError) as exc:
            logger.warning("skipped partial image %s of %s: %s", event.index, event.call_id, exc)
            return None
        return PartialImageEvent(partial=partial, response_id=event.response_id)

    async def _aremember(self, session: str | None, result: GenerationResult) -> GenerationResult:
        """Async :meth:`_remember`."""
        if session is not None:
            try:
                await self.store.aset_latest(session, result.images[-1].id)
            except (ImageGenerationError, OSError) as exc:
                logger.warning("images stored, but the latest image of session %r was not recorded: %s", session, exc)
        return result

    def _remember(self, session: str | None, result: GenerationResult) -> GenerationResult:
        """Point the session at the newest image. The images are stored (and paid for): a session pointer that
        cannot be written is logged, never a failed call."""
        if session is not None:
            try:
                self.store.set_latest(session, result.images[-1].id)
            except (ImageGenerationError, OSError) as exc:
                logger.warning("images stored, but the latest image of session %r was not recorded: %s", session, exc)
        return result

    def _store_results(
        self, parsed: ParsedResponse, request: ImageRequest | None, *, recovering: bool = False
    ) -> GenerationResult:
        """Decode, identify and store every image on its own: one bad image never costs the others (they were
        paid for). Raises only when no image could be stored: a :class:`StorageError` naming the response id
        (and keeping the undelivered bytes) when the store failed, so the image stays recoverable."""
        outcome = _StoreOutcome(parsed, self._call_cost(parsed, request))
        for image in parsed.images:
            data: bytes | None = None
            try:
                data = image.decode(parsed.response_id)
                existing = self._already_stored(image.call_id, parsed.response_id) if recovering else None
                if existing is not None:
                    outcome.stored.append(existing)
                    continue
                record = self._record(parsed, image, data, request)
                outcome.stored.append(self.store.save(data, record))
            except _STORE_FAILURES as exc:
                outcome.failed(image, data, exc)
        return outcome.result()

    async def _astore_results(
        self, parsed: ParsedResponse, request: ImageRequest | None, *, recovering: bool = False
    ) -> GenerationResult:
        """Async :meth:`_store_results`: decoding off the loop (:func:`_adecode`), the writes through the store's
        async methods (an object store then needs no thread per write)."""
        outcome = _StoreOutcome(parsed, self._call_cost(parsed, request))
        for image in parsed.images:
            data: bytes | None = None
            try:
                data = await _adecode(image.b64, response_id=parsed.response_id, call_id=image.call_id)
                existing = await self._aalready_stored(image.call_id, parsed.response_id) if recovering else None
                if existing is not None:
                    outcome.stored.append(existing)
                    continue
                record = await asyncio.to_thread(self._record, parsed, image, data, request)
                outcome.stored.append(await self.store.asave(data, record))
            except _STORE_FAILURES as exc:
                outcome.failed(image, data, exc)
        return outcome.result()

    def _record(
        self, parsed: ParsedResponse, image: ParsedImage, data: bytes, request: ImageRequest | None
    ) -> ImageRecord:
        try:
            info = check_image(data)
        except ImageDataError as exc:  # the service's fault, not the caller's: this image only
            raise GenerationFailedError(
                f"the image service returned an unusable image: {exc.reason}",
                code=exc.code,
                response_id=parsed.response_id,
                call_id=image.call_id,
            ) from None
        return ImageRecord(
            id=safe_image_id(image.call_id),
            mime_type=info.mime_type,
            format=info.format,
            width=info.width,
            height=info.height,
            prompt=request.prompt if request is not None else (image.revised_prompt or "(recovered image)"),
            revised_prompt=image.revised_prompt,
            call_id=image.call_id,
            response_id=parsed.response_id,
            response_stored=parsed.stored,
            model=request.options.effective_model if request is not None else None,
            text_model=parsed.text_model,
            options=_recordable(request.options) if request is not None else ImageOptions(),
            reported=image.reported,
            usage=_image_usage(parsed, image),
            cost=self._image_cost(parsed, image, request),
            input_ids=request.input_ids if request is not None else (),
            backend=self.backend.name,
        )

    def _call_cost(self, parsed: ParsedResponse, request: ImageRequest | None) -> ImageCost:
        """The estimate and actual cost of the whole call (every image's SVG author tokens included)."""
        images = max(1, len(parsed.images))
        actual = self._actual(parsed.usage, request, parsed.text_model, images)
        svg = [self._actual(Usage(svg=i.svg_usage), request, None, 0) for i in parsed.images if i.svg_usage is not None]
        if svg:
            actual = pricing.combine([actual, *svg], kind="actual") or actual
        return ImageCost(estimate=self.estimate(request) if request is not None else None, actual=actual)

    def _image_cost(self, parsed: ParsedResponse, image: ParsedImage, request: ImageRequest | None) -> ImageCost:
        """The cost recorded on one handle: its call's (shared by the call's images), with its own SVG tokens."""
        images = max(1, len(parsed.images))
        return ImageCost(
            estimate=self.estimate(request) if request is not None else None,
            actual=self._actual(_image_usage(parsed, image), request, parsed.text_model, images),
        )

    async def _aalready_stored(self, call_id: str, response_id: str | None) -> GeneratedImage | None:
        """Async :meth:`_already_stored`."""
        try:
            if not await self.store.aexists(call_id):
                return None
            found = await self.store.aget(call_id)
        except (ImageGenerationError, OSError):
            return None
        return found if found.call_id == call_id and found.response_id == response_id else None

    def _already_stored(self, call_id: str, response_id: str | None) -> GeneratedImage | None:
        """The stored handle of this image call of this response, if an earlier call or recovery stored it."""
        try:
            if not self.store.exists(safe_image_id(call_id)):
                return None
            found = self.store.get(safe_image_id(call_id))
        except (ImageGenerationError, OSError):
            return None
        return found if found.call_id == call_id and found.response_id == response_id else None


def _image_usage(parsed: ParsedResponse, image: ParsedImage) -> Usage | None:
    """The response's usage, with this image's own SVG author tokens (``svg_usage``) when it has some."""
    if image.svg_usage is None:
        return parsed.usage
    return (parsed.usage or Usage()).model_copy(update={"svg": image.svg_usage})


_STORE_FAILURES = (ImageGenerationError, OSError, ValidationError, ValueError)


class _StoreOutcome:
    """What storing the images of one response came to: the handles, the failures, and the error to raise when
    nothing could be stored (a :class:`StorageError` naming the response id and keeping the undelivered bytes
    when the store failed, so the image stays recoverable)."""

    def __init__(self, parsed: ParsedResponse, cost: ImageCost | None = None) -> None:
        self.parsed = parsed
        self.cost = cost
        self.stored: list[GeneratedImage] = []
        self.failures = list(parsed.failures)
        self.first_error: ImageGenerationError | None = None
        self.storage_error: BaseException | None = None
        self.undelivered: list[tuple[str, bytes]] = []

    def failed(self, image: ParsedImage, data: bytes | None, exc: Exception) -> None:
        if isinstance(exc, StorageError | OSError):
            self.storage_error = self.storage_error or exc
            if data is not None:
                self.undelivered.append((image.call_id, data))
            self.failures.append(
                CallFailure(call_id=image.call_id, status="not_stored", code="storage_error", message=str(exc))
            )
            return
        error = exc if isinstance(exc, ImageGenerationError) else _malformed(exc, self.parsed.response_id)
        self.first_error = self.first_error or error
        code = getattr(error, "code", None) or type(error).__name__
        self.failures.append(CallFailure(call_id=image.call_id, status="not_stored", code=code, message=str(error)))

    def result(self) -> GenerationResult:
        parsed, stored, failures = self.parsed, self.stored, self.failures
        if not stored:
            if self.storage_error is not None:
                raise _storage_failure(self.storage_error, parsed.response_id, self.undelivered) from self.storage_error
            raise self.first_error or _failure_error(parsed)
        for failure in failures:
            logger.warning(
                "image call %s of response %s failed: %s", failure.call_id, parsed.response_id, failure.message
            )
        return GenerationResult(
            images=tuple(stored),
            response_id=parsed.response_id,
            usage=parsed.usage,
            output_text=parsed.output_text,
            failures=tuple(failures),
            cost=self.cost,
        )


def _check_for_backend(backend: ImageBackend, request: ImageRequest) -> None:
    """What the chosen API route refuses, refused before any request: a backend with its own rules
    (``check_request``) applies them; others make one image per call."""
    if getattr(backend, "completion_window", None) in ("2h", "8h") and request.options.partial_images:
        raise InvalidOptionsError(
            "partial_images",
            request.options.partial_images,
            "0 (or leave it out) while the generator uses completion_window 2h or 8h",
            reason="the discounted completion windows run in background mode without streaming",
        )
    check = getattr(backend, "check_request", None)
    if callable(check):
        check(request)
    elif (request.options.n or 1) > 1:
        raise InvalidOptionsError(
            "n",
            request.options.n,
            "1 on the Responses API route; use ImageGenerator(api='images') for up to 10 images per call, or call "
            "once per image",
            reason="the Responses image_generation tool makes one image per call",
        )


def _recordable(options: ImageOptions) -> ImageOptions:
    """The options as recorded on handles: an inline (data URL) mask is replaced by its digest, so no base64
    reaches records, handles, artifacts or checkpoints."""
    mask = options.mask
    if mask is None or not (mask.image_url or "").startswith("data:"):
        return options
    digest = hashlib.sha256((mask.image_url or "").encode()).hexdigest()[:16]
    return options.model_copy(update={"mask": ImageMask(image_url=f"data-url-omitted:sha256={digest}")})


def _continues(backend: ImageBackend) -> bool:
    """Whether the backend may continue from stored responses instead of sending stored input images."""
    return getattr(backend, "name", "") == "responses" and bool(getattr(backend, "store", False))


def _wants_stream(request: ImageRequest, on_event: object, backend: object = None) -> bool:
    # A discounted completion window runs only without streaming: an on_event callback then gets the result only.
    discounted = getattr(backend, "completion_window", None) in ("2h", "8h")
    return bool(request.options.partial_images) or (on_event is not None and not discounted)


def _check_streamable(backend: object) -> None:
    window = getattr(backend, "completion_window", None)
    if window in ("2h", "8h"):
        raise ConfigurationError(
            f"this generator uses completion_window={window!r} (discounted background execution), which the API runs "
            "without streaming: call generate()/agenerate() instead of streaming"
        )


def _paid(exc: BaseException) -> bool:
    """Whether a failed call may still have been billed: the image was made but not stored (storage failed, or
    the response was lost after it was accepted), so its estimate stays counted."""
    if isinstance(exc, GeneratorExit | asyncio.CancelledError | KeyboardInterrupt):
        return True  # interrupted while the API may already be making (and billing) the image
    return isinstance(exc, StorageError) or (
        isinstance(exc, ImageGenerationError)
        and bool(getattr(exc, "response_id", None))
        and not isinstance(exc, ModerationBlockedError | InvalidOptionsError)
    )


def _streaming_refused(error: APIError, request: ImageRequest) -> bool:
    """The API once refused streaming with ``partial_images`` 0; then the plain call gives the same result."""
    return not request.options.partial_images and error.status_code == 400 and "partial image" in str(error).lower()


def _completed(result: GenerationResult | None) -> GenerationResult:
    if result is None:  # a backend stream must end with an outcome; guard against a broken custom backend
        raise GenerationFailedError("the image stream ended without a result", code="no_outcome")
    return result


def _delete_partials(store: ImageStore, calls: set[str]) -> None:
    for call_id in calls:
        store.delete_partials(call_id)


async def _adecode(b64: str, *, response_id: str | None, call_id: str | None) -> bytes:
    """:func:`decode_b64` without holding the event loop (see :mod:`imagegen_tool.decoding`: a GIL-releasing
    decoder or chunks, on one dedicated thread). Invalid data raises the same typed error as :func:`decode_b64`."""
    try:
        return await adecode_b64(b64)
    except (binascii.Error, ValueError):
        return decode_b64(b64, response_id=response_id, call_id=call_id)  # fails fast, with the typed error


async def _adelete_partials(store: ImageStore, calls: set[str]) -> None:
    for call_id in calls:
        await store.adelete_partials(call_id)


async def _prepend(first: StreamEventT, rest: AsyncIterator[StreamEventT]) -> AsyncIterator[StreamEventT]:
    yield first
    async for item in rest:
        yield item


def _as_list(images: ImageInput | Sequence[ImageInput]) -> Sequence[ImageInput]:
    if isinstance(images, str | bytes | bytearray | os.PathLike | GeneratedImage):
        return [images]
    return images


def _close_store(generator: ImageGenerator) -> None:
    """Close a store the generator opened from a path or URL (its object-store clients); not one passed in."""
    close = getattr(generator.store, "close", None)
    if generator._owns_store and close is not None:
        close()


async def _aclose_store(generator: ImageGenerator) -> None:
    aclose = getattr(generator.store, "aclose", None)
    if generator._owns_store and aclose is not None:
        await aclose()


def _failure_error(parsed: ParsedResponse) -> ImageGenerationError:
    if parsed.status in ("failed", "cancelled") and not parsed.failures:
        # A failed response without a failed image call: its error says why (moderation, quota, server error).
        return stream_error(
            parsed.error_message or f"the response {parsed.status}", parsed.error_code, parsed.response_id
        )
    if parsed.status == "incomplete" and not parsed.failures:
        reason = parsed.incomplete_reason or "unknown"
        return GenerationFailedError(
            f"the response stopped before an image was made (incomplete: {reason})",
            code=f"incomplete:{reason}",
            response_id=parsed.response_id,
        )
    for failure in parsed.failures:
        if failure.is_moderation:
            return ModerationBlockedError(
                failure.message,
                categories=failure.categories,
                stage=failure.stage,
                response_id=parsed.response_id,
                call_id=failure.call_id,
            )
    if parsed.failures:
        failure = parsed.failures[0]
        return GenerationFailedError(
            f"image generation failed ({failure.status}): {failure.message}",
            code=failure.code,
            response_id=parsed.response_id,
            call_id=failure.call_id,
        )
    said = f"; the model said: {parsed.output_text[:300]!r}" if parsed.output_text else ""
    detail = f" ({parsed.error_message})" if parsed.error_message else ""
    return NoImageReturnedError(
        f"the response (status {parsed.status}{detail}) contains no image{said}",
        response_id=parsed.response_id,
        output_text=parsed.output_text,
    )


def _malformed(exc: Exception, response_id: str | None) -> MalformedResponseError:
    """A value from the API that does not fit (a pydantic or value error while recording it): the service's
    fault, never reported as the caller's invalid arguments."""
    return MalformedResponseError(
        f"the API returned an image with details that cannot be recorded ({type(exc).__name__})",
        response_id=response_id,
    )


def _storage_failure(exc: BaseException, response_id: str | None, undelivered: list[tuple[str, bytes]]) -> StorageError:
    where = (
        f"; the image is paid for and kept by the API: store it later with ImageGenerator.recover({response_id!r})"
        if response_id
        else ""
    )
    return StorageError(
        f"the generated image could not be stored: {exc}{where}", response_id=response_id, undelivered=undelivered
    )


def _recoverer(backend: Any) -> Any:
    if not callable(getattr(backend, "recover", None)) or not callable(getattr(backend, "arecover", None)):
        raise ConfigurationError(
            f"the {getattr(backend, 'name', 'configured')} backend keeps no responses, so there is nothing to "
            "recover by response id (use the Responses API with store_responses=True)"
        )
    return backend


def _checked_response_id(response_id: str) -> str:
    if not isinstance(response_id, str) or not response_id.strip() or "/" in response_id or len(response_id) > 200:
        raise InvalidInputError(f"not a response id: {response_id!r}")
    return response_id.strip()


def _prompt_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    if error["loc"] and error["loc"][0] == "prompt":
        return f"the prompt must be 1 to 32000 characters: {error['msg']}"
    return str(error["msg"])


def _checked_safety_identifier(value: str | None) -> str | None:
    """A developer-chosen end-user id; refuse anything that looks like a credential (it is sent in clear)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SAFETY_IDENTIFIER_CHARS:
        raise ConfigurationError(
            f"safety_identifier must be a non-empty string of at most {MAX_SAFETY_IDENTIFIER_CHARS} characters"
        )
    if value.startswith(("sk-", "sess-", "Bearer ")):
        raise ConfigurationError(
            "safety_identifier looks like an API key: use a stable hash of your end user's id, never a secret"
        )
    return value
