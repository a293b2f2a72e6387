"""The emulator's own rules for the Images API endpoints (``/v1/images/generations`` and ``/v1/images/edits``).

A model of the server, kept apart from the client's option table on purpose: which parameters each endpoint
takes, how many input images an edit takes, what a mask must be, and which outputs cannot stream or come in
several images. Figures are those the installed SDK documents (``types/image_generate_params.py``,
``types/image_edit_params.py``, 2026-11-25); the wording of refusals follows the recorded Images API error
(``vercel-ai/gpt-image-response-format-error.json``: ``Unknown parameter: 'response_format'.``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

__all__ = [
    "EDIT_PARAMS",
    "GENERATE_PARAMS",
    "ImagesParamError",
    "check_edit_files",
    "check_images_params",
    "stream_usages",
]

# Parameters the server knows per endpoint (the legacy DALL·E ones are known, and refused for GPT Image).
GENERATE_PARAMS = frozenset(
    {
        "prompt",
        "background",
        "complexity",
        "frame_count",
        "frame_duration_ms",
        "model",
        "moderation",
        "n",
        "output_compression",
        "output_format",
        "partial_images",
        "quality",
        "response_format",
        "safety_identifier",
        "size",
        "stream",
        "style",
        "svg",
        "user",
    }
)
EDIT_PARAMS = (GENERATE_PARAMS - {"style"}) | {"image", "image[]", "input_fidelity", "mask", "markup"}

MAX_EDIT_IMAGES = 16
MAX_INPUT_BYTES = 50 * 1024 * 1024
MASK_MAX_BYTES = 4 * 1024 * 1024
_SINGLE_IMAGE_FORMATS = ("svg",)


class ImagesParamError(Exception):
    """A refusal in the API's error shape (status 400)."""

    def __init__(self, message: str, param: str | None, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def check_images_params(params: Mapping[str, Any], *, edit: bool) -> None:
    """Refuse parameters the endpoint does not have, and combinations the server refuses."""
    known = EDIT_PARAMS if edit else GENERATE_PARAMS
    for name in params:
        base = name.split("[", 1)[0] if name.startswith("svg[") else name
        if base not in known:
            raise ImagesParamError(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    n = params.get("n")
    fmt = params.get("output_format") or "png"
    if isinstance(n, int) and n > 1 and fmt in _SINGLE_IMAGE_FORMATS:
        raise ImagesParamError(f"Invalid value for 'n': {fmt} output supports n=1 only.", "n", "invalid_value")


def check_edit_files(images: Sequence[bytes], mask: bytes | None, *, has_markup: bool = False) -> None:
    """Input images and mask of an edit, checked as the SDK documents: at most 16 images under 50 MB each; the
    mask a PNG with an alpha channel, under 4 MB, the first image's size, not combined with a markup."""
    if len(images) > MAX_EDIT_IMAGES:
        raise ImagesParamError(
            f"Invalid 'image': expected at most {MAX_EDIT_IMAGES} images, but got {len(images)}.",
            "image",
            "invalid_value",
        )
    for index, data in enumerate(images):
        if len(data) >= MAX_INPUT_BYTES:
            raise ImagesParamError(
                f"Invalid 'image[{index}]': the file is larger than 50 MB.", f"image[{index}]", "invalid_value"
            )
    if mask is None:
        return
    if has_markup:
        raise ImagesParamError("'mask' cannot be combined with 'markup'.", "mask", "invalid_value")
    if len(mask) >= MASK_MAX_BYTES:
        raise ImagesParamError("Invalid 'mask': the mask must be less than 4 MB.", "mask", "invalid_value")
    try:
        with Image.open(io.BytesIO(mask)) as opened:
            fmt, size, alpha = opened.format, opened.size, "A" in opened.getbands() or "transparency" in opened.info
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImagesParamError("Invalid 'mask': expected a PNG image.", "mask", "invalid_image_format") from None
    if fmt != "PNG":
        raise ImagesParamError(
            f"Invalid 'mask': expected a PNG image, got {fmt or 'unknown'}.", "mask", "invalid_image_format"
        )
    if not alpha:
        raise ImagesParamError(
            "Invalid 'mask': the mask must have an alpha channel (transparent areas mark where to edit).",
            "mask",
            "invalid_value",
        )
    try:
        with Image.open(io.BytesIO(images[0])) as first:
            first_size = first.size
    except (UnidentifiedImageError, OSError, ValueError, IndexError):
        return  # the image itself is refused by the caller's own check
    if size != first_size:
        raise ImagesParamError(
            f"Invalid 'mask': the mask is {size[0]}x{size[1]} but the image is {first_size[0]}x{first_size[1]}; "
            "they must have the same dimensions.",
            "mask",
            "invalid_value",
        )


def stream_usages(usage: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """The ``usage`` of each ``.completed`` event of a streamed call with ``n`` images: the input once (on the
    first image), each image's own output tokens; their sum is the non-streamed body's ``usage``."""
    output = int(usage.get("output_tokens", 0))
    per_image = [output // n + (1 if i < output % n else 0) for i in range(n)]
    details_in = dict(usage.get("input_tokens_details") or {})
    result: list[dict[str, Any]] = []
    for index, out in enumerate(per_image):
        first = index == 0
        input_tokens = int(usage.get("input_tokens", 0)) if first else 0
        result.append(
            {
                "input_tokens": input_tokens,
                "input_tokens_details": {
                    "image_tokens": int(details_in.get("image_tokens", 0)) if first else 0,
                    "text_tokens": int(details_in.get("text_tokens", 0)) if first else 0,
                },
                "output_tokens": out,
                "total_tokens": input_tokens + out,
                "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
            }
        )
    return result
