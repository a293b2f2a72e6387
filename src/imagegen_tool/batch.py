"""Bulk image jobs through OpenAI's Batch API: submit many prompts at once, collect every image as a handle.

The Batch API runs requests within a 24 h window at a discount (see the ``pricing`` module). A job here is one
batch: :meth:`ImageGenerator.submit_batch <imagegen_tool.ImageGenerator.submit_batch>` validates every request
first (nothing is uploaded while one is known to fail), writes the JSONL input file, uploads it with
``purpose="batch"`` and creates the batch. The job's state is a manifest kept in the generator's store (a
document, replaced atomically): the input file id, the batch id, each request by ``custom_id``, and what has
been collected. So any process sharing the store resumes a job by its id (``generator.batch_job(job_id)``),
after a crash or a restart, at any step: a submission cut between the upload and the batch is finished (the batch
is found by its metadata before one is created), and collecting again never stores an image twice nor loses one
(each image has an id derived from the job, the request and its index; one found in the store is reused).

Wire facts (openai 3.57 SDK, ``resources/batches.py``, ``types/batch_create_params.py``, ``resources/files.py``,
read 2026-11-25): ``batches.create(completion_window="24h", endpoint=..., input_file_id=..., metadata=...)``;
the ``endpoint`` Literal lists ``/v1/images/generations``, ``/v1/images/edits`` and ``/v1/responses`` among
others; the input file holds "up to 50,000 requests, and can be up to 200 MB in size", uploaded as ``.jsonl``
with purpose ``batch``. Each input line is ``{"custom_id", "method": "POST", "url", "body"}``; the output and error
files have a line per request: ``{"id", "custom_id", "response": {"status_code", "request_id", "body"},
"error"}`` (``error`` set and ``response`` null for requests never run, e.g. ``batch_expired``), per OpenAI's
batch guide (developers.openai.com/api/docs/guides/batch, linked from the SDK).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import openai
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .costs import ImageCost
from .errors import (
    APIError,
    ConfigurationError,
    ImageGenerationError,
    ImageNotFoundError,
    InvalidInputError,
    InvalidOptionsError,
    ModerationBlockedError,
)
from .images import GeneratedImage, Usage
from .images_parse import parse_images_response
from .options import ImageOptions
from .parse import ParsedImage, ParsedResponse, parse_response
from .request import DEFAULT_INSTRUCTIONS, DEFAULT_TEXT_MODEL, ImageRequest, build_responses_request

if TYPE_CHECKING:
    from .generator import ImageGenerator
    from .store import ImageStore

__all__ = [
    "BATCH_DISCOUNT",
    "BATCH_DISCOUNT_IMAGE_MODELS",
    "BATCH_ENDPOINTS",
    "MAX_BATCH_FILE_BYTES",
    "MAX_BATCH_REQUESTS",
    "BatchFailure",
    "BatchItem",
    "BatchItemError",
    "BatchJob",
    "BatchManifest",
    "BatchNotFinishedError",
    "BatchProgress",
    "BatchRequest",
    "BatchResult",
    "BatchRoute",
    "BatchValidationError",
    "batch_discount",
]

logger = logging.getLogger(__name__)

BatchRoute = Literal["images", "responses"]

#: The Batch API endpoint each route's requests go to (both are in the SDK's ``endpoint`` Literal).
BATCH_ENDPOINTS: Mapping[BatchRoute, str] = {"images": "/v1/images/generations", "responses": "/v1/responses"}
#: ``batch_create_params.py``: "The file can contain up to 50,000 requests, and can be up to 200 MB in size."
MAX_BATCH_REQUESTS = 50_000
MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024
#: OpenAI Developers on X, as quoted by headsupai.io ("OpenAI Batch API Now Supports GPT Image Models at Half
#: Cost", read 2026-11-25): "Batch API now supports GPT Image models: gpt-image-1.5, chatgpt-image-latest,
#: gpt-image-1, gpt-image-1-mini. Submit up to 50,000 generations or edits as async jobs at 50% lower cost". For
#: other image models, and for the image tool on the Responses route, no discount is published: unknown, so none
#: is applied (estimates stay upper bounds).
BATCH_DISCOUNT = Decimal("0.5")
BATCH_DISCOUNT_IMAGE_MODELS = frozenset({"gpt-image-1.5", "chatgpt-image-latest", "gpt-image-1", "gpt-image-1-mini"})

_JOB_PREFIX = "bj_"
_JOB_ID = re.compile(r"bj_[0-9a-f]{16}")
_CUSTOM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_METADATA_KEY = "imagegen_job_id"
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# Manifest writes while collecting: often enough that a crash repeats little work, rarely enough that a
# 50,000-line job does not rewrite its (megabytes of) manifest thousands of times: after 25 lines or 5% of the job,
# whichever is more, or 5 s. A line repeated after a crash costs little: its images are found in the store.
_SAVE_EVERY_ITEMS = 25
_SAVE_EVERY_FRACTION = 20
_SAVE_EVERY_SECONDS = 5.0
_MAX_LISTED_PROBLEMS = 20


# --- values -----------------------------------------------------------------------------------------------


class BatchRequest(BaseModel):
    """One image request of a batch: a prompt, its options (over the generator's defaults) and, optionally,
    your own ``custom_id`` (1-64 letters, digits, ``_``, ``-``; unique in the job) to find it in the results."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    options: dict[str, Any] = Field(default_factory=dict)
    custom_id: str | None = None


class BatchItemError(BaseModel):
    """Why one request of a batch produced no image."""

    model_config = ConfigDict(frozen=True)

    code: str | None = None
    message: str
    agent_message: str
    """What an agent should do about it (rephrase, try again later, ...)."""
    status_code: int | None = None
    retryable: bool = False


class BatchItem(BaseModel):
    """One request of a job, as the manifest keeps it: what was sent and what came of it."""

    model_config = ConfigDict(frozen=True)

    custom_id: str
    prompt: str
    options: ImageOptions = Field(default_factory=ImageOptions)
    body: dict[str, Any]
    """The request body sent in the batch's input file."""
    state: Literal["pending", "succeeded", "failed"] = "pending"
    image_ids: tuple[str, ...] = ()
    error: BatchItemError | None = None
    usage: Usage | None = None


class BatchCounts(BaseModel):
    """The batch's ``request_counts``."""

    model_config = ConfigDict(frozen=True)

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchManifest(BaseModel):
    """A job's persisted state (a document in the store named by the job id)."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    job_id: str
    route: BatchRoute
    endpoint: str
    text_model: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str = "preparing"
    """``preparing`` (not yet created on the API), then the batch's own status."""
    counts: BatchCounts = Field(default_factory=BatchCounts)
    output_file_id: str | None = None
    error_file_id: str | None = None
    batch_errors: tuple[str, ...] = ()
    """Why the batch failed as a whole (its input was refused), if it did."""
    collected: bool = False
    """Every result line has been read and every image stored."""
    estimate_usd: Decimal | None = None
    """An upper bound of the job's cost with the Batch API's discount where it is published (``None``: unknown,
    or no price table; see :func:`batch_discount`)."""
    items: tuple[BatchItem, ...]


class BatchProgress(BaseModel):
    """Where a job stands: the batch status, its counts, and how many images are stored."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    batch_id: str | None
    status: str
    total: int
    completed: int
    """Requests the API finished successfully."""
    failed: int
    """Requests the API finished with an error."""
    collected: int
    """Requests whose outcome is collected (images stored, or the error recorded)."""
    images: int
    """Images stored so far."""
    estimate_usd: Decimal | None = None
    """The job's estimated cost (an upper bound), when known."""

    @property
    def done(self) -> bool:
        """The batch has ended (completed, failed, expired or cancelled): its results can be collected."""
        return self.status in _TERMINAL

    def summary(self) -> str:
        """One line for logs and progress bars."""
        return (
            f"job {self.job_id} ({self.status}): {self.completed + self.failed}/{self.total} run, "
            f"{self.failed} failed, {self.images} images stored"
        )


class BatchFailure(BaseModel):
    """A request of a job that produced no image."""

    model_config = ConfigDict(frozen=True)

    custom_id: str
    prompt: str
    error: BatchItemError


class BatchResult(BaseModel):
    """The collected outcome of a job: every stored image (in request order) and every failed request."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    status: str
    images: tuple[GeneratedImage, ...]
    failures: tuple[BatchFailure, ...]
    images_by_request: dict[str, tuple[str, ...]]
    """``custom_id`` → the ids of its stored images."""


class BatchValidationError(InvalidInputError):
    """Requests of a batch that would be refused; nothing was uploaded. ``problems`` holds ``(number, message)``
    pairs, numbered from 1 in the order the requests were given."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"request {number}: {message}" for number, message in self.problems[:_MAX_LISTED_PROBLEMS])
        more = len(self.problems) - _MAX_LISTED_PROBLEMS
        suffix = f"; and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(self.problems)} of the batch's requests would be refused, so nothing was sent: {shown}{suffix}"
        )


