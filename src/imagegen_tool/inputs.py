"""Input images and masks: resolve what a caller or an agent names into checked image data.

An input can be a handle (a :class:`GeneratedImage` or its id), a local file, raw bytes, an ``http(s)`` or
``data:`` URL, or an OpenAI file id (``file-...``). What a caller may name is an :class:`InputPolicy`: the
developer's Python calls may use all of them, while agents (the framework adapters) may only name images this
store handed out, unless the developer opts in. Everything is untrusted: handles are looked up again in the
store (never trusted for their fields), local files are opened once, relative to an opened input directory and
without following symbolic links, and bytes are decoded completely (within a pixel budget) before anything is
uploaded. URLs and file ids are passed to the API as they are, never fetched.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import io
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .errors import ImageNotFoundError, InvalidInputError
from .images import GeneratedImage
from .options import ImageReference
from .store import ImageStore, LocalImageStore, is_valid_image_id

__all__ = [
    "AGENT_INPUT_POLICY",
    "DEVELOPER_INPUT_POLICY",
    "MAX_INPUT_IMAGES",
    "ImageInput",
    "InputImage",
    "InputPolicy",
    "InputResolver",
    "check_mask",
    "input_policy",
]

#: What callers may pass as an input image or mask.
ImageInput: TypeAlias = GeneratedImage | str | os.PathLike[str] | bytes

#: Formats the API accepts as edit inputs.
INPUT_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
DEFAULT_MAX_INPUT_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_INPUT_PIXELS = 64 * 1024 * 1024
#: The API takes at most 16 input images per edit (the SDK's ``images.edit`` docs: "up to 16 images").
MAX_INPUT_IMAGES = 16

_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,(.*)", re.DOTALL)
_FILE_ID = re.compile(r"file-[A-Za-z0-9_-]{1,128}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,20}:")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_ID_HINT = "pass the id of an image returned by an earlier image tool call"


class InputPolicy(BaseModel):
    """Which kinds of input images a caller may name. Ids of images in the store are always allowed.

    The default (:data:`DEVELOPER_INPUT_POLICY`) allows everything, for the developer's own Python calls.
    Agent adapters use :data:`AGENT_INPUT_POLICY` unless configured otherwise: an agent may then only edit
    images this store handed out, so it can neither reference the organisation's OpenAI files, nor make the
    API fetch URLs, nor read local files by name.
    """

    model_config = ConfigDict(frozen=True)

    allow_file_ids: bool = True
    """OpenAI file ids (``file-...``), passed through to the API."""
    allow_input_urls: bool = True
    """``http(s)`` image URLs, passed through to the API (never fetched here)."""
    allow_data_urls: bool = True
    """``data:image/...;base64,...`` URLs (decoded and checked here)."""
    allow_paths: bool = True
    """Local files inside the store or the configured input directories (and bare file names found there)."""
    allow_bytes: bool = True
    """Raw bytes."""
    max_images: int = Field(default=MAX_INPUT_IMAGES, ge=1, le=MAX_INPUT_IMAGES)
    """Most input images per call (after removing duplicates)."""


DEVELOPER_INPUT_POLICY = InputPolicy()
AGENT_INPUT_POLICY = InputPolicy(
    allow_file_ids=False, allow_input_urls=False, allow_data_urls=False, allow_paths=False, allow_bytes=False
)

_active_policy: ContextVar[InputPolicy | None] = ContextVar("imagegen_input_policy", default=None)


@contextlib.contextmanager
def input_policy(policy: InputPolicy) -> Iterator[InputPolicy]:
    """Apply ``policy`` to every input resolved in this context (this thread or task, and the worker threads
    it starts through ``asyncio.to_thread``). Agent adapters wrap their generator calls in it::

        with input_policy(AGENT_INPUT_POLICY):
            generator.generate(prompt, images=agent_ids)
    """
    token = _active_policy.set(policy)
    try:
        yield policy
    finally:
        _active_policy.reset(token)


class InputImage(BaseModel):
    """One resolved input. Either bytes we hold (``data``) or a ``reference`` (a URL or file id we pass
    through); ``handle`` is set when it came from the store, so the backend may continue from the response
    that made it instead of sending the bytes. The bytes of such a handle are read (and checked) only when
    ``data`` is first used, so an edit that continues from a stored response never reads or hashes them."""

    model_config = ConfigDict(frozen=True)

    source: str
    """How the caller named it, for messages (``image ig_...``, ``file cat.png``, ``bytes``, ``url``)."""
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    has_alpha: bool = False
    reference: ImageReference | None = None
    handle: GeneratedImage | None = None

    _data: bytes | None = PrivateAttr(default=None)
    _sha256: str | None = PrivateAttr(default=None)
    _loader: Callable[[], InputImage] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(
        self,
        *,
        data: bytes | None = None,
        sha256: str | None = None,
        loader: Callable[[], InputImage] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(**fields)
        self._data = data
        self._sha256 = sha256 if sha256 is not None or data is None else hashlib.sha256(data).hexdigest()
        self._loader = loader

    @property
    def data(self) -> bytes | None:
        """The image bytes, or ``None`` for a reference. Reads and checks a stored image on first use."""
        self._load()
        return self._data

    @property
    def sha256(self) -> str | None:
        self._load()
        return self._sha256

    @property
    def loaded(self) -> bool:
        """Whether the bytes are in memory (always, except for a stored image not needed so far)."""
        return self._loader is None

    def _load(self) -> None:
        if self._loader is None:
            return
        with self._lock:
            loader = self._loader
            if loader is None:
                return
            checked = loader()
            self._data, self._sha256 = checked._data, checked._sha256
            self._loader = None

    def __repr__(self) -> str:  # never dump bytes into logs
        if self._loader is not None:
            size = "not read yet"
        else:
            size = f"{len(self._data)} bytes" if self._data is not None else "by reference"
        return f"InputImage({self.source}, {size})"

    __str__ = __repr__


class InputResolver:
    """Turns caller-supplied inputs into :class:`InputImage` values, enforcing the policy and the path
    allow-list.

    Args:
        store: the image store; handle ids resolve here, and files inside it are readable by path.
        input_roots: further directories from which local files may be read (relative paths are looked up
            in the store first, then in each root in order).
        max_bytes / max_pixels: limits for input images we read.
        allow_urls: whether ``http(s)://`` URLs may be passed through (kept for compatibility; see ``policy``).
        policy: what callers may name when no :func:`input_policy` context says otherwise.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        input_roots: Sequence[str | os.PathLike[str]] = (),
        max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        max_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
        allow_urls: bool = True,
        policy: InputPolicy | None = None,
    ) -> None:
        self.store = store
        roots: list[Path] = []
        aliases: list[tuple[str, Path]] = []
        candidates = [Path(root).expanduser() for root in input_roots]
        if isinstance(store, LocalImageStore):
            candidates.insert(0, store.root)
        for given in candidates:
            real = given.resolve()
            if real not in roots:
                roots.append(real)
            for alias in {os.path.normpath(os.path.abspath(given)), str(real)}:
                aliases.append((alias, real))
        self.roots = tuple(roots)
        self._aliases = tuple(aliases)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        base = policy or DEVELOPER_INPUT_POLICY
        self.policy = base if allow_urls else base.model_copy(update={"allow_input_urls": False})

    @property
    def allow_urls(self) -> bool:
        return self.policy.allow_input_urls

    def active_policy(self) -> InputPolicy:
        """The policy in force: an :func:`input_policy` context's, else this resolver's."""
        return _active_policy.get() or self.policy

    def resolve(self, value: ImageInput, *, lazy: bool = False) -> InputImage:
        """One input. With ``lazy``, a stored image's bytes are read only when first needed."""
        policy = self.active_policy()
        if isinstance(value, GeneratedImage):
            # Only the id of a handle is used: its other fields may come from a checkpoint or an agent.
            return self._from_store(value.id, lazy=lazy)
        if isinstance(value, bytes | bytearray | memoryview):
            if not policy.allow_bytes:
                raise InvalidInputError(f"raw image bytes are not allowed here; {_ID_HINT}")
            return self.check_bytes(bytes(value), source="bytes")
        if isinstance(value, os.PathLike):
            if not policy.allow_paths:
                raise InvalidInputError(f"file paths are not allowed here; {_ID_HINT}")
            return self._from_path(os.fspath(value))
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(
                f"an input image must be an image id, a path, a URL or bytes, not {_shown(repr(value))}"
            )
        text = value.strip()
        if text.startswith("data:"):
            if not policy.allow_data_urls:
                raise InvalidInputError(f"data URLs are not allowed here; {_ID_HINT}")
            return self._from_data_url(text)
        if text.lower().startswith(("http://", "https://")):
            if not policy.allow_input_urls:
                raise InvalidInputError(f"image URLs are not allowed here; {_ID_HINT}")
            return InputImage(source="url", reference=ImageReference(image_url=text))
        if is_valid_image_id(text):
            try:
                return self._from_store(text, lazy=lazy)
            except ImageNotFoundError:
                if _FILE_ID.fullmatch(text):
                    if policy.allow_file_ids:
                        return InputImage(source=f"file {text}", reference=ImageReference(file_id=text))
                    raise ImageNotFoundError(text) from None
                if not (policy.allow_paths and self._looks_like_path(text)):
                    raise
        elif _SCHEME.match(text) and not os.path.isabs(text):
            kinds = ["image ids"] + ["http(s) URLs"] * policy.allow_input_urls + ["file paths"] * policy.allow_paths
            raise InvalidInputError(f"{_shown(text)} is not a usable input ({', '.join(kinds)} only); {_ID_HINT}")
        if not policy.allow_paths:
            raise InvalidInputError(f"{_shown(text)} is not an image id; {_ID_HINT}")
        return self._from_path(text)

    def resolve_all(self, values: Sequence[ImageInput], *, continuable: bool = False) -> tuple[InputImage, ...]:
        """Every input in order, duplicates removed, at most the policy's ``max_images``. With
        ``continuable`` (the backend can continue from stored responses), the leading stored images that
        qualify are not read: their bytes load only if the backend ends up sending them."""
        policy = self.active_policy()
        unique: list[ImageInput] = []
        seen: set[object] = set()
        for value in values:
            key = _dedupe_key(value)
            if key not in seen:
                seen.add(key)
                unique.append(value)
        if len(unique) > policy.max_images:
            raise InvalidInputError(
                f"{len(unique)} different input images; at most {policy.max_images} can be used in one call"
            )
        resolved: list[InputImage] = []
        digests: set[str] = set()
        leading = continuable
        for value in unique:
            item = self.resolve(value, lazy=leading)
            leading = leading and item.handle is not None and _continuable(item.handle)
            if item.loaded and item.sha256 is not None:
                if item.sha256 in digests:
                    continue  # the same bytes named twice (an id and its path, say)
                digests.add(item.sha256)
            resolved.append(item)
        return tuple(resolved)

    def check_bytes(self, data: bytes, *, source: str) -> InputImage:
        """Validate bytes as an input image: format, size, pixel count, and a complete decode (a truncated or
        corrupt image is refused here rather than uploaded and billed)."""
        if len(data) > self.max_bytes:
            raise InvalidInputError(
                f"{source} is {len(data) / 1e6:.1f} MB; input images may be at most {self.max_bytes / 1e6:.0f} MB"
            )
        from PIL import Image  # on first use: not needed to import the package

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:
                    fmt, width, height = image.format or "", image.width, image.height
                    if fmt in INPUT_FORMATS and 0 < width * height <= self.max_pixels:
                        image.load()  # decodes every pixel: truncated or corrupt data raises here
                    has_alpha = "A" in image.getbands() or "transparency" in image.info
        except Image.DecompressionBombError:
            raise InvalidInputError(f"{source} declares far too many pixels to be a real image") from None
        except Exception:  # untrusted bytes: any decoder failure means "not a readable image"
            raise InvalidInputError(
                f"{source} is not a readable image, or it is truncated or corrupt (png, jpeg or webp expected)"
            ) from None
        if fmt not in INPUT_FORMATS:
            raise InvalidInputError(f"{source} is a {fmt or 'unknown'} image; inputs must be png, jpeg or webp")
        if width * height > self.max_pixels or width <= 0 or height <= 0:
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
        )

    # -- internals ------------------------------------------------------------------------------------------

    def _from_store(self, image_id: str, *, lazy: bool) -> InputImage:
        """A stored image, described by the store's own record. With ``lazy`` and a record that allows
        continuation, the bytes are read only when needed."""
        handle = self.store.get(image_id)
        source = f"image {handle.id}"

        def load() -> InputImage:
            return self.check_bytes(self.store.read_bytes(handle.id), source=source)

        if lazy and _continuable(handle) and handle.mime_type in INPUT_FORMATS.values():
            return InputImage(
                source=source,
                mime_type=handle.mime_type,
                width=handle.width,
                height=handle.height,
                handle=handle,
                loader=load,
            )
        return load().model_copy(update={"handle": handle})

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
        return any(_entry_exists(root, text) for root in self.roots)

    def _from_path(self, text: str) -> InputImage:
        if "\x00" in text or len(text) > 4096 or not text.strip():
            raise InvalidInputError(f"that is not a usable file path; {_ID_HINT}")
        raw = os.path.expanduser(text)
        if os.path.isabs(raw):
            candidates = self._inside(raw)
            if not candidates:
                raise InvalidInputError(
                    f"{_shown(text)} is outside the directories images may be read from; {_ID_HINT}, or a file "
                    "inside the configured input directories"
                )
        else:
            relative = os.path.normpath(raw)
            if relative == ".." or relative.startswith(".." + os.sep):
                raise InvalidInputError(
                    f"{_shown(text)} leads outside the directories images may be read from; {_ID_HINT}"
                )
            candidates = [(root, relative) for root in self.roots]
        for root, relative in candidates:
            try:
                data = _read_confined(root, relative, self.max_bytes)
            except FileNotFoundError:
                continue
            except _Refused as exc:
                raise InvalidInputError(f"cannot use {_shown(text)} as an input image: {exc.reason}") from None
            except OSError as exc:
                raise InvalidInputError(f"cannot read {_shown(text)}: {exc.strerror or exc}") from None
            return self.check_bytes(data, source=f"file {_shown(os.path.basename(relative))}")
        raise InvalidInputError(
            f"no image {_shown(text)}: not an id from an earlier image tool call, nor a file in the input directories"
        )

    def _inside(self, path: str) -> list[tuple[Path, str]]:
        normal = os.path.normpath(path)
        found: list[tuple[Path, str]] = []
        for alias, real in self._aliases:
            if normal.startswith(alias.rstrip(os.sep) + os.sep):
                relative = normal[len(alias.rstrip(os.sep)) + 1 :]
                if (real, relative) not in found:
                    found.append((real, relative))
        return found


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _read_confined(root: Path, relative: str, max_bytes: int) -> bytes:
    """Read ``relative`` under ``root``, walking one component at a time from an opened ``root`` without
    following any symbolic link, and only a regular file: a folder swapped for a link between a check and
    the read cannot redirect it, because there is no separate check."""
    parts = [part for part in relative.split(os.sep) if part not in ("", ".")]
    if not parts:
        raise _Refused("it is a directory")
    directory = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=directory)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _Refused(
                        f"{_shown(part)} is a symbolic link or not a directory (links are not followed)"
                    ) from None
                raise
            os.close(directory)
            directory = inner
        try:
            fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=directory)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refused("it is a symbolic link (links are not followed)") from None
            if exc.errno in (errno.ENOTDIR, errno.EISDIR):
                raise _Refused("it is not a regular file") from None
            raise
    finally:
        os.close(directory)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("it is not a regular file")
        if info.st_size > max_bytes:
            raise _Refused(f"it is larger than {max_bytes / 1e6:.0f} MB, the input limit")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise _Refused(f"it is larger than {max_bytes / 1e6:.0f} MB, the input limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _entry_exists(root: Path, name: str) -> bool:
    if "\x00" in name or os.sep in name or name in (".", ".."):
        return False
    try:
        os.stat(os.path.join(root, name), follow_symlinks=False)
    except (OSError, ValueError):
        return False
    return True


def _continuable(handle: GeneratedImage) -> bool:
    return bool(handle.response_stored and handle.response_id and handle.call_id)


def _dedupe_key(value: ImageInput) -> object:
    if isinstance(value, GeneratedImage):
        return ("text", value.id)
    if isinstance(value, str):
        return ("text", value.strip())
    if isinstance(value, bytes | bytearray | memoryview):
        return ("bytes", hashlib.sha256(value).hexdigest())
    if isinstance(value, os.PathLike):
        return ("text", os.fspath(value))
    return ("object", id(value))


def _shown(text: str, limit: int = 120) -> str:
    """A caller's value as it may appear in a message: quoted, cut short, control characters escaped."""
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


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
