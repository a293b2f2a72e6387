"""Where image bytes live: the :class:`ImageStore` interface and the local-directory :class:`LocalImageStore`.

A store turns bytes plus an :class:`~imagegen_tool.images.ImageRecord` into a :class:`GeneratedImage` handle,
and resolves a handle id back to the record and the bytes, in this process or another one sharing the store.
An image becomes visible only when complete: its bytes are written first, its record last, and readers trust
only records. Everything in the store is untrusted (ids come from agents, files may be edited, replaced by
symbolic links or FIFOs, or left half-written by a killed process): paths are derived from validated ids, never
from what a record says, and files are opened relative to the store's directory without following links.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigurationError, ImageNotFoundError, InvalidInputError, StorageError
from .imageinfo import EXTENSIONS, inspect_image
from .images import GeneratedImage, ImageRecord, PartialImage
from .options import TRUSTED_CONTEXT

__all__ = [
    "Durability",
    "ImageStore",
    "LocalImageStore",
    "PruneReport",
    "is_valid_image_id",
    "new_image_id",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``"durable"``: a stored image survives a power loss (file and directory are fsynced before ``save`` returns).
#: ``"process"``: a stored image survives the crash of the process (kill -9) but maybe not of the machine; no
#: fsync, so saves are cheaper.
Durability = Literal["durable", "process"]

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_UPLOAD_KEY_RE = re.compile(r"[0-9a-f]{64}")
_RECORD_SUFFIX = ".json"
_SESSIONS_DIR = ".sessions"
_PARTIALS_DIR = ".partials"  # one folder per call: removing a call's previews never scans the store
_TEMP_DIR = ".tmp"  # named temporary files, where the file system has no anonymous (O_TMPFILE) files
_UPLOADS_DIR = ".uploads"
_DOCUMENTS_DIR = ".documents"  # small state kept with the images: batch job manifests
_MAX_DOCUMENT_BYTES = 64 << 20

#: Atomic counters (shared budgets): ``<key>.json`` and its lock file ``<key>.lock``.
_COUNTERS_DIR = ".counters"
COUNTER_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_LEGACY_CLAIMS_DIR = ".ids"  # id claims written by earlier versions; only cleaned up now
_PARTIAL_MARK = ".partial-"  # a "." can never be part of a handle id, so previews never collide with images
_MAX_RECORD_BYTES = 1 << 20
_MAX_SMALL_FILE_BYTES = 64 * 1024
_IMAGE_EXTENSIONS = frozenset(EXTENSIONS.values())
_FORMAT_OF_EXTENSION = {extension: fmt for fmt, extension in EXTENSIONS.items()}

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_TMPFILE = getattr(os, "O_TMPFILE", 0)
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC


def is_valid_image_id(image_id: str) -> bool:
    """Handle ids are 1-128 characters of letters, digits, ``_`` and ``-``: never a path."""
    return isinstance(image_id, str) and bool(_ID_RE.fullmatch(image_id))


def new_image_id(prefix: str = "img") -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def safe_image_id(candidate: str | None, prefix: str = "img") -> str:
    """A handle id for an id the API gave (e.g. an ``image_generation_call`` id): kept when it is a valid
    handle id, otherwise derived from it (the same odd id always maps to the same handle id, so a recovery
    finds what an earlier call stored), or a fresh id when there is none. Ids from the API are untrusted, but
    an image that was paid for is never refused because of its id."""
    if candidate is not None and is_valid_image_id(candidate):
        return candidate
    if candidate:
        digest = hashlib.sha256(str(candidate).encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return f"{prefix}_{digest}"
    return new_image_id(prefix)


_PROCESS_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(store: ImageStore, name: str) -> threading.Lock:
    """The lock ``name`` of ``store`` among this process's threads (stores on the same location share it)."""
    key = (repr(store), name)
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.get(key)
        if lock is None:
            lock = _PROCESS_LOCKS[key] = threading.Lock()
        return lock


def _checked_document_name(name: str) -> str:
    if not is_valid_image_id(name):
        raise InvalidInputError(f"not a document name (letters, digits, '_' and '-', at most 128): {name[:80]!r}")
    return name


class PruneReport(BaseModel):
    """What :meth:`ImageStore.prune` removed."""

    model_config = ConfigDict(frozen=True)

    images_removed: int = 0
    """Complete images (image and record) removed by age or count."""
    orphans_removed: int = 0
    """Images without a record, records without an image and id claims without a record, left by crashes."""
    temp_removed: int = 0
    """Stale temporary files and leftover previews of calls that ended long ago."""
    bytes_freed: int = 0


