"""The transport seam: a backend turns an :class:`ImageRequest` into a :class:`ParsedResponse`.

:class:`ResponsesBackend` calls the Responses API with the hosted ``image_generation`` tool through the real
``openai`` client (sync or async; the translation and parsing are shared, only the call differs). Other backends
(the Images API, a native route for agents already on Responses models) implement the same protocol. SDK
exceptions are translated here, once, into :mod:`imagegen_tool.errors` types.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import openai
from openai import AsyncOpenAI, OpenAI

from .errors import APIError, ConfigurationError, ImageGenerationError, ModerationBlockedError
from .parse import ParsedResponse, parse_response
from .redact import redact, redact_payload
from .request import DEFAULT_INSTRUCTIONS, DEFAULT_TEXT_MODEL, ImageRequest, build_responses_request

__all__ = ["ImageBackend", "ResponsesBackend", "translate_openai_error"]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", OpenAI, AsyncOpenAI)

_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@runtime_checkable
class ImageBackend(Protocol):
    """What :class:`~imagegen_tool.generator.ImageGenerator` needs from a back-end."""

    name: str

    def run(self, request: ImageRequest) -> ParsedResponse: ...

    async def arun(self, request: ImageRequest) -> ParsedResponse: ...


class ResponsesBackend:
    """The Responses API with the hosted ``image_generation`` tool, forced through ``tool_choice``.

    Pass your own ``client`` / ``async_client`` (e.g. Azure OpenAI, custom retries), or ``api_key`` /
    ``base_url`` / ``client_options`` for clients made on first use. Without an ``api_key`` the SDK reads
    ``OPENAI_API_KEY``. ``store=True`` keeps responses on OpenAI's side so later edits can continue from them
    (``previous_response_id``) instead of re-sending images.
    """

    name = "responses"

    def __init__(
        self,
        *,
        client: OpenAI | None = None,
        async_client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        text_model: str = DEFAULT_TEXT_MODEL,
        instructions: str | None = DEFAULT_INSTRUCTIONS,
        store: bool = True,
        client_options: Mapping[str, Any] | None = None,
        extra_request: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._async_client = async_client
        self._client_kwargs: dict[str, Any] = dict(client_options or {})
        if api_key is not None:
            self._client_kwargs["api_key"] = api_key
        if base_url is not None:
            self._client_kwargs["base_url"] = base_url
        self.text_model = text_model
        self.instructions = instructions
        self.store = store
        self.extra_request = dict(extra_request or {})

    def __repr__(self) -> str:  # never shows the key
        return f"ResponsesBackend(text_model={self.text_model!r}, store={self.store})"

    @property
    def client(self) -> OpenAI:
        if self._client is None:
            self._client = _make_client(OpenAI, self._client_kwargs)
        return self._client

    @property
    def async_client(self) -> AsyncOpenAI:
        if self._async_client is None:
            self._async_client = _make_client(AsyncOpenAI, self._client_kwargs)
        return self._async_client

    def build(self, request: ImageRequest, *, stream: bool = False) -> dict[str, Any]:
        """The ``responses.create`` keyword arguments for ``request``."""
        return build_responses_request(
            request,
            text_model=self.text_model,
            instructions=self.instructions,
            store=self.store,
            stream=stream,
            extra=self.extra_request,
        )

    def run(self, request: ImageRequest) -> ParsedResponse:
        kwargs = self.build(request)
        _log_request(kwargs)
        try:
            response = self.client.responses.create(**kwargs)
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
        return parse_response(response)

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        kwargs = self.build(request)
        _log_request(kwargs)
        try:
            response = await self.async_client.responses.create(**kwargs)
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
        return parse_response(response)


def _make_client(factory: type[ClientT], kwargs: dict[str, Any]) -> ClientT:
    try:
        return factory(**kwargs)
    except openai.OpenAIError as exc:
        raise ConfigurationError(
            "no OpenAI API key: set the OPENAI_API_KEY environment variable or pass api_key=... "
            "(or run offline against imagegen_tool.testing.Emulator)"
        ) from exc


def _log_request(kwargs: Mapping[str, Any]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("responses.create %s", redact_payload(dict(kwargs)))


def translate_openai_error(exc: openai.OpenAIError) -> ImageGenerationError:
    """The imagegen-tool error for an SDK exception: typed, sanitised, with status and request id kept."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        error = body.get("error", body) if isinstance(body.get("error", body), Mapping) else {}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = redact(str(error.get("message") or exc.message))
        if code == "moderation_blocked":
            return ModerationBlockedError(message)
        retry_after = _retry_after(exc.response.headers.get("retry-after"))
        return APIError(
            message,
            status_code=exc.status_code,
            request_id=exc.request_id,
            code=code,
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            retryable=exc.status_code in _RETRYABLE_STATUS,
            retry_after=retry_after,
        )
    if isinstance(exc, openai.APITimeoutError):
        return APIError("the request to the OpenAI API timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return APIError(f"cannot reach the OpenAI API: {redact(str(exc))}", retryable=True)
    return APIError(redact(str(exc)))


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
