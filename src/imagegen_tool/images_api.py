"""The Images API route: :class:`ImagesBackend` turns an :class:`ImageRequest` into ``client.images.generate`` or
``client.images.edit`` calls (sync or async, streaming or not) and parses the answers with its own parser.

No text model drives the call: the prompt reaches the image model as written, there are no reasoning tokens, and
``n`` images come from one call. The Images API stores nothing, so there is no continuation by response id and
no recovery: input images are always sent as files (a handle made on the Responses route is sent as its bytes),
and a lost answer cannot be fetched again. That is why this backend retries only answers that say no image was
made (rate limits, server errors), never a timeout or a dropped connection, which may have been paid for.

Planning (:func:`plan_images_call`) is pure and runs before any request: every option the endpoint does not take,
every input it cannot accept (URLs, file ids, more than 16 images, a mask that is not a PNG under 4 MB of the
first image's size) is refused with a typed error, so nothing is sent that is known to fail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import random
import time
import tomllib
from collections.abc import AsyncIterator, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar

import httpx2
import openai
from openai import AsyncOpenAI, OpenAI
from openai.types import ImagesResponse, image_edit_params, image_generate_params
from pydantic import BaseModel, ConfigDict, Field

from .backends import aclose_sdk_stream, translate_openai_error
from .errors import (
    APIError,
    ConfigurationError,
    ImageGenerationError,
    InvalidInputError,
    InvalidOptionsError,
    MalformedResponseError,
    ModerationBlockedError,
)
from .images_parse import IMAGES_BACKEND_NAME, ImagesStreamAccumulator, parse_images_response
from .inputs import InputImage
from .parse import ParsedResponse
from .redact import redact, redact_payload
from .request import ImageRequest
from .streaming import BackendEvent, StreamInterruptedError, StreamOutcome

__all__ = [
    "DEFAULT_IMAGES_TIMEOUT",
    "ImagesApiRules",
    "ImagesBackend",
    "ImagesCall",
    "images_api_rules",
    "plan_images_call",
]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", OpenAI, AsyncOpenAI)
Endpoint = Literal["generate", "edit"]

#: Per-attempt timeout of clients this backend makes: real generations take 20-90 s (recorded
#: ``openai-processing-ms``); high-quality large images and 10-image calls take longer. The SDK's 600 s default
#: leaves a dead connection undetected for 10 minutes.
DEFAULT_IMAGES_TIMEOUT = httpx2.Timeout(300.0, connect=10.0)

# Answers that say no image was produced: retrying them cannot pay twice. Timeouts and dropped connections
# are not among them (the image may have been made and billed).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_RETRYABLE_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "moderation_blocked"})
# A Retry-After longer than this is not waited for: the error goes to the caller with the delay.
_MAX_RETRY_DELAY = 60.0
# Connection failures before the request left: nothing can have been generated, so a retry is safe.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)

# ImageOptions fields that are not wire parameters of the same name on the Images API.
_NOT_PARAMS = frozenset({"action", "mask", "svg"})


class ImagesApiRules(BaseModel):
    """The Images API's own limits (``[images_api]`` in ``models.toml``, each with its evidence)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generate_parameters: frozenset[str]
    edit_parameters: frozenset[str]
    n: tuple[int, int]
    max_input_images: int
    max_input_bytes: int
    input_formats: tuple[str, ...]
    mask_formats: tuple[str, ...]
    mask_max_bytes: int
    single_image_formats: tuple[str, ...]
    no_stream_formats: tuple[str, ...]
    legacy_parameters: tuple[str, ...]
    evidence: dict[str, dict[str, str]] = Field(default_factory=dict)


@cache
def images_api_rules() -> ImagesApiRules:
    """The Images API rules from the capability table."""
    raw = tomllib.loads(resources.files(__package__).joinpath("models.toml").read_text("utf-8"))
    return ImagesApiRules(**raw["images_api"])


