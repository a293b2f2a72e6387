"""The emulator's Batch API (``/v1/batches``) on a compressed clock, executing each line like a direct request.

A batch reads its input file (uploaded with ``purpose=batch``), checks it while ``validating`` (a bad file makes
the batch ``failed`` with ``errors.data`` naming the line), then runs its lines one by one while ``in_progress``
through the emulator's own endpoint handlers (the same validation, images, usage and generation ledger as the
direct routes), then writes the output and error files while ``finalizing`` and ends ``completed``. A batch not
done within its window ends ``expired`` (its finished lines in the output file, the others in the error file
with ``batch_expired``); a cancelled one goes ``cancelling`` → ``cancelled`` the same way (``batch_cancelled``).

The clock is compressed: :class:`BatchClock` says how many real seconds stand for the 24 h window and how long
each phase and each line take, so a test of a whole batch takes seconds. ``expires_at`` is ``created_at`` plus the
compressed window. Faults: a given line fails (:meth:`BatchRegistry.fail_line`), the next batch expires after
N lines (:meth:`BatchRegistry.expire_next`).

Wire facts (openai 3.57's ``types/batch*.py``, ``resources/batches.py``, ``resources/files.py``, 2026-11-25):
``completion_window`` only ``"24h"``; ``endpoint`` one of ``/v1/responses``, ``/v1/chat/completions``,
``/v1/embeddings``, ``/v1/completions``, ``/v1/moderations``, ``/v1/images/generations``, ``/v1/images/edits``,
``/v1/videos``; input file ``.jsonl``, purpose ``batch``, at most 50,000 requests and 200 MB; ``metadata`` at most
16 pairs (keys 64, values 512 characters). Line shapes (input ``custom_id``/``method``/``url``/``body``; output
``id``/``custom_id``/``response{status_code, request_id, body}``/``error``) follow OpenAI's batch guide
(developers.openai.com/api/docs/guides/batch, as linked from the SDK); the validation error codes used here are
the emulator's own choice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import wire
from .access_log import logger as access_logger
from .background import record_images
from .state import EmulatorState, StoredFile

if TYPE_CHECKING:
    from .server import _Incoming

__all__ = [
    "BATCH_ENDPOINTS",
    "MAX_BATCH_FILE_BYTES",
    "MAX_BATCH_REQUESTS",
    "BatchClock",
    "BatchRegistry",
    "LineExecution",
    "registry",
    "replace_clock",
    "routes",
]

logger = logging.getLogger(__name__)

#: The ``endpoint`` values ``batches.create`` accepts (the SDK's ``Literal``).
BATCH_ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
#: The endpoints this emulator can run (it serves no chat, embeddings, moderations or videos).
_RUNNABLE = frozenset({"/v1/responses", "/v1/images/generations", "/v1/images/edits"})
MAX_BATCH_REQUESTS = 50_000
MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024
_MAX_CUSTOM_ID = 64
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True, slots=True)
class BatchClock:
    """Real seconds standing for the Batch API's times: the whole 24 h ``window``, and how long validating,
    each line and finalizing take. The defaults run a 20-line batch in about a second."""

    window: float = 30.0
    validating: float = 0.05
    per_line: float = 0.02
    finalizing: float = 0.05

    def __post_init__(self) -> None:
        if self.window <= 0 or min(self.validating, self.per_line, self.finalizing) < 0:
            raise ValueError("the batch window must be positive and the phase times not negative")


@dataclass(frozen=True, slots=True)
class LineExecution:
    """One batch line the emulator ran (what a test counts to prove nothing ran twice)."""

    batch_id: str
    custom_id: str
    url: str
    status_code: int
    at: float


@dataclass(slots=True)
class _LineFault:
    status: int
    code: str
    message: str


@dataclass(slots=True)
class _Batch:
    wire: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)
    cancel_requested: bool = False
    expire_after: int | None = None
    task: asyncio.Task[None] | None = None


class BatchRegistry:
    """The batches of one emulator, their clock and faults. Thread-safe (tests plan faults from their thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clock = BatchClock()
        self._batches: dict[str, _Batch] = {}
        self._line_faults: dict[str, _LineFault] = {}
        self._expire_next: list[int] = []
        self._executions: list[LineExecution] = []

    def reset(self) -> None:
        with self._lock:
            for batch in self._batches.values():
                if batch.task is not None:
                    batch.task.get_loop().call_soon_threadsafe(batch.task.cancel)
            self._batches.clear()
            self._line_faults.clear()
            self._expire_next.clear()
            self._executions.clear()
            self.clock = BatchClock()

    def clear_faults(self) -> None:
        with self._lock:
            self._line_faults.clear()
            self._expire_next.clear()

    # --- faults ------------------------------------------------------------------------------------------

    def fail_line(self, custom_id: str, *, status: int, code: str, message: str) -> None:
        with self._lock:
            self._line_faults[custom_id] = _LineFault(status, code, message)

    def expire_next(self, after_lines: int) -> None:
        with self._lock:
            self._expire_next.append(after_lines)

    # --- inspection -------------------------------------------------------------------------------------

    def batches(self) -> list[dict[str, Any]]:
        """Every batch as the API shows it, newest first."""
        with self._lock:  # kept in creation order: newest first is the reverse
            return [json.loads(json.dumps(b.wire)) for b in reversed(self._batches.values())]

    def executions(self) -> list[LineExecution]:
        with self._lock:
            return list(self._executions)

    # --- internals ---------------------------------------------------------------------------------------

    def _add(self, batch: _Batch) -> None:
        with self._lock:
            if self._expire_next:
                batch.expire_after = self._expire_next.pop(0)
            self._batches[batch.wire["id"]] = batch

    def _get(self, batch_id: str) -> _Batch | None:
        with self._lock:
            return self._batches.get(batch_id)

    def _snapshot(self, batch: _Batch) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(batch.wire))  # type: ignore[no-any-return]

    def _update(self, batch: _Batch, **fields: Any) -> None:
        with self._lock:
            batch.wire.update(fields)

    def _line_fault(self, custom_id: str) -> _LineFault | None:
        with self._lock:
            return self._line_faults.pop(custom_id, None)

    def _executed(self, execution: LineExecution) -> None:
        with self._lock:
            self._executions.append(execution)


