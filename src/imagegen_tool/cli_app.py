"""The ``imagegen`` commands (Typer + Rich): generate, edit, show, list, prune, emulator, mcp, batch.

Data goes to stdout (image paths one per line, or with ``--json`` one JSON document and nothing else), progress
and errors to stderr (a spinner with the elapsed time while an image renders on a terminal, each partial image
as it arrives, then what was saved). Every command takes ``--offline`` (an in-process emulator of the OpenAI API:
no key, nothing billed) and ``--debug``. Settings come from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and
``IMAGEGEN_STORE_DIR``; the key is never printed. Exit codes: :mod:`imagegen_tool.cli`.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .cli import EXIT_INVALID, error_line, exit_code_for, hide_secrets, print_traceback
from .errors import ConfigurationError, InvalidInputError, InvalidOptionsError, StorageError

if TYPE_CHECKING:
    from .generator import ImageGenerator
    from .images import GeneratedImage
    from .results import GenerationResult
    from .store import ImageStore
    from .streaming import StreamEvent

__all__ = ["app", "run"]

logger = logging.getLogger(__name__)

Api = Literal["images", "responses"]

app = typer.Typer(
    name="imagegen",
    help="Generate and edit images with OpenAI GPT Image models; images are stored and listed by id.\n\n"
    "Exit codes: 0 ok, 2 invalid options or input (nothing sent), 3 blocked by moderation, 4 API or network "
    "error, 5 storage error, 1 internal error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- options shared by the commands -----------------------------------------------------------------------

Offline = Annotated[
    bool,
    typer.Option(
        "--offline", help="Run against an in-process emulator of the OpenAI API: no key needed, nothing billed."
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Log requests (redacted) and show tracebacks of errors.")]
Store = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="IMAGEGEN_STORE_DIR",
        help="The image store: a directory, or a URL such as s3://bucket/prefix, gs://..., az://..., memory://... "
        "(default: $IMAGEGEN_STORE_DIR, else ./generated-images).",
        show_envvar=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else there.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr (errors are still printed).")]
ApiChoice = Annotated[
    str,
    typer.Option(
        "--api",
        help="'responses': the Responses API's image tool (a text model passes the prompt on); 'images': the "
        "Images API (prompt as written, --n images per call).",
    ),
]
Size = Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT (e.g. 1536x1024) or auto.")]
Quality = Annotated[str | None, typer.Option("--quality", help="low, medium, high (some models: xhigh, max) or auto.")]
Background = Annotated[str | None, typer.Option("--background", help="transparent, opaque or auto.")]
Format = Annotated[str | None, typer.Option("--format", help="png, webp, jpeg (some models: gif, svg).")]
Compression = Annotated[int | None, typer.Option("--compression", help="0-100, for jpeg and webp.")]
Model = Annotated[str | None, typer.Option("--model", help="The GPT Image model (default: the API's).")]
Count = Annotated[int | None, typer.Option("--n", help="Number of images, 1-10 (more than 1 needs --api images).")]
Partials = Annotated[
    int | None, typer.Option("--partials", help="Partial (preview) images to stream while rendering, 0-3.")
]
KeepPartials = Annotated[
    bool, typer.Option("--keep-partials", help="Keep the partial images in the store (their paths are printed).")
]
Out = Annotated[
    Path | None,
    typer.Option("--out", help="Also copy each image into this directory (created if needed) as ID.EXT."),
]


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Generate and edit images with OpenAI GPT Image models."""
    if version:
        from . import __version__

        typer.echo(f"imagegen {__version__}")
        raise typer.Exit(0)


# --- generate and edit ----------------------------------------------------------------------------------


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw ('-' reads it from stdin).")],
    size: Size = None,
    quality: Quality = None,
    background: Background = None,
    output_format: Format = None,
    compression: Compression = None,
    model: Model = None,
    n: Count = None,
    partials: Partials = None,
    api: ApiChoice = "responses",
    out: Out = None,
    as_json: AsJson = False,
    keep_partials: KeepPartials = False,
    quiet: Quiet = False,
    store: Store = None,
    offline: Offline = False,
    debug: Debug = False,
) -> None:
    """Generate images from PROMPT; prints the stored paths (or, with --json, the results)."""
    options = _options(size, quality, background, output_format, compression, model, n, partials)
    with _command(debug):
        prompt = _check_prompt(prompt)
        api_name = _api(api, n)
        with _generator(api_name, offline=offline, store=store, keep_partials=keep_partials) as generator:
            result = _render(generator, prompt, options, api_name, quiet=quiet, keep_partials=keep_partials)
        _report(result, out=out, as_json=as_json)


