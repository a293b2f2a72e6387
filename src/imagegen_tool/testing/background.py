"""The emulator's background mode, its generation ledger and the body faults of the fault-injection suite.

Background mode (``background: true``, which needs ``store: true``) answers ``POST /v1/responses`` at once with
a ``queued`` response and generates in a task; ``GET /v1/responses/{id}`` shows the response while it runs and
after, and ``GET /v1/responses/{id}?stream=true&starting_after=N`` replays its events after sequence number
``N``, following them live until the response ends. Every rendered image is a *generation* (what OpenAI bills)
and is written to the ledger with its response id, so tests can prove nothing was paid twice.

Body faults damage an answer the server already produced (the work, and the bill, are done): the connection
dropped after the image, an HTML page with status 200, a cut JSON body, an in-stream ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.responses import JSONResponse, Response, StreamingResponse

from . import wire
from .state import EmulatorState, RecordedRequest

__all__ = [
    "BodyFault",
    "Generation",
    "apply_body_fault",
    "generations",
    "plan_body_fault",
    "record_generations",
    "record_images",
    "reset",
    "resume",
    "start",
]

logger = logging.getLogger(__name__)

FaultKind = Literal["drop_after_image", "html", "bad_json", "stream_error"]

_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response. (emulated)</p>"
    "</body></html>\n"
)


@dataclass(frozen=True, slots=True)
class Generation:
    """One billed image render: the response (and call) it belongs to, and the prompt it was made from."""

    response_id: str
    call_id: str
    prompt: str
    at: float


@dataclass(slots=True)
class BodyFault:
    """A damaged answer planned for the next matching request(s)."""

    kind: FaultKind
    remaining: int
    method: str | None = None
    path: str | None = None
    after_events: int = 2
    code: str = "server_error"

    def matches(self, record: RecordedRequest) -> bool:
        if self.method is not None and record.method != self.method:
            return False
        return self.path is None or record.path == self.path or record.path.startswith(self.path.rstrip("/") + "/")


class _Run:
    """The events of one background response, as they are produced (numbered), and whether it ended."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.changed = asyncio.Event()

    def add(self, event: Mapping[str, Any]) -> None:
        self.events.append({"type": event["type"], "sequence_number": len(self.events), **event})
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass(slots=True)
class _Registry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: dict[str, _Run] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    ledger: list[Generation] = field(default_factory=list)
    faults: list[BodyFault] = field(default_factory=list)


# The latency the current create request deferred to its background work (see defer_latency).
_JOB_LATENCY: contextvars.ContextVar[float] = contextvars.ContextVar("imagegen_emulator_job_latency", default=0.0)

_REGISTRIES: weakref.WeakKeyDictionary[EmulatorState, _Registry] = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def _registry(state: EmulatorState) -> _Registry:
    with _REGISTRIES_LOCK:
        found = _REGISTRIES.get(state)
        if found is None:
            found = _REGISTRIES[state] = _Registry()
        return found


def reset(state: EmulatorState) -> None:
    """Forget runs, the ledger and planned body faults (running generations finish unobserved)."""
    registry = _registry(state)
    with registry.lock:
        registry.runs.clear()
        registry.ledger.clear()
        registry.faults.clear()


def clear_faults(state: EmulatorState) -> None:
    registry = _registry(state)
    with registry.lock:
        registry.faults.clear()


def defer_latency(state: EmulatorState, record: RecordedRequest, latency: float) -> float:
    """The delay to add before answering ``record``. The emulated latency stands for generation time: a
    background create is answered at once and its work takes the latency instead; polls and resumes of a
    background response are answered at once (a real retrieve is quick however long the generation)."""
    if latency <= 0:
        return latency
    if record.method == "POST" and record.path == "/v1/responses":
        if isinstance(record.json, dict) and record.json.get("background"):
            _JOB_LATENCY.set(latency)
            return 0.0
        return latency
    if record.method == "GET" and record.path.startswith("/v1/responses/"):
        registry = _registry(state)
        with registry.lock:
            if record.path.rpartition("/")[2] in registry.runs:
                return 0.0
    return latency


# --- the ledger ------------------------------------------------------------------------------------------


def record_generations(state: EmulatorState, response_id: str, calls: Sequence[wire.ImageCall], prompt: str) -> None:
    """Write the rendered (billed) images of a response to the ledger."""
    registry = _registry(state)
    now = time.time()
    with registry.lock:
        registry.ledger.extend(Generation(response_id, call.id, prompt, now) for call in calls if call.result)


