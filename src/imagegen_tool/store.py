"""Where image bytes live: the :class:`ImageStore` interface and the local-directory :class:`LocalImageStore`.

A store turns bytes plus an :class:`~imagegen_tool.images.ImageRecord` into a :class:`GeneratedImage` handle,
and resolves a handle id back to the record and the bytes, in this process or another one sharing the store.
Writes are atomic (temporary file, then link or rename): a reader never sees a half-written image, and a
failed save leaves nothing behind. Handle ids come from agents and are untrusted: they are checked against a
strict pattern before they touch a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import ValidationError

from .errors import ImageNotFoundError, InvalidInputError, StorageError
from .imageinfo import EXTENSIONS, inspect_image
from .images import GeneratedImage, ImageRecord, PartialImage
from .options import TRUSTED_CONTEXT

__all__ = ["ImageStore", "LocalImageStore", "is_valid_image_id", "new_image_id"]

logger = logging.getLogger(__name__)

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_RECORD_SUFFIX = ".json"
_SESSIONS_DIR = ".sessions"
_CLAIMS_DIR = ".ids"  # one empty file per id ever given out by this store
_PARTIAL_MARK = ".partial-"  # a "." can never be part of a handle id, so previews never collide with images


def is_valid_image_id(image_id: str) -> bool:
    """Handle ids are 1-128 characters of letters, digits, ``_`` and ``-``: never a path."""
    return bool(_ID_RE.fullmatch(image_id))


def new_image_id(prefix: str = "img") -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class ImageStore(ABC):
    """Persistent storage for generated images and their records.

    Implement the abstract sync methods (images, previews, session pointers); the async ones run them in a
    worker thread so large writes never block an event loop. Stores for other back-ends (fsspec, S3) implement
    the same interface.
    """

    @abstractmethod
    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        """Store ``data`` under ``record.id`` (or a fresh id if taken) and return the handle. The store sets
        ``filename``, ``byte_size`` and ``sha256`` from what it wrote."""

    @abstractmethod
    def get(self, image_id: str) -> GeneratedImage:
        """The handle for ``image_id``; raises :class:`ImageNotFoundError`."""

    @abstractmethod
    def read_bytes(self, image_id: str) -> bytes:
        """The image bytes for ``image_id``; raises :class:`ImageNotFoundError`."""

    @abstractmethod
    def delete(self, image_id: str) -> None:
        """Remove the image and its record; unknown ids are ignored."""

    @abstractmethod
    def save_partial(self, data: bytes, *, call_id: str, index: int) -> PartialImage:
        """Store a streamed preview of call ``call_id``. Previews are not handles: no record, no fsync."""

    @abstractmethod
    def delete_partials(self, call_id: str) -> None:
        """Remove every stored preview of ``call_id``."""

    @abstractmethod
    def set_latest(self, session: str, image_id: str) -> None:
        """Remember ``image_id`` as the latest image of a conversation (e.g. a LangGraph thread id)."""

    @abstractmethod
    def latest(self, session: str) -> str | None:
        """The latest image id of a conversation, if any."""

    async def asave(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        return await asyncio.to_thread(self.save, data, record)

    async def aget(self, image_id: str) -> GeneratedImage:
        return await asyncio.to_thread(self.get, image_id)

    async def aread_bytes(self, image_id: str) -> bytes:
        return await asyncio.to_thread(self.read_bytes, image_id)

    async def adelete(self, image_id: str) -> None:
        await asyncio.to_thread(self.delete, image_id)

    def exists(self, image_id: str) -> bool:
        try:
            self.get(image_id)
        except ImageNotFoundError:
            return False
        return True


class LocalImageStore(ImageStore):
    """Images as files in one directory: ``<id>.<ext>`` and the record ``<id>.json`` beside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalImageStore({str(self.root)!r})"

    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        self._ensure_root()
        extension = EXTENSIONS.get(record.format, "bin")
        base_id = record.id if is_valid_image_id(record.id) else new_image_id()
        digest = hashlib.sha256(data).hexdigest()
        image_tmp = self._write_temp(data)
        try:
            image_id, image_path = self._link_unique(image_tmp, base_id, extension)
        finally:
            with contextlib.suppress(FileNotFoundError):
                image_tmp.unlink()
        final = record.model_copy(
            update={"id": image_id, "filename": image_path.name, "byte_size": len(data), "sha256": digest}
        )
        record_tmp: Path | None = None
        try:
            record_tmp = self._write_temp(final.model_dump_json(indent=2).encode())
            os.replace(record_tmp, self._record_path(image_id))
        except BaseException as exc:
            image_path.unlink(missing_ok=True)
            (self.root / _CLAIMS_DIR / image_id).unlink(missing_ok=True)
            if record_tmp is not None:
                record_tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):
                raise StorageError(f"cannot write the record of image {image_id!r}: {exc}") from exc
            raise
        logger.debug("stored image %s (%d bytes) at %s", image_id, len(data), image_path)
        return self._handle(final)

    def get(self, image_id: str) -> GeneratedImage:
        record_path = self._record_path(self._checked(image_id))
        try:
            text = record_path.read_text("utf-8")
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        except OSError as exc:
            raise StorageError(f"cannot read the record of image {image_id!r}: {exc}") from exc
        try:
            record = ImageRecord.model_validate_json(text, context={TRUSTED_CONTEXT: True})
        except ValidationError as exc:
            raise StorageError(f"the record of image {image_id!r} is damaged: {exc.error_count()} errors") from exc
        return self._handle(record)

    def read_bytes(self, image_id: str) -> bytes:
        handle = self.get(image_id)
        try:
            return (self.root / handle.filename).read_bytes()
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        except OSError as exc:
            raise StorageError(f"cannot read image {image_id!r}: {exc}") from exc

    def delete(self, image_id: str) -> None:
        try:
            handle = self.get(image_id)
        except ImageNotFoundError:
            return
        for path in (self.root / handle.filename, self._record_path(handle.id), self.root / _CLAIMS_DIR / handle.id):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def save_partial(self, data: bytes, *, call_id: str, index: int) -> PartialImage:
        self._checked(call_id)
        self._ensure_root()
        info = inspect_image(data)
        path = self.root / f"{call_id}{_PARTIAL_MARK}{int(index)}.{info.extension}"
        temp = self._write_temp(data, durable=False)
        try:
            os.replace(temp, path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot store a partial image of {call_id!r}: {exc}") from exc
        return PartialImage(
            call_id=call_id,
            index=index,
            uri=path.as_uri(),
            path=str(path),
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            byte_size=len(data),
            data=data,
        )

    def delete_partials(self, call_id: str) -> None:
        self._checked(call_id)
        for path in self.root.glob(f"{call_id}{_PARTIAL_MARK}*"):
            path.unlink(missing_ok=True)

    def set_latest(self, session: str, image_id: str) -> None:
        self._checked(image_id)
        directory = self.root / _SESSIONS_DIR
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {directory}: {exc}") from exc
        temp = self._write_temp(image_id.encode())
        try:
            os.replace(temp, self._session_path(session))
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot record the latest image of a session: {exc}") from exc

    def latest(self, session: str) -> str | None:
        try:
            image_id = self._session_path(session).read_text("ascii").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the latest image of a session: {exc}") from exc
        return image_id if is_valid_image_id(image_id) else None

    # -- internals ---------------------------------------------------------------------------------------

    def _checked(self, image_id: str) -> str:
        if not isinstance(image_id, str) or not is_valid_image_id(image_id):
            raise InvalidInputError(
                f"{str(image_id)[:80]!r} is not an image id; ids are letters, digits, '_' and '-' "
                "as returned by an earlier image tool call"
            )
        return image_id

    def _session_path(self, session: str) -> Path:
        # Session keys come from frameworks (thread ids) and may hold any character: hash them into a name.
        return self.root / _SESSIONS_DIR / hashlib.sha256(session.encode()).hexdigest()[:40]

    def _record_path(self, image_id: str) -> Path:
        return self.root / f"{image_id}{_RECORD_SUFFIX}"

    def _handle(self, record: ImageRecord) -> GeneratedImage:
        path = self.root / record.filename
        return GeneratedImage(**dict(record), uri=path.as_uri(), path=str(path))

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the image directory {self.root}: {exc}") from exc

    def _write_temp(self, data: bytes, *, durable: bool = True) -> Path:
        fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise StorageError(f"cannot write to the image directory {self.root}: {exc}") from exc
        return Path(name)

    def _link_unique(self, temp: Path, base_id: str, extension: str) -> tuple[str, Path]:
        """Give ``temp`` its final name without ever replacing an existing image. An id is claimed first with
        an exclusive create in ``.ids/`` (whatever the format), so two writers can never share an id."""
        claims = self.root / _CLAIMS_DIR
        try:
            claims.mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {claims}: {exc}") from exc
        for attempt in range(100):
            image_id = base_id if attempt == 0 else f"{base_id[:120]}-{attempt + 1}"
            if self._record_path(image_id).exists():
                continue
            try:
                os.close(os.open(claims / image_id, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot claim image id {image_id!r} in {self.root}: {exc}") from exc
            target = self.root / f"{image_id}.{extension}"
            try:
                os.link(temp, target)
            except OSError as exc:
                (claims / image_id).unlink(missing_ok=True)
                if isinstance(exc, FileExistsError):
                    continue
                raise StorageError(f"cannot store image {image_id!r} in {self.root}: {exc}") from exc
            return image_id, target
        raise StorageError(f"cannot find a free name for image {base_id!r} in {self.root}")
