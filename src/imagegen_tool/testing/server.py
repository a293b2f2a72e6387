"""The emulator's HTTP application: the OpenAI endpoints imagegen-tool uses, served by Starlette.

Every request is parsed once, logged (credentials redacted), then delayed or failed as the planned faults say,
and only then served. Options are validated with the emulated server's own rules (:mod:`.api_rules`, its own
data), never with the client's capability table, so a wrong table entry shows up in tests; refusals use the
API's error JSON. Images are rendered off the event loop in worker threads, so hundreds of concurrent streams
stay responsive.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import api_rules, background, images_rules, wire
from . import batch as batch_api
from .access_log import log_request
from .api_rules import RuleViolation
from .payloads import Payload
from .state import (
    EmulatorState,
    PlannedFailure,
    PlannedModeration,
    RecordedFile,
    RecordedRequest,
    StoredFile,
    redact_headers,
)
from .stream_variants import shape_body, shape_stream
from .synthesis import (
    Format,
    ImageSpec,
    RenderJob,
    UnreadableImageError,
    placeholder_image,
    read_image_size,
    render_final,
    render_partial,
)

__all__ = ["StreamCut", "create_app"]

logger = logging.getLogger(__name__)

_FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
_IMAGE_OPTION_KEYS = (
    "model",
    "background",
    "quality",
    "size",
    "output_format",
    "output_compression",
    "moderation",
    "partial_images",
    "input_fidelity",
    "complexity",
    "frame_count",
    "frame_duration_ms",
    "svg",
)
_INT_FORM_FIELDS = frozenset({"n", "partial_images", "output_compression", "frame_count", "frame_duration_ms"})
# Legacy DALL·E parameters the GPT image models refuse (see the recorded `unknown_parameter` error).
_LEGACY_IMAGE_PARAMS = ("response_format", "style")
_DEFAULT_MODERATION_CATEGORIES = ("violence",)
_MAX_PIXELS = 4096 * 4096
_MAX_FRAMES = 64


class StreamCut(Exception):
    """Raised inside a streaming body to drop the connection (the planned ``cut_next_stream`` fault).

    uvicorn closes the socket without finishing the chunked body, so the client sees a broken stream.
    """


class _CutLogFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for a stream cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _is_cut(exc)


def _is_cut(exc: BaseException | None) -> bool:
    if isinstance(exc, StreamCut):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_cut(inner) for inner in exc.exceptions)
    return False


_cut_filter = _CutLogFilter()


class _APIError(Exception):
    """An error answer in the API's JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = wire.error_body(message, type=type, param=param, code=code)
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class _Upload:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class _Incoming:
    """A request body parsed once: JSON, or multipart text fields and files."""

    json: Any = None
    fields: dict[str, str] = field(default_factory=dict)
    uploads: list[_Upload] = field(default_factory=list)

    def upload(self, *names: str) -> list[_Upload]:
        return [u for u in self.uploads if u.field in names]


Handler = Callable[[Request, _Incoming, EmulatorState], Awaitable[Response]]


