"""MCP server: the image tool for any Model Context Protocol client (Claude Desktop, Cursor, Codex, VS Code, ...).

A thin adapter over :class:`~imagegen_tool.agent_tool.AgentImageTool` on the official ``mcp`` Python SDK (the
``mcp`` extra, v2 low-level ``Server``). The core builds the tool's input schema from the options the operator
exposes and locks, parses the arguments (``null``/``""`` = not given), writes the text the model reads, the
previews and the agent error messages; this module only converts them to MCP types:

* the tool ``generate_image`` (generate, or edit earlier images by id): ``inputSchema`` from the core,
  ``outputSchema`` = :class:`~imagegen_tool.agent_tool.ToolResult`; a result holds the text for the model, the
  ``structuredContent`` with the handles, an image content block per preview (a small JPEG, configurable and
  off-able) and a ``resource_link`` per image; failures are tool errors (``isError``) with the agent message;
* every stored image is a resource ``imagegen://images/{id}`` (listed, and readable by id; an id is resolved only
  through the store, so nothing outside the store root can be named);
* lifecycle steps and partial images go out as ``notifications/progress`` when the client sent a progress token
  (the partial image's details, and a small preview of it when previews are on, in the notification's
  ``_meta["imagegen/event"]`` / ``_meta["imagegen/preview"]``).

Run it with ``imagegen mcp`` / ``imagegen-mcp`` (stdio) or ``imagegen mcp --http`` (streamable HTTP on
loopback); ``--offline`` starts the emulator in-process, so no key is needed. Logs go to stderr only, never to
stdout (the stdio protocol channel), and never contain the API key. See ``docs/mcp.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, get_args

from . import __version__
from .agent_tool import (
    EXPOSABLE_OPTIONS,
    AgentImageTool,
    Display,
    ToolOutput,
    astream_event_payload,
    make_preview,
)
from .errors import (
    ConfigurationError,
    ImageGenerationError,
    ImageNotFoundError,
    InvalidInputError,
    InvalidOptionsError,
)
from .options import ImageOptions
from .redact import redact
from .store import is_valid_image_id
from .streaming import GenerationCompleted, PartialImageEvent, ProgressEvent, StreamEvent

try:
    import mcp_types as types
    from mcp.server import Server, ServerRequestContext
    from mcp.shared.exceptions import MCPError
    from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
except ImportError as exc:  # pragma: no cover - exercised by the CLI's own message when the extra is missing
    raise ImportError(
        f"the MCP server needs the mcp extra: pip install 'imagegen-tool[mcp]' (missing: {exc.name or exc})",
        name=exc.name,
    ) from exc

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "IMAGE_URI_PREFIX",
    "IMAGE_URI_TEMPLATE",
    "ImageMcpServer",
    "image_uri",
    "main",
    "parse_image_uri",
]

logger = logging.getLogger(__name__)

#: The URI of a stored image as an MCP resource: ``imagegen://images/{id}``.
IMAGE_URI_PREFIX = "imagegen://images/"
IMAGE_URI_TEMPLATE = IMAGE_URI_PREFIX + "{id}"
_IMAGE_URI = re.compile(r"imagegen://images/(?P<id>[^/?#]+)")

#: Keys of the ``_meta`` of progress notifications.
EVENT_META_KEY = "imagegen/event"
PREVIEW_META_KEY = "imagegen/preview"

_INSTRUCTIONS = (
    "Image generation with OpenAI GPT Image. Call {name} to draw an image from a text description{edit}. Each "
    "result gives the image's id and a resource link imagegen://images/{{id}} (read it for the full image)."
)


def image_uri(image_id: str) -> str:
    """The resource URI of a stored image."""
    return IMAGE_URI_PREFIX + image_id


def parse_image_uri(uri: str) -> str:
    """The image id of an ``imagegen://images/{id}`` URI; raises ``ValueError`` for any other URI (another
    scheme, a path, ``..``, a query or an id with characters no handle has)."""
    match = _IMAGE_URI.fullmatch(uri)
    if match is None or not is_valid_image_id(match["id"]):
        raise ValueError(f"not an image resource of this server: use {IMAGE_URI_TEMPLATE} with an image id")
    return match["id"]


class ImageMcpServer:
    """The MCP server around one :class:`AgentImageTool`: tool, resources and progress, on the SDK's low-level
    ``Server``.

    Example (in-process, for tests; ``main`` is what ``imagegen mcp`` runs)::

        core = AgentImageTool(store="images/", include_preview=True, base_url=..., api_key=...)
        server = ImageMcpServer(core).server          # an mcp.server.Server
        async with mcp.Client(server) as client:
            result = await client.call_tool("generate_image", {"prompt": "a red kite"})

    Args:
        tool: the tool core; its store is the one the resources expose. Not closed by this class.
        list_limit: at most this many (most recent) images in ``resources/list``.
        progress_previews: attach a small JPEG of each partial image to its progress notification (as the
            tool's ``preview_max_side``); off when the tool has previews off.
    """

    def __init__(self, tool: AgentImageTool, *, list_limit: int = 200, progress_previews: bool | None = None) -> None:
        self.tool = tool
        self.store = tool.generator.store
        self.list_limit = list_limit
        self.progress_previews = tool.include_preview if progress_previews is None else progress_previews
        edit = ", or to edit earlier images by passing their ids in image_ids" if tool.allow_inputs else ""
        self.server: Server[Any] = Server(
            "imagegen",
            version=__version__,
            title="imagegen-tool",
            description="Image generation and editing with OpenAI GPT Image; images as handles and resources.",
            instructions=_INSTRUCTIONS.format(name=tool.name, edit=edit),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
        )

    # -- tools --------------------------------------------------------------------------------------------

    def tool_definition(self) -> types.Tool:
        """The ``Tool`` as listed: the core's input schema, the structured result's output schema."""
        return types.Tool(
            name=self.tool.name,
            title="Generate or edit an image" if self.tool.allow_inputs else "Generate an image",
            description=self.tool.description,
            input_schema=self.tool.json_schema(),
            output_schema=self.tool.output_schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
            ),
        )

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[self.tool_definition()])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name != self.tool.name:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name[:80]!r}; this server has {self.tool.name}")
        # Without a progress token nobody listens: no relay, so the call need not stream.
        token = progress_token_from_params(ctx.params)
        relay = _ProgressRelay(self, ctx, token) if token is not None else None
        try:
            output = await self.tool.acall_safely(params.arguments or {}, on_event=relay)
        except Exception as exc:  # a bug, not the agent's doing: the agent gets a neutral message, the log the rest
            logger.exception("%s failed unexpectedly", self.tool.name)
            output = ToolOutput.from_error(exc, tool_name=self.tool.name)
        return self.call_result(output)

    def call_result(self, output: ToolOutput) -> types.CallToolResult:
        """The MCP result of a tool output: text, previews, resource links, structured content, ``isError``."""
        content: list[types.ContentBlock] = [types.TextContent(text=output.text)]
        content.extend(types.ImageContent(data=preview.b64, mime_type=preview.mime_type) for preview in output.previews)
        for image in output.images:
            size = f"{image.width}x{image.height} " if image.width and image.height else ""
            content.append(
                types.ResourceLink(
                    uri=image_uri(image.id),
                    name=image.id,
                    title=f"Image {image.id}",
                    description=f"The generated image ({size}{image.format}); read this resource for its bytes.",
                    mime_type=image.mime_type,
                    size=image.byte_size,
                )
            )
        return types.CallToolResult(
            content=content,
            structured_content=output.structured().model_dump(mode="json"),
            is_error=output.is_error,
        )

    # -- resources ----------------------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        images = await asyncio.to_thread(self.store.list_images, limit=self.list_limit)
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=image_uri(image.id),
                    name=image.id,
                    title=_title(image.prompt),
                    description=_describe(image.width, image.height, image.format, image.created_at.isoformat()),
                    mime_type=image.mime_type,
                    size=image.byte_size,
                )
                for image in images
            ]
        )

    async def _list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=IMAGE_URI_TEMPLATE,
                    name="image",
                    title="A generated image",
                    description=f"An image made by {self.tool.name}, by the id its result gave.",
                )
            ]
        )

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            image_id = parse_image_uri(uri)
        except ValueError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc), {"uri": uri[:200]}) from None
        try:
            image, data = await asyncio.to_thread(self._read_image, image_id)
        except ImageNotFoundError:
            raise MCPError(
                types.INVALID_PARAMS, f"no image {image_id} in this server's store", {"uri": uri[:200]}
            ) from None
        except ImageGenerationError as exc:
            logger.warning("reading image %s failed: %s", image_id, exc)
            raise MCPError(types.INTERNAL_ERROR, f"image {image_id} cannot be read from the store") from None
        return types.ReadResourceResult(
            contents=[types.BlobResourceContents(uri=image_uri(image.id), mime_type=image.mime_type, blob=_b64(data))]
        )

    def _read_image(self, image_id: str) -> tuple[Any, bytes]:
        # The record first: only ids this store handed out (a record written by the store) are readable.
        image = self.store.get(image_id)
        return image, self.store.read_bytes(image.id)


class _ProgressRelay:
    """Sends each stream event of one call as a progress notification on the request's own channel. A failure
    to notify (client gone) never fails the call: the image is paid for and must be stored."""

    def __init__(self, owner: ImageMcpServer, ctx: ServerRequestContext[Any], token: str | int) -> None:
        self.owner = owner
        self.ctx = ctx
        self.token = token
        self.count = 0

    async def __call__(self, event: StreamEvent) -> None:
        payload = await astream_event_payload(event, data="none")
        if payload is None:
            return
        payload.pop("run_id", None)
        display: Display = self.owner.tool.display
        for key in ("path", "uri") if display in ("id", "url") else ():
            payload.pop(key, None)
        if display == "id":
            payload.pop("url", None)
        meta: dict[str, Any] = {EVENT_META_KEY: payload}
        if isinstance(event, PartialImageEvent) and self.owner.progress_previews and event.partial.data:
            preview = await asyncio.to_thread(
                make_preview,
                event.partial.data,
                image_id=event.partial.call_id,
                max_side=self.owner.tool.preview_max_side,
                max_source_pixels=self.owner.tool.preview_max_source_pixels,
            )
            if preview is not None:
                meta[PREVIEW_META_KEY] = {"mime_type": preview.mime_type, "data": preview.b64}
        self.count += 1
        notification = types.ProgressNotification(
            params=types.ProgressNotificationParams(
                progress_token=self.token, progress=float(self.count), message=_message(event), _meta=meta
            )
        )
        try:
            await self.ctx.session.send_notification(notification, related_request_id=self.ctx.request_id)
        except Exception as exc:  # the client may be gone; the generation goes on
            logger.debug("progress notification not sent: %s", exc)


def _message(event: StreamEvent) -> str:
    if isinstance(event, PartialImageEvent):
        partial = event.partial
        size = f" ({partial.width}x{partial.height})" if partial.width and partial.height else ""
        return f"partial image {partial.index + 1}{size}"
    if isinstance(event, ProgressEvent):
        return event.stage.replace("_", " ")
    if isinstance(event, GenerationCompleted):
        count = len(event.result.images)
        return f"completed: {count} image{'s' if count != 1 else ''}"
    return type(event).__name__


def _title(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(width: int | None, height: int | None, fmt: str, created: str) -> str:
    size = f"{width}x{height} " if width and height else ""
    return f"{size}{fmt} image, created {created}"


def _b64(data: bytes) -> str:
    import pybase64

    return pybase64.b64encode(data).decode("ascii")


# -- command line -----------------------------------------------------------------------------------------

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parser() -> argparse.ArgumentParser:
    # Defaults from the environment (a client configuration's "env" section); argparse converts string defaults
    # with the option's type, so a bad value is reported like a bad flag.
    def env(name: str, default: str | None = None) -> str | None:
        return os.environ.get(name) or default

    def env_flag(name: str) -> bool:
        return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")

    parser = argparse.ArgumentParser(
        prog="imagegen mcp",
        description="Serve the image tool over the Model Context Protocol: stdio by default (Claude Desktop, Cursor, "
        "Codex, VS Code), or streamable HTTP with --http. The API key comes from OPENAI_API_KEY (and "
        "OPENAI_BASE_URL for another endpoint); the store from IMAGEGEN_STORE_DIR. Flags marked [env: X] "
        "also read that environment variable.",
    )
    transport = parser.add_argument_group("transport")
    transport.add_argument(
        "--http",
        action="store_true",
        default=env_flag("IMAGEGEN_MCP_HTTP"),
        help="serve streamable HTTP instead of stdio [env: IMAGEGEN_MCP_HTTP=1]",
    )
    transport.add_argument(
        "--host",
        default=env("IMAGEGEN_MCP_HOST", "127.0.0.1"),
        help="interface for --http (default: %(default)s, loopback) [env: IMAGEGEN_MCP_HOST]",
    )
    transport.add_argument(
        "--port",
        type=int,
        default=env("IMAGEGEN_MCP_PORT", "8000"),
        help="port for --http; 0 picks a free one [env: IMAGEGEN_MCP_PORT]",
    )
    transport.add_argument("--path", default="/mcp", help="endpoint path for --http (default: %(default)s)")
    images = parser.add_argument_group("images")
    images.add_argument(
        "--store",
        default=os.environ.get("IMAGEGEN_STORE_DIR"),
        help="image store: a directory or a URL such as s3://bucket/prefix (default: $IMAGEGEN_STORE_DIR, else "
        "./generated-images)",
    )
    images.add_argument(
        "--offline",
        action="store_true",
        default=env_flag("IMAGEGEN_MCP_OFFLINE"),
        help="run against an in-process emulator of the OpenAI API: no key needed, nothing billed "
        "[env: IMAGEGEN_MCP_OFFLINE=1]",
    )
    images.add_argument("--api", choices=("responses", "images"), default="responses", help="API route")
    images.add_argument("--model", default=env("IMAGEGEN_MCP_MODEL"), help="image model (default: the API's)")
    images.add_argument(
        "--option",
        action="append",
        default=[item for item in (env("IMAGEGEN_MCP_OPTIONS") or "").split(",") if item.strip()],
        metavar="NAME=VALUE",
        help="a default image option, e.g. quality=low (repeatable; locked unless also in --expose) "
        "[env: IMAGEGEN_MCP_OPTIONS, comma-separated]",
    )
    images.add_argument(
        "--expose",
        default=env("IMAGEGEN_MCP_EXPOSE"),
        help="comma-separated options the agent may set (default: size, quality, background, output_format minus "
        f"those set with --option; 'none' for none). Exposable: {', '.join(EXPOSABLE_OPTIONS)} "
        "[env: IMAGEGEN_MCP_EXPOSE]",
    )
    images.add_argument(
        "--partial-images",
        type=int,
        default=env("IMAGEGEN_MCP_PARTIAL_IMAGES", "0"),
        help="partial images (0-3) streamed while an image renders, sent as progress notifications "
        "[env: IMAGEGEN_MCP_PARTIAL_IMAGES]",
    )
    images.add_argument("--no-edit", action="store_true", default=False, help="offer no image_ids/mask_id (no edits)")
    images.add_argument("--validation", choices=("known", "strict", "off"), default="known", help="option checks")
    images.add_argument(
        "--safety-identifier",
        default=env("IMAGEGEN_MCP_SAFETY_IDENTIFIER"),
        metavar="ID",
        help="a stable hash of the end user this server acts for, sent with every request (OpenAI asks for one to "
        "attribute abuse); never a secret [env: IMAGEGEN_MCP_SAFETY_IDENTIFIER]",
    )
    results = parser.add_argument_group("results")
    results.add_argument(
        "--preview-size",
        type=int,
        default=env("IMAGEGEN_MCP_PREVIEW_SIZE", "512"),
        help="longest side in px of the JPEG preview sent with each image, 16-2048; 0 for none (default: %(default)s) "
        "[env: IMAGEGEN_MCP_PREVIEW_SIZE]",
    )
    results.add_argument(
        "--no-preview",
        action="store_true",
        default=False,
        help="send no image content (the model gets the text and the resource links only)",
    )
    results.add_argument(
        "--display",
        choices=get_args(Display),
        default=env("IMAGEGEN_MCP_DISPLAY", "auto"),
        help="what the model is told about where an image is: auto (URL if the store has one, else the file "
        "path), id, path or url (default: %(default)s) [env: IMAGEGEN_MCP_DISPLAY]",
    )
    results.add_argument("--list-limit", type=int, default="200", help="images in resources/list")
    parser.add_argument(
        "--log-level",
        default=env("IMAGEGEN_MCP_LOG_LEVEL", "WARNING"),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="log level (logs go to stderr) [env: IMAGEGEN_MCP_LOG_LEVEL]",
    )
    return parser


def _options(args: argparse.Namespace) -> ImageOptions:
    values: dict[str, Any] = {}
    for item in args.option:
        name, sep, value = item.strip().partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigurationError(f"--option takes NAME=VALUE, not {item!r}")
        if name not in ImageOptions.model_fields:
            raise ConfigurationError(
                f"--option: unknown option {name!r}; options: {', '.join(ImageOptions.model_fields)}"
            )
        values[name] = value.strip()
    if args.model:
        values["model"] = args.model
    if args.partial_images:
        values["partial_images"] = args.partial_images
    try:
        return ImageOptions.model_validate(values)
    except ValueError as exc:
        raise ConfigurationError(f"invalid --option value: {exc}") from None


def _exposed(args: argparse.Namespace) -> tuple[str, ...] | None:
    if args.expose is None:
        return None
    text = args.expose.strip()
    if text.lower() in ("", "none"):
        return ()
    return tuple(name.strip().replace("-", "_") for name in text.split(",") if name.strip())


@contextlib.contextmanager
def _endpoint(offline: bool) -> Iterator[tuple[str | None, str | None]]:
    """``(api_key, base_url)``: the emulator's when offline (started for the server's lifetime), else ``None``s
    so the ``openai`` client reads ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` itself (the key never passes here)."""
    if not offline:
        if not os.environ.get("OPENAI_API_KEY"):
            raise ConfigurationError(
                "no OpenAI API key: set OPENAI_API_KEY in the server's environment (the client configuration's "
                "env section), or run with --offline to try it against the built-in emulator"
            )
        yield None, None
        return
    try:
        from .testing.emulator import Emulator
    except ImportError as exc:
        raise ConfigurationError(
            f"--offline needs the emulator extra: pip install 'imagegen-tool[mcp,emulator]' ({exc.name or exc})"
        ) from None
    with Emulator() as emulated:
        logger.warning("offline: images come from the built-in emulator at %s (nothing is billed)", emulated.url)
        yield "offline", emulated.url


def build_tool(args: argparse.Namespace, *, api_key: str | None, base_url: str | None) -> AgentImageTool:
    """The tool core the server wraps, from the parsed command line."""
    return AgentImageTool(
        store=args.store,
        options=_options(args),
        exposed_options=_exposed(args),
        allow_inputs=not args.no_edit,
        include_preview=not args.no_preview and args.preview_size != 0,
        preview_max_side=args.preview_size or 512,
        display=args.display,
        api=args.api,
        api_key=api_key,
        base_url=base_url,
        validation=args.validation,
        safety_identifier=args.safety_identifier or None,
    )


async def _serve_stdio(server: ImageMcpServer) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.server.run(read_stream, write_stream, server.server.create_initialization_options())


def http_app(server: ImageMcpServer, *, host: str, path: str) -> Starlette:
    """The streamable-HTTP ASGI app (DNS-rebinding protection on for loopback hosts, as the SDK does)."""
    return server.server.streamable_http_app(streamable_http_path=path, host=host)


async def _serve_http(server: ImageMcpServer, *, host: str, port: int, path: str, log_level: str) -> None:
    import uvicorn

    if host not in _LOOPBACK:
        logger.warning(
            "serving MCP on %s: anyone who can reach this address can generate images on your API key; the server "
            "has no authentication of its own (put it behind an authenticating proxy)",
            host,
        )
    app = http_app(server, host=host, path=path)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(app, log_config=None, log_level=log_level.lower(), access_log=False, lifespan="on")
    # Where to connect goes to stderr (stdout stays free); with --port 0 it is how a caller learns the port.
    print(f"imagegen mcp: streamable HTTP on http://{shown}:{bound}{path}", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the MCP server (``imagegen mcp [flags]``; ``--help`` lists them). Returns the exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        with _endpoint(args.offline) as (api_key, base_url):
            tool = build_tool(args, api_key=api_key, base_url=base_url)
            server = ImageMcpServer(tool, list_limit=args.list_limit)
            logger.info("imagegen MCP server: tool %s, store %s", tool.name, server.store)

            async def serve() -> None:
                try:
                    if args.http:
                        await _serve_http(
                            server, host=args.host, port=args.port, path=args.path, log_level=args.log_level
                        )
                    else:
                        await _serve_stdio(server)
                finally:
                    await tool.aclose()

            asyncio.run(serve())
    except (ConfigurationError, InvalidOptionsError, InvalidInputError) as exc:
        print(f"imagegen mcp: error: {_safe(str(exc))}", file=sys.stderr)
        return 2
    except ImageGenerationError as exc:  # the store cannot be opened, ...
        print(f"imagegen mcp: error: {_safe(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # the port is taken, the store cannot be opened, ...
        print(f"imagegen mcp: error: {_safe(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _safe(text: str) -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if key and len(key) >= 8:
        text = text.replace(key, "***")
    return redact(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