class BatchNotFinishedError(ImageGenerationError):
    """The batch has not ended yet (or did not within the time waited); its results cannot be collected yet."""

    retryable = True

    def __init__(self, message: str, *, progress: BatchProgress) -> None:
        self.progress = progress
        super().__init__(message)

    @property
    def agent_message(self) -> str:
        return (
            f"The batch job {self.progress.job_id} is still {self.progress.status}; its images are not ready. "
            "Check again later (batches take up to 24 hours)."
        )


# --- building a job ---------------------------------------------------------------------------------------


def new_job_id() -> str:
    return _JOB_PREFIX + secrets.token_hex(8)


def check_job_id(job_id: str) -> str:
    """``job_id`` if it is one (``bj_`` + 16 hex digits), else :class:`InvalidInputError`."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id.strip()):
        raise InvalidInputError(f"not a batch job id (bj_ and 16 hex digits): {str(job_id)[:80]!r}")
    return job_id.strip()


def _as_request(item: str | BatchRequest | Mapping[str, Any]) -> BatchRequest:
    if isinstance(item, BatchRequest):
        return item
    if isinstance(item, str):
        return BatchRequest(prompt=item)
    if isinstance(item, Mapping):
        data = dict(item)
        options = dict(data.pop("options", None) or {})
        prompt = data.pop("prompt", None)
        custom_id = data.pop("custom_id", None)
        options.update(data)
        if not isinstance(prompt, str):
            raise ValueError("each request needs a 'prompt' (a string)")
        if custom_id is not None and not isinstance(custom_id, str):
            raise ValueError("'custom_id' must be a string")
        return BatchRequest(prompt=prompt, options=options, custom_id=custom_id)
    raise TypeError(f"a batch request is a prompt, a BatchRequest or a mapping, not {type(item).__name__}")


def _first_problem(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)


def plan_job(
    generator: ImageGenerator,
    requests: Sequence[str | BatchRequest | Mapping[str, Any]],
    route: BatchRoute,
    options: Mapping[str, Any] | None = None,
) -> BatchManifest:
    """Validate every request and build the job's manifest (with each request's wire body). Pure apart from
    reading the generator's settings: nothing is sent. Raises :class:`BatchValidationError` listing every
    refused request, or :class:`InvalidInputError` when the batch exceeds the Batch API's limits."""
    if route not in BATCH_ENDPOINTS:
        raise ConfigurationError(f"route must be 'images' or 'responses', not {route!r}")
    if not requests:
        raise InvalidInputError("a batch needs at least one request")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise InvalidInputError(
            f"{len(requests)} requests; the Batch API takes at most {MAX_BATCH_REQUESTS} per batch: split them into "
            "several jobs"
        )
    backend = generator.backend
    text_model = getattr(backend, "text_model", DEFAULT_TEXT_MODEL) if route == "responses" else None
    instructions = getattr(backend, "instructions", DEFAULT_INSTRUCTIONS)
    store_responses = bool(getattr(backend, "store", True))
    job_id = new_job_id()
    items: list[BatchItem] = []
    problems: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(requests, start=1):
        try:
            given = _as_request(raw)
            if options:
                given = given.model_copy(update={"options": {**options, **given.options}})
            custom_id = given.custom_id if given.custom_id is not None else f"r{number:05d}"
            if not _CUSTOM_ID.fullmatch(custom_id):
                raise InvalidInputError(
                    f"custom_id {custom_id[:80]!r} must be 1-64 letters, digits, '_' or '-' (starting with a letter "
                    "or digit)"
                )
            if custom_id in seen:
                raise InvalidInputError(f"custom_id {custom_id!r} is used twice")
            seen.add(custom_id)
            request = generator.request(given.prompt, options=given.options)
            body = _wire_body(request, route, text_model, instructions, store_responses)
        except (ImageGenerationError, ValidationError, ValueError, TypeError) as exc:
            problems.append((number, _first_problem(exc)))
            continue
        items.append(BatchItem(custom_id=custom_id, prompt=request.prompt, options=request.options, body=body))
    if problems:
        raise BatchValidationError(problems)
    manifest = BatchManifest(
        job_id=job_id, route=route, endpoint=BATCH_ENDPOINTS[route], text_model=text_model, items=tuple(items)
    )
    size = len(input_file(manifest))
    if size > MAX_BATCH_FILE_BYTES:
        raise InvalidInputError(
            f"the batch's input file would be {size} bytes; the Batch API takes at most {MAX_BATCH_FILE_BYTES} "
            "(200 MB): split the requests into several jobs"
        )
    return manifest.model_copy(update={"estimate_usd": _estimate_usd(generator, manifest)})