_REGISTRIES: weakref.WeakKeyDictionary[EmulatorState, BatchRegistry] = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def registry(state: EmulatorState) -> BatchRegistry:
    """The batch registry of an emulator's state (made on first use)."""
    with _REGISTRIES_LOCK:
        found = _REGISTRIES.get(state)
        if found is None:
            found = _REGISTRIES[state] = BatchRegistry()
        return found


# --- routes ----------------------------------------------------------------------------------------------


def routes() -> list[tuple[str, Any, list[str]]]:
    """``(path, handler, methods)`` for the server's router (handlers take the server's parsed request)."""
    return [
        ("/v1/batches", _create_batch, ["POST"]),
        ("/v1/batches", _list_batches, ["GET"]),
        ("/v1/batches/{batch_id}", _get_batch, ["GET"]),
        ("/v1/batches/{batch_id}/cancel", _cancel_batch, ["POST"]),
    ]


def _api_error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Exception:
    from .server import _APIError  # the server imports this module: resolve its error type at call time

    return _APIError(status, message, param=param, code=code)


async def _create_batch(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    body = incoming.json if isinstance(incoming.json, dict) else None
    if body is None:
        raise _api_error(400, "The request body must be a JSON object.")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not body.get(name):
            raise _api_error(
                400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
            )
    if body["completion_window"] != "24h":
        raise _api_error(
            400,
            f"Invalid value for 'completion_window': {body['completion_window']!r}. Supported values are: '24h'.",
            param="completion_window",
            code="invalid_value",
        )
    endpoint = body["endpoint"]
    if endpoint not in BATCH_ENDPOINTS:
        raise _api_error(
            400,
            f"Invalid value for 'endpoint': {endpoint!r}. Supported values are: {', '.join(BATCH_ENDPOINTS)}.",
            param="endpoint",
            code="invalid_value",
        )
    metadata = body.get("metadata")
    if metadata is not None:
        _check_metadata(metadata)
    stored = state.file(str(body["input_file_id"]))
    if stored is None:
        raise _api_error(404, f"No such File object: {body['input_file_id']}", param="input_file_id")
    if stored.purpose != "batch":
        raise _api_error(
            400,
            f"The input file {stored.id} was uploaded with purpose {stored.purpose!r}; batches need purpose 'batch'.",
            param="input_file_id",
            code="invalid_value",
        )
    reg = registry(state)
    clock = reg.clock
    now = int(time.time())
    batch_id = f"batch_{secrets.token_hex(12)}"
    batch = _Batch(
        wire={
            "id": batch_id,
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": stored.id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + max(1, round(clock.window)),
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": dict(metadata) if isinstance(metadata, Mapping) else None,
            "model": None,
            "usage": None,
        }
    )
    reg._add(batch)
    batch.task = asyncio.get_running_loop().create_task(_run(state, reg, batch, stored, clock, time.monotonic()))
    logger.info("emulator: batch %s created (%s, file %s)", batch_id, endpoint, stored.id)
    return JSONResponse(reg._snapshot(batch))


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, Mapping):
        raise _api_error(400, "Invalid type for 'metadata': expected an object.", param="metadata", code="invalid_type")
    if len(metadata) > 16:
        raise _api_error(400, "Invalid 'metadata': at most 16 keys.", param="metadata", code="invalid_value")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(str(key)) > 64 or len(value) > 512:
            raise _api_error(
                400,
                "Invalid 'metadata': keys are at most 64 characters, values strings of at most 512.",
                param=f"metadata.{key}",
                code="invalid_value",
            )