class ImageStore(ABC):
    """Persistent storage for generated images and their records.

    Implement the abstract sync methods (images, previews, session pointers, listing and pruning); the async
    ones run them in a worker thread so large writes never block an event loop (async stores override them
    natively). Stores for other back-ends (fsspec, S3) implement the same interface.
    """

    @abstractmethod
    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        """Store ``data`` under ``record.id`` (or a fresh id if taken) and return the handle. The store sets
        ``filename``, ``byte_size`` and ``sha256`` from what it wrote. The image is visible only once complete."""

    @abstractmethod
    def get(self, image_id: str) -> GeneratedImage:
        """The handle for ``image_id``; raises :class:`ImageNotFoundError` (also for a damaged record)."""

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

    @abstractmethod
    def list_images(self, *, limit: int | None = None) -> list[GeneratedImage]:
        """Complete images (with a readable record), newest first; at most ``limit`` of them."""

    @abstractmethod
    def prune(self, *, older_than: timedelta | None = None, keep_last: int | None = None) -> PruneReport:
        """Remove complete images older than ``older_than`` and/or beyond the newest ``keep_last``; always
        remove stale temporary files, orphans left by crashes and leftover previews older than the store's
        grace period."""

    def exists(self, image_id: str) -> bool:
        try:
            self.get(image_id)
        except ImageNotFoundError:
            return False
        return True

    # -- upload cache: content hash -> OpenAI file id -------------------------------------------------------

    def get_upload(self, key: str) -> str | None:
        """The OpenAI file id of bytes uploaded before (``key`` is their sha256), unless expired."""
        entry = self._memory_uploads().get(key)
        if entry is None:
            return None
        file_id, expires_at = entry
        if expires_at is not None and expires_at <= datetime.now(UTC):
            self._memory_uploads().pop(key, None)
            return None
        return file_id

    def put_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        """Remember that the bytes with sha256 ``key`` were uploaded as ``file_id`` (until ``expires_at``)."""
        self._memory_uploads()[key] = (file_id, expires_at)

    # -- documents: small state kept with the images (e.g. batch job manifests) ----------------------------

    def put_document(self, name: str, data: bytes) -> None:
        """Write the document ``name`` (an id: letters, digits, ``_``, ``-``), replacing any earlier version
        atomically: a reader, or a process killed mid-write, sees the old or the new version, never a mix.
        This default keeps documents in memory; persistent stores override it."""
        self._memory_documents()[_checked_document_name(name)] = bytes(data)

    def get_document(self, name: str) -> bytes | None:
        """The document ``name``, or ``None`` if there is none."""
        return self._memory_documents().get(_checked_document_name(name))

    def list_documents(self, prefix: str = "") -> list[str]:
        """The names of the documents starting with ``prefix``, sorted."""
        return sorted(name for name in self._memory_documents() if name.startswith(prefix))

    @contextlib.contextmanager
    def document_lock(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock ``name`` while the block runs (e.g. one collector of a batch job at a time).
        This default excludes the threads of this process; the local store excludes other processes too (a lock
        file, released by the system when its holder dies, even by ``kill -9``)."""
        with _process_lock(self, _checked_document_name(name)):
            yield

    def _memory_documents(self) -> dict[str, bytes]:
        documents: dict[str, bytes] | None = self.__dict__.get("_documents")
        if documents is None:
            documents = self.__dict__.setdefault("_documents", {})
        return documents

    def _memory_uploads(self) -> dict[str, tuple[str, datetime | None]]:
        cache: dict[str, tuple[str, datetime | None]] | None = self.__dict__.get("_upload_cache")
        if cache is None:
            cache = self.__dict__.setdefault("_upload_cache", {})
        return cache

    # -- atomic counters (shared budgets) ------------------------------------------------------------------

    def update_counter(self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Atomically replace the small JSON object stored under ``key`` by ``update(current)`` (``None`` when
        there is none yet) and return it. Every process using the same store sees one sequence of updates: this is
        what shared budgets (``Budget(shared=...)``) count with. If ``update`` raises, nothing is written.

        ``key``: 1-128 characters of letters, digits, ``.``, ``-``, ``_``. The default implementation refuses:
        a store without a way to make read-modify-write atomic across processes cannot hold a shared budget
        (``LocalImageStore`` uses a lock file, ``FsspecImageStore`` conditional writes)."""
        raise ConfigurationError(
            f"{type(self).__name__} has no atomic counters, so it cannot hold a shared budget; use a LocalImageStore "
            "or an fsspec object store, or a budget without shared=..."
        )

    # -- async twins --------------------------------------------------------------------------------------

    async def asave(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        return await asyncio.to_thread(self.save, data, record)

    async def aget(self, image_id: str) -> GeneratedImage:
        return await asyncio.to_thread(self.get, image_id)

    async def aread_bytes(self, image_id: str) -> bytes:
        return await asyncio.to_thread(self.read_bytes, image_id)

    async def adelete(self, image_id: str) -> None:
        await asyncio.to_thread(self.delete, image_id)

    async def asave_partial(self, data: bytes, *, call_id: str, index: int) -> PartialImage:
        return await asyncio.to_thread(lambda: self.save_partial(data, call_id=call_id, index=index))

    async def adelete_partials(self, call_id: str) -> None:
        await asyncio.to_thread(self.delete_partials, call_id)

    async def aset_latest(self, session: str, image_id: str) -> None:
        await asyncio.to_thread(self.set_latest, session, image_id)

    async def alatest(self, session: str) -> str | None:
        return await asyncio.to_thread(self.latest, session)

    async def aexists(self, image_id: str) -> bool:
        return await asyncio.to_thread(self.exists, image_id)

    async def alist_images(self, *, limit: int | None = None) -> list[GeneratedImage]:
        return await asyncio.to_thread(lambda: self.list_images(limit=limit))

    async def aprune(self, *, older_than: timedelta | None = None, keep_last: int | None = None) -> PruneReport:
        return await asyncio.to_thread(lambda: self.prune(older_than=older_than, keep_last=keep_last))

    async def aget_upload(self, key: str) -> str | None:
        return await asyncio.to_thread(self.get_upload, key)

    async def aput_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        await asyncio.to_thread(lambda: self.put_upload(key, file_id, expires_at=expires_at))

    async def aput_document(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self.put_document, name, data)

    async def aget_document(self, name: str) -> bytes | None:
        return await asyncio.to_thread(self.get_document, name)

    async def alist_documents(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self.list_documents, prefix)

    async def aupdate_counter(
        self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.update_counter, key, update)


class LocalImageStore(ImageStore):
    """Images as files in one directory: ``<id>.<ext>`` and its record ``<id>.json`` beside it.

    Args:
        root: the directory (created on first use).
        public_base_url: where a web server serves ``root``; handles then carry ``url`` =
            ``public_base_url + "/" + filename`` (and previews ``.../.partials/<call>/<file>``).
        file_mode: permissions of new files (e.g. ``0o640``); by default they follow the process umask.
        durability: ``"durable"`` (default: a stored image survives power loss) or ``"process"`` (survives a
            killed process, not a machine crash; no fsync).
        grace_period: temporary files, previews and orphans (images without records, left by a killed
            process) younger than this are left alone, because another process may still be writing them.

    Layout: ``<id>.<ext>`` and ``<id>.json`` in ``root``; ``.partials/<call id>/`` holds the previews of a call
    while it streams; ``.sessions/`` the latest image of each conversation; ``.uploads/`` the upload cache;
    ``.documents/`` small state such as batch job manifests; ``.tmp/`` temporary files where the file system
    lacks anonymous temporary files. On first use the store removes stale entries of ``.tmp/`` and
    ``.partials/`` (cheap: it never lists the images); :meth:`prune` also removes orphan images and records.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        public_base_url: str | None = None,
        file_mode: int | None = None,
        durability: Durability = "durable",
        grace_period: timedelta = timedelta(hours=1),
    ) -> None:
        if durability not in ("durable", "process"):
            raise ConfigurationError(f"durability must be 'durable' or 'process', not {durability!r}")
        if file_mode is not None and not 0 <= file_mode <= 0o777:
            raise ConfigurationError(f"file_mode must be permission bits such as 0o640, not {file_mode!r}")
        self.root = Path(root).expanduser().resolve()
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.file_mode = file_mode
        self.durability: Durability = durability
        self.grace_period = grace_period
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._pid = 0
        self._anonymous_temp = _TMPFILE != 0

    def __repr__(self) -> str:
        return f"LocalImageStore({str(self.root)!r})"

    def close(self) -> None:
        """Close the directory handles the store keeps open (it reopens them when used again)."""
        with self._lock:
            self._close_fds()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close_fds()

    # -- images -------------------------------------------------------------------------------------------

    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        fmt = record.format if record.format in EXTENSIONS else "bin"
        extension = EXTENSIONS[fmt]
        base_id = safe_image_id(record.id)
        digest = hashlib.sha256(data).hexdigest()
        try:
            return self._retrying(lambda: self._save(data, record, fmt, extension, base_id, digest))
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot store image {base_id!r} in {self.root}: {_reason(exc)}") from exc

    def _save(
        self, data: bytes, record: ImageRecord, fmt: str, extension: str, base_id: str, digest: str
    ) -> GeneratedImage:
        root = self._root_fd()
        linked: str | None = None  # the name the image has so far
        with self._temp_file(root, data, what="the image") as link_image:
            for attempt in range(100):
                image_id = base_id if attempt == 0 else f"{base_id[:120]}-{attempt + 1}"
                image_name = f"{image_id}.{extension}"
                # Once the anonymous file has a name it can only get another one from that name.
                if not (link_image(image_name) if linked is None else _link_new(root, linked, image_name)):
                    continue
                if linked is not None:
                    _unlink_quietly(linked, root)
                linked = image_name
                final = record.model_copy(
                    update={
                        "id": image_id,
                        "format": fmt,
                        "filename": image_name,
                        "byte_size": len(data),
                        "sha256": digest,
                    }
                )
                try:
                    published = self._publish_record(root, final)
                except StorageError as exc:
                    # The image was paid for: keep its file (an orphan, invisible to get/list) so it can be
                    # recovered by hand, and say where it is.
                    path = self.root / image_name
                    exc.image_path = str(path)  # type: ignore[attr-defined]
                    raise StorageError(
                        f"stored the bytes of image {image_id!r} (response {record.response_id or 'unknown'}) at "
                        f"{path} but could not write its record: {exc}; the file is kept, recover it from there"
                    ) from exc
                if not published:
                    continue  # another writer took this id with another format between our two links
                self._sync_dir(root)
                logger.debug("stored image %s (%d bytes) in %s", image_id, len(data), self.root)
                return self._handle(final)
        if linked is not None:
            _unlink_quietly(linked, root)
        raise StorageError(f"cannot find a free name for image {base_id!r} in {self.root}")

    def _publish_record(self, root: int, record: ImageRecord) -> bool:
        """Link the record into place without replacing an existing one; False if the id is taken."""
        payload = record.model_dump_json(indent=2).encode()
        with self._temp_file(root, payload, what=f"the record of image {record.id!r}") as link_record:
            return link_record(f"{record.id}{_RECORD_SUFFIX}")

    def get(self, image_id: str) -> GeneratedImage:
        return self._handle(self._load_record(self._checked(image_id)))

    def read_bytes(self, image_id: str) -> bytes:
        record = self._load_record(self._checked(image_id))
        name = f"{record.id}.{EXTENSIONS[record.format]}"
        try:
            data = self._retrying(lambda: _read_regular(self._root_fd(), name, limit=None))
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        except OSError as exc:
            raise StorageError(f"cannot read image {image_id!r}: {_reason(exc)}") from exc
        if record.byte_size and len(data) != record.byte_size:
            raise StorageError(
                f"image {image_id!r} is damaged: its file has {len(data)} bytes, its record says {record.byte_size}"
            )
        return data

    def delete(self, image_id: str) -> None:
        self._checked(image_id)

        def remove() -> None:
            root = self._root_fd()
            # The record goes first: a record never points to a missing image, even if we are killed here.
            _unlink_quietly(f"{image_id}{_RECORD_SUFFIX}", root)
            for extension in _IMAGE_EXTENSIONS:
                _unlink_quietly(f"{image_id}.{extension}", root)
            try:  # opened without following links: a linked folder must not redirect the unlink
                claims = os.open(_LEGACY_CLAIMS_DIR, _DIR_FLAGS, dir_fd=root)
            except OSError:
                return
            _unlink_quietly(image_id, claims)
            os.close(claims)

        try:
            self._retrying(remove)
        except OSError as exc:
            raise StorageError(f"cannot delete image {image_id!r}: {_reason(exc)}") from exc

    def list_images(self, *, limit: int | None = None) -> list[GeneratedImage]:
        if limit is not None and limit <= 0:
            return []
        listing = self._listing()
        candidates = sorted(
            (entry for entry in listing.records.values() if is_valid_image_id(entry.stem)),
            key=lambda entry: (entry.mtime, entry.stem),
            reverse=True,
        )
        images: list[GeneratedImage] = []
        for entry in candidates:
            try:
                record = self._load_record(entry.stem)
            except ImageNotFoundError:
                continue
            if f"{record.id}.{EXTENSIONS[record.format]}" not in listing.images:
                continue  # the image file is gone: not a complete image
            images.append(self._handle(record))
            if limit is not None and len(images) >= limit:
                break
        return images

    def prune(self, *, older_than: timedelta | None = None, keep_last: int | None = None) -> PruneReport:
        if keep_last is not None and keep_last < 0:
            raise ValueError("keep_last must be 0 or more")
        now = time.time()
        stale_before = now - self.grace_period.total_seconds()
        listing = self._listing()
        root = self._root_fd()
        freed = 0
        complete: list[tuple[datetime, str, str]] = []  # (created_at, id, image file name)
        referenced: set[str] = set()
        orphans = 0
        stems_with_images = {name.rpartition(".")[0] for name in listing.images}
        for stem, entry in listing.records.items():
            try:
                record = self._load_record(stem) if is_valid_image_id(stem) else None
            except ImageNotFoundError:
                record = None
            if record is None:
                # A damaged record beside an image is left for a person who may repair it; alone it is junk.
                if stem not in stems_with_images and entry.mtime < stale_before:
                    freed += _unlink_counted(entry.name, root, entry.size)
                    orphans += 1
                continue
            image_name = f"{record.id}.{EXTENSIONS[record.format]}"
            referenced.add(image_name)
            if image_name in listing.images:
                complete.append((record.created_at, record.id, image_name))
            elif entry.mtime < stale_before:
                freed += _unlink_counted(entry.name, root, entry.size)
                orphans += 1
        complete.sort(reverse=True)
        doomed: list[tuple[str, str]] = []
        for position, (created, image_id, image_name) in enumerate(complete):
            too_old = older_than is not None and created.timestamp() < now - older_than.total_seconds()
            too_many = keep_last is not None and position >= keep_last
            if too_old or too_many:
                doomed.append((image_id, image_name))
        for image_id, image_name in doomed:
            freed += _unlink_counted(f"{image_id}{_RECORD_SUFFIX}", root, listing.records[image_id].size)
            freed += _unlink_counted(image_name, root, listing.images[image_name].size)
        for name, entry in listing.images.items():
            stem = name.rsplit(".", 1)[0]
            if name in referenced or entry.mtime >= stale_before:
                continue
            if stem in listing.records and not self._record_readable(stem):
                continue  # a damaged record's image is left for a person who may repair the record
            freed += _unlink_counted(name, root, entry.size)
            orphans += 1
        orphans += self._prune_legacy_claims(root, stale_before)
        temp_removed, temp_freed = self._clean_temporaries(stale_before, include_root=listing.root_temporaries)
        report = PruneReport(
            images_removed=len(doomed),
            orphans_removed=orphans,
            temp_removed=temp_removed,
            bytes_freed=freed + temp_freed,
        )
        logger.info("pruned %s: %s", self.root, report)
        return report

    # -- previews -----------------------------------------------------------------------------------------

    def save_partial(self, data: bytes, *, call_id: str, index: int) -> PartialImage:
        call_id = _call_key(call_id)
        info = inspect_image(data)
        name = f"{call_id}{_PARTIAL_MARK}{int(index)}.{info.extension}"

        def write() -> None:
            partials = self._subdir(_PARTIALS_DIR)
            with contextlib.suppress(FileExistsError):
                os.mkdir(call_id, 0o777, dir_fd=partials)
            call_dir = os.open(call_id, _DIR_FLAGS, dir_fd=partials)
            try:
                temp = f".tmp-{secrets.token_hex(8)}"
                _write_new(call_dir, temp, data, self._mode(), durable=False, mode_explicit=self.file_mode is not None)
                try:
                    os.replace(temp, name, src_dir_fd=call_dir, dst_dir_fd=call_dir)
                except BaseException:
                    _unlink_quietly(temp, call_dir)
                    raise
            finally:
                os.close(call_dir)

        try:
            self._retrying(write)
        except OSError as exc:
            raise StorageError(f"cannot store a partial image of {call_id!r}: {_reason(exc)}") from exc
        relative = f"{_PARTIALS_DIR}/{call_id}/{name}"
        path = self.root / _PARTIALS_DIR / call_id / name
        return PartialImage(
            call_id=call_id,
            index=index,
            uri=path.as_uri(),
            path=str(path),
            url=self._url(relative),
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            byte_size=len(data),
            data=data,
        )

    def delete_partials(self, call_id: str) -> None:
        call_id = _call_key(call_id)
        try:
            self._retrying(lambda: _remove_tree(self._subdir(_PARTIALS_DIR), call_id))
        except OSError as exc:
            raise StorageError(f"cannot remove the partial images of {call_id!r}: {_reason(exc)}") from exc

    # -- sessions -----------------------------------------------------------------------------------------

    def set_latest(self, session: str, image_id: str) -> None:
        self._checked(image_id)
        name = _session_name(session)

        def write() -> None:
            sessions = self._subdir(_SESSIONS_DIR)
            temp = f".tmp-{secrets.token_hex(8)}"
            _write_new(sessions, temp, image_id.encode(), self._mode(), durable=False, mode_explicit=False)
            try:
                os.replace(temp, name, src_dir_fd=sessions, dst_dir_fd=sessions)
            except BaseException:
                _unlink_quietly(temp, sessions)
                raise

        try:
            self._retrying(write)
        except OSError as exc:
            raise StorageError(f"cannot record the latest image of a session: {_reason(exc)}") from exc

    def latest(self, session: str) -> str | None:
        name = _session_name(session)
        try:
            raw = self._retrying(lambda: _read_regular(self._subdir(_SESSIONS_DIR), name, limit=_MAX_SMALL_FILE_BYTES))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the latest image of a session: {_reason(exc)}") from exc
        try:
            image_id = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            image_id = ""
        if not is_valid_image_id(image_id):
            raise StorageError(
                f"the session file {self.root / _SESSIONS_DIR / name} is damaged (it does not hold an image id); "
                "delete it to start the conversation afresh"
            )
        return image_id

    # -- upload cache -------------------------------------------------------------------------------------

    def get_upload(self, key: str) -> str | None:
        if not _UPLOAD_KEY_RE.fullmatch(key):
            return None
        try:
            raw = self._retrying(lambda: _read_regular(self._subdir(_UPLOADS_DIR), key, limit=_MAX_SMALL_FILE_BYTES))
            entry = _UploadEntry.model_validate_json(raw)
        except (OSError, ValidationError):
            return None  # a missing or damaged entry only costs an upload
        if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
            return None
        return entry.file_id

    def put_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        if not _UPLOAD_KEY_RE.fullmatch(key):
            raise ValueError("upload cache keys are sha256 hex digests")
        payload = _UploadEntry(file_id=file_id, expires_at=expires_at).model_dump_json().encode()

        def write() -> None:
            uploads = self._subdir(_UPLOADS_DIR)
            temp = f".tmp-{secrets.token_hex(8)}"
            _write_new(uploads, temp, payload, self._mode(), durable=False, mode_explicit=False)
            try:
                os.replace(temp, key, src_dir_fd=uploads, dst_dir_fd=uploads)
            except BaseException:
                _unlink_quietly(temp, uploads)
                raise

        try:
            self._retrying(write)
        except OSError as exc:
            logger.warning("cannot remember the upload of %s: %s", key[:16], _reason(exc))

    # -- documents ----------------------------------------------------------------------------------------

    def put_document(self, name: str, data: bytes) -> None:
        checked = _checked_document_name(name)
        if len(data) > _MAX_DOCUMENT_BYTES:
            raise StorageError(f"the document {checked!r} is larger than {_MAX_DOCUMENT_BYTES} bytes")
        durable = self.durability == "durable"

        def write() -> None:
            documents = self._subdir(_DOCUMENTS_DIR)
            temp = f".tmp-{secrets.token_hex(8)}"
            _write_new(documents, temp, data, self._mode(), durable=durable, mode_explicit=self.file_mode is not None)
            try:
                os.replace(temp, checked + _RECORD_SUFFIX, src_dir_fd=documents, dst_dir_fd=documents)
            except BaseException:
                _unlink_quietly(temp, documents)
                raise
            self._sync_dir(documents)

        try:
            self._retrying(write)
        except OSError as exc:
            raise StorageError(f"cannot write the document {checked!r} in {self.root}: {_reason(exc)}") from exc

    def get_document(self, name: str) -> bytes | None:
        checked = _checked_document_name(name)
        try:
            name_on_disk = checked + _RECORD_SUFFIX
            return self._retrying(
                lambda: _read_regular(self._subdir(_DOCUMENTS_DIR), name_on_disk, limit=_MAX_DOCUMENT_BYTES)
            )
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the document {checked!r} in {self.root}: {_reason(exc)}") from exc

    @contextlib.contextmanager
    def document_lock(self, name: str) -> Iterator[None]:
        checked = _checked_document_name(name)
        with _process_lock(self, checked):
            try:
                fd = self._retrying(
                    lambda: os.open(
                        checked + ".lock",
                        os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC,
                        self._mode(),
                        dir_fd=self._subdir(_DOCUMENTS_DIR),
                    )
                )
            except OSError as exc:
                raise StorageError(f"cannot open the lock {checked!r} in {self.root}: {_reason(exc)}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def list_documents(self, prefix: str = "") -> list[str]:
        try:
            names = self._retrying(lambda: os.listdir(self._subdir(_DOCUMENTS_DIR)))
        except OSError as exc:
            raise StorageError(f"cannot list the documents in {self.root}: {_reason(exc)}") from exc
        found = (name[: -len(_RECORD_SUFFIX)] for name in names if name.endswith(_RECORD_SUFFIX))
        return sorted(name for name in found if name.startswith(prefix) and is_valid_image_id(name))

    # -- atomic counters ----------------------------------------------------------------------------------

    def update_counter(self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Read-modify-write of ``.counters/<key>.json`` under an exclusive ``flock`` on ``<key>.lock``.

        Crash-safe: the kernel releases the lock when its process dies (even by SIGKILL), and the new value is
        written to a temporary file and renamed over the old one, so a killed writer leaves the previous value,
        never half a file. (Reservations a dead process left inside the value are the budget's to expire.)"""
        if not COUNTER_KEY_RE.fullmatch(key) or key.startswith("."):
            raise ValueError(f"invalid counter key {key!r}")

        def locked() -> dict[str, Any]:
            counters = self._subdir(_COUNTERS_DIR)
            lock_fd = os.open(f"{key}.lock", os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=counters)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                try:
                    raw = _read_regular(counters, f"{key}.json", limit=_MAX_COUNTER_BYTES)
                except FileNotFoundError:
                    current = None
                else:
                    current = _counter_value(raw, self.root / _COUNTERS_DIR / f"{key}.json")
                value = update(current)
                payload = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
                temp = f".tmp-{secrets.token_hex(8)}"
                _write_new(
                    counters, temp, payload, self._mode(), durable=self.durability == "durable", mode_explicit=False
                )
                try:
                    os.replace(temp, f"{key}.json", src_dir_fd=counters, dst_dir_fd=counters)
                except BaseException:
                    _unlink_quietly(temp, counters)
                    raise
                return value
            finally:
                os.close(lock_fd)  # releases the flock

        try:
            return self._retrying(locked)
        except OSError as exc:
            raise StorageError(f"cannot update the counter {key!r}: {_reason(exc)}") from exc

    # -- internals: records and handles --------------------------------------------------------------------

    def _checked(self, image_id: str) -> str:
        if not isinstance(image_id, str) or not is_valid_image_id(image_id):
            raise InvalidInputError(
                f"{_printable(str(image_id))!r} is not an image id; ids are letters, digits, '_' and '-' "
                "as returned by an earlier image tool call"
            )
        return image_id

    def _load_record(self, image_id: str) -> ImageRecord:
        """The record of ``image_id``, checked: a record that cannot be read, names another id or an unknown
        format is damaged, and a damaged record is an :class:`ImageNotFoundError` that says so."""
        name = f"{image_id}{_RECORD_SUFFIX}"
        try:
            raw = self._retrying(lambda: _read_regular(self._root_fd(), name, limit=_MAX_RECORD_BYTES))
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        except _NotRegularFile as exc:
            raise _damaged(image_id, str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise _damaged(image_id, "it is too large") from None
            raise StorageError(f"cannot read the record of image {image_id!r}: {_reason(exc)}") from exc
        try:
            record = ImageRecord.model_validate_json(raw, context={TRUSTED_CONTEXT: True})
        except ValidationError as exc:
            raise _damaged(image_id, f"{exc.error_count()} invalid fields or not JSON") from None
        if record.id != image_id:
            raise _damaged(image_id, f"it describes another image ({_printable(record.id)!r})")
        if record.format not in EXTENSIONS:
            raise _damaged(image_id, f"unknown format {_printable(record.format)!r}")
        return record

    def _record_readable(self, image_id: str) -> bool:
        try:
            self._load_record(image_id)
        except ImageNotFoundError:
            return False
        return True

    def _handle(self, record: ImageRecord) -> GeneratedImage:
        # Paths come from the id and the format, never from the record's own ``filename``.
        filename = f"{record.id}.{EXTENSIONS[record.format]}"
        path = self.root / filename
        fields = dict(record)
        fields.update(filename=filename)
        return GeneratedImage(**fields, uri=path.as_uri(), path=str(path), url=self._url(filename))

    def _url(self, relative: str) -> str | None:
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}/{quote(relative)}"

    # -- internals: directories ----------------------------------------------------------------------------

    def _root_fd(self) -> int:
        fds = self._fds
        if self._pid == os.getpid() and "" in fds:
            return fds[""]
        with self._lock:
            if self._pid != os.getpid():
                self._fds = {}  # a forked child shares descriptors it must not close for its parent
                self._pid = os.getpid()
            if "" not in self._fds:
                try:
                    self.root.mkdir(parents=True, exist_ok=True)
                    self._fds[""] = os.open(self.root, _DIR_FLAGS)
                except OSError as exc:
                    raise StorageError(f"cannot open the image directory {self.root}: {_reason(exc)}") from exc
                self._clean_on_open()
            return self._fds[""]

    def _subdir(self, name: str) -> int:
        """A store folder, opened once without following links: a folder replaced by a symbolic link can
        never redirect reads or writes outside the store."""
        fd = self._fds.get(name)
        if fd is not None and self._pid == os.getpid():
            return fd
        root = self._root_fd()
        with self._lock:
            if name not in self._fds:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=root)
                try:
                    self._fds[name] = os.open(name, _DIR_FLAGS, dir_fd=root)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise StorageError(
                            f"{self.root / name} is not a directory (a symbolic link or a file?); the store refuses "
                            "to follow it: remove it"
                        ) from exc
                    raise
            return self._fds[name]

    def _retrying(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; if it failed because the store's directory was removed or replaced meanwhile (the
        open handle then points to a deleted directory), reopen the directories once and try again."""
        try:
            return operation()
        except OSError:
            if not self._fds or self._root_still_open():
                raise
        with self._lock:
            self._close_fds()
        return operation()

    def _root_still_open(self) -> bool:
        fd = self._fds.get("")
        if fd is None:
            return False
        try:
            here = os.fstat(fd)
            there = os.stat(self.root, follow_symlinks=False)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino) and here.st_nlink > 0

    def _close_fds(self) -> None:
        if self._pid == os.getpid():
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds = {}

    def _mode(self) -> int:
        return self.file_mode if self.file_mode is not None else 0o666

    def _sync_dir(self, fd: int) -> None:
        if self.durability == "durable":
            try:
                os.fsync(fd)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EBADF):  # some file systems cannot sync directories
                    raise StorageError(f"cannot sync the image directory {self.root}: {_reason(exc)}") from exc

    @contextlib.contextmanager
    def _temp_file(self, root: int, data: bytes, *, what: str) -> Iterator[Callable[[str], bool]]:
        """Write ``data`` to a file with no name yet and yield ``link(name) -> bool`` that gives it ``name``
        in the store's directory without replacing anything (False if ``name`` exists). The temporary file
        is anonymous where the file system allows it (a killed process then leaves nothing behind), else a
        named file in ``.tmp/`` that the next open of the store removes once stale."""
        durable = self.durability == "durable"
        explicit = self.file_mode is not None
        fd = -1
        temp_dir = -1
        temp_name = ""
        try:
            if self._anonymous_temp:
                try:
                    fd = os.open(".", _TMPFILE | os.O_WRONLY | _CLOEXEC, self._mode(), dir_fd=root)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                        raise
                    logger.debug("no anonymous temporary files in %s (%s); using named ones", self.root, exc)
                    self._anonymous_temp = False
            if fd < 0:
                temp_dir = self._subdir(_TEMP_DIR)
                temp_name = f"{secrets.token_hex(8)}.part"
                fd = os.open(
                    temp_name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                    self._mode(),
                    dir_fd=temp_dir,
                )
            if explicit:
                os.fchmod(fd, self._mode())
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        except OSError as exc:
            _close_quietly(fd)
            if temp_name:
                _unlink_quietly(temp_name, temp_dir)
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"cannot write {what} to {self.root}: {_reason(exc)}") from exc

        def link(name: str) -> bool:
            try:
                if temp_name:
                    os.link(temp_name, name, src_dir_fd=temp_dir, dst_dir_fd=root, follow_symlinks=False)
                else:
                    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=root, follow_symlinks=True)
            except FileExistsError:
                return False
            except OSError as exc:
                if not temp_name and exc.errno == errno.ENOENT and not os.path.isdir("/proc/self/fd"):
                    raise StorageError("anonymous temporary files need /proc; none is mounted") from exc
                raise StorageError(f"cannot store {what} in {self.root}: {_reason(exc)}") from exc
            return True

        try:
            yield link
        finally:
            _close_quietly(fd)
            if temp_name:
                _unlink_quietly(temp_name, temp_dir)

    # -- internals: cleaning --------------------------------------------------------------------------------

    def _clean_on_open(self) -> None:
        """Remove what killed processes left in the store's own folders (never lists the images)."""
        try:
            removed, _ = self._clean_folders(time.time() - self.grace_period.total_seconds(), self._fds[""])
        except OSError as exc:
            logger.warning("cannot clean the temporary files of %s: %s", self.root, _reason(exc))
            return
        if removed:
            logger.info("removed %d stale temporary entries from %s", removed, self.root)

    def _clean_folders(self, stale_before: float, root: int) -> tuple[int, int]:
        """Stale entries of ``.tmp/`` and ``.partials/`` (whole call folders), and stale ``.tmp-*`` files of
        ``.sessions/`` and ``.uploads/``: (entries removed, bytes freed)."""
        removed = freed = 0
        for name, prefix in ((_TEMP_DIR, ""), (_PARTIALS_DIR, ""), (_SESSIONS_DIR, ".tmp-"), (_UPLOADS_DIR, ".tmp-")):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=root)
            except OSError:
                continue
            try:
                count, size = _remove_stale_entries(fd, stale_before, prefix=prefix)
            finally:
                os.close(fd)
            removed += count
            freed += size
        return removed, freed

    def _clean_temporaries(self, stale_before: float, *, include_root: list[_Entry]) -> tuple[int, int]:
        root = self._root_fd()
        removed, freed = self._clean_folders(stale_before, root)
        for entry in include_root:  # temporary files and previews written by earlier versions
            if entry.mtime < stale_before:
                freed += _unlink_counted(entry.name, root, entry.size)
                removed += 1
        return removed, freed

    def _prune_legacy_claims(self, root: int, stale_before: float) -> int:
        try:
            claims = os.open(_LEGACY_CLAIMS_DIR, _DIR_FLAGS, dir_fd=root)
        except OSError:
            return 0
        removed = 0
        try:
            with os.scandir(claims) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    if st.st_mtime >= stale_before:
                        continue
                    if is_valid_image_id(entry.name) and self._record_exists(entry.name, root):
                        continue
                    _unlink_quietly(entry.name, claims)
                    removed += 1
        finally:
            os.close(claims)
        return removed

    @staticmethod
    def _record_exists(image_id: str, root: int) -> bool:
        try:
            os.stat(f"{image_id}{_RECORD_SUFFIX}", dir_fd=root, follow_symlinks=False)
        except OSError:
            return False
        return True

    def _listing(self) -> _Listing:
        listing = _Listing()

        def scan() -> None:
            with os.scandir(self._root_fd()) as entries:
                for item in entries:
                    name = item.name
                    if name.startswith("."):
                        if name.startswith(".tmp-") and name.endswith(".part"):
                            listing.root_temporaries.append(_entry(item))
                        continue
                    try:
                        if not item.is_file(follow_symlinks=False):
                            if item.is_symlink():
                                listing.images.setdefault(name, _entry(item))  # never followed; pruned as orphan
                            continue
                    except OSError:
                        continue
                    stem, _, extension = name.rpartition(".")
                    if _PARTIAL_MARK[1:] in extension or _PARTIAL_MARK in name:
                        listing.root_temporaries.append(_entry(item))
                    elif extension == _RECORD_SUFFIX[1:]:
                        listing.records[stem] = _entry(item)
                    elif extension in _IMAGE_EXTENSIONS and is_valid_image_id(stem):
                        listing.images[name] = _entry(item)

        try:
            self._retrying(scan)
        except OSError as exc:
            raise StorageError(f"cannot list the image directory {self.root}: {_reason(exc)}") from exc
        return listing