# --- cost ------------------------------------------------------------------------------------------------------
# INTEGRATION POINT with the cost slice (imagegen_tool.pricing and budget, session 3): a generator with
# ``estimate(request) -> Cost`` gives each job an upper-bound estimate (less the Batch API's discount where it is
# published), and one with ``budgets`` (a BudgetGuard) has the job checked against them before anything is
# uploaded. A generator without them gives no estimate; each handle keeps the usage the API reported either way.


def batch_discount(route: BatchRoute, model: str) -> Decimal:
    """The share of the price the Batch API takes off for ``model`` on ``route`` where it is published (see
    :data:`BATCH_DISCOUNT`), else 0."""
    return BATCH_DISCOUNT if route == "images" and model in BATCH_DISCOUNT_IMAGE_MODELS else Decimal(0)


def _discounted_cost(cost: ImageCost | None, discount: Decimal) -> ImageCost | None:
    """A handle's cost at the batch price: the direct-call estimate and actual cost less ``discount``."""
    if cost is None or not discount:
        return cost
    note = f"Batch API discount of {discount:%} applied (see imagegen_tool.batch.BATCH_DISCOUNT)"
    parts: dict[str, Any] = {}
    for name in ("estimate", "actual"):
        part = getattr(cost, name)
        if part is not None:
            parts[name] = part.model_copy(
                update={
                    "usd": None if part.usd is None else part.usd * (1 - discount),
                    "assumptions": (*part.assumptions, note),
                }
            )
    return cost.model_copy(update=parts)


def _estimate_usd(generator: ImageGenerator, manifest: BatchManifest) -> Decimal | None:
    estimate = getattr(generator, "estimate", None)
    if not callable(estimate):
        return None
    total = Decimal(0)
    for item in manifest.items:
        cost = estimate(ImageRequest(prompt=item.prompt, options=item.options))
        usd = getattr(cost, "usd", None)
        if not isinstance(usd, Decimal):
            return None
        total += usd * (1 - batch_discount(manifest.route, item.options.effective_model))
    return total


def _check_budget(generator: ImageGenerator, manifest: BatchManifest) -> None:
    """Charge the job's estimate to the generator's budgets before submitting: a job that does not fit is refused
    (the budget's typed error) and nothing is uploaded. The estimate counts as spent (a batch cannot be re-priced
    per request while it runs), so shared budgets never let workers submit more than they allow together."""
    guard = getattr(generator, "budgets", None)
    if not guard:
        return
    images = sum(item.options.n or 1 for item in manifest.items)
    first = manifest.items[0]
    cost = getattr(generator, "estimate")(ImageRequest(prompt=first.prompt, options=first.options))  # noqa: B009
    job_cost = cost.model_copy(update={"usd": manifest.estimate_usd, "images": images})
    reservation = guard.reserve(job_cost, images, None)
    guard.settle(reservation, job_cost, images)


