"""Input images and masks: resolve what a caller or an agent names into checked image data.

An input can be a handle (a :class:`GeneratedImage` or its id), a local file, raw bytes, an ``http(s)`` or
``data:`` URL, or an OpenAI file id (``file-...``). Local paths are untrusted: they must resolve, symlinks
followed, inside the store or a configured input root. Bytes we hold are checked with Pillow (format, size,
pixel count) before anything is uploaded; URLs and file ids are passed to the API as they are, never fetched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from pydantic import BaseModel, ConfigDict

from .errors import ImageNotFoundError, InvalidInputError
from .images import GeneratedImage
from .options import ImageReference
from .store import ImageStore, LocalImageStore, is_valid_image_id

__all__ = ["ImageInput", "InputImage", "InputResolver", "check_mask"]

#: What callers may pass as an input image or mask.
ImageInput: TypeAlias = GeneratedImage | str | os.PathLike[str] | bytes

#: Formats the API accepts as edit inputs.
INPUT_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
DEFAULT_MAX_INPUT_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_INPUT_PIXELS = 64 * 1024 * 1024

_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,(.*)", re.DOTALL)
_FILE_ID = re.compile(r"file-[A-Za-z0-9_-]{1,128}")


class InputImage(BaseModel):
    """One resolved input. Exactly one of ``data`` (bytes we hold) and ``reference`` (a URL or file id we pass
    through) is set; ``handle`` is set when it came from the store, so the backend may continue from the
    response that made it instead of sending the bytes again."""

    model_config = ConfigDict(frozen=True)

    source: str
    """How the caller named it, for messages (``handle ig_...``, ``path cat.png``, ``bytes``, ``url``)."""
    data: bytes | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    has_alpha: bool = False
    sha256: str | None = None
    reference: ImageReference | None = None
    handle: GeneratedImage | None = None

    def __repr__(self) -> str:  # never dump bytes into logs
        size = f"{len(self.data)} bytes" if self.data is not None else "by reference"
        return f"InputImage({self.source}, {size})"

    __str__ = __repr__


class InputResolver:
    """Turns caller-supplied inputs into :class:`InputImage` values, enforcing the path allow-list.

    Args:
        store: the image store; handle ids resolve here, and files inside it are always readable.
        input_roots: further directories from which local files may be read (relative paths are looked up
            in the store first, then in each root in order).
        max_bytes / max_pixels: limits for input images we read.
        allow_urls: whether ``http(s)://`` URLs may be passed through to the API.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        input_roots: Sequence[str | os.PathLike[str]] = (),
        max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        max_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
        allow_urls: bool = True,
    ) -> None:
        self.store = store
        roots = [Path(root).expanduser().resolve() for root in input_roots]
        if isinstance(store, LocalImageStore):
            roots.insert(0, store.root)
        self.roots = tuple(roots)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.allow_urls = allow_urls

    def resolve(self, value: ImageInput) -> InputImage:
        if isinstance(value, GeneratedImage):
            return self._from_handle(value)
        if isinstance(value, bytes | bytearray):
            return self.check_bytes(bytes(value), source="bytes")
        if isinstance(value, os.PathLike):
            return self._from_path(os.fspath(value))
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"an input image must be an image id, a path, a URL or bytes, not {value!r:.80}")
        text = value.strip()
        if text.startswith("data:"):
            return self._from_data_url(text)
        if text.startswith(("http://", "https://")):
            if not self.allow_urls:
                raise InvalidInputError("image URLs are not allowed here; pass an image id returned by the tool")
            return InputImage(source="url", reference=ImageReference(image_url=text))
        if is_valid_image_id(text):
            try:
                return self._from_handle(self.store.get(text))
            except ImageNotFoundError:
                if _FILE_ID.fullmatch(text):
                    return InputImage(source=f"file {text}", reference=ImageReference(file_id=text))
                if not self._looks_like_path(text):
                    raise
        return self._from_path(text)

    def resolve_all(self, values: Sequence[ImageInput]) -> tuple[InputImage, ...]:
        return tuple(self.resolve(value) for value in values)

    def check_bytes(self, data: bytes, *, source: str) -> InputImage:
        """Validate bytes as an input image (format, size, pixel count) and describe them."""
        if len(data) > self.max_bytes:
            raise InvalidInputError(
                f"{source} is {len(data) / 1e6:.1f} MB; input images may be at most {self.max_bytes / 1e6:.0f} MB"
            )
        from PIL import Image, UnidentifiedImageError  # on first use: keeps Pillow out of `import imagegen_tool`

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:
                    fmt, width, height = image.format or "", image.width, image.height
                    has_alpha = "A" in image.getbands() or "transparency" in image.info
        except (
            UnidentifiedImageError,
            OSError,
            ValueError,
            Image.DecompressionBombWarning,
            Image.DecompressionBombError,
        ):
            raise InvalidInputError(f"{source} is not a readable image (png, jpeg or webp expected)") from None
        if fmt not in INPUT_FORMATS:
            raise InvalidInputError(f"{source} is a {fmt or 'unknown'} image; inputs must be png, jpeg or webp")
        if width * height > self.max_pixels:
            raise InvalidInputError(
                f"{source} is {width}x{height}; input images may have at most {self.max_pixels} pixels"
            )
        return InputImage(
            source=source,
            data=data,
            mime_type=INPUT_FORMATS[fmt],
            width=width,
            height=height,
            has_alpha=has_alpha,
            sha256=hashlib.sha256(data).hexdigest(),
        )

    # -- internals ------------------------------------------------------------------------------------------

    def _from_handle(self, handle: GeneratedImage) -> InputImage:
        checked = self.check_bytes(self.store.read_bytes(handle.id), source=f"image {handle.id}")
        return checked.model_copy(update={"handle": handle})

    def _from_data_url(self, text: str) -> InputImage:
        match = _DATA_URL.fullmatch(text)
        if match is None:
            raise InvalidInputError("a data URL input must look like data:image/png;base64,...")
        if len(match.group(2)) * 3 // 4 > self.max_bytes + 3:
            raise InvalidInputError(f"the data URL image is larger than {self.max_bytes / 1e6:.0f} MB")
        try:
            data = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError("the data URL's base64 is invalid or was truncated") from None
        return self.check_bytes(data, source="data URL")

    def _looks_like_path(self, text: str) -> bool:
        return any((root / text).exists() for root in self.roots)

    def _from_path(self, text: str) -> InputImage:
        path = self._allowed_path(text)
        try:
            if path.stat().st_size > self.max_bytes:
                raise InvalidInputError(f"{path.name} is larger than {self.max_bytes / 1e6:.0f} MB, the input limit")
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {text[:200]!r}: {exc.strerror}") from None
        return self.check_bytes(data, source=f"file {Path(text).name}")

    def _allowed_path(self, text: str) -> Path:
        """The real path of ``text`` if it lies inside an allowed root; relative paths try each root."""
        if "\x00" in text or len(text) > 4096:
            raise InvalidInputError("that is not a usable file path; pass an image id returned by the tool")
        try:
            return self._contained(text)
        except (OSError, ValueError, RuntimeError):  # name too long, symlink loop, ...
            raise InvalidInputError(
                f"cannot use {text[:200]!r} as an input image path; pass an image id returned by the tool"
            ) from None

    def _contained(self, text: str) -> Path:
        raw = Path(text).expanduser()
        candidates = [raw] if raw.is_absolute() else [root / raw for root in self.roots]
        for candidate in candidates:
            real = candidate.resolve()  # symlinks followed; containment is decided before existence
            if not any(real.is_relative_to(root) for root in self.roots):
                raise InvalidInputError(
                    f"{text!r} is outside the directories images may be read from; pass an image id returned by "
                    "the tool, or a file inside the configured input directories"
                )
            if real.is_file():
                return real
        raise InvalidInputError(
            f"no image {text!r}: not an id from an earlier image tool call, nor a file in the input directories"
        )


def check_mask(mask: InputImage, image: InputImage | None) -> None:
    """A mask must have an alpha channel and, when the image to edit is known, the same size."""
    if mask.data is None:
        return
    if not mask.has_alpha:
        raise InvalidInputError(
            "the mask needs an alpha channel: transparent pixels mark where to edit (use a PNG with transparency)"
        )
    if image is not None and image.width and (mask.width, mask.height) != (image.width, image.height):
        raise InvalidInputError(
            f"the mask is {mask.width}x{mask.height} but the image to edit is {image.width}x{image.height}; "
            "they must be the same size"
        )