def record_images(state: EmulatorState, response_id: str, call_ids: Sequence[str], prompt: str) -> None:
    """Write images rendered outside a response (a batch line of the Images API) to the ledger."""
    registry = _registry(state)
    now = time.time()
    with registry.lock:
        registry.ledger.extend(Generation(response_id, call_id, prompt, now) for call_id in call_ids)


def generations(state: EmulatorState) -> list[Generation]:
    registry = _registry(state)
    with registry.lock:
        return list(registry.ledger)


# --- background mode -------------------------------------------------------------------------------------


def start(
    state: EmulatorState, body: Mapping[str, Any], generate: Callable[[str], Awaitable[wire.ResponseDraft]]
) -> Response:
    """Answer a ``background: true`` create: the queued response (or its event stream) now, the work later."""
    if body.get("store", True) is False:
        return JSONResponse(
            wire.error_body(
                "Background mode requires store=true. (emulated)",
                param="background",
                code="invalid_value",
            ),
            status_code=400,
        )
    response_id = wire.new_id("resp")
    queued = _snapshot(response_id, body, "queued")
    state.store_response(queued)
    registry = _registry(state)
    run = _Run()
    with registry.lock:
        registry.runs[response_id] = run
    run.add({"type": "response.created", "response": queued})
    run.add({"type": "response.queued", "response": queued})
    task = asyncio.get_running_loop().create_task(_work(state, body, response_id, run, generate))
    registry.tasks.add(task)
    task.add_done_callback(registry.tasks.discard)
    if body.get("stream"):
        return _event_stream(state, run, after=None)
    return JSONResponse(queued)


async def _work(
    state: EmulatorState,
    body: Mapping[str, Any],
    response_id: str,
    run: _Run,
    generate: Callable[[str], Awaitable[wire.ResponseDraft]],
) -> None:
    state.store_response(_snapshot(response_id, body, "in_progress"))
    run.add({"type": "response.in_progress", "response": _snapshot(response_id, body, "in_progress")})
    try:
        latency = _JOB_LATENCY.get()
        if latency > 0:
            await asyncio.sleep(latency)
        draft = await generate(response_id)
    except Exception as exc:  # a refusal found while generating: the response fails, as the API reports it
        message = str(getattr(exc, "args", [""])[0] or "The response failed. (emulated)")
        code = _error_code(exc)
        failed = _snapshot(response_id, body, "failed", error={"code": code, "message": message})
        state.store_response(failed)
        run.add({"type": "response.failed", "response": failed})
        run.finish()
        return
    events = wire.response_events(draft)
    delay = state.partial_delay
    for event in events:
        if event["type"] in ("response.created", "response.in_progress"):
            continue
        if delay > 0 and str(event["type"]).endswith("partial_image"):
            await asyncio.sleep(delay)
        if event["type"] == "response.completed":
            state.store_response(event["response"])
        run.add(event)
    run.finish()


