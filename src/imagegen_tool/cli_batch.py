"""``imagegen batch ...``: bulk jobs on OpenAI's Batch API from the command line (Typer + Rich).

``submit`` reads a prompts file (one request per line: plain text, or a JSON object with ``prompt`` and options)
and refuses every bad line, by line number, before anything is uploaded; it prints the job id. ``status``, ``wait``,
``collect``, ``cancel`` take that id, from any shell, later: the job lives in the image store (``--store``).
``list`` shows the store's jobs. As everywhere in ``imagegen``: data on stdout (``--json`` for scripts), progress
and errors on stderr, the exit codes of :mod:`imagegen_tool.cli` (``collect`` exits 4 when some requests made no
image; the images that were made are stored and printed all the same).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .cli import EXIT_API
from .cli_app import (
    ApiChoice,
    AsJson,
    Background,
    Compression,
    Count,
    Debug,
    Format,
    Model,
    Offline,
    Out,
    Quality,
    Quiet,
    Size,
    Store,
    _command,
    _copy_out,
    _fail,
    _generator,
    _options,
    _print_json,
    _store,
    _summary,
)
from .errors import InvalidInputError, InvalidOptionsError

if TYPE_CHECKING:
    from .batch import BatchJob, BatchProgress, BatchResult

__all__ = ["batch_app", "read_prompts_file"]

batch_app = typer.Typer(
    name="batch",
    help="Bulk jobs on OpenAI's Batch API: cheaper than direct calls, finished within 24 hours. Submit a prompts "
    "file, then follow, collect or cancel the job by its id (kept in the image store).",
    no_args_is_help=True,
)

JobId = Annotated[str, typer.Argument(help="The job id printed by 'imagegen batch submit' (bj_...).")]
PollInterval = Annotated[float, typer.Option("--poll", help="Seconds between status checks.", min=0.01)]
Timeout = Annotated[
    float | None, typer.Option("--timeout", help="Give up waiting after this many seconds (the job goes on).")
]


def read_prompts_file(text: str) -> tuple[list[str | dict[str, Any]], list[int], list[tuple[int, str]]]:
    """The requests of a prompts file, the line number of each, and the lines that cannot be read as requests
    (``(line, problem)``). A plain text line is a prompt; a line starting with ``{`` (or ``"``) is JSON: an object
    with ``prompt``, options and an optional ``custom_id``, or a string. Empty lines and ``#`` lines are skipped."""
    requests: list[str | dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped[0] in '{"[':
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                problems.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if isinstance(value, str):
                value = value.strip()
            elif not isinstance(value, dict):
                problems.append((number, "a JSON line must be an object with a 'prompt' (or a string)"))
                continue
            requests.append(value)
        else:
            requests.append(stripped)
        numbers.append(number)
    if not requests and not problems:
        raise InvalidInputError("the prompts file has no prompts (one per line, plain text or JSON)")
    return requests, numbers, problems


@batch_app.command("submit")
def submit(
    prompts: Annotated[
        Path,
        typer.Argument(
            help="A file with one request per line: plain text (the prompt), or JSON such as "
            '{"prompt": "a fox", "size": "1536x1024", "custom_id": "fox"}. "-" reads stdin.',
            allow_dash=True,
        ),
    ],
    size: Size = None,
    quality: Quality = None,
    background: Background = None,
    output_format: Format = None,
    compression: Compression = None,
    model: Model = None,
    n: Count = None,
    api: ApiChoice = "images",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the batch, then collect its images.")] = False,
    poll: PollInterval = 30.0,
    timeout: Timeout = None,
    out: Out = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    store: Store = None,
    offline: Offline = False,
    debug: Debug = False,
) -> None:
    """Submit a batch job from a prompts file; prints the job id (with --wait: the stored images)."""
    with _command(debug):
        if api not in ("images", "responses"):
            raise InvalidOptionsError("--api", api, "images or responses")
        if offline and not wait:
            _fail("--offline runs the emulator only while this command runs: add --wait")
        text = sys.stdin.read() if str(prompts) == "-" else _read(prompts)
        requests, numbers, unreadable = read_prompts_file(text)
        options = _options(size, quality, background, output_format, compression, model, n, None)
        with _generator(api, offline=offline, store=store, keep_partials=False) as generator:  # type: ignore[arg-type]
            job = _submitted(generator, requests, numbers, unreadable, api, options)
            if not quiet:
                _stderr().print(f"imagegen: submitted {len(requests)} requests as batch job {job.job_id}")
            if not wait:
                if as_json:
                    _print_json({"job_id": job.job_id, "batch_id": job.batch_id, "requests": len(requests)})
                else:
                    print(job.job_id)
                return
            if offline:
                poll = min(poll, 0.2)  # the emulator's clock is compressed: a day is seconds
            _wait(job, poll=poll, timeout=timeout, quiet=quiet)
            _collect(job, out=out, as_json=as_json, quiet=quiet)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise InvalidInputError(f"cannot read the prompts file {path}: {why}") from None


def _submitted(
    generator: Any,
    requests: list[str | dict[str, Any]],
    numbers: list[int],
    unreadable: list[tuple[int, str]],
    api: str,
    options: dict[str, Any],
) -> BatchJob:
    """Every bad line (unreadable, or a request that would be refused) is reported at once, by its line number in
    the file, before anything is uploaded."""
    from .batch import BatchValidationError, plan_job, submit_planned

    problems = list(unreadable)
    manifest = None
    try:
        manifest = plan_job(generator, requests, api, options)  # type: ignore[arg-type]
    except BatchValidationError as exc:
        problems += [(numbers[index - 1], message) for index, message in exc.problems]
    if problems or manifest is None:
        problems.sort()
        lines = "; ".join(f"line {number}: {message}" for number, message in problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InvalidInputError(f"the prompts file has bad lines, so nothing was sent: {lines}{more}")
    return submit_planned(generator, manifest)


@batch_app.command("status")
def status(job_id: JobId, as_json: AsJson = False, store: Store = None, debug: Debug = False) -> None:
    """Ask the Batch API where a job stands."""
    with _command(debug), _generator("responses", offline=False, store=store, keep_partials=False) as generator:
        progress = generator.batch_job(job_id).status()
        _print_progress(progress, as_json=as_json)


@batch_app.command("wait")
def wait_for(
    job_id: JobId,
    poll: PollInterval = 30.0,
    timeout: Timeout = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    store: Store = None,
    debug: Debug = False,
) -> None:
    """Wait until a job's batch ends (progress on stderr); exits 4 if --timeout passes first."""
    with _command(debug), _generator("responses", offline=False, store=store, keep_partials=False) as generator:
        progress = _wait(generator.batch_job(job_id), poll=poll, timeout=timeout, quiet=quiet)
        _print_progress(progress, as_json=as_json)


@batch_app.command("collect")
def collect(
    job_id: JobId,
    out: Out = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    store: Store = None,
    debug: Debug = False,
) -> None:
    """Store the images of an ended job (again: nothing is stored twice); prints their paths."""
    with _command(debug), _generator("responses", offline=False, store=store, keep_partials=False) as generator:
        _collect(generator.batch_job(job_id), out=out, as_json=as_json, quiet=quiet)


@batch_app.command("cancel")
def cancel(job_id: JobId, as_json: AsJson = False, store: Store = None, debug: Debug = False) -> None:
    """Cancel a job's batch; requests already run keep their images (collect them)."""
    with _command(debug), _generator("responses", offline=False, store=store, keep_partials=False) as generator:
        _print_progress(generator.batch_job(job_id).cancel(), as_json=as_json)


@batch_app.command("list")
def list_jobs(as_json: AsJson = False, store: Store = None, debug: Debug = False) -> None:
    """The batch jobs in the store, newest first, as last seen (no request)."""
    with _command(debug):
        from .batch import list_jobs as jobs_in

        opened = _store(store)
        try:
            jobs = jobs_in(opened)
        finally:
            close = getattr(opened, "close", None)
            if callable(close):
                close()
        if as_json:
            _print_json([_progress_json(progress) for progress in jobs])
            return
        for progress in jobs:
            print(
                f"{progress.job_id}\t{progress.status}\t{progress.completed + progress.failed}/{progress.total}"
                f"\t{progress.images} images"
            )


# --- shared ----------------------------------------------------------------------------------------------


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _wait(job: BatchJob, *, poll: float, timeout: float | None, quiet: bool) -> BatchProgress:
    console = _stderr()
    if quiet or not console.is_terminal:
        last: list[str] = []

        def note(progress: BatchProgress) -> None:
            line = progress.summary()
            if not quiet and (not last or last[-1] != line):
                console.print(f"imagegen: {line}")
            last.append(line)

        return job.wait(poll_interval=poll, timeout=timeout, on_progress=note)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"batch job {job.job_id}", total=None)

        def show(progress: BatchProgress) -> None:
            bar.update(
                task,
                description=f"batch job {job.job_id}: {progress.status}, {progress.failed} failed",
                total=progress.total or None,
                completed=progress.completed + progress.failed,
            )

        return job.wait(poll_interval=poll, timeout=timeout, on_progress=show)


def _collect(job: BatchJob, *, out: Path | None, as_json: bool, quiet: bool) -> None:
    result: BatchResult = job.collect()
    copies = [_copy_out(image, out) if out is not None else None for image in result.images]
    if as_json:
        _print_json(
            {
                "job_id": result.job_id,
                "status": result.status,
                "images": [_summary(image, copy) for image, copy in zip(result.images, copies, strict=True)],
                "failures": [failure.model_dump(mode="json") for failure in result.failures],
            }
        )
    else:
        for image, copy in zip(result.images, copies, strict=True):
            print(copy or image.path or image.uri)
    if not quiet:
        console = _stderr()
        for failure in result.failures:
            console.print(f"not made ({failure.custom_id}): {failure.error.message}")
        console.print(
            f"imagegen: batch job {result.job_id} {result.status}: {len(result.images)} images stored, "
            f"{len(result.failures)} requests failed"
        )
    if result.failures:
        raise typer.Exit(EXIT_API)


def _progress_json(progress: BatchProgress) -> dict[str, Any]:
    return {**progress.model_dump(mode="json"), "done": progress.done}


def _print_progress(progress: BatchProgress, *, as_json: bool) -> None:
    if as_json:
        _print_json(_progress_json(progress))
    else:
        print(progress.summary())