def _wire_body(
    request: ImageRequest, route: BatchRoute, text_model: str | None, instructions: str | None, store: bool
) -> dict[str, Any]:
    """The request line's body, refusing what a batch cannot do (every other rule was checked by the generator)."""
    options = request.options
    if request.inputs or request.mask is not None or options.mask is not None:
        raise InvalidInputError(
            "batch jobs generate new images only: input images and masks are not supported in a batch (edit them "
            "with generate()/edit() instead)"
        )
    if options.action == "edit":
        raise InvalidOptionsError("action", "edit", "generate or auto in a batch (batch jobs take no input images)")
    if options.partial_images:
        raise InvalidOptionsError(
            "partial_images", options.partial_images, "0 or unset: batch requests are not streamed"
        )
    if route == "images":
        from .images_api import plan_images_call  # the Images route's own rules (n, formats, parameters)

        return dict(plan_images_call(request).params)
    if (options.n or 1) > 1:
        raise InvalidOptionsError(
            "n",
            options.n,
            "1 on the responses route; use route='images' for up to 10 images per request",
            reason="the Responses API's image tool makes one image per call",
        )
    body = build_responses_request(
        request, text_model=text_model or DEFAULT_TEXT_MODEL, instructions=instructions, store=store
    )
    body.pop("stream", None)
    body.pop("background", None)
    return body