@app.command()
def edit(
    arguments: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE... PROMPT",
            help="The images to edit (ids from the store or file paths; the first is edited, the others are "
            "references), then the prompt ('-' reads it from stdin).",
        ),
    ],
    mask: Annotated[
        str | None, typer.Option("--mask", help="A PNG mask (id or path): transparent pixels mark where to edit.")
    ] = None,
    size: Size = None,
    quality: Quality = None,
    background: Background = None,
    output_format: Format = None,
    compression: Compression = None,
    model: Model = None,
    n: Count = None,
    partials: Partials = None,
    api: ApiChoice = "responses",
    out: Out = None,
    as_json: AsJson = False,
    keep_partials: KeepPartials = False,
    quiet: Quiet = False,
    store: Store = None,
    offline: Offline = False,
    debug: Debug = False,
) -> None:
    """Edit IMAGE(s) as PROMPT says; prints the stored paths (or, with --json, the results)."""
    options = _options(size, quality, background, output_format, compression, model, n, partials)
    with _command(debug):
        if len(arguments) < 2:
            raise InvalidOptionsError("IMAGE... PROMPT", arguments, "at least one image, then the prompt")
        *images, prompt = arguments
        prompt = _check_prompt(prompt)
        api_name = _api(api, n)
        paths = [*images, *([mask] if mask else [])]
        roots = sorted({str(Path(p).expanduser().resolve().parent) for p in paths if Path(p).expanduser().is_file()})
        with _generator(
            api_name, offline=offline, store=store, keep_partials=keep_partials, input_roots=roots
        ) as generator:
            inputs = [_input_name(value) for value in images]
            result = _render(
                generator,
                prompt,
                {**options, "action": "edit"},
                api_name,
                quiet=quiet,
                keep_partials=keep_partials,
                images=inputs,
                mask=_input_name(mask) if mask else None,
            )
        _report(result, out=out, as_json=as_json)


# --- the store ------------------------------------------------------------------------------------------


@app.command()
def show(
    image_id: Annotated[str, typer.Argument(metavar="ID", help="The image id.")],
    as_json: AsJson = False,
    store: Store = None,
    offline: Offline = False,
    debug: Debug = False,
) -> None:
    """Show the stored record of image ID (prompt, options, usage, file)."""
    with _command(debug):
        image = _store(store).get(image_id)
        record = image.model_dump(mode="json")
        if as_json:
            _print_json(record)
            return
        for key, value in record.items():
            if value in (None, "", [], {}):
                continue
            shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
            print(f"{key}: {shown}")


@app.command("list")
def list_images(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many images to show.")] = 20,
    as_json: AsJson = False,
    store: Store = None,
    offline: Offline = False,
    debug: Debug = False,
) -> None:
    """List the stored images, newest first."""
    with _command(debug):
        images = _store(store).list_images(limit=limit)
        if as_json:
            _print_json([_summary(image) for image in images])
            return
        for image in images:
            size = f"{image.width}x{image.height}" if image.width and image.height else "?"
            when = image.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            prompt = " ".join(image.prompt.split())
            print(f"{image.id}  {when}  {size:>9}  {image.format:<4}  {image.backend:<9}  {prompt[:60]}")


