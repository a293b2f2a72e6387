"""Translate an :class:`ImageRequest` into ``client.responses.create(**kwargs)`` arguments. Pure functions.

The text model is forced to call the ``image_generation`` tool (``tool_choice``), with the validated options as
the tool's parameters, so every option the caller set reaches the wire unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .options import ImageOptions, ImageReference

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_TEXT_MODEL",
    "ImageReference",
    "ImageRequest",
    "build_responses_request",
]

#: The text model that drives the hosted tool. A current (not deprecated, per the SDK's ``ChatModel``
#: notes), inexpensive model is enough: it only hands the prompt to the image model.
DEFAULT_TEXT_MODEL = "gpt-5.4-mini"

DEFAULT_INSTRUCTIONS = (
    "You are the front end of an image generation tool. Call the image_generation tool exactly once to fulfil "
    "the request, keeping every detail the user asked for. Do not ask questions and do not answer in text."
)

MAX_PROMPT_CHARS = 32_000


class ImageRequest(BaseModel):
    """One image generation or edit, resolved down to what goes on the wire. The backend seam's input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    options: ImageOptions = Field(default_factory=ImageOptions)
    input_images: tuple[ImageReference, ...] = ()
    """Images sent with the prompt, in order (first = the one to edit)."""
    previous_response_id: str | None = None
    """Continue from a stored response: its images are in context without being re-sent."""
    image_call_ids: tuple[str, ...] = ()
    """Earlier ``image_generation_call`` items to reference (``item_reference``) when responses are stored."""
    input_ids: tuple[str, ...] = ()
    """Handle ids of the input images, recorded on the results (lineage)."""


def build_responses_request(
    request: ImageRequest,
    *,
    text_model: str = DEFAULT_TEXT_MODEL,
    instructions: str | None = DEFAULT_INSTRUCTIONS,
    store: bool = True,
    stream: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``client.responses.create``."""
    kwargs: dict[str, Any] = {
        "model": text_model,
        "input": _input_items(request),
        "tools": [request.options.to_tool_param()],
        "tool_choice": {"type": "image_generation"},
        "store": store,
    }
    if instructions:
        kwargs["instructions"] = instructions
    if request.previous_response_id:
        kwargs["previous_response_id"] = request.previous_response_id
    if stream:
        kwargs["stream"] = True
    if extra:
        kwargs.update(extra)
    return kwargs


def _input_items(request: ImageRequest) -> str | list[dict[str, Any]]:
    if not request.input_images and not request.image_call_ids:
        return request.prompt
    items: list[dict[str, Any]] = [{"type": "item_reference", "id": call_id} for call_id in request.image_call_ids]
    content: list[dict[str, Any]] = [{"type": "input_text", "text": request.prompt}]
    content.extend(image.to_input_image() for image in request.input_images)
    items.append({"role": "user", "content": content})
    return items