def _error_code(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
        if isinstance(code, str):
            return code
    return "server_error"


def _snapshot(response_id: str, body: Mapping[str, Any], status: str, error: Any = None) -> dict[str, Any]:
    draft = wire.ResponseDraft(
        id=response_id,
        created_at=int(time.time()),
        request=body,
        reasoning_id=None,
        calls=(),
        message_id=None,
        message_text="",
        usage=wire.Usage(0, 0),
    )
    snapshot = wire.response_object(draft, final=False)
    snapshot["status"] = status
    snapshot["background"] = True
    if error is not None:
        snapshot["error"] = error
    return snapshot


def resume(state: EmulatorState, response_id: str, starting_after: str | None) -> Response:
    """``GET /v1/responses/{id}?stream=true&starting_after=N``: the events after ``N``, then live ones."""
    registry = _registry(state)
    with registry.lock:
        run = registry.runs.get(response_id)
    if run is None:
        found = state.response(response_id) is not None
        message = (
            "This response cannot be streamed: only background responses created with stream=true can be "
            "streamed again. (emulated)"
            if found
            else f"Response with id '{response_id}' not found."
        )
        return JSONResponse(
            wire.error_body(message, param="stream" if found else None), status_code=400 if found else 404
        )
    after: int | None = None
    if starting_after is not None:
        try:
            after = int(starting_after)
        except ValueError:
            return JSONResponse(
                wire.error_body("Invalid value for 'starting_after': expected an integer.", param="starting_after"),
                status_code=400,
            )
    return _event_stream(state, run, after=after)


def _event_stream(state: EmulatorState, run: _Run, *, after: int | None) -> StreamingResponse:
    cut_after = state.take_stream_cut()  # the planned cut_next_stream fault applies to background streams too

    async def body() -> AsyncIterator[bytes]:
        from .server import StreamCut

        index = 0 if after is None else after + 1
        sent = 0
        while True:
            while index < len(run.events):
                if cut_after is not None and sent >= cut_after:
                    raise StreamCut
                yield wire.sse(run.events[index])
                index += 1
                sent += 1
            if run.done:
                return
            await run.changed.wait()

    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8")


# --- body faults -----------------------------------------------------------------------------------------


def plan_body_fault(state: EmulatorState, fault: BodyFault) -> None:
    registry = _registry(state)
    with registry.lock:
        registry.faults.append(fault)


def apply_body_fault(state: EmulatorState, record: RecordedRequest, response: Response) -> Response:
    """Damage ``response`` as the next planned body fault that fits it says (else return it unchanged)."""
    registry = _registry(state)
    with registry.lock:
        if not registry.faults:
            return response
        for fault in registry.faults:
            if fault.matches(record) and _fits(fault, response):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    registry.faults.remove(fault)
                break
        else:
            return response
    logger.info("emulator: %s fault on %s", fault.kind, record.endpoint)
    if fault.kind == "html":
        return Response(_HTML_PAGE, status_code=200, media_type="text/html; charset=utf-8")
    if fault.kind == "bad_json":
        text = bytes(getattr(response, "body", b""))
        return Response(text[: max(1, len(text) // 2)], status_code=200, media_type="application/json")
    if fault.kind == "drop_after_image":
        if isinstance(response, StreamingResponse):
            return _streaming(response, _cut_after_image(response.body_iterator))
        return _streaming(response, _cut_body(bytes(getattr(response, "body", b""))))
    assert isinstance(response, StreamingResponse)
    return _streaming(response, _error_after(response.body_iterator, fault.after_events, fault.code))


def _fits(fault: BodyFault, response: Response) -> bool:
    if response.status_code != 200:
        return False
    streaming = isinstance(response, StreamingResponse)
    if fault.kind == "stream_error":
        return streaming
    if fault.kind == "drop_after_image":
        if streaming:
            return "event-stream" in (response.media_type or "")
        return b'"result":' in bytes(getattr(response, "body", b"")) and _has_image(response)
    return not streaming


def _has_image(response: Response) -> bool:
    try:
        data = json.loads(bytes(getattr(response, "body", b"")))
    except ValueError:
        return False
    output = data.get("output") if isinstance(data, dict) else None
    return any(isinstance(item, dict) and item.get("result") for item in output or ())


def _streaming(original: Response, body: AsyncIterator[bytes]) -> StreamingResponse:
    media = original.media_type or original.headers.get("content-type") or "application/json"
    return StreamingResponse(body, status_code=200, media_type=media)


async def _cut_body(data: bytes) -> AsyncIterator[bytes]:
    from .server import StreamCut

    yield data[: max(1, len(data) // 3)]
    raise StreamCut


async def _cut_after_image(events: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    """Pass events until the first one carrying a finished image, then drop the connection."""
    from .server import StreamCut

    async for chunk in events:
        data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
        yield data
        if b'"image_generation_call"' in data and b'"result":"' in data:
            raise StreamCut


async def _error_after(events: AsyncIterable[Any], after_events: int, code: str) -> AsyncIterator[bytes]:
    """Pass ``after_events`` events, then an in-stream ``error`` event, then end the stream."""
    sent = 0
    async for chunk in events:
        if sent >= after_events:
            break
        yield chunk if isinstance(chunk, bytes) else str(chunk).encode()
        sent += 1
    message = {
        "moderation_blocked": "Your request was rejected by the safety system. (emulated)",
        "insufficient_quota": "You exceeded your current quota. (emulated)",
    }.get(code, "The server had an error while processing your request. (emulated)")
    yield wire.sse({"type": "error", "code": code, "message": message, "param": None, "sequence_number": sent})
