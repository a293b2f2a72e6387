"""The :class:`Emulator`: the emulated OpenAI API running on a loopback port, with the knobs tests turn.

The server is uvicorn in a background thread with its own event loop, bound to an ephemeral port, so any
number of emulators can run side by side and the real ``openai`` client (sync or async) talks to it through
``base_url=emulator.url``. Starting waits until the socket listens; stopping waits until the thread has ended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import uvicorn

from . import background
from . import batch as batch_api
from .api_rules import ApiRules
from .background import BodyFault, Generation
from .batch import BatchClock, LineExecution
from .payloads import LatencyModel, Payload
from .server import create_app
from .state import EmulatorState, PlannedFailure, PlannedModeration, RecordedRequest, StoredFile
from .stream_variants import StreamShape

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)

_START_TIMEOUT = 10.0


class Emulator:
    """A local, offline stand-in for the OpenAI API endpoints imagegen-tool uses.

    Serves ``/v1/responses`` (with the ``image_generation`` tool, streaming or not), ``/v1/images/generations``,
    ``/v1/images/edits``, ``/v1/files`` and ``/v1/batches`` (the Batch API on a compressed clock: see
    :meth:`set_batch_clock`) over real HTTP, with real image bytes. Use it as a context manager::

        with Emulator() as api:
            client = OpenAI(base_url=api.url, api_key="test")
            api.fail_next(429, retry_after=1)
            ...
            assert len(api.requests) == 1

    ``async with Emulator() as api:`` works the same way. In pytest, the ``imagegen_emulator`` fixture gives a
    shared, freshly reset instance per test.

    Args:
        host: interface to bind (loopback by default: the emulator is for tests and demos).
        port: port to bind; 0 picks a free one.
        seed: mixed into every image, so the same prompt gives other (still deterministic) bytes.
        latency: seconds added before every answer, or a :class:`LatencyModel` drawing a delay per request
            (``LatencyModel.recorded(scale=0.01)``: real generation times, 19-90 s, scaled to 0.19-0.9 s).
        moderation_trigger: a word that, found in a prompt, makes the request blocked by moderation
            (``None`` disables it).
        realistic: serve noise images with the byte sizes of real ones (a 1024x1024 PNG is ~1.6 MB, its
            partials ~1.5 MB) instead of the small rendered pictures: for benchmarks and load tests.
        image_bytes: serve these bytes as every final image (and ``partial_image_bytes``, defaulting to them,
            as every partial image), whatever the request asks for.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        latency: float | LatencyModel = 0.0,
        moderation_trigger: str | None = "forbidden",
        realistic: bool = False,
        image_bytes: bytes | None = None,
        partial_image_bytes: bytes | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._state = EmulatorState(seed=seed, moderation_trigger=moderation_trigger)
        self._default_latency = latency
        self.set_latency(latency)
        self._default_payload = Payload(image_bytes, partial_image_bytes, realistic)
        self._state.payload = self._default_payload
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._bound: tuple[str, int] | None = None

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving in a background thread; returns when the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        config = uvicorn.Config(
            create_app(self._state),
            host=self._host,
            port=self._port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            # Longer than the clients' own keep-alive expiry (httpx: 5 s, uvicorn's default too): the client
            # drops an idle connection first, instead of both racing at 5 s and a request sent on a connection
            # the server is closing failing as "server disconnected" under load (200 concurrent calls).
            timeout_keep_alive=30,
            # Room for hundreds of connections opened at once (a burst of concurrent calls).
            backlog=4096,
        )
        server = uvicorn.Server(config)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(server.serve())
            except BaseException as exc:  # reported to start(), which re-raises it in the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=run, name="imagegen-emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            thread.join(0.005)
            if not thread.is_alive():
                raise RuntimeError("the emulator failed to start") from (failure[0] if failure else None)
            if time.monotonic() > deadline:
                server.should_exit = True
                thread.join(5)
                raise RuntimeError(f"the emulator did not start within {_START_TIMEOUT:g} s")
        socket = server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        self._server, self._thread, self._bound = server, thread, (host, port)
        logger.info("imagegen emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # pragma: no cover - only if a handler hangs
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None
        self._bound = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """The base URL for the ``openai`` client, ending in ``/v1``."""
        if self._bound is None:
            raise RuntimeError("the emulator is not running; use `with Emulator() as api:` or call start()")
        host, port = self._bound
        return f"http://{host}:{port}/v1"

    def reset(self) -> None:
        """Back to a clean state: no logged requests, stored responses, files or planned faults; latency,
        payload and moderation trigger back to the constructor's values."""
        self._state.reset()
        background.reset(self._state)
        batch_api.registry(self._state).reset()
        self.set_latency(self._default_latency)
        self._state.payload = self._default_payload

    # --- inspection ------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (credentials redacted)."""
        return self._state.requests()

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The logged requests to one endpoint, e.g. ``requests_to("/responses")`` (``/v1`` optional)."""
        full = _full_path(path)
        return [r for r in self.requests if r.path == full and (method is None or r.method == method.upper())]

    @property
    def responses(self) -> Mapping[str, dict[str, Any]]:
        """Stored responses by id (``store=false`` ones are not kept), as the API returned them."""
        return self._state.responses()

    @property
    def generations(self) -> list[Generation]:
        """Every image the emulator rendered (what OpenAI bills), oldest first, with its response id and
        prompt: the ledger that proves a call was not paid twice."""
        return background.generations(self._state)

    def generations_per_response(self) -> dict[str, int]:
        """How many images were rendered (billed) for each response id."""
        counts: dict[str, int] = {}
        for generation in self.generations:
            counts[generation.response_id] = counts.get(generation.response_id, 0) + 1
        return counts

    @property
    def files(self) -> Mapping[str, StoredFile]:
        """Uploaded files by id."""
        return self._state.files()

    def expire_file(self, file_id: str) -> bool:
        """Make an uploaded file expire now, as the API does once its ``expires_after`` has passed: it is no
        longer listed, retrieved or usable as an input. Returns whether the file existed."""
        return self._state.expire_file(file_id)

    # --- configuration and faults ----------------------------------------------------------------------

    def shape_responses(self, shape: StreamShape | None = None, /, **fields: Any) -> None:
        """Make Responses answers look like a given server until :meth:`reset`: ``style="azure"`` (no
        ``image_generation_call.completed`` event, image items ``done`` with status ``"generating"``),
        ``ending="failed" | "incomplete" | "error"`` (with ``incomplete_reason="max_output_tokens" |
        "content_filter"``), ``queued=True`` (a ``response.queued`` event first). See :class:`StreamShape`."""
        self._state.stream_shape = shape if shape is not None else StreamShape(**fields)

    @property
    def api_rules(self) -> ApiRules:
        """The emulated API's own option rules (never the client's capability table). Play a given real API
        with ``api_rules.refuse("input_fidelity", "high", model="gpt-image-2.5-sunburst")`` or
        ``api_rules.accept(...)``; set ``api_rules.today`` to move its lifecycle clock. Overrides last until
        :meth:`reset`."""
        return self._state.api_rules

    @property
    def seed(self) -> int:
        return self._state.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._state.seed = value

    @property
    def moderation_trigger(self) -> str | None:
        """A word that makes a prompt blocked by moderation (whole word, any case); ``None`` disables it.
        Reset by :meth:`reset`."""
        return self._state.moderation_trigger

    @moderation_trigger.setter
    def moderation_trigger(self, word: str | None) -> None:
        self._state.moderation_trigger = word

    def set_latency(self, seconds: float | LatencyModel) -> None:
        """Delay every answer by ``seconds``, or by a delay drawn per request from a :class:`LatencyModel`
        (until :meth:`reset`)."""
        if isinstance(seconds, LatencyModel):
            self._state.latency_model = seconds
            self._state.latency = 0.0
            return
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._state.latency_model = None
        self._state.latency = seconds

    def set_payload(
        self, *, realistic: bool = False, image_bytes: bytes | None = None, partial_image_bytes: bytes | None = None
    ) -> None:
        """Serve realistic noise images, or the given bytes, instead of the rendered pictures (until
        :meth:`reset`); with no argument, back to the rendered pictures. See the constructor's arguments."""
        self._state.payload = Payload(image_bytes, partial_image_bytes, realistic)

    def set_partial_delay(self, seconds: float) -> None:
        """Wait ``seconds`` before each streamed partial image (until :meth:`reset`)."""
        if seconds < 0:
            raise ValueError("delay cannot be negative")
        self._state.partial_delay = seconds

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``path`` and below, if given) with an API error.

        429 comes as ``rate_limit_exceeded`` (``code="insufficient_quota"`` for an exhausted billing quota, the
        API's ``insufficient_quota`` error), 5xx as ``server_error``; ``retry_after`` adds the
        ``retry-after`` header. The ``openai`` client retries 429 and 5xx by itself: use ``max_retries=0`` or
        set ``times`` above the client's retries to see the error.
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if times < 1:
            raise ValueError("times must be at least 1")
        self._state.add_failure(
            PlannedFailure(
                status=status,
                remaining=times,
                retry_after=retry_after,
                path=_full_path(path) if path else None,
                message=message,
                code=code,
            )
        )

    def block_next_with_moderation(
        self, categories: Iterable[str] = ("violence",), *, stage: str = "input", times: int = 1
    ) -> None:
        """Make the next ``times`` image requests blocked by moderation, whatever their prompt.

        In the Responses API the ``image_generation_call`` fails (``status: "failed"``, ``error.code:
        "moderation_blocked"``); the Images API answers 400 ``moderation_blocked``.
        """
        if stage not in ("input", "output", "unknown"):
            raise ValueError("stage must be 'input', 'output' or 'unknown'")
        self._state.add_moderation(PlannedModeration(tuple(categories), stage), times)

    def cut_next_stream(self, after_events: int) -> None:
        """Drop the connection of the next streaming answer after ``after_events`` events (no
        ``response.completed``; the client sees a broken stream)."""
        if after_events < 0:
            raise ValueError("after_events cannot be negative")
        self._state.add_stream_cut(after_events)

    def clear_faults(self) -> None:
        """Forget every planned fault not yet used (the request log, ledger and stored responses stay)."""
        self._state.clear_faults()
        background.clear_faults(self._state)
        batch_api.registry(self._state).clear_faults()

    def drop_after_image(self, *, times: int = 1, path: str | None = None) -> None:
        """Drop the connection of the next ``times`` answers that carry a finished image, after the image was
        produced (and billed): a plain answer is cut a third of the way into its body; a stream right after the
        event with the finished image. ``path`` narrows it (e.g. ``"/responses"`` for creates only)."""
        self._body_fault("drop_after_image", times, path=path)

    def answer_with_html(self, *, times: int = 1, path: str | None = None, method: str | None = None) -> None:
        """Answer the next ``times`` successful plain (non-streaming) requests with an HTML error page and
        status 200, as a misbehaving proxy does. The request itself was served (a create was generated)."""
        self._body_fault("html", times, path=path, method=method)

    def answer_with_bad_json(self, *, times: int = 1, path: str | None = None, method: str | None = None) -> None:
        """Answer the next ``times`` successful plain requests with their JSON body cut in half (status 200,
        ``application/json``): unreadable, but it still names the response id."""
        self._body_fault("bad_json", times, path=path, method=method)

    def error_in_next_stream(self, code: str = "server_error", *, after_events: int = 2, times: int = 1) -> None:
        """End the next ``times`` event streams with an in-stream ``error`` event (``code``, e.g.
        ``"moderation_blocked"`` or ``"server_error"``) after ``after_events`` events."""
        if after_events < 0:
            raise ValueError("after_events cannot be negative")
        self._body_fault("stream_error", times, after_events=after_events, code=code)

    def _body_fault(
        self,
        kind: background.FaultKind,
        times: int,
        *,
        path: str | None = None,
        method: str | None = None,
        after_events: int = 2,
        code: str = "server_error",
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        background.plan_body_fault(
            self._state,
            BodyFault(
                kind,
                times,
                method=method.upper() if method else None,
                path=_full_path(path) if path else None,
                after_events=after_events,
                code=code,
            ),
        )

    # --- the Batch API ---------------------------------------------------------------------------------

    def set_batch_clock(
        self,
        *,
        window: float | None = None,
        validating: float | None = None,
        per_line: float | None = None,
        finalizing: float | None = None,
    ) -> BatchClock:
        """Compress the Batch API's clock (until :meth:`reset`): ``window`` real seconds stand for the 24 h
        completion window (a batch still running then expires), ``validating``/``finalizing`` are the seconds
        those phases take, ``per_line`` the seconds each request line takes. Applies to batches created after."""
        given = {"window": window, "validating": validating, "per_line": per_line, "finalizing": finalizing}
        return batch_api.replace_clock(self._state, **{k: v for k, v in given.items() if v is not None})

    def fail_batch_line(
        self, custom_id: str, *, status: int = 500, code: str = "server_error", message: str | None = None
    ) -> None:
        """Make the batch line with ``custom_id`` (of the next batch that has one) fail with an API error: it
        goes to the batch's error file with ``status`` and the error body, and nothing is generated for it."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        server_error = "The server had an error while processing your request. (emulated)"
        text = message or (server_error if status >= 500 else "Bad request. (emulated)")
        batch_api.registry(self._state).fail_line(custom_id, status=status, code=code, message=text)

    def expire_next_batch(self, *, after_lines: int) -> None:
        """Make the next batch created expire after running ``after_lines`` lines (as if its 24 h window
        ended): those lines are in its output/error file, the rest in the error file as ``batch_expired``."""
        if after_lines < 0:
            raise ValueError("after_lines cannot be negative")
        batch_api.registry(self._state).expire_next(after_lines)

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Every batch as ``GET /v1/batches/{id}`` shows it, newest first."""
        return batch_api.registry(self._state).batches()

    @property
    def batch_executions(self) -> list[LineExecution]:
        """Every batch line the emulator ran, oldest first (a line never runs twice)."""
        return batch_api.registry(self._state).executions()

    def __repr__(self) -> str:
        where = self.url if self._bound else "stopped"
        return f"<Emulator {where}>"


def _full_path(path: str) -> str:
    path = "/" + path.lstrip("/")
    return path if path == "/v1" or path.startswith("/v1/") else "/v1" + path