def _api_params(endpoint: Endpoint) -> frozenset[str]:
    """The parameters the Images API endpoint takes (the table's list, from the newest SDK's types)."""
    rules = images_api_rules()
    return rules.generate_parameters if endpoint == "generate" else rules.edit_parameters


@cache
def _sdk_params(endpoint: Endpoint) -> frozenset[str]:
    """The keyword arguments the installed SDK's method has; other API parameters travel in ``extra_body``."""
    base = (
        image_generate_params.ImageGenerateParamsBase
        if endpoint == "generate"
        else image_edit_params.ImageEditParamsBase
    )
    return frozenset(base.__required_keys__ | base.__optional_keys__) | {"stream"}


FileTuple = tuple[str, bytes, str]


class ImagesCall(BaseModel):
    """One planned Images API call: the endpoint, its JSON/form parameters, and the files of an edit."""

    model_config = ConfigDict(frozen=True)

    endpoint: Endpoint
    params: dict[str, Any]
    images: tuple[FileTuple, ...] = ()
    mask: FileTuple | None = None
    n: int = 1
    output_format: str = "png"

    def kwargs(self, *, stream: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``client.images.generate`` / ``client.images.edit``: the parameters the installed
        SDK knows as arguments, the others (newer than the SDK) in ``extra_body``."""
        known = _sdk_params(self.endpoint)
        kwargs = {key: value for key, value in self.params.items() if key in known}
        newer = {key: value for key, value in self.params.items() if key not in known}
        if newer:
            kwargs["extra_body"] = newer
        if self.endpoint == "edit":
            kwargs["image"] = list(self.images)
            if self.mask is not None:
                kwargs["mask"] = self.mask
        if stream:
            kwargs["stream"] = True
        return kwargs


def plan_images_call(request: ImageRequest, *, extra: Mapping[str, Any] | None = None) -> ImagesCall:
    """The Images API call for ``request``, or a typed error for anything the endpoint would refuse.

    Input images make it an edit (``/v1/images/edits``, the first image is the one edited, the others are
    references); without inputs it is a generation. ``action`` is not sent (the endpoint is the action).
    """
    rules = images_api_rules()
    options = request.options
    if request.previous_response_id:
        raise InvalidInputError(
            "previous_response_id continues a Responses API conversation; the Images API has no stored "
            "responses: pass the input images instead, or use api='responses'"
        )
    endpoint: Endpoint = "edit" if request.inputs else "generate"
    if options.action == "edit" and not request.inputs:
        raise InvalidInputError("action='edit' needs an input image: pass the image (an id, a path or bytes) to edit")
    accepted = _api_params(endpoint)
    params: dict[str, Any] = {"prompt": request.prompt}
    if request.safety_identifier:
        params["safety_identifier"] = request.safety_identifier
    for field, value in options.model_dump(exclude_none=True).items():
        if field in _NOT_PARAMS:
            continue
        if field not in accepted:
            where = "generations (no input images)" if endpoint == "generate" else "edits"
            raise InvalidOptionsError(
                field,
                value,
                "omit it" + (", or pass input images to edit" if field in _api_params("edit") else ""),
                reason=f"the Images API {where} endpoint has no {field} parameter",
            )
        params[field] = value
    if options.svg is not None:
        svg: dict[str, Any] = {}
        if options.svg.model is not None:
            svg["model"] = options.svg.model
        if options.svg.reasoning_effort is not None:
            svg["reasoning"] = {"effort": options.svg.reasoning_effort}
        params["svg"] = svg
    n = options.n or 1
    low, high = rules.n
    if not low <= n <= high:  # ImageOptions checks the same range; this keeps the table's word final
        raise InvalidOptionsError("n", n, f"an integer from {low} to {high}")
    fmt = options.effective_output_format
    if n > 1 and fmt in rules.single_image_formats:
        raise InvalidOptionsError("n", n, f"1 with {fmt} output", reason=f"{fmt} output makes one image per call")
    for legacy in rules.legacy_parameters:
        if extra and extra.get(legacy) is not None:
            raise InvalidOptionsError(legacy, extra[legacy], "omit it", reason="not supported by GPT Image models")
    if extra:
        params.update(extra)

    images: tuple[FileTuple, ...] = ()
    mask: FileTuple | None = None
    if endpoint == "edit":
        if len(request.inputs) > rules.max_input_images:
            raise InvalidInputError(
                f"{len(request.inputs)} input images; the Images API takes at most {rules.max_input_images} per edit"
            )
        images = tuple(_input_file(item, i, rules) for i, item in enumerate(request.inputs))
        mask = _mask_file(request, rules)
    elif request.mask is not None or options.mask is not None:
        raise InvalidInputError("a mask needs an image to edit: pass the image as an input as well")
    return ImagesCall(endpoint=endpoint, params=params, images=images, mask=mask, n=n, output_format=fmt)


def _input_file(item: InputImage, index: int, rules: ImagesApiRules) -> FileTuple:
    if item.data is None:
        what = "a URL" if item.reference is not None and item.reference.image_url else "an OpenAI file id"
        raise InvalidInputError(
            f"input {index + 1} ({item.source}) is {what}; the Images API takes image files only: pass an image "
            "id, a local path or the bytes, or use api='responses', which accepts URLs and file ids"
        )
    if len(item.data) >= rules.max_input_bytes:
        raise InvalidInputError(
            f"input {index + 1} ({item.source}) is {len(item.data) / 1e6:.1f} MB; the Images API takes images under "
            f"{rules.max_input_bytes / 1e6:.0f} MB"
        )
    mime = item.mime_type or "image/png"
    extension = _extension(mime)
    if extension not in rules.input_formats:
        raise InvalidInputError(
            f"input {index + 1} ({item.source}) is {mime}; the Images API takes {', '.join(rules.input_formats)}"
        )
    return (f"image-{index + 1}.{'jpg' if extension == 'jpeg' else extension}", item.data, mime)


def _mask_file(request: ImageRequest, rules: ImagesApiRules) -> FileTuple | None:
    """The mask as a PNG file, checked as the API checks it: PNG, with alpha, under 4 MB, the first image's size."""
    if request.mask is not None and request.options.mask is not None:
        raise InvalidInputError("pass the mask either as mask=... or in the options, not both")
    data: bytes | None
    if request.mask is not None:
        data = request.mask.data
        if data is None:
            raise InvalidInputError(
                "the Images API takes the mask as a PNG file: pass a mask image id, a local path or the bytes, "
                "not a URL or a file id (or use api='responses')"
            )
    elif request.options.mask is not None:
        data = _mask_from_reference(request.options.mask.image_url)
    else:
        return None
    if len(data) >= rules.mask_max_bytes:
        raise InvalidInputError(
            f"the mask is {len(data) / 1e6:.1f} MB; the Images API takes masks under "
            f"{rules.mask_max_bytes / 1e6:.0f} MB"
        )
    fmt, size, has_alpha = _image_facts(data, "the mask")
    if fmt not in rules.mask_formats:
        raise InvalidInputError(f"the mask is a {fmt or 'unknown'} image; the Images API needs a PNG mask")
    if not has_alpha:
        raise InvalidInputError(
            "the mask needs an alpha channel: transparent pixels mark where to edit (use a PNG with transparency)"
        )
    first = request.inputs[0]
    if first.width and first.height and size != (first.width, first.height):
        raise InvalidInputError(
            f"the mask is {size[0]}x{size[1]} but the image to edit is {first.width}x{first.height}; "
            "they must be the same size"
        )
    return ("mask.png", data, "image/png")


def _mask_from_reference(url: str | None) -> bytes:
    prefix = "data:image/png;base64,"
    if url is None or not url.startswith("data:"):
        raise InvalidInputError(
            "the Images API takes the mask as a PNG file, not a URL or a file id: pass mask=... with an image id, "
            "a path or the bytes (or use api='responses')"
        )
    if not url.startswith(prefix):
        raise InvalidInputError("the Images API needs a PNG mask (data:image/png;base64,...)")
    try:
        return base64.b64decode(url[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("the mask's data URL is not valid base64") from None


def _image_facts(data: bytes, what: str) -> tuple[str, tuple[int, int], bool]:
    from PIL import Image, UnidentifiedImageError  # on first use: keeps Pillow out of `import imagegen_tool`

    try:
        with Image.open(io.BytesIO(data)) as image:
            return (
                (image.format or "").lower(),
                (image.width, image.height),
                "A" in image.getbands() or "transparency" in image.info,
            )
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidInputError(f"{what} is not a readable image (a PNG with transparency expected)") from None


def _extension(mime: str) -> str:
    return mime.rpartition("/")[2].lower()


class ImagesBackend:
    """The Images API (``images.generate`` / ``images.edit``), chosen with ``ImageGenerator(api="images")``.

    Pass your own ``client`` / ``async_client``, or ``api_key`` / ``base_url`` / ``client_options`` for clients
    made on first use (without an ``api_key`` the SDK reads ``OPENAI_API_KEY``). Clients made here use
    :data:`DEFAULT_IMAGES_TIMEOUT`.

    Retries: the SDK's own automatic retries are switched off for image calls (also on clients passed in, through
    ``with_options``), because it retries timeouts and dropped connections, after which the image may already be
    made and billed. This backend retries up to ``max_retries`` times only answers that say nothing was made:
    429 rate limits (not ``insufficient_quota``) and 500/502/503/504, honouring ``Retry-After``.
    """

    name = IMAGES_BACKEND_NAME

    def __init__(
        self,
        *,
        client: OpenAI | None = None,
        async_client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        extra_request: Mapping[str, Any] | None = None,
        max_retries: int = 2,
    ) -> None:
        if max_retries < 0:
            raise ConfigurationError("max_retries cannot be negative")
        self._client = client
        self._async_client = async_client
        self._no_retry_client: OpenAI | None = None
        self._no_retry_async: AsyncOpenAI | None = None
        self._owned_client: OpenAI | None = None
        self._owned_async: tuple[asyncio.AbstractEventLoop, AsyncOpenAI] | None = None
        self._client_kwargs: dict[str, Any] = {"timeout": DEFAULT_IMAGES_TIMEOUT, **dict(client_options or {})}
        self._client_kwargs["max_retries"] = 0
        if api_key is not None:
            self._client_kwargs["api_key"] = api_key
        if base_url is not None:
            self._client_kwargs["base_url"] = base_url
        self.extra_request = dict(extra_request or {})
        self.max_retries = max_retries

    def __repr__(self) -> str:  # never shows the key
        return f"ImagesBackend(max_retries={self.max_retries})"

    # -- clients --------------------------------------------------------------------------------------------

    @property
    def client(self) -> OpenAI:
        """The sync client image calls go through (SDK retries off)."""
        if self._client is not None:
            if self._no_retry_client is None:
                self._no_retry_client = self._client.with_options(max_retries=0)
            return self._no_retry_client
        if self._owned_client is None:
            self._owned_client = _make_client(OpenAI, self._client_kwargs)
        return self._owned_client

    @property
    def async_client(self) -> AsyncOpenAI:
        """The async client. One made here belongs to the event loop that first used it."""
        if self._async_client is not None:
            if self._no_retry_async is None:
                self._no_retry_async = self._async_client.with_options(max_retries=0)
            return self._no_retry_async
        loop = asyncio.get_running_loop()
        if self._owned_async is None or self._owned_async[0] is not loop or loop.is_closed():
            self._owned_async = (loop, _make_client(AsyncOpenAI, self._client_kwargs))
        return self._owned_async[1]

    def close(self) -> None:
        """Close the sync client if this backend made it (clients passed in are the caller's to close)."""
        if self._owned_client is not None:
            self._owned_client.close()
            self._owned_client = None

    async def aclose(self) -> None:
        """Close the clients this backend made (the async one on the running loop)."""
        if self._owned_async is not None and self._owned_async[0] is asyncio.get_running_loop():
            await self._owned_async[1].close()
        self._owned_async = None
        self.close()

    # -- the backend protocol -------------------------------------------------------------------------------

    def check_request(self, request: ImageRequest) -> None:
        """Raise for anything the Images API would refuse; nothing is sent."""
        self.plan(request)

    def plan(self, request: ImageRequest) -> ImagesCall:
        return plan_images_call(request, extra=self.extra_request)

    def recover(self, response_id: str) -> ParsedResponse:
        raise ConfigurationError(
            f"cannot recover {response_id!r}: the Images API stores no responses, so there is nothing to retrieve "
            "(only the Responses API route can recover an image by response id)"
        )

    async def arecover(self, response_id: str) -> ParsedResponse:
        return self.recover(response_id)

    def run(self, request: ImageRequest) -> ParsedResponse:
        call = self.plan(request)
        return _parsed(self._call(call, stream=False), call)

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        call = self.plan(request)
        return _parsed(await self._acall(call, stream=False), call)

    def stream(self, request: ImageRequest) -> Iterator[BackendEvent]:
        """Stream the call: partial images as they come, then the :class:`StreamOutcome`. gif and svg output
        cannot stream on the Images API: those calls are made without streaming and end with the outcome."""
        call = self.plan(request)
        accumulator = ImagesStreamAccumulator(expected=call.n)
        if call.output_format in images_api_rules().no_stream_formats:
            yield from accumulator.start()
            yield StreamOutcome(parsed=_parsed(self._call(call, stream=False), call))
            return
        stream = self._call(call, stream=True)
        interrupted: BaseException | None = None
        try:
            yield from accumulator.start()
            for event in stream:
                yield from accumulator.feed(event)
        except _STREAM_ERRORS as exc:
            interrupted = exc
        finally:
            stream.close()
        yield StreamOutcome(parsed=_finish(accumulator, interrupted))

    async def astream(self, request: ImageRequest) -> AsyncIterator[BackendEvent]:
        call = self.plan(request)
        accumulator = ImagesStreamAccumulator(expected=call.n)
        if call.output_format in images_api_rules().no_stream_formats:
            for item in accumulator.start():
                yield item
            yield StreamOutcome(parsed=_parsed(await self._acall(call, stream=False), call))
            return
        stream = await self._acall(call, stream=True)
        interrupted: BaseException | None = None
        events: Any = None
        try:
            for item in accumulator.start():
                yield item
            events = stream.__aiter__()
            async for event in events:
                for item in accumulator.feed(event):
                    yield item
        except _STREAM_ERRORS as exc:
            interrupted = exc
        finally:
            await aclose_sdk_stream(stream, events)
        yield StreamOutcome(parsed=_finish(accumulator, interrupted))

    # -- calls ----------------------------------------------------------------------------------------------

    def _call(self, call: ImagesCall, *, stream: bool) -> Any:
        kwargs = call.kwargs(stream=stream)
        _log_request(call, kwargs)
        attempt = 0
        while True:
            images = self.client.images
            method = images.generate if call.endpoint == "generate" else images.edit
            try:
                return method(**kwargs)
            except openai.OpenAIError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise _translate(exc) from exc
            except ValueError as exc:  # a 200 answer whose JSON does not parse
                raise _malformed(exc) from exc
            attempt += 1
            logger.info("Images API call refused before any image was made; retry %d in %.1f s", attempt, delay)
            time.sleep(delay)

    async def _acall(self, call: ImagesCall, *, stream: bool) -> Any:
        kwargs = call.kwargs(stream=stream)
        _log_request(call, kwargs)
        attempt = 0
        while True:
            images = self.async_client.images
            method = images.generate if call.endpoint == "generate" else images.edit
            try:
                return await method(**kwargs)
            except openai.OpenAIError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise _translate(exc) from exc
            except ValueError as exc:
                raise _malformed(exc) from exc
            attempt += 1
            logger.info("Images API call refused before any image was made; retry %d in %.1f s", attempt, delay)
            await asyncio.sleep(delay)

    def _retry_delay(self, exc: openai.OpenAIError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or ``None`` when the error must not be retried: only answers that say
        nothing was made, and connections that failed before the request was sent."""
        if attempt >= self.max_retries:
            return None
        backoff: float = 0.5 * 2.0**attempt
        backoff = min(8.0, backoff) * (0.75 + random.random() / 2)
        if isinstance(exc, openai.APIConnectionError):
            return backoff if _never_sent(exc) else None
        if not isinstance(exc, openai.APIStatusError) or exc.status_code not in _RETRY_STATUSES:
            return None
        error = translate_openai_error(exc)
        if getattr(error, "code", None) in _NOT_RETRYABLE_CODES:
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return float(retry_after) if retry_after <= _MAX_RETRY_DELAY else None
        return backoff


def _never_sent(exc: BaseException) -> bool:
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        if isinstance(cause, _NOT_SENT):
            return True
        cause = cause.__cause__
    return False


_STREAM_ERRORS = (openai.OpenAIError, httpx2.HTTPError, OSError, ValueError)


def _translate(exc: openai.OpenAIError) -> ImageGenerationError:
    """The shared SDK error translation (status errors, in-stream ``error`` events, transport failures)."""
    translated = translate_openai_error(exc)
    if isinstance(translated, APIError) and translated.code in _NOT_RETRYABLE_CODES:
        translated.retryable = False
    return translated


def _malformed(exc: BaseException) -> MalformedResponseError:
    # Not retryable: a 200 answer means the image was probably made (and billed), and nothing can fetch it again.
    return MalformedResponseError(
        f"the Images API answered with a body that is not valid JSON ({type(exc).__name__}); the Images API stores "
        "nothing, so the image cannot be recovered",
        code="malformed_response",
        retryable=False,
    )


def _parsed(answer: Any, call: ImagesCall) -> ParsedResponse:
    if not isinstance(answer, ImagesResponse):
        # The SDK hands back the text of a non-JSON 200 answer (an HTML error page from a proxy, ...).
        raise MalformedResponseError(
            f"the Images API answered with {type(answer).__name__}, not an Images API body: "
            f"{redact(str(answer))[:200]!r}",
            code="malformed_response",
            retryable=False,
        )
    return parse_images_response(answer, expected=call.n)


def _finish(accumulator: ImagesStreamAccumulator, interrupted: BaseException | None) -> ParsedResponse:
    """The stream's outcome; an error that cut it before any image is raised as its typed error."""
    translated: ImageGenerationError | None = None
    if isinstance(interrupted, openai.APIError) and not isinstance(interrupted, openai.APIConnectionError):
        translated = _translate(interrupted)
    code = "moderation_blocked" if isinstance(translated, ModerationBlockedError) else getattr(translated, "code", None)
    if interrupted is not None and not accumulator.images:
        if translated is not None and code:
            raise translated from interrupted
        raise StreamInterruptedError(
            "the Images API stream ended before an image was complete (the Images API stores nothing, so the "
            f"image cannot be recovered): {redact(str(interrupted))}"
        ) from interrupted
    return accumulator.finish(interrupted, code=code)


def _make_client(factory: type[ClientT], kwargs: dict[str, Any]) -> ClientT:
    try:
        return factory(**kwargs)
    except openai.OpenAIError as exc:
        raise ConfigurationError(
            "no OpenAI API key: set the OPENAI_API_KEY environment variable or pass api_key=... "
            "(or run offline against imagegen_tool.testing.Emulator)"
        ) from exc


def _log_request(call: ImagesCall, kwargs: Mapping[str, Any]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        shown = {k: v for k, v in kwargs.items() if k not in ("image", "mask")}
        files = [f"{name} ({len(data)} bytes)" for name, data, _ in call.images]
        if call.mask is not None:
            files.append(f"mask ({len(call.mask[1])} bytes)")
        logger.debug("images.%s %s files=%s", call.endpoint, redact_payload(shown), files)
