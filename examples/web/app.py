"""A web page where images appear live as they render: Starlette, Server-Sent Events and plain HTML/JS.

A template to copy. The user types a prompt; the server runs the image tool (the framework-neutral core,
:class:`imagegen_tool.agent_tool.AgentImageTool`, the same one every agent adapter wraps) and streams what happens
to the page as Server-Sent Events: progress, each partial image as it arrives, then the final image. Every image
is a file in the store, shown through its handle's public URL (``LocalImageStore(public_base_url="/images")`` plus a
static route that serves only image files under the store root). The final image's id is the handle for a
follow-up edit ("edit this image"), which continues from the stored response: no image bytes are re-sent.

Why the tool directly, not a chat agent: the page *is* the agent's UI here, one prompt per drawing. To put a chat
model in between, run a LangGraph agent with :class:`imagegen_tool.langchain.ImageGenerationTool` in ``run_job``
and forward its ``stream_mode="custom"`` chunks: they carry the same payloads
(:func:`imagegen_tool.agent_tool.astream_event_payload`) this file relays.

What a real app needs and this template does:

* **Disconnects**: a drawing runs as its own task, not inside the HTTP request. Closing the page stops the event
  stream only; the paid image is still stored (and shown if the page comes back: ``EventSource`` reconnects with
  ``Last-Event-ID`` and the stream replays from there). Shutting the server down waits for running drawings.
* **Errors**: the user sees the agent-facing message (a moderation block says to rephrase, an unknown id says
  which ids exist...), never a stack trace.
* **No path traversal**: ``/images/...`` serves only ``<id>.<ext>`` files at the store root and partial previews
  under ``.partials/<call>/``; anything else (records, session pointers, ``..``, symlinks leaving the root) is
  404. Images are served with ``nosniff`` and a sandboxing CSP, so an SVG from the API cannot run script.

Offline by default (the emulator, partial images slowed down so you can watch them); online (billed) with
``OPENAI_API_KEY`` set and ``IMAGEGEN_OFFLINE=0``.

    pip install 'imagegen-tool[web,emulator]'
    python examples/web/app.py [--out DIR] [--port 8000] [--partial-images 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import mimetypes
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from imagegen_tool import ImageGenerator, ImageOptions, LocalImageStore
from imagegen_tool.agent_tool import (
    PARTIAL_IMAGE_EVENT,
    PROGRESS_EVENT,
    AgentImageTool,
    ToolArgumentsError,
    ToolOutput,
    astream_event_payload,
)
from imagegen_tool.streaming import StreamEvent

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
IMAGES_PATH = "/images"
#: Finished drawings kept for reconnecting pages (oldest dropped first); running ones are always kept.
MAX_FINISHED_JOBS = 200
KEEPALIVE_SECONDS = 15.0
MAX_PROMPT_CHARS = 4000

# What the static route may serve: images at the store root, and partial previews in their call folder.
_IMAGE_EXT = r"(?:png|jpg|webp|gif|svg)"
_SERVABLE = re.compile(
    rf"(?:[A-Za-z0-9][A-Za-z0-9_-]*\.{_IMAGE_EXT}"
    rf"|\.partials/([A-Za-z0-9][A-Za-z0-9_-]*)/\1\.partial-[0-9]+\.{_IMAGE_EXT})"
)
_IMAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # An SVG opened directly must not run script or load anything from our origin.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Cache-Control": "private, max-age=3600",
}
_PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


# -- drawings (jobs) ------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One drawing: its events so far (replayed to every page that listens) and the task that makes it."""

    id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def emit(self, kind: str, data: Mapping[str, Any]) -> None:
        self.events.append({"event": kind, "data": dict(data)})
        if kind in ("final", "failed"):
            self.done = True
        # Wake the listeners, then arm a fresh event for the next change.
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class Jobs:
    """The drawings of this process. In-memory: a multi-process deployment would keep the events in Redis or a
    database; the images themselves are already in the shared store."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def new(self) -> Job:
        job = Job(id=uuid.uuid4().hex)
        self._jobs[job.id] = job
        finished = [j for j in self._jobs.values() if j.done]
        for old in finished[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
            del self._jobs[old.id]
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def running(self) -> list[asyncio.Task[None]]:
        return [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]


async def run_job(tool: AgentImageTool, job: Job, arguments: Mapping[str, Any]) -> None:
    """Draw, relaying each stream event to the job; end with ``final`` or ``failed`` (the agent's message)."""

    async def relay(event: StreamEvent) -> None:
        payload = await astream_event_payload(event, run_id=job.id)  # no image bytes: the page loads the URL
        if payload is None:
            return
        if payload["event"] == PARTIAL_IMAGE_EVENT and payload.get("url"):
            keys = ("url", "index", "width", "height", "call_id")
            job.emit("partial", {k: payload.get(k) for k in keys})
        elif payload["event"] == PROGRESS_EVENT:
            job.emit("progress", {"stage": payload.get("stage")})

    try:
        output = await tool.acall_safely(arguments, on_event=relay)
    except Exception as exc:  # an unexpected failure: logged for the developer, a plain message for the user
        logger.exception("drawing %s failed", job.id)
        output = ToolOutput.from_error(exc, tool_name=tool.name)
    # The core's structured result (the same model MCP and the Agents SDK return): handles and URLs, no bytes,
    # no local paths (the store gives URLs, so the tool's display="auto" shows those); errors carry the message.
    result = output.structured().model_dump(mode="json")
    job.emit("failed" if output.is_error else "final", {**result, "text": output.text})


def _sse(index: int, event: Mapping[str, Any]) -> bytes:
    return f"id: {index}\nevent: {event['event']}\ndata: {json.dumps(event['data'])}\n\n".encode()


async def _event_stream(job: Job, start: int) -> AsyncIterator[bytes]:
    """The job's events from ``start`` on, live, until the last one. Starlette cancels this when the client goes
    away; the job's own task is not affected."""
    index = start
    yield b"retry: 1000\n\n"
    while True:
        while index < len(job.events):
            yield _sse(index, job.events[index])
            index += 1
        if job.done:
            return
        changed = job.changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
        if not changed.is_set():
            yield b": keep-alive\n\n"  # proxies close idle connections


# -- the app --------------------------------------------------------------------------------------------------


def create_app(tool: AgentImageTool, store: LocalImageStore) -> Starlette:
    """The web app: the page, ``POST /api/draw``, the event stream per drawing and the image route.

    ``store`` is the tool's local store; its ``public_base_url`` must be :data:`IMAGES_PATH` (or a URL that serves
    it), so handles carry URLs the page can load."""
    jobs = Jobs()
    root = store.root

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def script(request: Request) -> Response:
        return FileResponse(STATIC / "app.js", media_type="text/javascript", headers=_PAGE_HEADERS)

    async def draw(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": 'send JSON: {"prompt": "..."}'}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
            return JSONResponse({"error": "type a prompt first"}, status_code=400)
        if len(body["prompt"]) > MAX_PROMPT_CHARS:
            return JSONResponse({"error": f"the prompt is longer than {MAX_PROMPT_CHARS} characters"}, status_code=400)
        arguments: dict[str, Any] = {"prompt": body["prompt"]}
        if body.get("image_id"):
            arguments["image_ids"] = [body["image_id"]]  # edit by handle
        try:
            tool.parse_arguments(arguments)  # refuse bad input before a job exists, with the tool's own message
        except ToolArgumentsError as exc:
            return JSONResponse({"error": exc.agent_message}, status_code=400)
        job = jobs.new()
        job.task = asyncio.create_task(run_job(tool, job, arguments), name=f"drawing-{job.id}")
        return JSONResponse({"job": job.id, "events": f"/api/jobs/{job.id}/events"}, status_code=202)

    async def events(request: Request) -> Response:
        job = jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "no such drawing"}, status_code=404)
        last = request.headers.get("last-event-id", "")
        start = int(last) + 1 if last.isdigit() else 0
        if job.done and start >= len(job.events):
            return Response(status_code=204)  # nothing more will come: 204 tells EventSource not to reconnect
        return StreamingResponse(
            _event_stream(job, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def status(request: Request) -> Response:
        job = jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "no such drawing"}, status_code=404)
        return JSONResponse({"job": job.id, "done": job.done, "events": job.events})

    async def image(request: Request) -> Response:
        relative = request.path_params["path"]
        if not _SERVABLE.fullmatch(relative):
            return PlainTextResponse("not found", status_code=404)
        # The pattern already excludes "..", but a symlink inside the root may point anywhere: check the target.
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return PlainTextResponse("not found", status_code=404)
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media_type, headers=_IMAGE_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # A drawing in flight is paid for: let it finish and be stored before the process ends.
        running = jobs.running()
        if running:
            logger.info("waiting for %d drawing(s) to finish", len(running))
            await asyncio.wait(running, timeout=120)
        await tool.aclose()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/app.js", script),
            Route("/api/draw", draw, methods=["POST"]),
            Route("/api/jobs/{job_id}/events", events),
            Route("/api/jobs/{job_id}", status),
            Route(IMAGES_PATH + "/{path:path}", image),
        ],
        lifespan=lifespan,
    )
    app.state.jobs = jobs
    return app


