"""Translate an :class:`ImageRequest` into ``client.responses.create(**kwargs)`` arguments. Pure functions.

The text model is forced to call the ``image_generation`` tool (``tool_choice``), with the validated options as
the tool's parameters, so every option the caller set reaches the wire unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .inputs import InputImage
from .options import ImageMask, ImageOptions, ImageReference

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_TEXT_MODEL",
    "ImageRequest",
    "WireInputs",
    "build_responses_request",
    "split_continuation",
]

#: The text model that drives the hosted tool. A current (not deprecated, per the SDK's ``ChatModel``
#: notes), inexpensive model is enough: it only hands the prompt to the image model.
DEFAULT_TEXT_MODEL = "gpt-5.4-mini"

DEFAULT_INSTRUCTIONS = (
    "You are the front end of an image generation tool. Call the image_generation tool exactly once to fulfil "
    "the request, keeping every detail the user asked for. Do not ask questions and do not answer in text."
)

MAX_PROMPT_CHARS = 32_000
#: The SDK: "a string that uniquely identifies each user, with a maximum length of 128 characters".
MAX_SAFETY_IDENTIFIER_CHARS = 128


class ImageRequest(BaseModel):
    """One image generation or edit with its inputs resolved and checked. The backend seam's input: each
    backend decides how the inputs travel (continuation, upload, inline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    options: ImageOptions = Field(default_factory=ImageOptions)
    inputs: tuple[InputImage, ...] = ()
    """Input images in order: the first is the one to edit."""
    mask: InputImage | None = None
    """Inpainting mask for the first input (alpha = where to edit)."""
    previous_response_id: str | None = None
    """Continue explicitly from this stored response (e.g. an agent already on the Responses API)."""
    safety_identifier: str | None = Field(default=None, min_length=1, max_length=MAX_SAFETY_IDENTIFIER_CHARS)
    """A stable id of the end user (e.g. a hash of the account id), sent as ``safety_identifier``."""

    @field_validator("prompt")
    @classmethod
    def _prompt_has_words(cls, prompt: str) -> str:
        # Control and zero-width characters count as nothing: such a prompt would be paid for and mean nothing.
        if not any(ch.isprintable() and not ch.isspace() for ch in prompt):
            raise ValueError("the prompt is empty or only whitespace; describe the image to draw")
        return prompt

    @property
    def input_ids(self) -> tuple[str, ...]:
        """Handle ids of the inputs that came from the store (lineage for the results)."""
        return tuple(item.handle.id for item in self.inputs if item.handle is not None)


class WireInputs(BaseModel):
    """How a request's inputs travel on the Responses API."""

    model_config = ConfigDict(frozen=True)

    previous_response_id: str | None = None
    item_ids: tuple[str, ...] = ()
    """``image_generation_call`` ids sent as ``item_reference`` items."""
    images: tuple[ImageReference, ...] = ()
    """Images sent as ``input_image`` parts (file ids or URLs), in order, after any referenced ones."""
    mask: ImageMask | None = None


def split_continuation(
    request: ImageRequest, *, allowed: bool
) -> tuple[str | None, tuple[str, ...], tuple[InputImage, ...]]:
    """Which inputs can be referred to instead of sent: the leading run of handles whose responses were stored.

    The first continues through ``previous_response_id`` (the model also sees what was asked before); the
    others become ``item_reference`` items. Only a leading run qualifies, so the order of images is kept.
    Returns ``(previous_response_id, item_ids, inputs_to_send)``.
    """
    previous = request.previous_response_id
    if not allowed:
        return previous, (), request.inputs
    leading = []
    for item in request.inputs:
        handle = item.handle
        if handle is None or not (handle.response_stored and handle.response_id and handle.call_id):
            break
        leading.append(handle)
    if not leading:
        return previous, (), request.inputs
    if previous is None:
        previous = leading[0].response_id
    item_ids = tuple(h.call_id for h in leading if h.response_id != previous and h.call_id)
    return previous, item_ids, request.inputs[len(leading) :]


def build_responses_request(
    request: ImageRequest,
    wire: WireInputs | None = None,
    *,
    text_model: str = DEFAULT_TEXT_MODEL,
    instructions: str | None = DEFAULT_INSTRUCTIONS,
    store: bool = True,
    stream: bool = False,
    extra: dict[str, Any] | None = None,
    completion_window: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``client.responses.create``. ``completion_window`` (``2h``/``8h``: discounted
    background execution) is sent as ``background_options.completion_window``; it needs background mode and no
    streaming, which the caller guarantees."""
    wire = wire or WireInputs(previous_response_id=request.previous_response_id)
    tool = request.options.to_tool_param()
    if wire.mask is not None and "input_image_mask" not in tool:
        tool["input_image_mask"] = wire.mask.model_dump(exclude_none=True)
    kwargs: dict[str, Any] = {
        "model": text_model,
        "input": _input_items(request.prompt, wire),
        "tools": [tool],
        "tool_choice": {"type": "image_generation"},
        "store": store,
    }
    if instructions:
        kwargs["instructions"] = instructions
    if wire.previous_response_id:
        kwargs["previous_response_id"] = wire.previous_response_id
    if request.safety_identifier:
        kwargs["safety_identifier"] = request.safety_identifier
    if stream:
        kwargs["stream"] = True
    if completion_window is not None and completion_window != "soonest":
        kwargs["background_options"] = {"completion_window": completion_window}
    if extra:
        kwargs.update(extra)
    return kwargs


def _input_items(prompt: str, wire: WireInputs) -> str | list[dict[str, Any]]:
    if not wire.images and not wire.item_ids:
        return prompt
    items: list[dict[str, Any]] = [{"type": "item_reference", "id": call_id} for call_id in wire.item_ids]
    content: list[dict[str, Any]] = [{"type": "input_text", "text": prompt}]
    content.extend(image.to_input_image() for image in wire.images)
    items.append({"role": "user", "content": content})
    return items