async def _list_batches(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    found = registry(state).batches()
    after = request.query_params.get("after")
    if after:
        ids = [b["id"] for b in found]
        found = found[ids.index(after) + 1 :] if after in ids else []
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        raise _api_error(400, "Invalid 'limit': expected an integer.", param="limit", code="invalid_type") from None
    if not 1 <= limit <= 100:
        raise _api_error(400, "Invalid 'limit': expected 1 to 100.", param="limit", code="invalid_value")
    page = found[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(found) > limit,
        }
    )


def _found(request: Request, state: EmulatorState) -> tuple[BatchRegistry, _Batch]:
    batch_id = request.path_params["batch_id"]
    reg = registry(state)
    batch = reg._get(batch_id)
    if batch is None:
        raise _api_error(404, f"No batch found with id '{batch_id}'.", param="batch_id")
    return reg, batch


async def _get_batch(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    reg, batch = _found(request, state)
    return JSONResponse(reg._snapshot(batch))


async def _cancel_batch(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    reg, batch = _found(request, state)
    status = reg._snapshot(batch)["status"]
    if status in _TERMINAL:
        raise _api_error(409, f"Cannot cancel a batch with status '{status}'.", code="batch_not_cancellable")
    if status != "cancelling":
        batch.cancel_requested = True
        reg._update(batch, status="cancelling", cancelling_at=int(time.time()))
    return JSONResponse(reg._snapshot(batch))


# --- running a batch ---------------------------------------------------------------------------------------


async def _run(
    state: EmulatorState, reg: BatchRegistry, batch: _Batch, stored: StoredFile, clock: BatchClock, started: float
) -> None:
    try:
        await _execute(state, reg, batch, stored, clock, started)
    except asyncio.CancelledError:
        raise
    except Exception:  # a bug in the emulator: the batch fails visibly instead of hanging in a status
        logger.exception("emulator: batch %s crashed", batch.wire["id"])
        reg._update(
            batch,
            status="failed",
            failed_at=int(time.time()),
            errors={"object": "list", "data": [{"code": "server_error", "message": "The batch failed (emulated)."}]},
        )


async def _execute(
    state: EmulatorState, reg: BatchRegistry, batch: _Batch, stored: StoredFile, clock: BatchClock, started: float
) -> None:
    batch_id = batch.wire["id"]
    await asyncio.sleep(clock.validating)
    lines, problems = _read_input(stored.content, reg._snapshot(batch)["endpoint"])
    if problems:
        reg._update(
            batch, status="failed", failed_at=int(time.time()), errors={"object": "list", "data": problems[:100]}
        )
        logger.info("emulator: batch %s failed validation (%d problems)", batch_id, len(problems))
        return
    if batch.cancel_requested:
        await _finish(state, reg, batch, [], [], lines, clock, "cancelled")
        return
    batch.lines = lines
    reg._update(batch, status="in_progress", in_progress_at=int(time.time()), request_counts=_counts(len(lines), 0, 0))
    outputs: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    usage = _Usage()
    for index, line in enumerate(lines):
        if batch.cancel_requested:
            await _finish(state, reg, batch, outputs, errors, lines[index:], clock, "cancelled")
            return
        out_of_time = time.monotonic() - started >= clock.window
        if out_of_time or (batch.expire_after is not None and index >= batch.expire_after):
            await _finish(state, reg, batch, outputs, errors, lines[index:], clock, "expired")
            return
        await asyncio.sleep(clock.per_line)
        result = await _execute_line(state, reg, batch_id, batch.wire["endpoint"], line)
        (outputs if result["response"]["status_code"] == 200 else errors).append(result)
        usage.add(result["response"]["body"])
        reg._update(batch, request_counts=_counts(len(lines), len(outputs), len(errors)), usage=usage.wire())
    await _finish(state, reg, batch, outputs, errors, [], clock, "completed")


async def _finish(
    state: EmulatorState,
    reg: BatchRegistry,
    batch: _Batch,
    outputs: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    unrun: Sequence[dict[str, Any]],
    clock: BatchClock,
    ending: str,
) -> None:
    now = int(time.time())
    if ending == "completed":
        reg._update(batch, status="finalizing", finalizing_at=now)
        await asyncio.sleep(clock.finalizing)
    code = "batch_expired" if ending == "expired" else "batch_cancelled"
    message = (
        "This request could not be executed before the completion window expired."
        if ending == "expired"
        else "This request was not executed because the batch was cancelled."
    )
    errors = errors + [
        {
            "id": f"batch_req_{secrets.token_hex(12)}",
            "custom_id": line["custom_id"],
            "response": None,
            "error": {"code": code, "message": message},
        }
        for line in unrun
    ]
    batch_id = batch.wire["id"]
    output_id = _write_file(state, f"{batch_id}_output.jsonl", outputs) if outputs else None
    error_id = _write_file(state, f"{batch_id}_error.jsonl", errors) if errors else None
    fields: dict[str, Any] = {"status": ending, "output_file_id": output_id, "error_file_id": error_id}
    fields[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[ending]] = int(
        time.time()
    )
    reg._update(batch, **fields)
    logger.info("emulator: batch %s %s (%d ok, %d errors)", batch_id, ending, len(outputs), len(errors))


def _write_file(state: EmulatorState, name: str, lines: Sequence[Mapping[str, Any]]) -> str:
    content = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
    stored = StoredFile(
        id=wire.file_id(),
        filename=name,
        purpose="batch_output",
        content=content,
        created_at=int(time.time()),
        content_type="application/octet-stream",
    )
    state.add_file(stored)
    return stored.id


def _counts(total: int, completed: int, failed: int) -> dict[str, int]:
    return {"total": total, "completed": completed, "failed": failed}


class _Usage:
    """The batch's summed token usage (the Batch object's ``usage``), from each answered line's body."""

    def __init__(self) -> None:
        self.input = self.output = self.cached = self.reasoning = 0

    def add(self, body: Any) -> None:
        usage = body.get("usage") if isinstance(body, Mapping) else None
        if not isinstance(usage, Mapping):
            return
        self.input += int(usage.get("input_tokens") or 0)
        self.output += int(usage.get("output_tokens") or 0)
        details = usage.get("input_tokens_details")
        if isinstance(details, Mapping):
            self.cached += int(details.get("cached_tokens") or 0)
        details = usage.get("output_tokens_details")
        if isinstance(details, Mapping):
            self.reasoning += int(details.get("reasoning_tokens") or 0)

    def wire(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input + self.output,
        }


def _read_input(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input file's request lines, or the problems that fail the batch (each naming its 1-based line)."""
    problems: list[dict[str, Any]] = []

    def problem(code: str, message: str, line: int | None = None, param: str | None = None) -> None:
        problems.append({"code": code, "message": message, "line": line, "param": param})

    if len(content) > MAX_BATCH_FILE_BYTES:
        problem("file_too_large", f"The input file is larger than {MAX_BATCH_FILE_BYTES} bytes.")
        return [], problems
    if endpoint not in _RUNNABLE:
        problem("unsupported_endpoint", f"The emulator does not run batches for {endpoint}.")
        return [], problems
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        problem("invalid_file_format", "The input file is not UTF-8 text (JSONL expected).")
        return [], problems
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            problem("invalid_json_line", f"Line {number} is not valid JSON.", number)
            continue
        if not isinstance(line, dict):
            problem("invalid_json_line", f"Line {number} is not a JSON object.", number)
            continue
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > _MAX_CUSTOM_ID:
            problem(
                "invalid_custom_id",
                f"Line {number}: 'custom_id' must be a string of 1-64 characters.",
                number,
                "custom_id",
            )
            continue
        if custom_id in seen:
            problem(
                "duplicate_custom_id", f"Line {number}: the custom_id {custom_id!r} is used twice.", number, "custom_id"
            )
            continue
        seen.add(custom_id)
        if line.get("method") != "POST":
            problem("invalid_method", f"Line {number}: 'method' must be 'POST'.", number, "method")
            continue
        if line.get("url") != endpoint:
            problem(
                "mismatched_url",
                f"Line {number}: 'url' {line.get('url')!r} does not match the batch's endpoint {endpoint}.",
                number,
                "url",
            )
            continue
        if not isinstance(line.get("body"), dict):
            problem("invalid_body", f"Line {number}: 'body' must be a JSON object.", number, "body")
            continue
        lines.append(line)
    if len(lines) > MAX_BATCH_REQUESTS:
        problem("too_many_requests", f"The input file has more than {MAX_BATCH_REQUESTS} requests.")
    if not lines and not problems:
        problem("empty_file", "The input file has no requests.")
    return lines, problems


async def _execute_line(
    state: EmulatorState, reg: BatchRegistry, batch_id: str, endpoint: str, line: Mapping[str, Any]
) -> dict[str, Any]:
    """Run one line through the direct endpoint's handler; the answer as an output (or error) file line."""
    from . import server  # the server mounts this module: import it when a batch runs, not at import time

    custom_id = str(line["custom_id"])
    body = dict(line["body"])
    request_id = wire.request_id()
    status, answer = 200, None
    fault = reg._line_fault(custom_id)
    try:
        if fault is not None:
            raise server._APIError(
                fault.status,
                fault.message,
                type="server_error" if fault.status >= 500 else "invalid_request_error",
                code=fault.code,
            )
        for unsupported in ("stream", "background"):
            if body.get(unsupported):
                raise server._APIError(
                    400,
                    f"Invalid value for '{unsupported}': batch requests cannot use {unsupported} mode.",
                    param=unsupported,
                    code="invalid_value",
                )
        response = await _dispatch(server, state, endpoint, body)
        status = response.status_code
        answer = json.loads(bytes(response.body))
    except server._APIError as exc:
        status, answer = exc.status, exc.body
    if status == 200 and endpoint != "/v1/responses":
        _bill_images(state, batch_id, custom_id, body, answer)
    reg._executed(LineExecution(batch_id, custom_id, endpoint, status, time.time()))
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info("batch %s line %s: POST %s -> %d", batch_id, custom_id, endpoint, status)
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": answer},
        "error": None,
    }


async def _dispatch(server: Any, state: EmulatorState, endpoint: str, body: dict[str, Any]) -> Any:
    incoming = server._Incoming(json=body)
    if endpoint == "/v1/responses":
        return await server._create_response(None, incoming, state)
    if endpoint == "/v1/images/generations":
        return await server._generate_images(None, incoming, state)
    return await _json_edit(server, state, body)


async def _json_edit(server: Any, state: EmulatorState, body: dict[str, Any]) -> Any:
    """``/v1/images/edits`` with a JSON body (the only form a batch line has): ``images`` as a list of
    ``{"image_url": ...}`` / ``{"file_id": ...}`` references and an optional ``mask`` reference."""
    from . import images_rules

    refs = body.get("images")
    if not isinstance(refs, list) or not refs:
        raise server._APIError(
            400, "Missing required parameter: 'images'.", param="images", code="missing_required_parameter"
        )
    inputs = [
        server._image_part(state, ref if isinstance(ref, Mapping) else {}, f"images[{i}]") for i, ref in enumerate(refs)
    ]
    mask_ref = body.get("mask")
    mask = server._image_part(state, mask_ref, "mask") if isinstance(mask_ref, Mapping) else None
    params = {k: v for k, v in body.items() if k not in ("images", "mask")}
    named = {**params, "image": True, **({"mask": True} if mask is not None else {})}
    server._check_images_rules(lambda: images_rules.check_images_params(named, edit=True))
    server._check_images_rules(lambda: images_rules.check_edit_files(inputs, mask, has_markup=False))
    return await server._images(state, params, kind="image_edit", inputs=inputs, mask=mask)


def _bill_images(state: EmulatorState, batch_id: str, custom_id: str, body: Mapping[str, Any], answer: Any) -> None:
    """Write the images of an Images API line to the generation ledger (the Responses handler writes its own)."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    count = len(data) if isinstance(data, list) else 0
    prompt = str(body.get("prompt") or "")
    record_images(state, f"{batch_id}/{custom_id}", [f"{custom_id}#{i}" for i in range(count)], prompt)


def replace_clock(state: EmulatorState, **fields: float) -> BatchClock:
    """Set the batch clock of ``state`` (fields of :class:`BatchClock`); returns the new clock."""
    reg = registry(state)
    reg.clock = dataclasses.replace(reg.clock, **fields)
    return reg.clock