def make_tool(out: Path, *, partial_images: int = 2, **client: Any) -> tuple[AgentImageTool, LocalImageStore]:
    """The tool and its store: handles get ``/images/...`` URLs, partial previews stay until the store prunes
    them (a page may still be loading one when the final image arrives)."""
    store = LocalImageStore(out, public_base_url=IMAGES_PATH)
    generator = ImageGenerator(store=store, keep_partials=True, **client)
    options = ImageOptions(quality="low", size="1024x1024", partial_images=partial_images)
    tool = AgentImageTool(generator=generator, options=options, exposed_options=())
    return tool, store


# -- running it -----------------------------------------------------------------------------------------------


class AppServer:
    """The app under uvicorn in a background thread on a loopback port (0: a free one), for ``main`` and tests.
    Stopping runs the app's shutdown, which waits for drawings in flight."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web-template", daemon=True)
        self.url = ""

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=150)


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


@contextlib.contextmanager
def image_service(offline: bool, partial_delay: float) -> Iterator[dict[str, Any]]:
    """Client settings: the emulator offline (partials slowed down to watch them), the SDK defaults online."""
    if not offline:
        yield {}
        return
    from imagegen_tool.testing import Emulator

    with Emulator() as api:
        api.set_partial_delay(partial_delay)
        yield {"base_url": api.url, "api_key": "offline"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("generated-images"), help="the image store directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--partial-images", type=int, default=2, choices=range(1, 4))
    parser.add_argument("--partial-delay", type=float, default=0.8, help="offline: seconds before each partial")
    args = parser.parse_args()

    offline = offline_mode()
    print("mode:", "offline (emulated OpenAI API)" if offline else "online (OpenAI API, billed)", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with image_service(offline, args.partial_delay) as client:
        tool, store = make_tool(args.out, partial_images=args.partial_images, **client)
        with AppServer(create_app(tool, store), args.host, args.port) as server:
            print(f"serving on {server.url}  (images in {store.root}; Ctrl+C to stop)", flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping: waiting for drawings in flight", flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    sys.exit(main())