@app.command()
def prune(
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Remove images older than this: 30m, 12h, 7d, 2w.")
    ] = None,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=0, help="Keep only this many of the newest images.")
    ] = None,
    as_json: AsJson = False,
    store: Store = None,
    offline: Offline = False,
    debug: Debug = False,
) -> None:
    """Clean the store: images by age or count, and always stale temporary files and orphans."""
    with _command(debug):
        age = _duration(older_than) if older_than is not None else None
        report = _store(store).prune(older_than=age, keep_last=keep_last)
        data = report.model_dump(mode="json")
        if as_json:
            _print_json(data)
        else:
            print(", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in data.items()))


# --- other programs ---------------------------------------------------------------------------------------

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def emulator(ctx: typer.Context) -> None:
    """Serve the offline emulator of the OpenAI image endpoints (same options as imagegen-emulator; --help)."""
    try:
        from .testing.cli import main as emulator_main
    except ImportError as exc:  # pragma: no cover - the testing package itself has no optional imports
        _fail(f"the emulator needs the emulator extra: pip install 'imagegen-tool[emulator]' ({exc})")
    raise typer.Exit(emulator_main(list(ctx.args)))


@app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def mcp(ctx: typer.Context) -> None:
    """Run the MCP server (imagegen_tool.mcp) with the given arguments."""
    try:
        module = importlib.import_module(f"{__package__}.mcp")
    except ImportError as exc:
        if exc.name == f"{__package__}.mcp":
            _fail(
                "this version of imagegen-tool has no MCP server (imagegen_tool.mcp); upgrade to one that has it: "
                "pip install -U 'imagegen-tool[mcp]'"
            )
        _fail(f"the MCP server needs the mcp extra: pip install 'imagegen-tool[mcp]' (missing: {exc.name or exc})")
    code = module.main(list(ctx.args))
    raise typer.Exit(code if isinstance(code, int) else 0)


# --- running --------------------------------------------------------------------------------------------


def run(argv: Sequence[str]) -> int:
    """Run the application; returns the exit code (see :mod:`imagegen_tool.cli`)."""
    # Standalone mode: the parser reports usage errors itself (exit code 2) and turns typer.Exit into SystemExit.
    try:
        app(args=list(argv), prog_name="imagegen", standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@contextlib.contextmanager
def _command(debug: bool) -> Iterator[None]:
    """Run a command body: errors become one line on stderr and their exit code (a traceback with --debug)."""
    if debug:
        logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("imagegen_tool").setLevel(logging.DEBUG)
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (Exception, KeyboardInterrupt) as exc:
        if debug:
            print_traceback(exc)
        print(error_line(exc), file=sys.stderr)
        raise typer.Exit(exit_code_for(exc)) from None


def _fail(message: str) -> NoReturn:
    print(f"imagegen: error: {hide_secrets(message)}", file=sys.stderr)
    raise typer.Exit(EXIT_INVALID)


def _options(
    size: str | None,
    quality: str | None,
    background: str | None,
    output_format: str | None,
    compression: int | None,
    model: str | None,
    n: int | None,
    partials: int | None,
) -> dict[str, Any]:
    values = {
        "size": size,
        "quality": quality,
        "background": background,
        "output_format": output_format,
        "output_compression": compression,
        "model": model,
        "n": n,
        "partial_images": partials,
    }
    return {key: value for key, value in values.items() if value is not None}


def _api(api: str, n: int | None) -> Api:
    if api not in ("images", "responses"):
        raise InvalidOptionsError("--api", api, "images or responses")
    if (n or 1) > 1 and api == "responses":
        raise InvalidOptionsError(
            "--n",
            n,
            "1 with --api responses; add --api images for up to 10 images per call",
            reason="the Responses API's image tool makes one image per call",
        )
    return "images" if api == "images" else "responses"


def _check_prompt(prompt: str) -> str:
    """The prompt (``-``: read from stdin), refused when empty."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise InvalidInputError("the prompt is empty: say what to draw")
    return prompt


def _input_name(value: str) -> str | Path:
    """A file path when the file exists (read from its own directory), otherwise an image id of the store."""
    path = Path(value).expanduser()
    return path.resolve() if path.is_file() else value


def _store(store: str | None) -> ImageStore:
    from .store_factory import open_store  # a URL opens an object store; a path, the local directory store

    return open_store(store)


@contextlib.contextmanager
def _generator(
    api: Api,
    *,
    offline: bool,
    store: str | None,
    keep_partials: bool,
    input_roots: Sequence[str] = (),
) -> Iterator[ImageGenerator]:
    """An ImageGenerator for one command: against OpenAI (the key from the environment), or offline against an
    emulator started in this process for the command's duration."""
    from .generator import ImageGenerator

    api_key: str | None = None
    base_url: str | None = None
    with contextlib.ExitStack() as stack:
        if offline:
            try:
                from .testing.emulator import Emulator
            except ImportError as exc:
                raise ConfigurationError(
                    f"--offline needs the emulator extra: pip install 'imagegen-tool[emulator]' ({exc.name or exc})"
                ) from None
            emulated = stack.enter_context(Emulator())
            api_key, base_url = "offline", emulated.url
        elif not os.environ.get("OPENAI_API_KEY"):
            raise ConfigurationError(
                "no OpenAI API key: set OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint), or try it "
                "with --offline"
            )
        generator = ImageGenerator(
            store=store,  # opened (and closed) by the generator, so object-store clients close with it
            api=api,
            api_key=api_key,
            base_url=base_url,
            keep_partials=keep_partials,
            input_roots=input_roots,
        )
        stack.callback(generator.close)
        yield generator


def _render(
    generator: ImageGenerator,
    prompt: str,
    options: dict[str, Any],
    api: Api,
    *,
    quiet: bool,
    keep_partials: bool = False,
    images: Sequence[str | Path] = (),
    mask: str | Path | None = None,
) -> GenerationResult:
    # Every problem with the options or inputs is raised here, before the display starts and before any request.
    request = generator.request(prompt, images=list(images), mask=mask, **options)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    display = _ProgressDisplay(
        console, quiet=quiet, show_partial_paths=keep_partials, several=(request.options.n or 1) > 1
    )
    route = "the Images API" if api == "images" else "the Responses API"
    model = request.options.effective_model
    with display:
        display.start(f"{'editing' if images else 'generating'} with {model} via {route}")
        result = generator.generate(prompt, images=list(images), mask=mask, on_event=display.on_event, **options)
        display.done(result)
    return result


class _ProgressDisplay:
    """What stderr shows while an image renders: a spinner with the elapsed time on a terminal (plain lines
    otherwise), each partial image as it arrives, then each stored image."""

    def __init__(
        self, console: Console, *, quiet: bool, show_partial_paths: bool = False, several: bool = False
    ) -> None:
        self.console = console
        self.several = several
        self.what = ""
        self.quiet = quiet
        self.show_partial_paths = show_partial_paths
        self._images: dict[str, int] = {}
        self.started = time.monotonic()
        self.live = console.is_terminal and not quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._partials = 0

    def __enter__(self) -> _ProgressDisplay:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start(self, what: str) -> None:
        self.started = time.monotonic()
        self.what = what
        if self._progress is not None:
            self._task = self._progress.add_task(what)
        elif not self.quiet:
            self.console.print(f"imagegen: {what}...")

    def on_event(self, event: StreamEvent) -> None:
        if self.quiet:
            return
        if event.type == "progress" and self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self.what} ({event.stage.replace('_', ' ')})")
        elif event.type == "partial_image":
            self._partials += 1
            partial = event.partial
            image = self._images.setdefault(partial.call_id, len(self._images) + 1)
            size = f"{partial.width}x{partial.height}" if partial.width and partial.height else "?"
            of_image = f" of image {image}" if self.several else ""
            where = f": {partial.path}" if self.show_partial_paths and partial.path else ""
            self.console.print(
                f"partial {partial.index + 1}{of_image} ({size}, {partial.byte_size / 1024:.0f} kB) "
                f"after {self._elapsed()}{where}"
            )

    def done(self, result: GenerationResult) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        for image in result.images:
            size = f"{image.width}x{image.height}" if image.width and image.height else "?"
            self.console.print(f"saved {image.id} ({size} {image.format}) in {self._elapsed()}: {image.path}")
        for failure in result.failures:
            self.console.print(f"not made: {failure.message}")
        cost = result.cost
        if cost is not None and cost.actual is not None:
            estimate = cost.estimate.describe() if cost.estimate is not None else "unknown"
            self.console.print(f"cost: {cost.actual.describe()} (estimated at most {estimate})")

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.1f} s"