def create_app(state: EmulatorState) -> Starlette:
    """The ASGI app serving ``/v1/...`` from ``state``."""
    uvicorn_logger = logging.getLogger("uvicorn.error")
    if _cut_filter not in uvicorn_logger.filters:
        uvicorn_logger.addFilter(_cut_filter)

    def route(path: str, handler: Handler, methods: Sequence[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await _serve(request, handler, state)

        return Route(path, endpoint, methods=list(methods))

    routes = [
        route("/v1/responses", _create_response, ["POST"]),
        route("/v1/responses/{response_id}", _get_response, ["GET"]),
        route("/v1/responses/{response_id}", _delete_response, ["DELETE"]),
        route("/v1/files", _create_file, ["POST"]),
        route("/v1/files", _list_files, ["GET"]),
        route("/v1/files/{file_id}", _get_file, ["GET"]),
        route("/v1/files/{file_id}", _delete_file, ["DELETE"]),
        route("/v1/files/{file_id}/content", _get_file_content, ["GET"]),
        route("/v1/images/generations", _generate_images, ["POST"]),
        route("/v1/images/edits", _edit_images, ["POST"]),
        *(route(path, handler, methods) for path, handler, methods in batch_api.routes()),
        route("/{path:path}", _unknown_route, ["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return Starlette(routes=routes)


# --- the request pipeline ------------------------------------------------------------------------------


async def _serve(request: Request, handler: Handler, state: EmulatorState) -> Response:
    started = time.perf_counter()
    record = RecordedRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        headers=redact_headers(request.headers),
    )
    try:
        incoming = await _parse(request, record)
    except _APIError as exc:
        state.record(record)
        return _finish(_error_response(exc), record, started)
    state.record(record)

    latency = state.next_latency()
    latency = background.defer_latency(state, record, latency)  # background work takes it, not its answers
    if latency > 0:
        await asyncio.sleep(latency)
    failure = state.take_failure(record.path)
    if failure is not None:
        return _finish(_error_response(_planned_error(failure)), record, started)
    try:
        response = await handler(request, incoming, state)
    except _APIError as exc:
        response = _error_response(exc)
    return _finish(background.apply_body_fault(state, record, response), record, started)


def _finish(response: Response, record: RecordedRequest, started: float) -> Response:
    record.status = response.status_code
    response.headers.setdefault("x-request-id", wire.request_id())
    response.headers["openai-processing-ms"] = str(round((time.perf_counter() - started) * 1000))
    response.headers["openai-version"] = "2020-10-01"
    log_request(record, time.perf_counter() - started)
    return response


async def _parse(request: Request, record: RecordedRequest) -> _Incoming:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=100, max_fields=1000)
        incoming = _Incoming()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                incoming.uploads.append(_Upload(name, value.filename, value.content_type, data))
            else:
                incoming.fields[name] = value
        await form.close()
        record.form = dict(incoming.fields)
        record.files = tuple(RecordedFile(u.field, u.filename, u.content_type, len(u.data)) for u in incoming.uploads)
        return incoming
    raw = await request.body()
    if not raw:
        return _Incoming()
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise _APIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload.)",
        ) from None
    record.json = parsed
    return _Incoming(json=parsed)


def _error_response(exc: _APIError) -> JSONResponse:
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def _planned_error(failure: PlannedFailure) -> _APIError:
    headers: dict[str, str] = {}
    if failure.retry_after is not None:
        headers["retry-after"] = f"{failure.retry_after:g}"
        headers["retry-after-ms"] = str(round(failure.retry_after * 1000))
    status = failure.status
    if status == 429 and failure.code == "insufficient_quota":
        message = failure.message or (
            "You exceeded your current quota, please check your plan and billing details. (emulated)"
        )
        return _APIError(status, message, type="insufficient_quota", code="insufficient_quota", headers=headers)
    if status == 429:
        message = failure.message or (
            "Rate limit reached for requests per minute (RPM): Limit 5, Used 5, Requested 1. "
            "Please try again later. (emulated)"
        )
        return _APIError(status, message, type="requests", code="rate_limit_exceeded", headers=headers)
    if status == 503:
        message = failure.message or "The server is overloaded or not ready yet. (emulated)"
        return _APIError(status, message, type="server_error", headers=headers)
    if status >= 500:
        message = failure.message or (
            "The server had an error while processing your request. Sorry about that! (emulated)"
        )
        return _APIError(status, message, type="server_error", headers=headers)
    return _APIError(status, failure.message or f"Emulated error {status}.", headers=headers)


def _body(incoming: _Incoming) -> dict[str, Any]:
    if not isinstance(incoming.json, dict):
        raise _APIError(400, "The request body must be a JSON object.")
    return incoming.json


async def _unknown_route(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    raise _APIError(404, f"Invalid URL ({request.method} {request.url.path})")


# --- option validation (the core's rules) --------------------------------------------------------------


def _check_options(state: EmulatorState, tool: Mapping[str, Any], *, prefix: str, input_count: int = 0) -> None:
    """Validate an ``image_generation`` tool dict with the emulated server's own rules (never the client's table:
    see :mod:`.api_rules`); refuse like the API."""
    try:
        state.api_rules.check_tool(tool, prefix=prefix, input_count=input_count)
    except RuleViolation as exc:
        raise _APIError(exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code) from None


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class _Resolved:
    """Options with ``auto`` resolved the way the API reports them."""

    spec: ImageSpec
    background: str
    quality: str
    output_format: str
    size: str
    partial_images: int


_LANDSCAPE_WORDS = re.compile(r"\b(landscape|wide|widescreen|panorama|panoramic|banner|horizontal|16:9)\b", re.I)
_PORTRAIT_WORDS = re.compile(r"\b(portrait|tall|vertical|poster|phone wallpaper|9:16)\b", re.I)


def _auto_size(prompt: str, base: bytes | None) -> str:
    """``size="auto"`` as the API resolves it: an edit keeps its input's orientation; otherwise the prompt's
    (the recorded axolotl prompt came back 1536x1024); square by default."""
    if base is not None:
        try:
            width, height = read_image_size(base)
        except UnreadableImageError:
            width = height = 1
        if width * 5 >= height * 6:
            return "1536x1024"
        if height * 5 >= width * 6:
            return "1024x1536"
        return "1024x1024"
    if _LANDSCAPE_WORDS.search(prompt):
        return "1536x1024"
    if _PORTRAIT_WORDS.search(prompt):
        return "1024x1536"
    return "1024x1024"


def _resolve(
    tool: Mapping[str, Any], *, prompt: str = "", base: bytes | None = None, auto_quality: str = "high"
) -> _Resolved:
    size = tool.get("size") or "auto"
    if size == "auto":
        size = _auto_size(prompt, base)
    width, _, height = str(size).partition("x")
    quality = tool.get("quality") or "auto"
    if quality == "auto":
        quality = auto_quality  # the recorded Responses bodies report "high" for quality=auto
    background = tool.get("background") or "auto"
    if background == "auto":
        background = "opaque"
    output_format = cast("Format", tool.get("output_format") or "png")
    duration = int(tool.get("frame_duration_ms") or 200)
    # Models the capability table does not know get type checks only; these limits keep such a request from
    # making the emulator allocate gigabytes. They are far above anything a real model accepts.
    if int(width) * int(height) > _MAX_PIXELS or int(tool.get("frame_count") or 9) > _MAX_FRAMES:
        raise _APIError(
            400,
            f"Invalid value for size/frame_count: the emulator renders at most {_MAX_PIXELS} pixels and "
            f"{_MAX_FRAMES} frames.",
            param="size",
            code="invalid_value",
        )
    spec = ImageSpec(
        width=int(width),
        height=int(height),
        output_format=output_format,
        transparent=background == "transparent",
        compression=tool.get("output_compression"),
        frame_count=int(tool.get("frame_count") or 9),
        frame_duration_ms=max(10, round(duration / 10) * 10),
    )
    return _Resolved(
        spec, background, quality, output_format, f"{spec.width}x{spec.height}", int(tool.get("partial_images") or 0)
    )


def _moderation(state: EmulatorState, prompt: str) -> PlannedModeration | None:
    planned = state.take_moderation()
    if planned is not None:
        return planned
    trigger = state.moderation_trigger
    if trigger and re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", prompt, re.IGNORECASE):
        return PlannedModeration(_DEFAULT_MODERATION_CATEGORIES, "input")
    return None


def _moderation_message(block: PlannedModeration) -> str:
    return (
        "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        f"help.openai.com and include the request ID. safety_violations=[{', '.join(block.categories)}]."
    )


# --- input images --------------------------------------------------------------------------------------


def _image_from_url(url: object, param: str) -> bytes:
    if not isinstance(url, str) or not url:
        raise _APIError(400, f"Invalid '{param}': expected a URL or a data URL.", param=param, code="invalid_value")
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.startswith("data:image/") or not header.endswith(";base64"):
            raise _APIError(
                400,
                f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type "
                "(e.g. 'data:image/png;base64,...').",
                param=param,
                code="invalid_value",
            )
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise _APIError(
                400, f"Invalid '{param}': the data URL is not valid base64.", param=param, code="invalid_value"
            ) from None
        return _checked_image(data, param)
    if url.startswith(("http://", "https://")):
        # Never fetched: a placeholder derived from the URL stands in for the downloaded image.
        return placeholder_image(url)
    raise _APIError(
        400, f"Invalid '{param}': expected an http(s) URL or a data URL.", param=param, code="invalid_value"
    )


def _image_from_file(state: EmulatorState, file_id: object, param: str) -> bytes:
    stored = state.file(file_id) if isinstance(file_id, str) else None
    if stored is None:
        raise _APIError(404, f"No such File object: {file_id}", param=param)
    return _checked_image(stored.content, param)


def _checked_image(data: bytes, param: str) -> bytes:
    try:
        read_image_size(data)
    except UnreadableImageError:
        raise _APIError(
            400,
            f"Invalid image in '{param}': the file is not a png, webp, jpeg or gif image.",
            param=param,
            code="invalid_image_format",
        ) from None
    return data


def _image_part(state: EmulatorState, part: Mapping[str, Any], param: str) -> bytes:
    if part.get("file_id"):
        return _image_from_file(state, part["file_id"], f"{param}.file_id")
    return _image_from_url(part.get("image_url"), f"{param}.image_url")


def _call_image(state: EmulatorState, item: Mapping[str, Any]) -> bytes | None:
    result = item.get("result")
    if not result and isinstance(item.get("id"), str):
        stored = state.item(item["id"])
        result = stored.get("result") if stored else None
    if not isinstance(result, str) or not result:
        return None
    try:
        return base64.b64decode(result)
    except (binascii.Error, ValueError):
        return None


@dataclass(slots=True)
class _Input:
    prompt: str = ""
    images: list[bytes] = field(default_factory=list)
    function_outputs: int = 0


def _read_input(state: EmulatorState, raw: object) -> _Input:
    """The prompt (the last user text) and the input images of a Responses request's ``input``."""
    found = _Input()
    if isinstance(raw, str):
        found.prompt = raw
        return found
    if raw is None:
        return found
    if not isinstance(raw, list):
        raise _APIError(
            400, "Invalid type for 'input': expected a string or an array.", param="input", code="invalid_type"
        )
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "item_reference":
            referenced = state.item(str(item.get("id")))
            if referenced is None:
                raise _APIError(404, f"Item with id '{item.get('id')}' not found.", param="input")
            if referenced.get("type") == "image_generation_call":
                image = _call_image(state, referenced)
                if image is not None:
                    found.images.append(image)
        elif kind == "function_call_output":
            found.function_outputs += 1
        elif kind == "image_generation_call":
            image = _call_image(state, item)
            if image is not None:
                found.images.append(image)
        elif (kind in (None, "message")) and item.get("role") in ("user", "developer", "system"):
            texts = _message_parts(state, item.get("content"), f"input[{i}].content", found)
            if item.get("role") == "user" and texts:
                found.prompt = " ".join(texts)
    return found


def _message_parts(state: EmulatorState, content: object, param: str, found: _Input) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    if not isinstance(content, list):
        return texts
    for j, part in enumerate(content):
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "input_text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "input_image":
            found.images.append(_image_part(state, part, f"{param}[{j}]"))
    return texts


def _chain(state: EmulatorState, previous_id: object) -> list[dict[str, Any]]:
    """The stored responses ``previous_response_id`` continues, oldest first."""
    if previous_id is None:
        return []
    first = state.response(previous_id) if isinstance(previous_id, str) else None
    if first is None:
        raise _APIError(
            400,
            f"Previous response with id '{previous_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    chain = [first]
    seen = {first["id"]}
    while (earlier_id := chain[-1].get("previous_response_id")) and earlier_id not in seen:
        earlier = state.response(earlier_id)
        if earlier is None:
            break
        seen.add(earlier_id)
        chain.append(earlier)
    return chain[::-1]


def _chain_images(state: EmulatorState, chain: Sequence[Mapping[str, Any]]) -> list[bytes]:
    images: list[bytes] = []
    for response in chain:
        for item in response.get("output") or []:
            if isinstance(item, Mapping) and item.get("type") == "image_generation_call":
                image = _call_image(state, item)
                if image is not None:
                    images.append(image)
    return images


# --- POST /v1/responses --------------------------------------------------------------------------------


def _check_background_options(body: Mapping[str, Any]) -> None:
    """``background_options.completion_window`` as the SDK documents it: ``soonest``, ``2h`` or ``8h``; the two
    discounted windows need ``background: true`` and no streaming."""
    options = body.get("background_options")
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise _APIError(
            400,
            "Invalid type for 'background_options': expected an object.",
            param="background_options",
            code="invalid_type",
        )
    for key in options:
        if key not in ("completion_window", "continuation_id"):
            raise _APIError(
                400,
                f"Unknown parameter: 'background_options.{key}'.",
                param=f"background_options.{key}",
                code="unknown_parameter",
            )
    window = options.get("completion_window", "soonest")
    if window not in ("soonest", "2h", "8h"):
        raise _APIError(
            400,
            f"Invalid value: '{window}'. Supported values are: 'soonest', '2h', and '8h'.",
            param="background_options.completion_window",
            code="invalid_value",
        )
    if window != "soonest" and (not body.get("background") or body.get("stream")):
        raise _APIError(
            400,
            f"The '{window}' completion window requires background=true and stream=false. (emulated)",
            param="background_options.completion_window",
            code="invalid_value",
        )


async def _create_response(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    body = _body(incoming)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _APIError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _APIError(400, "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    image_tools = [
        (i, t) for i, t in enumerate(tools) if isinstance(t, Mapping) and t.get("type") == "image_generation"
    ]
    for i, tool in image_tools:
        _check_options(state, tool, prefix=f"tools[{i}]")
    chain = _chain(state, body.get("previous_response_id"))
    found = _read_input(state, body.get("input"))
    for i, tool in image_tools:
        _check_options(state, tool, prefix=f"tools[{i}]", input_count=len(found.images))
    prompt = found.prompt or "An image"
    _check_background_options(body)

    if body.get("background"):
        # Background mode (imagegen_tool.testing.background): answered at once, generated in a task.
        return background.start(
            state,
            body,
            lambda response_id: _draft(state, body, model, image_tools, chain, found, prompt, response_id),
        )
    draft = await _draft(state, body, model, image_tools, chain, found, prompt, wire.new_id("resp"))
    shape = state.stream_shape
    final = shape_body(wire.response_object(draft, final=True), shape)
    if body.get("store", True) is not False:
        state.store_response(final)
    if body.get("stream"):
        return _sse_response(state, shape_stream(wire.response_events(draft), shape, request=body), numbered=True)
    return JSONResponse(final)


async def _draft(
    state: EmulatorState,
    body: Mapping[str, Any],
    model: str,
    image_tools: list[tuple[int, Any]],
    chain: list[dict[str, Any]],
    found: _Input,
    prompt: str,
    response_id: str,
) -> wire.ResponseDraft:
    """Generate a response: render its image call (billed) and assemble everything else around it."""
    group = wire.id_group(response_id)
    calls: list[wire.ImageCall] = []
    function = _forced_function(body, found)
    if function is None and image_tools and body.get("tool_choice") != "none":
        index, tool = image_tools[0]
        calls.append(
            await _image_call(state, tool, index, prompt, found.images, chain, group, bool(body.get("stream")))
        )
    reasoning = wire.is_reasoning_model(model)
    text = "" if function is not None else _assistant_text(prompt, calls)
    include = body.get("include") or []
    draft = wire.ResponseDraft(
        id=response_id,
        created_at=int(time.time()),
        request=body,
        reasoning_id=wire.new_id("rs", group) if reasoning else None,
        # The recorded bodies: a reasoning model left to choose (tool_choice "auto") thinks again after the
        # image call in a plain body (vercel-ai openai-image-generation-tool.1.json); forced calls and the
        # recorded stream do not.
        reasoning_after_id=wire.new_id("rs", group)
        if reasoning
        and calls
        and function is None
        and not body.get("stream")
        and body.get("tool_choice", "auto") == "auto"
        else None,
        reasoning_encrypted=wire.encrypted_reasoning()
        if reasoning and "reasoning.encrypted_content" in include
        else None,
        calls=tuple(calls),
        function_call=wire.FunctionCall(wire.new_id("fc", group), wire.function_call_id(), function)
        if function is not None
        else None,
        message_id=wire.new_id("msg", group) if function is None else None,
        message_text=text,
        usage=wire.Usage(
            input_tokens=120 + wire.estimate_tokens(prompt) + 85 * len(found.images) + 100 * len(chain),
            output_tokens=(192 if reasoning else 0) + wire.estimate_tokens(text) + 40 * len(calls),
            reasoning_tokens=192 if reasoning else 0,
        ),
    )
    background.record_generations(state, response_id, draft.calls, prompt)
    return draft


def _forced_function(body: Mapping[str, Any], found: _Input) -> str | None:
    """The function tool the emulated model calls, if any.

    The emulator is no language model: it calls a function only when made to, by ``tool_choice`` naming a
    function, or by ``tool_choice="required"`` with function tools and no function output in the input yet
    (the first function is called, with ``{}`` as arguments). Otherwise it uses the image tool.
    """
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return str(choice["name"])
    functions = [
        t["name"]
        for t in body.get("tools") or []
        if isinstance(t, Mapping) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]
    if choice == "required" and functions and found.function_outputs == 0:
        return str(functions[0])
    return None


def _assistant_text(prompt: str, calls: Sequence[wire.ImageCall]) -> str:
    if not calls:
        return f"Emulated reply to: {' '.join(prompt.split())[:200]}"
    if calls[0].failed:
        return "I can't create that image: the request was blocked by the safety system."
    verb = "edited" if calls[0].action == "edit" else "generated"
    return f"Here is the {verb} image."


async def _image_call(
    state: EmulatorState,
    tool: Mapping[str, Any],
    index: int,
    prompt: str,
    input_images: Sequence[bytes],
    chain: Sequence[Mapping[str, Any]],
    group: str,
    stream: bool,
) -> wire.ImageCall:
    param = f"tools[{index}]"
    base = input_images[-1] if input_images else None
    if base is None:
        earlier = _chain_images(state, chain)
        base = earlier[-1] if earlier else None
    edits = (tool.get("action") or "auto") != "generate" and base is not None
    resolved = _resolve(tool, prompt=prompt, base=base if edits else None)
    requested = tool.get("action") or "auto"
    if requested == "edit" and base is None:
        raise _APIError(
            400,
            f"Invalid value for '{param}.action': 'edit' needs an input image or an earlier image in the "
            "conversation (previous_response_id).",
            param=f"{param}.action",
            code="invalid_value",
        )
    action = "generate" if requested == "generate" or base is None else "edit"
    mask: bytes | None = None
    mask_param = tool.get("input_image_mask")
    if isinstance(mask_param, Mapping) and action == "edit":
        mask = _image_part(state, mask_param, f"{param}.input_image_mask")
    call_id = wire.new_id("ig", group)
    revised = wire.revise_prompt(prompt, edit=action == "edit")
    pending = wire.ImageCall(
        id=call_id,
        action=action,
        background=resolved.background,
        output_format=resolved.output_format,
        quality=resolved.quality,
        size=resolved.size,
        revised_prompt=revised,
        result=None,
    )
    block = _moderation(state, prompt)
    if block is not None:
        error = {
            "code": "moderation_blocked",
            "message": _moderation_message(block),
            "param": None,
            "type": "image_generation_user_error",
            "moderation_details": {"categories": list(block.categories), "moderation_stage": block.stage},
        }
        return dataclasses.replace(pending, error=error)
    job = RenderJob(
        prompt=revised,
        spec=resolved.spec,
        seed=state.seed,
        base=base if action == "edit" else None,
        mask=mask,
    )
    partial_count = resolved.partial_images if stream else 0
    final, partials = await _render_b64_off_loop(job, partial_count, state)
    usage = wire.images_usage(
        prompt=revised,
        quality=resolved.quality,
        width=resolved.spec.width,
        height=resolved.spec.height,
        n=1,
        input_images=len(input_images) + (1 if action == "edit" and not input_images else 0),
        model=_usage_model(tool),
        partials=len(partials),
    )
    return dataclasses.replace(pending, result=final, partials=partials, usage=usage)


def _usage_model(tool: Mapping[str, Any]) -> str:
    model = tool.get("model")
    return model if isinstance(model, str) and model else str(api_rules._data()["server"]["default_model"])


async def _render_b64_off_loop(job: RenderJob, partial_count: int, state: EmulatorState) -> tuple[str, tuple[str, ...]]:
    # The loop's default executor: asyncio.run() joins its threads when the server stops, so none leak.
    return await asyncio.get_running_loop().run_in_executor(None, _render_b64, job, partial_count, state.payload)


def _render_b64(job: RenderJob, partial_count: int, payload: Payload) -> tuple[str, tuple[str, ...]]:
    # Realistic payloads (or given bytes) are cached with their base64, so serving them costs next to nothing.
    given = payload.b64(job.spec.width, job.spec.height, job.spec.output_format, partial_count)
    if given is not None:
        return given
    partials = tuple(_b64(render_partial(job, i, partial_count)) for i in range(partial_count))
    return _b64(render_final(job)), partials


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sse_response(state: EmulatorState, events: Sequence[Mapping[str, Any]], *, numbered: bool) -> StreamingResponse:
    """Send ``events`` as server-sent events, applying the planned stream cut and partial-image delay.

    ``numbered`` adds the Responses API's ``sequence_number`` (the Images API has none).
    """
    cut_after = state.take_stream_cut()
    delay = state.partial_delay

    async def body() -> AsyncIterator[bytes]:
        for number, event in enumerate(events):
            if cut_after is not None and number >= cut_after:
                logger.info("emulator: cutting the stream after %d events", number)
                raise StreamCut
            if delay > 0 and str(event["type"]).endswith("partial_image"):
                await asyncio.sleep(delay)
            yield wire.sse({"type": event["type"], "sequence_number": number, **event} if numbered else event)

    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8")


async def _get_response(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    response_id = request.path_params["response_id"]
    if request.query_params.get("stream") == "true":
        return background.resume(state, response_id, request.query_params.get("starting_after"))
    found = state.response(response_id)
    if found is None:
        raise _APIError(404, f"Response with id '{response_id}' not found.")
    return JSONResponse(found)


async def _delete_response(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    response_id = request.path_params["response_id"]
    if not state.delete_response(response_id):
        raise _APIError(404, f"Response with id '{response_id}' not found.")
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


# --- files ---------------------------------------------------------------------------------------------


async def _create_file(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    uploads = incoming.upload("file")
    if not uploads:
        raise _APIError(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    purpose = incoming.fields.get("purpose")
    if not purpose:
        raise _APIError(
            400, "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in _FILE_PURPOSES:
        raise _APIError(
            400,
            f"Invalid value for 'purpose': {purpose!r}. Supported values are: {', '.join(sorted(_FILE_PURPOSES))}.",
            param="purpose",
            code="invalid_value",
        )
    upload = uploads[0]
    created_at = int(time.time())
    seconds = _file_expiry_seconds(incoming.fields)
    stored = StoredFile(
        id=wire.file_id(),
        filename=upload.filename or "upload",
        purpose=purpose,
        content=upload.data,
        created_at=created_at,
        content_type=upload.content_type,
        expires_at=created_at + seconds if seconds is not None else None,
    )
    state.add_file(stored)
    return JSONResponse(stored.to_wire())


def _file_expiry_seconds(fields: Mapping[str, str]) -> int | None:
    """``expires_after`` of an upload (multipart: ``expires_after[anchor]``, ``expires_after[seconds]``), checked
    as the SDK documents it: anchor ``created_at``, 3600 to 2592000 seconds."""
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise _APIError(
            400,
            f"Invalid value for 'expires_after.anchor': {anchor!r}. Supported values are: 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    try:
        value = int(seconds or "")
    except ValueError:
        value = -1
    if not 3600 <= value <= 2592000:
        raise _APIError(
            400,
            f"Invalid 'expires_after.seconds': {seconds!r}. Expected an integer between 3600 and 2592000.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return value


async def _list_files(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    purpose = request.query_params.get("purpose")
    data = [f.to_wire() for f in state.file_list() if purpose is None or f.purpose == purpose]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
    )


def _stored_file(request: Request, state: EmulatorState) -> StoredFile:
    file_id = request.path_params["file_id"]
    stored = state.file(file_id)
    if stored is None:
        raise _APIError(404, f"No such File object: {file_id}", param="id")
    return stored


async def _get_file(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    return JSONResponse(_stored_file(request, state).to_wire())


async def _get_file_content(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    stored = _stored_file(request, state)
    return Response(stored.content, media_type=stored.content_type or "application/octet-stream")


async def _delete_file(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    stored = _stored_file(request, state)
    state.delete_file(stored.id)
    return JSONResponse({"id": stored.id, "object": "file", "deleted": True})


# --- images API ----------------------------------------------------------------------------------------


async def _generate_images(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    params = _body(incoming)
    _check_images_rules(lambda: images_rules.check_images_params(params, edit=False))
    return await _images(state, params, kind="image_generation", inputs=[], mask=None)


async def _edit_images(request: Request, incoming: _Incoming, state: EmulatorState) -> Response:
    params = _form_params(incoming.fields)
    images = incoming.upload("image", "image[]")
    if not images:
        raise _APIError(400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter")
    inputs = [_checked_image(u.data, u.field) for u in images]
    masks = incoming.upload("mask")
    mask = _checked_image(masks[0].data, "mask") if masks else None
    named = {**params, **{u.field: True for u in incoming.uploads}}
    _check_images_rules(lambda: images_rules.check_images_params(named, edit=True))
    markup = bool(incoming.upload("markup"))
    _check_images_rules(lambda: images_rules.check_edit_files(inputs, mask, has_markup=markup))
    return await _images(state, params, kind="image_edit", inputs=inputs, mask=mask)


def _check_images_rules(check: Callable[[], None]) -> None:
    try:
        check()
    except images_rules.ImagesParamError as exc:
        raise _APIError(400, exc.message, param=exc.param, code=exc.code) from None


def _form_params(fields: Mapping[str, str]) -> dict[str, Any]:
    """Multipart text fields as typed values (``n=2`` → 2, ``stream=true`` → True, ``svg[model]`` nested)."""
    params: dict[str, Any] = {}
    for name, value in fields.items():
        if name.startswith("svg["):
            keys = [k.rstrip("]") for k in name[len("svg[") :].split("[")]
            target = params.setdefault("svg", {})
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = value
        elif name in _INT_FORM_FIELDS:
            try:
                params[name] = int(value)
            except ValueError:
                params[name] = value
        elif name == "stream":
            params[name] = value.lower() == "true"
        else:
            params[name] = value
    return params


async def _images(
    state: EmulatorState, params: Mapping[str, Any], *, kind: str, inputs: Sequence[bytes], mask: bytes | None
) -> Response:
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _APIError(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    for legacy in _LEGACY_IMAGE_PARAMS:
        if params.get(legacy) is not None:
            raise _APIError(400, f"Unknown parameter: '{legacy}'.", param=legacy, code="unknown_parameter")
    n = params.get("n")
    n = 1 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise _APIError(
            400,
            f"Invalid value for 'n': {_short(n)}. Supported: an integer from 1 to 10.",
            param="n",
            code="invalid_value",
        )
    tool: dict[str, Any] = {"type": "image_generation"}
    tool.update({k: params[k] for k in _IMAGE_OPTION_KEYS if params.get(k) is not None})
    if mask is not None:
        tool["input_image_mask"] = {"file_id": "uploaded-mask"}
    _check_options(state, tool, prefix="", input_count=len(inputs))
    resolved = _resolve(tool, prompt=prompt, base=inputs[-1] if inputs else None)
    stream = bool(params.get("stream"))
    if stream and resolved.output_format in ("gif", "svg"):
        raise _APIError(
            400,
            f"Invalid value for 'stream': {resolved.output_format} output does not support streaming.",
            param="stream",
            code="invalid_value",
        )
    block = _moderation(state, prompt)
    # A streamed call blocked at the output stage has started: the refusal comes as an in-stream error event.
    streamed_block = block if stream and block is not None and block.stage == "output" else None
    if block is not None and streamed_block is None:
        raise _APIError(
            400,
            _moderation_message(block),
            type="image_generation_user_error",
            code="moderation_blocked",
        )
    revised = wire.revise_prompt(prompt, edit=bool(inputs))
    jobs = [
        RenderJob(
            prompt=revised,
            spec=resolved.spec,
            seed=state.seed,
            variant=v,
            base=inputs[-1] if inputs else None,
            mask=mask,
        )
        for v in range(n)
    ]
    partial_count = resolved.partial_images if stream else 0
    rendered = [await _render_b64_off_loop(job, partial_count, state) for job in jobs]
    created = int(time.time())
    usage = wire.images_usage(
        prompt=revised,
        quality=resolved.quality,
        width=resolved.spec.width,
        height=resolved.spec.height,
        n=n,
        input_images=len(inputs),
        model=_usage_model(tool),
        partials=sum(len(previews) for _, previews in rendered),
    )
    described = {
        "background": resolved.background,
        "output_format": resolved.output_format,
        "quality": resolved.quality,
        "size": resolved.size,
    }
    safety = params.get("safety_identifier") or params.get("user")
    if not stream:
        body = wire.images_response(created=created, images=[final for final, _ in rendered], usage=usage, **described)
        if isinstance(safety, str) and safety:
            body["safety_identifier"] = safety
        return JSONResponse(body)
    events: list[dict[str, Any]] = []
    usages = images_rules.stream_usages(usage, n)
    for number_of_image, (final, partials) in enumerate(rendered):
        for number, partial in enumerate(partials):
            events.append(
                {
                    "type": f"{kind}.partial_image",
                    "b64_json": partial,
                    "created_at": created,
                    "partial_image_index": number,
                    **described,
                }
            )
        if streamed_block is not None and number_of_image == len(rendered) - 1:
            # The output check fails the last image: any earlier ones of the call were delivered (and paid).
            events.append({"type": "error", "error": _moderation_error(streamed_block)})
            break
        completed = {
            "type": f"{kind}.completed",
            "b64_json": final,
            "created_at": created,
            **described,
            "usage": usages[number_of_image],
        }
        if isinstance(safety, str) and safety:
            completed["safety_identifier"] = safety
        events.append(completed)
    return _sse_response(state, events, numbered=False)


def _moderation_error(block: PlannedModeration) -> dict[str, Any]:
    return {
        "type": "image_generation_user_error",
        "code": "moderation_blocked",
        "message": _moderation_message(block),
        "param": None,
    }
