"""The exceptions imagegen-tool raises.

Every error derives from :class:`ImageGenerationError` and carries a message written for two readers: the
developer, and the agent that called the tool (adapters show ``agent_message`` to the model). Messages say what
to change; they never contain API keys or base64 payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

__all__ = [
    "APIError",
    "BudgetExceededError",
    "ConfigurationError",
    "GenerationFailedError",
    "ImageGenerationError",
    "ImageNotFoundError",
    "InvalidInputError",
    "InvalidOptionsError",
    "MalformedResponseError",
    "ModerationBlockedError",
    "NoImageReturnedError",
    "QuotaExceededError",
    "StorageError",
]


class ImageGenerationError(Exception):
    """Base class of every error raised by imagegen-tool."""

    #: Whether calling again with the same arguments may succeed (rate limits, server errors, timeouts).
    retryable: bool = False

    @property
    def agent_message(self) -> str:
        """The text an agent sees when its tool call fails: what went wrong and what to do instead."""
        return str(self)


class InvalidOptionsError(ImageGenerationError):
    """An option value, or a combination of options, that the chosen image model does not accept.

    ``source="client"``: refused before any request, because the capability table's evidence says the API
    refuses it. ``source="api"``: the table let it through (unknown or believed accepted) and the API refused it;
    nothing was generated or stored, and retrying the same options will fail again. Deliberately not a
    ``ValueError``: pydantic would wrap it in a ``ValidationError`` and lose the field, value and allowed values.
    """

    def __init__(
        self,
        field: str,
        value: object,
        allowed: str,
        *,
        reason: str | None = None,
        source: Literal["client", "api"] = "client",
        request_id: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.reason = reason
        self.source = source
        self.request_id = request_id
        shown = _short_repr(value)
        text = f"invalid {field}={shown}: {reason}" if reason else f"invalid {field}={shown}"
        super().__init__(f"{text}; allowed: {allowed}")

    @property
    def agent_message(self) -> str:
        if self.source == "api":
            return (
                f"The image service refused option {self.field}={_short_repr(self.value)} ({self.allowed}). "
                "Nothing was generated. Call the tool again with a different value, or leave the option out."
            )
        return (
            f"Invalid option {self.field}={_short_repr(self.value)}. Allowed: {self.allowed}. "
            + (f"({self.reason}) " if self.reason else "")
            + "Call the tool again with an allowed value, or leave the option out."
        )


class InvalidInputError(ImageGenerationError):
    """An input image, mask or handle reference that cannot be used (unknown id, path outside the allowed
    directories, not an image, too large, mask size mismatch, ...)."""


class ImageNotFoundError(InvalidInputError, LookupError):
    """No image with this id exists in the store."""

    def __init__(self, image_id: str) -> None:
        self.image_id = image_id
        super().__init__(
            f"no image with id {image_id!r} in the store; use an id returned by an earlier image tool call"
        )


class ModerationBlockedError(ImageGenerationError):
    """The request or the generated image was blocked by OpenAI's moderation.

    Retrying the same prompt will fail again (and may be billed): rephrase the request instead.
    """

    def __init__(
        self,
        message: str,
        *,
        categories: Sequence[str] = (),
        stage: str | None = None,
        response_id: str | None = None,
        call_id: str | None = None,
    ) -> None:
        self.categories = tuple(categories)
        self.stage = stage
        self.response_id = response_id
        self.call_id = call_id
        detail = []
        if self.categories:
            detail.append("categories: " + ", ".join(self.categories))
        if stage:
            detail.append(f"stage: {stage}")
        suffix = f" ({'; '.join(detail)})" if detail else ""
        super().__init__(f"image generation blocked by moderation{suffix}: {message}")

    @property
    def agent_message(self) -> str:
        cats = f" (categories: {', '.join(self.categories)})" if self.categories else ""
        return (
            f"The image request was blocked by the content moderation system{cats}. Do not retry the same "
            "prompt: it will be blocked again. Rephrase the request to avoid the flagged content, or tell the "
            "user it cannot be drawn."
        )


class GenerationFailedError(ImageGenerationError):
    """The API accepted the request but the image generation call failed."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        response_id: str | None = None,
        call_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        self.code = code
        self.response_id = response_id
        self.call_id = call_id
        self.retryable = retryable
        super().__init__(message)

    @property
    def agent_message(self) -> str:
        if self.retryable:
            return f"The image generation failed on the service side ({self}). Try again later."
        return f"The image generation failed: {self}"


class NoImageReturnedError(GenerationFailedError):
    """The response contains no image: the text model answered without calling the image tool, or the
    image item carried no result. ``output_text`` holds what the model said instead, if anything."""

    def __init__(self, message: str, *, response_id: str | None = None, output_text: str = "") -> None:
        self.output_text = output_text
        super().__init__(message, code="no_image", response_id=response_id)


