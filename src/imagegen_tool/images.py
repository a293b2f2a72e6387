"""The values callers get back: :class:`GeneratedImage` handles and the token :class:`Usage` of a call.

A handle is small (no image bytes): agents see its id and location, programs and UIs get the whole value.
``ImageRecord`` is what the store persists next to the image; ``GeneratedImage`` adds where the bytes are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .costs import ImageCost
from .options import ImageOptions

__all__ = [
    "GeneratedImage",
    "ImageRecord",
    "ImageTokenUsage",
    "PartialImage",
    "ReportedSettings",
    "SvgUsage",
    "TokenUsage",
    "Usage",
]


class TokenUsage(BaseModel):
    """Tokens of the text model that drove the call (the Responses API ``usage``)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


class ImageTokenUsage(BaseModel):
    """Tokens of the image model (the Responses API ``tool_usage.image_gen``, or the Images API ``usage``)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int | None = None
    input_image_tokens: int | None = None
    output_image_tokens: int | None = None
    output_text_tokens: int | None = None
    cached_tokens: int | None = None
    cached_text_tokens: int | None = None
    """Of the input text tokens, how many were cached (``cached_tokens_details``; ``None`` = not reported)."""
    cached_image_tokens: int | None = None
    """Of the input image tokens, how many were cached (``None`` = not reported)."""


class SvgUsage(TokenUsage):
    """Tokens the SVG author model spent on one image (``svg_usage`` of its ``image_generation_call``)."""

    model: str | None = None


class Usage(BaseModel):
    """What one API call consumed, as the API reported it. Either part is ``None`` when not reported."""

    model_config = ConfigDict(frozen=True)

    text: TokenUsage | None = None
    image: ImageTokenUsage | None = None
    svg: SvgUsage | None = None
    """The SVG author model's tokens for this image (svg output only; per image, not per response)."""


class ReportedSettings(BaseModel):
    """The settings the API reports it used, with ``auto`` resolved (e.g. size ``auto`` → ``1024x1024``)."""

    model_config = ConfigDict(frozen=True)

    action: str | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None


class ImageRecord(BaseModel):
    """Everything known about a stored image except where its bytes are. Persisted as JSON beside the image,
    so any process sharing the store can resolve the handle and continue editing from it."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Handle id: pass it back to the tool to edit this image."""
    filename: str = ""
    """The image file's name inside the store (set by the store)."""
    mime_type: str
    """Detected from the bytes, not taken from the request."""
    format: str
    """``png``, ``webp``, ``jpeg``, ``gif``, ``svg``, or ``bin`` when the bytes are not a known image type."""
    width: int | None = None
    height: int | None = None
    byte_size: int = 0
    sha256: str = ""
    prompt: str
    revised_prompt: str | None = None
    call_id: str | None = None
    """The ``image_generation_call`` item id (``ig_...``)."""
    response_id: str | None = None
    """The Responses API response id, for ``previous_response_id`` continuation."""
    response_stored: bool = False
    """Whether that response was stored (``store=True``), so later edits may continue from it."""
    model: str | None = None
    """The image model the request used (the configured one, else the API default at the time)."""
    text_model: str | None = None
    """The text model that drove the call (the Responses API reports its resolved snapshot)."""
    options: ImageOptions = Field(default_factory=ImageOptions)
    """The options requested."""
    reported: ReportedSettings = Field(default_factory=ReportedSettings)
    """The settings the API reported it used."""
    usage: Usage | None = None
    """Token usage of the API call that produced this image (shared by all images of that call)."""
    cost: ImageCost | None = None
    """The estimated (upper bound, before the call) and actual (from ``usage``) cost in US dollars of the call that
    produced this image, shared by all images of that call; ``usd`` is ``None`` where a price is unknown."""
    input_ids: tuple[str, ...] = ()
    """Handles of the images this one was edited from."""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    backend: str = "responses"


class GeneratedImage(ImageRecord):
    """A handle to a stored image: what a generate or edit call returns."""

    uri: str
    """Where the image is: ``file:///...`` for the local store."""
    path: str | None = None
    """The local file path, when the store is on the local file system."""
    url: str | None = None
    """A URL a browser can open (the store's ``public_base_url`` mapping or a presigned URL), if configured."""

    def summary(self) -> dict[str, Any]:
        """The few fields an agent needs (id, location, size, format, revised prompt), without the bytes."""
        data: dict[str, Any] = {"id": self.id, "uri": self.uri, "mime_type": self.mime_type}
        if self.path:
            data["path"] = self.path
        if self.url:
            data["url"] = self.url
        if self.width and self.height:
            data["size"] = f"{self.width}x{self.height}"
        if self.revised_prompt:
            data["revised_prompt"] = self.revised_prompt
        if self.cost is not None and self.cost.usd is not None:
            data["cost_usd"] = str(self.cost.usd.quantize(Decimal("0.000001")))
        return data


class PartialImage(BaseModel):
    """A stored preview that arrived while the final image rendered. ``data`` holds its bytes for immediate
    rendering (not serialised)."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    index: int
    """0-based, in the order the API sent them; each replaces the previous preview of the same call."""
    uri: str
    path: str | None = None
    url: str | None = None
    """A URL a browser can open, when the store has a ``public_base_url``."""
    mime_type: str
    width: int | None = None
    height: int | None = None
    byte_size: int
    data: bytes = Field(default=b"", repr=False, exclude=True)