def input_file(manifest: BatchManifest) -> bytes:
    """The JSONL input file of a job: one ``{"custom_id", "method", "url", "body"}`` line per request."""
    lines = (
        json.dumps(
            {"custom_id": item.custom_id, "method": "POST", "url": manifest.endpoint, "body": item.body},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for item in manifest.items
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


# --- reading results ------------------------------------------------------------------------------------


def _line_error(line: Mapping[str, Any]) -> BatchItemError:
    """The error of a result line that produced no answer body worth parsing."""
    error = line.get("error")
    if isinstance(error, Mapping):
        code = _text(error.get("code"))
        message = _text(error.get("message")) or "the request was not run"
        if code == "batch_expired":
            agent = "This image was not made: the batch ran out of its 24-hour window. Submit it again."
        elif code == "batch_cancelled":
            agent = "This image was not made: the batch was cancelled."
        else:
            agent = f"This image was not made: {message}"
        return BatchItemError(code=code, message=message, agent_message=agent, retryable=code == "batch_expired")
    found = line.get("response")
    response: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    status = response.get("status_code") if isinstance(response.get("status_code"), int) else None
    body = response.get("body")
    error_body = body.get("error") if isinstance(body, Mapping) else None
    detail: Mapping[str, Any] = error_body if isinstance(error_body, Mapping) else {}
    code = _text(detail.get("code"))
    message = _text(detail.get("message")) or f"the request failed with status {status}"
    typed: ImageGenerationError
    if code == "moderation_blocked":
        typed = ModerationBlockedError(message)
    else:
        typed = APIError(
            message,
            status_code=status,
            code=code,
            param=_text(detail.get("param")),
            retryable=status in _RETRYABLE_STATUS,
            request_id=_text(response.get("request_id")),
        )
    return BatchItemError(
        code=code,
        message=str(typed),
        agent_message=typed.agent_message,
        status_code=status,
        retryable=typed.retryable,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_body(route: BatchRoute, body: Any, item: BatchItem) -> ParsedResponse:
    if not isinstance(body, Mapping):
        raise InvalidInputError("the result line has no response body")
    if route == "images":
        return parse_images_response(body, expected=item.options.n or 1)
    return parse_response(body)


def _lock_name(job_id: str) -> str:
    return f"{job_id}-collect"


def _image_id(job_id: str, custom_id: str, index: int) -> str:
    return f"{job_id}-{custom_id}-{index}"


# --- the job ------------------------------------------------------------------------------------------------


class BatchJob:
    """A batch of image requests on OpenAI's Batch API, resumable by :attr:`job_id` from any process sharing the
    generator's store.

    Sync methods: :meth:`refresh` (alias :meth:`status`), :meth:`wait`, :meth:`collect`, :meth:`cancel`; async
    twins: :meth:`arefresh`, :meth:`astatus`, :meth:`await_done`, :meth:`acollect`, :meth:`acancel`. Made by
    :meth:`ImageGenerator.submit_batch <imagegen_tool.ImageGenerator.submit_batch>` or found again with
    :meth:`ImageGenerator.batch_job <imagegen_tool.ImageGenerator.batch_job>`.
    """

    def __init__(self, generator: ImageGenerator, manifest: BatchManifest) -> None:
        self.generator = generator
        self._manifest = manifest

    def __repr__(self) -> str:
        return f"BatchJob({self.job_id!r}, status={self._manifest.status!r})"

    @property
    def job_id(self) -> str:
        return self._manifest.job_id

    @property
    def batch_id(self) -> str | None:
        """The Batch API's id of the batch (``None`` until it is created)."""
        return self._manifest.batch_id

    @property
    def manifest(self) -> BatchManifest:
        """The job's state as last saved or refreshed."""
        return self._manifest

    @property
    def progress(self) -> BatchProgress:
        """Where the job stood at the last refresh (no request)."""
        return _progress(self._manifest)

    # -- loading and saving ------------------------------------------------------------------------------

    @classmethod
    def load(cls, generator: ImageGenerator, job_id: str) -> BatchJob:
        """The job ``job_id`` from the generator's store; :class:`ImageNotFoundError` if there is none."""
        raw = generator.store.get_document(check_job_id(job_id))
        return cls(generator, _manifest_from(raw, job_id, generator.store))

    @classmethod
    async def aload(cls, generator: ImageGenerator, job_id: str) -> BatchJob:
        raw = await generator.store.aget_document(check_job_id(job_id))
        return cls(generator, _manifest_from(raw, job_id, generator.store))

    def _save(self, manifest: BatchManifest) -> None:
        self.generator.store.put_document(manifest.job_id, manifest.model_dump_json().encode())
        self._manifest = manifest

    async def _asave(self, manifest: BatchManifest) -> None:
        await self.generator.store.aput_document(manifest.job_id, manifest.model_dump_json().encode())
        self._manifest = manifest

    # -- clients ------------------------------------------------------------------------------------------

    def _client(self) -> OpenAI:
        client = getattr(self.generator.backend, "client", None)
        if not isinstance(client, OpenAI):
            raise ConfigurationError("batch jobs need a backend with an OpenAI client (the images or responses API)")
        return client

    def _async_client(self) -> AsyncOpenAI:
        client = getattr(self.generator.backend, "async_client", None)
        if not isinstance(client, AsyncOpenAI):
            raise ConfigurationError("batch jobs need a backend with an AsyncOpenAI client (images or responses)")
        return client

    # -- submitting (also resumes an interrupted submission) ----------------------------------------------

    def _submit(self) -> None:
        manifest = self._manifest
        if manifest.batch_id is not None:
            return
        client = self._client()
        try:
            if manifest.input_file_id is None:
                uploaded = client.files.create(file=(f"{manifest.job_id}.jsonl", input_file(manifest)), purpose="batch")
                manifest = manifest.model_copy(update={"input_file_id": uploaded.id})
                self._save(manifest)
            found = _find_batch(client.batches.list(limit=100), manifest.job_id)
            if found is None:
                # No automatic retry of the create: a lost answer would make a second (billed) batch. The next
                # refresh finds the batch by its metadata instead.
                found = client.with_options(max_retries=0).batches.create(
                    completion_window="24h",
                    endpoint=manifest.endpoint,  # type: ignore[arg-type]
                    input_file_id=str(manifest.input_file_id),
                    metadata={_METADATA_KEY: manifest.job_id},
                )
        except openai.OpenAIError as exc:
            raise _submission_error(exc, manifest.job_id) from exc
        self._save(_apply_batch(manifest, found))
        logger.info("batch job %s submitted as %s (%d requests)", manifest.job_id, found.id, len(manifest.items))

    async def _asubmit(self) -> None:
        manifest = self._manifest
        if manifest.batch_id is not None:
            return
        client = self._async_client()
        try:
            if manifest.input_file_id is None:
                content = input_file(manifest)
                uploaded = await client.files.create(file=(f"{manifest.job_id}.jsonl", content), purpose="batch")
                manifest = manifest.model_copy(update={"input_file_id": uploaded.id})
                await self._asave(manifest)
            found = await _afind_batch(client.batches.list(limit=100), manifest.job_id)
            if found is None:
                found = await client.with_options(max_retries=0).batches.create(
                    completion_window="24h",
                    endpoint=manifest.endpoint,  # type: ignore[arg-type]
                    input_file_id=str(manifest.input_file_id),
                    metadata={_METADATA_KEY: manifest.job_id},
                )
        except openai.OpenAIError as exc:
            raise _submission_error(exc, manifest.job_id) from exc
        await self._asave(_apply_batch(manifest, found))
        logger.info("batch job %s submitted as %s (%d requests)", manifest.job_id, found.id, len(manifest.items))

    # -- progress -----------------------------------------------------------------------------------------

    def refresh(self) -> BatchProgress:
        """Ask the Batch API where the batch stands (finishing an interrupted submission first) and save it."""
        self._submit()
        manifest = self._manifest
        if manifest.status not in _TERMINAL:
            try:
                batch = self._client().batches.retrieve(str(manifest.batch_id))
            except openai.OpenAIError as exc:
                raise _api_error(exc, manifest.job_id) from exc
            updated = _apply_batch(manifest, batch)
            if updated != manifest:
                self._save(updated)
        return self.progress

    async def arefresh(self) -> BatchProgress:
        """Async :meth:`refresh`."""
        await self._asubmit()
        manifest = self._manifest
        if manifest.status not in _TERMINAL:
            try:
                batch = await self._async_client().batches.retrieve(str(manifest.batch_id))
            except openai.OpenAIError as exc:
                raise _api_error(exc, manifest.job_id) from exc
            updated = _apply_batch(manifest, batch)
            if updated != manifest:
                await self._asave(updated)
        return self.progress

    def status(self) -> BatchProgress:
        """The job's current progress, asked of the Batch API (same as :meth:`refresh`)."""
        return self.refresh()

    async def astatus(self) -> BatchProgress:
        return await self.arefresh()

    def wait(
        self,
        *,
        poll_interval: float = 30.0,
        timeout: float | None = None,
        on_progress: Callable[[BatchProgress], object] | None = None,
    ) -> BatchProgress:
        """Poll every ``poll_interval`` seconds until the batch ends; ``on_progress`` gets each progress. Raises
        :class:`BatchNotFinishedError` after ``timeout`` seconds (the job goes on: wait again or resume later)."""
        _check_wait(poll_interval, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            progress = self.refresh()
            if on_progress is not None:
                on_progress(progress)
            if progress.done:
                return progress
            pause = _pause(poll_interval, deadline, progress)
            time.sleep(pause)

    async def await_done(
        self,
        *,
        poll_interval: float = 30.0,
        timeout: float | None = None,
        on_progress: Callable[[BatchProgress], object] | None = None,
    ) -> BatchProgress:
        """Async :meth:`wait`; ``on_progress`` may be a coroutine function."""
        _check_wait(poll_interval, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            progress = await self.arefresh()
            if on_progress is not None:
                outcome = on_progress(progress)
                if asyncio.iscoroutine(outcome):
                    await outcome
            if progress.done:
                return progress
            await asyncio.sleep(_pause(poll_interval, deadline, progress))

    # -- collecting ---------------------------------------------------------------------------------------

    def collect(self) -> BatchResult:
        """Store every image the ended batch produced and record every failed request; returns them all.

        Idempotent: images already stored (by an earlier or interrupted collect, in any process) are reused,
        never stored twice. Raises :class:`BatchNotFinishedError` while the batch still runs."""
        progress = self.refresh()
        if not progress.done:
            raise _not_finished(progress)
        if not self._manifest.collected:
            # One collector of a job at a time (any process): the second then finds everything collected.
            with self.generator.store.document_lock(_lock_name(self.job_id)):
                self._manifest = _manifest_from(
                    self.generator.store.get_document(self.job_id), self.job_id, self.generator.store
                )
                if not self._manifest.collected:
                    collector = _Collector(self, self._manifest)
                    for file_id in _result_files(self._manifest):
                        with self._open_lines(file_id) as lines:
                            for raw in lines:
                                collector.line(raw)
                    self._save(collector.finish())
        return self._result()

    async def acollect(self) -> BatchResult:
        """Async :meth:`collect`: downloads stream on the event loop; decoding and storing run in worker threads."""
        progress = await self.arefresh()
        if not progress.done:
            raise _not_finished(progress)
        if not self._manifest.collected:
            lock = self.generator.store.document_lock(_lock_name(self.job_id))
            await asyncio.to_thread(lock.__enter__)  # waits for another collector in a thread, not on the loop
            try:
                raw_manifest = await self.generator.store.aget_document(self.job_id)
                self._manifest = _manifest_from(raw_manifest, self.job_id, self.generator.store)
                if not self._manifest.collected:
                    collector = _Collector(self, self._manifest)
                    for file_id in _result_files(self._manifest):
                        async with self._aopen_lines(file_id) as lines:
                            async for raw in lines:
                                await asyncio.to_thread(collector.line, raw)
                    manifest = await asyncio.to_thread(collector.finish)
                    await self._asave(manifest)
            finally:
                await asyncio.to_thread(lock.__exit__, None, None, None)
        return await asyncio.to_thread(self._result)

    @contextlib.contextmanager
    def _open_lines(self, file_id: str) -> Iterator[Iterator[str]]:
        try:
            with self._client().files.with_streaming_response.content(file_id) as response:
                yield response.iter_lines()
        except openai.OpenAIError as exc:
            raise _api_error(exc, self.job_id) from exc

    @contextlib.asynccontextmanager
    async def _aopen_lines(self, file_id: str) -> AsyncIterator[AsyncIterator[str]]:
        try:
            async with self._async_client().files.with_streaming_response.content(file_id) as response:
                yield response.iter_lines()
        except openai.OpenAIError as exc:
            raise _api_error(exc, self.job_id) from exc

    def _result(self) -> BatchResult:
        manifest = self._manifest
        store = self.generator.store
        images: list[GeneratedImage] = []
        failures: list[BatchFailure] = []
        for item in manifest.items:
            for image_id in item.image_ids:
                try:
                    images.append(store.get(image_id))
                except ImageNotFoundError:
                    logger.warning("image %s of batch job %s is no longer in the store", image_id, manifest.job_id)
            if item.error is not None:
                failures.append(BatchFailure(custom_id=item.custom_id, prompt=item.prompt, error=item.error))
        return BatchResult(
            job_id=manifest.job_id,
            status=manifest.status,
            images=tuple(images),
            failures=tuple(failures),
            images_by_request={item.custom_id: item.image_ids for item in manifest.items if item.image_ids},
        )

    # -- cancelling ---------------------------------------------------------------------------------------

    def cancel(self) -> BatchProgress:
        """Ask the API to cancel the batch (``cancelling``, then ``cancelled``: requests already run keep their
        images, which :meth:`collect` stores). A batch that already ended is left as it is."""
        self._submit()
        manifest = self._manifest
        if manifest.status in _TERMINAL:
            return self.progress
        try:
            batch = self._client().batches.cancel(str(manifest.batch_id))
        except openai.ConflictError:
            return self.refresh()  # it ended meanwhile
        except openai.OpenAIError as exc:
            raise _api_error(exc, manifest.job_id) from exc
        self._save(_apply_batch(manifest, batch))
        return self.progress

    async def acancel(self) -> BatchProgress:
        """Async :meth:`cancel`."""
        await self._asubmit()
        manifest = self._manifest
        if manifest.status in _TERMINAL:
            return self.progress
        try:
            batch = await self._async_client().batches.cancel(str(manifest.batch_id))
        except openai.ConflictError:
            return await self.arefresh()
        except openai.OpenAIError as exc:
            raise _api_error(exc, manifest.job_id) from exc
        await self._asave(_apply_batch(manifest, batch))
        return self.progress


class _Collector:
    """Applies result lines to a manifest, storing images as it goes and saving the manifest now and then."""

    def __init__(self, job: BatchJob, manifest: BatchManifest) -> None:
        self.job = job
        self.items = {item.custom_id: item for item in manifest.items}
        self.manifest = manifest
        self.unsaved = 0
        self.saved_at = time.monotonic()
        self.save_every = max(_SAVE_EVERY_ITEMS, len(manifest.items) // _SAVE_EVERY_FRACTION)

    def line(self, raw: str) -> None:
        if not raw.strip():
            return
        try:
            line = json.loads(raw)
        except ValueError:
            logger.warning("batch job %s: skipped a result line that is not JSON", self.job.job_id)
            return
        custom_id = line.get("custom_id") if isinstance(line, Mapping) else None
        item = self.items.get(custom_id) if isinstance(custom_id, str) else None
        if item is None:
            logger.warning("batch job %s: a result line names no request of the job", self.job.job_id)
            return
        if item.state != "pending":
            return  # collected before (this run or an interrupted one)
        self.items[item.custom_id] = self._outcome(item, line)
        self.unsaved += 1
        if self.unsaved >= self.save_every or time.monotonic() - self.saved_at >= _SAVE_EVERY_SECONDS:
            self._checkpoint()

    def _checkpoint(self) -> None:
        self.manifest = self.manifest.model_copy(update={"items": tuple(self.items.values())})
        self.job._save(self.manifest)
        self.unsaved = 0
        self.saved_at = time.monotonic()

    def finish(self) -> BatchManifest:
        manifest = self.job._manifest
        items = []
        for item in self.items.values():
            if item.state == "pending":
                item = item.model_copy(update={"state": "failed", "error": _missing_error(manifest)})
            items.append(item)
        return self.manifest.model_copy(update={"items": tuple(items), "collected": True})

    def _outcome(self, item: BatchItem, line: Mapping[str, Any]) -> BatchItem:
        response = line.get("response")
        status = response.get("status_code") if isinstance(response, Mapping) else None
        if line.get("error") or status != 200 or not isinstance(response, Mapping):
            return item.model_copy(update={"state": "failed", "error": _line_error(line)})
        route = self.manifest.route
        try:
            parsed = _parse_body(route, response.get("body"), item)
        except ImageGenerationError as exc:
            return item.model_copy(update={"state": "failed", "error": _error_of(exc)})
        stored: list[str] = []
        first_error: ImageGenerationError | None = None
        for index, image in enumerate(parsed.images):
            try:
                stored.append(self._store(item, parsed, image, index))
            except ImageGenerationError as exc:
                first_error = first_error or exc
        update: dict[str, Any] = {"image_ids": tuple(stored), "usage": parsed.usage}
        if stored:
            update["state"] = "succeeded"
        else:
            from .generator import _failure_error  # the generator's reading of a response without an image

            update["state"] = "failed"
            update["error"] = _error_of(first_error or _failure_error(parsed))
        return item.model_copy(update=update)

    def _store(self, item: BatchItem, parsed: ParsedResponse, image: ParsedImage, index: int) -> str:
        """Store one image under its job-derived id, or find it stored already (same job, request, index)."""
        generator = self.job.generator
        store = generator.store
        image_id = _image_id(self.job.job_id, item.custom_id, index)
        call_id = image.call_id if self.manifest.route == "responses" else image_id
        try:
            existing = store.get(image_id)
        except ImageNotFoundError:
            # Whatever is left under this id is an interrupted save of this very image (ids are the job's own,
            # and collectors of a job take turns): clear it, or the store would save the image under another id.
            store.delete(image_id)
        else:
            if existing.call_id == call_id:
                return existing.id
        data = image.decode(parsed.response_id)
        request = ImageRequest(prompt=item.prompt, options=item.options)
        named = image.model_copy(update={"call_id": call_id})
        record = generator._record(parsed, named, data, request)
        record = record.model_copy(
            update={
                "id": image_id,
                "backend": self.manifest.route,
                "cost": _discounted_cost(
                    record.cost, batch_discount(self.manifest.route, item.options.effective_model)
                ),
            }
        )
        handle = store.save(data, record)
        if handle.id != image_id:
            # Another process collecting the same job stored this image first: keep one copy, never two.
            store.delete(handle.id)
            return store.get(image_id).id
        return handle.id


def _error_of(exc: BaseException) -> BatchItemError:
    if isinstance(exc, ImageGenerationError):
        code = "moderation_blocked" if isinstance(exc, ModerationBlockedError) else getattr(exc, "code", None)
        return BatchItemError(
            code=code or type(exc).__name__,
            message=str(exc),
            agent_message=exc.agent_message,
            status_code=getattr(exc, "status_code", None),
            retryable=exc.retryable,
        )
    return BatchItemError(code=type(exc).__name__, message=str(exc), agent_message=f"The image failed: {exc}")


def _missing_error(manifest: BatchManifest) -> BatchItemError:
    if manifest.status == "failed":
        why = "; ".join(manifest.batch_errors) or "the batch failed"
        return BatchItemError(
            code="batch_failed",
            message=f"the batch failed before running this request: {why}",
            agent_message=f"This image was not made: the batch failed ({why}).",
        )
    return BatchItemError(
        code="missing_result",
        message=f"the batch ended ({manifest.status}) without a result for this request",
        agent_message="This image was not made: the batch returned no result for it. Submit it again.",
        retryable=True,
    )


def _result_files(manifest: BatchManifest) -> list[str]:
    return [file_id for file_id in (manifest.output_file_id, manifest.error_file_id) if file_id]


def _apply_batch(manifest: BatchManifest, batch: Any) -> BatchManifest:
    """The manifest updated from a Batch object of the SDK."""
    counts = getattr(batch, "request_counts", None)
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    described = tuple(
        f"line {e.line}: {e.message}" if getattr(e, "line", None) else str(getattr(e, "message", "") or e.code)
        for e in errors
    )
    return manifest.model_copy(
        update={
            "batch_id": batch.id,
            "input_file_id": manifest.input_file_id or getattr(batch, "input_file_id", None),
            "status": str(batch.status),
            "counts": BatchCounts(total=counts.total, completed=counts.completed, failed=counts.failed)
            if counts is not None
            else manifest.counts,
            "output_file_id": getattr(batch, "output_file_id", None),
            "error_file_id": getattr(batch, "error_file_id", None),
            "batch_errors": described or manifest.batch_errors,
        }
    )


def _progress(manifest: BatchManifest) -> BatchProgress:
    collected = [item for item in manifest.items if item.state != "pending"]
    return BatchProgress(
        job_id=manifest.job_id,
        batch_id=manifest.batch_id,
        status=manifest.status,
        total=manifest.counts.total or len(manifest.items),
        completed=manifest.counts.completed,
        failed=manifest.counts.failed,
        collected=len(collected),
        images=sum(len(item.image_ids) for item in manifest.items),
        estimate_usd=manifest.estimate_usd,
    )


def _manifest_from(raw: bytes | None, job_id: str, store: ImageStore) -> BatchManifest:
    if raw is None:
        raise ImageNotFoundError(job_id)
    try:
        manifest = BatchManifest.model_validate_json(raw)
    except ValidationError:
        raise InvalidInputError(
            f"the batch job {job_id} in {store!r} is damaged (its manifest cannot be read)"
        ) from None
    if manifest.job_id != job_id:
        raise InvalidInputError(f"the manifest stored as batch job {job_id} names another job ({manifest.job_id})")
    return manifest


def _find_batch(page: Any, job_id: str) -> Any:
    """The batch created for ``job_id`` (by its metadata), among the newest batches, if any."""
    for index, batch in enumerate(page):
        if (batch.metadata or {}).get(_METADATA_KEY) == job_id:
            return batch
        if index >= 1000:  # a batch made moments ago is among the newest; do not walk a whole history
            break
    return None


async def _afind_batch(page: Any, job_id: str) -> Any:
    index = 0
    async for batch in page:
        if (batch.metadata or {}).get(_METADATA_KEY) == job_id:
            return batch
        index += 1
        if index > 1000:
            break
    return None


def _submission_error(exc: openai.OpenAIError, job_id: str) -> ImageGenerationError:
    error = _api_error(exc, job_id)
    error.args = (f"{error.args[0] if error.args else error}; the job {job_id} is saved: resume it later",)
    return error


def _api_error(exc: openai.OpenAIError, job_id: str) -> ImageGenerationError:
    from .backends import translate_openai_error

    error = translate_openai_error(exc)
    logger.info("batch job %s: %s", job_id, error)
    return error


def _not_finished(progress: BatchProgress) -> BatchNotFinishedError:
    return BatchNotFinishedError(
        f"the batch of job {progress.job_id} is still {progress.status} ({progress.completed + progress.failed}/"
        f"{progress.total} requests run): wait for it before collecting",
        progress=progress,
    )


def _check_wait(poll_interval: float, timeout: float | None) -> None:
    if poll_interval <= 0 or (timeout is not None and timeout < 0):
        raise ConfigurationError("poll_interval must be > 0 and timeout >= 0 (or None: wait until the batch ends)")


def _pause(poll_interval: float, deadline: float | None, progress: BatchProgress) -> float:
    if deadline is None:
        return poll_interval
    left = deadline - time.monotonic()
    if left <= 0:
        raise BatchNotFinishedError(
            f"the batch of job {progress.job_id} is still {progress.status} after the time waited "
            f"({progress.completed + progress.failed}/{progress.total} requests run); the job goes on: wait again "
            "or resume it later by its id",
            progress=progress,
        )
    return min(poll_interval, left)


# --- the generator's entry points ------------------------------------------------------------------------


def submit(
    generator: ImageGenerator,
    requests: Iterable[str | BatchRequest | Mapping[str, Any]],
    *,
    route: BatchRoute | None = None,
    options: Mapping[str, Any] | None = None,
) -> BatchJob:
    """See :meth:`ImageGenerator.submit_batch <imagegen_tool.ImageGenerator.submit_batch>`."""
    return submit_planned(generator, _prepare(generator, requests, route, options))


def submit_planned(generator: ImageGenerator, manifest: BatchManifest) -> BatchJob:
    """Save a job planned by :func:`plan_job` in the store, then upload its input file and create its batch."""
    _check_budget(generator, manifest)
    job = BatchJob(generator, manifest)
    job._save(manifest)
    job._submit()
    return job


async def asubmit(
    generator: ImageGenerator,
    requests: Iterable[str | BatchRequest | Mapping[str, Any]],
    *,
    route: BatchRoute | None = None,
    options: Mapping[str, Any] | None = None,
) -> BatchJob:
    manifest = await asyncio.to_thread(_prepare, generator, requests, route, options)
    await asyncio.to_thread(_check_budget, generator, manifest)
    job = BatchJob(generator, manifest)
    await job._asave(manifest)
    await job._asubmit()
    return job


def _prepare(
    generator: ImageGenerator,
    requests: Iterable[str | BatchRequest | Mapping[str, Any]],
    route: BatchRoute | None,
    options: Mapping[str, Any] | None,
) -> BatchManifest:
    chosen: BatchRoute
    if route is None:
        chosen = "images" if getattr(generator.backend, "name", "responses") == "images" else "responses"
    else:
        chosen = route
    return plan_job(generator, list(requests), chosen, options)


def list_jobs(store: ImageStore) -> list[BatchProgress]:
    """Every batch job in ``store``, newest first, as last saved (no request)."""
    jobs: list[BatchManifest] = []
    for name in store.list_documents(_JOB_PREFIX):
        if not _JOB_ID.fullmatch(name):
            continue
        try:
            jobs.append(_manifest_from(store.get_document(name), name, store))
        except ImageGenerationError as exc:
            logger.warning("skipped batch job %s: %s", name, exc)
    jobs.sort(key=lambda m: m.created_at, reverse=True)
    return [_progress(m) for m in jobs]