# -- small file-system helpers ------------------------------------------------------------------------------


class _UploadEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    file_id: str
    expires_at: datetime | None = None


class _Entry:
    __slots__ = ("mtime", "name", "size", "stem")

    def __init__(self, name: str, mtime: float, size: int) -> None:
        self.name = name
        self.stem = name.rpartition(".")[0]
        self.mtime = mtime
        self.size = size


class _Listing:
    def __init__(self) -> None:
        self.records: dict[str, _Entry] = {}
        self.images: dict[str, _Entry] = {}
        self.root_temporaries: list[_Entry] = []


class _NotRegularFile(OSError):
    pass


def _entry(item: os.DirEntry[str]) -> _Entry:
    st = item.stat(follow_symlinks=False)
    return _Entry(item.name, st.st_mtime, st.st_size)


def _damaged(image_id: str, why: str) -> ImageNotFoundError:
    error = ImageNotFoundError(image_id)
    error.args = (
        f"the record of image {image_id!r} in the store is damaged ({why}); the image cannot be used. Use an "
        "id returned by an earlier image tool call, or generate the image again",
    )
    return error


def _read_regular(dir_fd: int, name: str, *, limit: int | None) -> bytes:
    """Read ``name`` in ``dir_fd`` without following a symbolic link and only if it is a regular file (a FIFO
    or device would block or never end)."""
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotRegularFile(errno.EINVAL, f"{name} is not a regular file")
        if limit is not None and info.st_size > limit:
            raise OSError(errno.EFBIG, f"{name} is larger than {limit} bytes")
        chunks = []
        remaining = info.st_size
        while True:
            chunk = os.read(fd, max(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            if limit is not None and sum(map(len, chunks)) > limit:
                raise OSError(errno.EFBIG, f"{name} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


_MAX_COUNTER_BYTES = 1024 * 1024


def _counter_value(raw: bytes, where: Path) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StorageError(f"the counter file {where} is damaged (not a JSON object); fix or delete it")
    return value


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_new(dir_fd: int, name: str, data: bytes, mode: int, *, durable: bool, mode_explicit: bool) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode, dir_fd=dir_fd)
    try:
        if mode_explicit:
            os.fchmod(fd, mode)
        _write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(name, dir_fd)
        raise
    os.close(fd)


def _link_new(dir_fd: int, source: str, name: str) -> bool:
    """Hard-link ``source`` as ``name`` in ``dir_fd``; False when ``name`` exists."""
    try:
        os.link(source, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        return False
    return True


def _unlink_quietly(name: str, dir_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def _unlink_counted(name: str, dir_fd: int, size: int) -> int:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        logger.warning("cannot remove %s: %s", name, _reason(exc))
        return 0
    return size


def _close_quietly(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _remove_tree(parent: int, name: str) -> tuple[int, int]:
    """Remove the folder ``name`` of ``parent`` and the files in it, following no link; returns (entries,
    bytes). A missing folder is fine."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return 0, 0
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a link or file where a folder should be: just unlink it
            _unlink_quietly(name, parent)
            return 1, 0
        raise
    removed = freed = 0
    try:
        with os.scandir(fd) as entries:
            for item in entries:
                if item.is_dir(follow_symlinks=False):
                    count, size = _remove_tree(fd, item.name)
                    removed, freed = removed + count, freed + size
                    continue
                size = item.stat(follow_symlinks=False).st_size
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(item.name, dir_fd=fd)
                    removed, freed = removed + 1, freed + size
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError, OSError):
        os.rmdir(name, dir_fd=parent)
    return removed, freed


def _remove_stale_entries(dir_fd: int, stale_before: float, *, prefix: str = "") -> tuple[int, int]:
    """Remove the entries of ``dir_fd`` whose names start with ``prefix`` and that were not modified since
    ``stale_before`` (folders with their files)."""
    removed = freed = 0
    with os.scandir(dir_fd) as entries:
        for item in entries:
            if not item.name.startswith(prefix):
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_mtime >= stale_before:
                continue
            if stat.S_ISDIR(st.st_mode):
                count, size = _remove_tree(dir_fd, item.name)
                removed, freed = removed + max(count, 1), freed + size
            else:
                freed += _unlink_counted(item.name, dir_fd, st.st_size)
                removed += 1
    return removed, freed


def _call_key(call_id: str) -> str:
    """The folder name of a call's previews. Call ids come from the API: one that is not a safe name is
    hashed (consistently, so ``delete_partials`` finds what ``save_partial`` wrote) rather than refused."""
    if is_valid_image_id(call_id):
        return call_id
    return "call-" + hashlib.sha256(str(call_id).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _session_name(session: str) -> str:
    # Session keys come from frameworks (thread ids) and may hold any character: hash them into a name.
    return hashlib.sha256(str(session).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _printable(text: str, limit: int = 80) -> str:
    """``text`` cut short with control characters replaced, safe to echo to an agent or a log."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return cleaned + ("..." if len(text) > limit else "")