class APIError(ImageGenerationError):
    """The OpenAI API (or the network) refused or failed the request.

    Wraps the SDK exception (``__cause__``, sanitised) and keeps the HTTP status, the request id, the API's error
    code and, when the API had already created a response, its ``response_id``: an image that response holds
    can still be stored with :meth:`ImageGenerator.recover(response_id) <imagegen_tool.ImageGenerator.recover>`.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        response_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.param = param
        self.retryable = retryable
        self.retry_after = retry_after
        self.response_id = response_id
        parts = [message]
        if status_code is not None:
            parts.append(f"status {status_code}")
        if request_id:
            parts.append(f"request id {request_id}")
        if response_id:
            parts.append(f"response id {response_id}")
        super().__init__(" | ".join(parts))

    @property
    def agent_message(self) -> str:
        if self.retryable:
            wait = f" (wait at least {self.retry_after:g} s)" if self.retry_after else ""
            return f"The image service is temporarily unavailable ({self}). Try again later{wait}."
        return f"The image service refused the request: {self}"


class QuotaExceededError(APIError):
    """The account's quota or billing limit is exhausted (``429 insufficient_quota``). Not retryable: every
    call fails until someone adds credit or raises the limit."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs["retryable"] = False
        super().__init__(message, **kwargs)

    @property
    def agent_message(self) -> str:
        return (
            "The image service account has run out of quota or billing credit. Retrying will not help: "
            "tell the user that image generation is unavailable until the account's billing is fixed."
        )


class MalformedResponseError(APIError):
    """The API answered with a body that cannot be read: not JSON, an HTML page, a cut body, or fields of the
    wrong type. The fault is the service's (or a proxy's), never the caller's arguments.

    ``response_id`` names the response when it could be read from the body: its images may still be
    recoverable with ``ImageGenerator.recover(response_id)``. Without a response id nothing shows that an
    image was made."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        # With a response id the image may exist (and be paid for): recover it instead of generating again.
        kwargs.setdefault("retryable", kwargs.get("response_id") is None)
        super().__init__(message, **kwargs)

    @property
    def agent_message(self) -> str:
        if self.response_id:
            return (
                "The image service sent a reply that could not be read (a service problem, not your arguments). "
                f"The image may still be recoverable from response {self.response_id}: tell the user; do not "
                "call the tool again with the same request, which would pay for a second image."
            )
        return (
            "The image service sent a reply that could not be read (a service problem, not your arguments). "
            "Try again later."
        )


class ConfigurationError(ImageGenerationError):
    """The tool is not set up to make requests (no API key, conflicting client settings, ...)."""

    @property
    def agent_message(self) -> str:
        return f"The image tool is not configured correctly; tell the user: {self}"


class StorageError(ImageGenerationError, OSError):
    """The image could not be written to or read from the store. Nothing was left half-written.

    When the API had already delivered the image (it is paid for), ``response_id`` names the response, so
    ``ImageGenerator.recover(response_id)`` can store it once the store is writable again, and ``undelivered``
    keeps the decoded bytes of every image that could not be stored (``(call_id, bytes)`` pairs)."""

    def __init__(
        self,
        message: str,
        *,
        response_id: str | None = None,
        undelivered: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.response_id = response_id
        self.undelivered = tuple(undelivered)
        super().__init__(message)

    @property
    def agent_message(self) -> str:
        if self.response_id:
            return (
                f"The image was generated but could not be saved ({self}). Do not generate it again: tell the "
                f"user the image storage failed; the image can be recovered from response {self.response_id}."
            )
        return f"The image storage failed ({self}); tell the user."


class BudgetExceededError(ImageGenerationError):
    """Refused before any request: the call would go over a :class:`~imagegen_tool.budget.Budget` (or its cost
    cannot be estimated while the budget caps dollars). Nothing was sent and nothing was spent.

    ``reason``: ``"usd"`` (the estimate does not fit in what is left), ``"images"`` (too many images), or
    ``"unpriced"`` (no published price to estimate the call, and ``Budget(unpriced="refuse")``). ``spent_usd``
    and ``spent_images`` include calls still running (their estimates are reserved)."""

    def __init__(
        self,
        message: str,
        *,
        reason: Literal["usd", "images", "unpriced"],
        per: str,
        limit_usd: Any = None,
        spent_usd: Any = None,
        estimate_usd: Any = None,
        limit_images: int | None = None,
        spent_images: int | None = None,
        requested_images: int | None = None,
    ) -> None:
        self.reason = reason
        self.per = per
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd
        self.limit_images = limit_images
        self.spent_images = spent_images
        self.requested_images = requested_images
        super().__init__(message)

    @property
    def agent_message(self) -> str:
        scope = {"call": "a single call", "session": "this conversation", "generator": "this tool"}.get(
            self.per, self.per
        )
        if self.reason == "unpriced":
            return (
                f"Not generated: the image budget for {scope} caps spending in dollars, and the cost of this request "
                f"cannot be estimated ({self}). Nothing was sent or spent. Asking again will not help; tell the user "
                "the budget needs a model with a published price (or an explicit opt-in)."
            )
        if self.per == "call":
            over = (
                f"would cost up to ${self.estimate_usd}, more than the ${self.limit_usd} allowed per call"
                if self.reason == "usd"
                else f"asks for {self.requested_images} image(s), more than the {self.limit_images} allowed per call"
            )
            return (
                f"Not generated: this request {over}. Nothing was sent or spent. Asking again with the same request "
                "will not help; a lower quality, a smaller size or fewer images costs less."
            )
        spent = []
        if self.limit_usd is not None:
            spent.append(f"spent ${self.spent_usd} of the ${self.limit_usd} limit")
        if self.limit_images is not None:
            spent.append(f"{self.spent_images} of {self.limit_images} images used")
        return (
            f"Not generated: the image budget for {scope} is used up ({'; '.join(spent)}); this request "
            + (
                f"would cost up to ${self.estimate_usd}"
                if self.reason == "usd"
                else f"asks for {self.requested_images} image(s)"
            )
            + ". Nothing was sent or spent. Asking again will not help: tell the user the budget is exhausted."
        )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