def _report(result: GenerationResult, *, out: Path | None, as_json: bool) -> None:
    """stdout: the JSON result list, or the image paths one per line."""
    copies = [_copy_out(image, out) for image in result.images] if out is not None else [None] * len(result.images)
    if as_json:
        _print_json([_summary(image, copy) for image, copy in zip(result.images, copies, strict=True)])
        return
    for image, copy in zip(result.images, copies, strict=True):
        print(copy or image.path or image.uri)


def _summary(image: GeneratedImage, copy: str | None = None) -> dict[str, Any]:
    return {
        "id": image.id,
        "path": copy or image.path,
        "store_path": image.path,
        "uri": image.uri,
        "size": f"{image.width}x{image.height}" if image.width and image.height else None,
        "width": image.width,
        "height": image.height,
        "mime_type": image.mime_type,
        "format": image.format,
        "revised_prompt": image.revised_prompt,
        "prompt": image.prompt,
        "model": image.model,
        "backend": image.backend,
        "response_id": image.response_id,
        "usage": image.usage.model_dump(mode="json") if image.usage else None,
        "cost_usd": _usd(image, "actual"),
        "estimated_cost_usd": _usd(image, "estimate"),
        "created_at": image.created_at.isoformat(),
    }


def _usd(image: GeneratedImage, which: str) -> str | None:
    """The call's actual or estimated cost as a decimal string (``None`` when unknown)."""
    cost = getattr(image.cost, which, None) if image.cost is not None else None
    return str(cost.usd) if cost is not None and cost.usd is not None else None


def _copy_out(image: GeneratedImage, directory: Path) -> str:
    """Copy a stored image to ``directory`` atomically (a temporary file renamed into place)."""
    if not image.path:
        raise StorageError(f"image {image.id} has no local file to copy")
    extension = Path(image.path).suffix
    target = directory.expanduser() / f"{image.id}{extension}"
    try:
        directory.expanduser().mkdir(parents=True, exist_ok=True)
        data = Path(image.path).read_bytes()
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=extension, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return str(target.resolve())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(text: str) -> datetime.timedelta:
    """``"7d"`` → 7 days; units s, m, h, d, w (seconds without a unit)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidOptionsError("--older-than", text, "a duration such as 30m, 12h, 7d or 2w")
    unit = (match.group(2) or "s").lower()
    return datetime.timedelta(seconds=float(match.group(1)) * _UNITS[unit])


# The batch commands live in their own module, built on the helpers above.
from .cli_batch import batch_app  # noqa: E402

app.add_typer(batch_app, name="batch")
