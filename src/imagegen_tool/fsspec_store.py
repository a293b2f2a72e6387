"""Images in object storage through fsspec: S3, Google Cloud Storage, Azure Blob, memory and file URLs.

:class:`FsspecImageStore` keeps the guarantees of the local store in object-store terms, for many workers on
many machines sharing one bucket:

* **Visible only when complete.** The image bytes are written first, under a name no other writer uses; the
  record is written last and is what publishes the image. An object PUT is atomic, so a worker killed
  mid-write leaves at most an invisible orphan image, which :meth:`~FsspecImageStore.prune` removes after the
  grace period. Readers trust only records, and re-derive (and check) every object name from the id.
* **Ids unique without a lock.** The record is created with a conditional write (S3 ``If-None-Match: *``,
  GCS ``ifGenerationMatch=0``, Azure ``overwrite=False``): of two writers of one id exactly one wins and the
  other takes the next free id. Whether the server really honours the condition is probed once per store
  (some S3-compatible servers ignore the header); where it does not, ids stay unique because they are random
  (API call ids, :func:`~imagegen_tool.store.new_image_id`) and are checked before the write.
* **Session pointers** (the latest image of a conversation) are one small object per session: concurrent
  writers never produce a torn value; the last writer wins.
* **Async all the way.** The async methods call the file system's coroutines (s3fs, gcsfs and adlfs are
  asyncio-native) on the caller's event loop, with one client per loop: 200 concurrent agents need no thread.
  The sync methods run the same code on fsspec's own I/O loop.
* **URLs for browsers.** Handles carry ``url``: ``public_base_url`` + the object's name when the bucket is
  served publicly (e.g. through a CDN), else a presigned URL valid for ``url_expires``, made afresh on every
  ``get``.

Layout under the root (``s3://bucket/prefix``)::

    records/<id>.json               the record; its presence publishes the image
    images/<id>.<token>.<ext>       the image bytes (``token`` is random per write)
    previews/<call id>/<index>.<ext> streamed partial images of a call in progress
    sessions/<hash of the key>      the latest image id of a conversation
    uploads/<sha256>.json           upload cache: content hash -> OpenAI file id and its expiry
    .tmp/                           file:// only: temporary files renamed into place
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import ValidationError

from .errors import ConfigurationError, ImageNotFoundError, InvalidInputError, StorageError
from .imageinfo import EXTENSIONS, inspect_image
from .images import GeneratedImage, ImageRecord, PartialImage
from .options import TRUSTED_CONTEXT
from .redact import redact
from .store import ImageStore, PruneReport, _checked_document_name, is_valid_image_id, safe_image_id

__all__ = ["FsspecImageStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RECORDS = "records/"
_IMAGES = "images/"
_PREVIEWS = "previews/"
_SESSIONS = "sessions/"
_UPLOADS = "uploads/"
_DOCUMENTS = "documents/"
_MAX_DOCUMENT_BYTES = 64 << 20
_TEMP = ".tmp/"
_PROBES = ".probe/"
_COUNTERS = "counters/"
#: Attempts of a counter update that keeps losing the race to other workers before it gives up.
_COUNTER_ATTEMPTS = 64

_COUNTER_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_MAX_RECORD_BYTES = 1 << 20
_MAX_SMALL_OBJECT_BYTES = 64 * 1024
_UPLOAD_KEY_RE = re.compile(r"[0-9a-f]{64}")
_FILE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_IMAGE_EXTENSIONS = frozenset(EXTENSIONS.values())
_MIME_OF_EXTENSION = {
    "png": "image/png",
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "bin": "application/octet-stream",
}
#: SigV4 presigned URLs (S3 and the S3-compatible servers) are valid for at most 7 days.
_MAX_S3_URL_EXPIRY = timedelta(days=7)
#: Records, sessions and cache entries read in parallel when listing or pruning.
_READ_CONCURRENCY = 32

#: The extra that installs each fsspec protocol's implementation.
EXTRA_OF_PROTOCOL = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
    "memory": "fsspec",
    "file": "fsspec",
    "local": "fsspec",
}


class _AlreadyExists(Exception):
    """A conditional create found the object already there."""


@dataclass(frozen=True)
class _Entry:
    key: str
    """Relative to the store's root, e.g. ``records/img_1.json``."""
    size: int
    modified: datetime | None


# --- object I/O: whole-object operations on one file system, as coroutines --------------------------------


class _ObjectIO:
    """Whole-object operations with keys relative to the store root. Every method is a coroutine; in the
    blocking variant (memory and local file systems) they never suspend, so a plain driver runs them."""

    def __init__(self, fs: Any, root: str, protocol: str) -> None:
        self.fs = fs
        self.root = root
        self.protocol = protocol

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def key(self, path: str) -> str:
        path = path.rstrip("/")
        prefix = f"{self.root}/"
        return path[len(prefix) :] if path.startswith(prefix) else path

    async def put(self, key: str, data: bytes, *, create: bool = False, content_type: str | None = None) -> None:
        raise NotImplementedError

    async def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        raise NotImplementedError

    async def get_many(self, keys: list[str], *, max_bytes: int | None = None) -> dict[str, bytes | None]:
        """The bytes of each key; ``None`` for a missing or unreadable object (the caller skips it)."""
        raise NotImplementedError

    async def remove(self, keys: Iterable[str]) -> None:
        """Remove objects; missing ones are ignored."""
        raise NotImplementedError

    async def list(self, prefix: str) -> list[_Entry]:
        raise NotImplementedError

    async def sign(self, key: str, seconds: int) -> str | None:
        return None

    async def update_json(self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Atomic read-modify-write of one small JSON object (see :meth:`FsspecImageStore.update_counter`)."""
        raise ConfigurationError(
            f"atomic counters are not supported on {self.protocol}:// stores yet (S3, local and memory stores have "
            "them); use a budget without shared=..."
        )


class _AsyncIO(_ObjectIO):
    """An asyncio-native fsspec file system (s3fs, gcsfs, adlfs): its ``_``-prefixed coroutines."""

    async def put(self, key: str, data: bytes, *, create: bool = False, content_type: str | None = None) -> None:
        kwargs: dict[str, Any] = _content_type_kwargs(self.protocol, content_type)
        if create:
            kwargs["mode"] = "create"
        try:
            await self.fs._pipe_file(self.path(key), data, **kwargs)
        except Exception as exc:
            if create and _is_precondition_failure(exc):
                raise _AlreadyExists(key) from exc
            raise _storage_error("write", key, exc) from exc

    async def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        try:
            if max_bytes is None:
                data: bytes = await self.fs._cat_file(self.path(key))
            else:
                data = await self.fs._cat_file(self.path(key), start=0, end=max_bytes + 1)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise _storage_error("read", key, exc) from exc
        return data

    async def get_many(self, keys: list[str], *, max_bytes: int | None = None) -> dict[str, bytes | None]:
        semaphore = asyncio.Semaphore(_READ_CONCURRENCY)

        async def one(key: str) -> bytes | None:
            async with semaphore:
                try:
                    return await self.get(key, max_bytes=max_bytes)
                except (FileNotFoundError, StorageError) as exc:
                    logger.debug("skipped %s: %s", key, exc)
                    return None

        results = await asyncio.gather(*(one(key) for key in keys))
        return dict(zip(keys, results, strict=True))

    async def remove(self, keys: Iterable[str]) -> None:
        paths = [self.path(key) for key in keys]
        if not paths:
            return
        try:
            await self.fs._rm(paths)
        except FileNotFoundError:
            pass
        except Exception as exc:
            # Some back-ends refuse a batch with one missing object: remove one by one, ignoring the missing.
            logger.debug("batch delete failed (%s); deleting one by one", exc)
            for path in paths:
                try:
                    await self.fs._rm_file(path)
                except FileNotFoundError:
                    continue
                except Exception as exc2:
                    raise _storage_error("delete", self.key(path), exc2) from exc2

    async def list(self, prefix: str) -> list[_Entry]:
        try:
            found = await self.fs._find(self.path(prefix.rstrip("/")), detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise _storage_error("list", prefix, exc) from exc
        return _entries(self, found, prefix)

    async def update_json(self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Compare-and-swap on S3: read the object and its ETag, write the new value with ``If-Match: <etag>``
        (or ``If-None-Match: *`` when there was none); a 412/409 means another worker won the race, so read again.
        A killed worker leaves the last complete value (S3 PUTs are atomic)."""
        if self.protocol not in ("s3", "s3a"):
            return await super().update_json(key, update)
        bucket, object_key, _ = self.fs.split_path(self.path(key))
        for attempt in range(_COUNTER_ATTEMPTS):
            try:
                answer = await self.fs._call_s3("get_object", Bucket=bucket, Key=object_key)
            except FileNotFoundError:
                current, etag = None, None
            except Exception as exc:
                raise _storage_error("read", key, exc) from exc
            else:
                async with answer["Body"] as body:  # aiobotocore closes the HTTP stream on exit
                    raw = await body.read()
                current, etag = _counter_json(raw, key), answer.get("ETag")
            value = update(current)
            data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                await self.fs._call_s3(
                    "put_object", Bucket=bucket, Key=object_key, Body=data, ContentType="application/json", **condition
                )
            except Exception as exc:
                if _is_precondition_failure(exc):
                    await asyncio.sleep(min(0.5, 0.005 * (attempt + 1)) * (0.5 + secrets.randbelow(1000) / 1000))
                    continue
                raise _storage_error("write", key, exc) from exc
            self.fs.invalidate_cache(self.path(key))
            return value
        raise StorageError(f"the counter {key!r} kept changing under {_COUNTER_ATTEMPTS} attempts; try again")

    async def sign(self, key: str, seconds: int) -> str | None:
        url_coroutine = getattr(self.fs, "_url", None)
        if url_coroutine is not None and self.protocol in ("s3", "s3a"):
            result: str = await url_coroutine(self.path(key), expires=seconds)
            return result
        # gcsfs and adlfs sign locally with the credentials they hold (or fail without signing credentials).
        signed: str = await asyncio.to_thread(self.fs.sign, self.path(key), expiration=seconds)
        return signed


class _BlockingIO(_ObjectIO):
    """A file system without asyncio support (memory, local files): plain calls that never suspend.

    Memory objects are replaced atomically (a dict entry); on a local file system the bytes go to a
    temporary file that is then renamed (replace) or hard-linked (create) into place, so a reader never sees
    a partial file and a conditional create is atomic (also on NFS)."""

    _create_lock = threading.Lock()

    def __init__(self, fs: Any, root: str, protocol: str, *, local: bool) -> None:
        super().__init__(fs, root, protocol)
        self.local = local

    async def put(self, key: str, data: bytes, *, create: bool = False, content_type: str | None = None) -> None:
        try:
            if self.local:
                self._put_local(key, data, create=create)
            elif create:
                with self._create_lock:  # memory: make the exists check and the write one step
                    if self.fs.exists(self.path(key)):
                        raise _AlreadyExists(key)
                    self.fs.pipe_file(self.path(key), data)
            else:
                self.fs.pipe_file(self.path(key), data)
        except _AlreadyExists:
            raise
        except FileExistsError as exc:
            raise _AlreadyExists(key) from exc
        except Exception as exc:
            raise _storage_error("write", key, exc) from exc

    async def update_json(self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Memory: one lock (the file system lives in this process). Local files: an exclusive ``flock`` on a lock
        file beside the object, released by the kernel if the process dies; the value is replaced by rename."""
        if not self.local:
            with self._create_lock:
                try:
                    current = _counter_json(self.fs.cat_file(self.path(key)), key)
                except FileNotFoundError:
                    current = None
                value = update(current)
                self.fs.pipe_file(self.path(key), json.dumps(value, sort_keys=True).encode())
                return value
        import fcntl

        final = self.path(key)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        lock_fd = os.open(final + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                with open(final, "rb") as handle:
                    current = _counter_json(handle.read(), key)
            except FileNotFoundError:
                current = None
            value = update(current)
            self._put_local(key, json.dumps(value, sort_keys=True).encode(), create=False)
            return value
        finally:
            os.close(lock_fd)

    def _put_local(self, key: str, data: bytes, *, create: bool) -> None:
        final = self.path(key)
        temp_dir = self.path(_TEMP.rstrip("/"))
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.makedirs(temp_dir, exist_ok=True)
        temp = os.path.join(temp_dir, f"{secrets.token_hex(8)}.part")
        try:
            with open(temp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if create:
                os.link(temp, final)  # fails if the name exists: the atomic create
            else:
                os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    async def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        try:
            if max_bytes is None:
                data: bytes = self.fs.cat_file(self.path(key))
            else:
                data = self.fs.cat_file(self.path(key), start=0, end=max_bytes + 1)
        except FileNotFoundError:
            raise
        except IsADirectoryError as exc:
            raise FileNotFoundError(key) from exc
        except Exception as exc:
            raise _storage_error("read", key, exc) from exc
        return data

    async def get_many(self, keys: list[str], *, max_bytes: int | None = None) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for key in keys:
            try:
                out[key] = await self.get(key, max_bytes=max_bytes)
            except (FileNotFoundError, StorageError) as exc:
                logger.debug("skipped %s: %s", key, exc)
                out[key] = None
        return out

    async def remove(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self.fs.rm_file(self.path(key))
            except FileNotFoundError:
                continue
            except Exception as exc:
                raise _storage_error("delete", key, exc) from exc

    async def list(self, prefix: str) -> list[_Entry]:
        try:
            found = self.fs.find(self.path(prefix.rstrip("/")), detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise _storage_error("list", prefix, exc) from exc
        return _entries(self, found, prefix)


def _counter_json(raw: bytes, key: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StorageError(f"the counter object {key!r} is damaged (not a JSON object); fix or delete it")
    return value


def _entries(io: _ObjectIO, found: Mapping[str, Mapping[str, Any]], prefix: str) -> list[_Entry]:
    """Objects strictly under ``prefix``: some servers (SeaweedFS) also answer for the "directory" itself."""
    folder = prefix.rstrip("/") + "/"
    entries = []
    for path, info in found.items():
        key = io.key(path)
        if info.get("type", "file") != "file" or not key.startswith(folder) or key == folder:
            continue
        entries.append(_Entry(key=key, size=int(info.get("size") or 0), modified=_modified(info)))
    return entries


def _modified(info: Mapping[str, Any]) -> datetime | None:
    """The modification time in an fsspec info dict, whatever the back-end calls it."""
    for name in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _content_type_kwargs(protocol: str, content_type: str | None) -> dict[str, Any]:
    """How each back-end is told the object's ``Content-Type`` (what a browser opening the URL gets)."""
    if content_type is None:
        return {}
    if protocol in ("s3", "s3a"):
        return {"ContentType": content_type}
    if protocol in ("gs", "gcs"):
        return {"content_type": content_type}
    if protocol in ("az", "abfs", "abfss"):
        return {"content_settings": {"content_type": content_type}}
    return {}


def _is_precondition_failure(exc: BaseException) -> bool:
    """Whether a failed conditional write means "the object exists": ``FileExistsError``, or an S3 error
    ``412 PreconditionFailed`` / ``409 ConditionalRequestConflict`` however the back-end wrapped it."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, FileExistsError):
            return True
        response = getattr(seen, "response", None)
        if isinstance(response, Mapping):
            error = response.get("Error") or {}
            meta = response.get("ResponseMetadata") or {}
            if error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict") or meta.get(
                "HTTPStatusCode"
            ) in (409, 412):
                return True
        if "pre-condition" in str(seen).lower() or "precondition" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _storage_error(operation: str, key: str, exc: BaseException) -> StorageError:
    detail = redact(str(exc) or type(exc).__name__)[:300]
    return StorageError(f"cannot {operation} {key!r} in the image store: {type(exc).__name__}: {detail}")


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (blocking I/O only) to its end on the calling thread."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise RuntimeError("a blocking store operation tried to suspend")


@dataclass
class _Client:
    """One file system client: the I/O it serves, the loop its session belongs to, its safety-net finalizer."""

    io: _ObjectIO
    loop: asyncio.AbstractEventLoop | None
    finalizer: weakref.finalize[Any, Any] | None

    def release(self) -> None:
        if self.finalizer is not None:
            self.finalizer()

    def detach(self) -> None:
        if self.finalizer is not None:
            self.finalizer.detach()


def _release(fs: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Close a client whose store was dropped unclosed, on the loop that owns it (whatever thread runs this)."""
    if loop.is_closed() or not loop.is_running():
        _abandon_client(fs)
        return
    with contextlib.suppress(RuntimeError):
        asyncio.run_coroutine_threadsafe(_close_client(fs), loop)


# --- the store ---------------------------------------------------------------------------------------------


class FsspecImageStore(ImageStore):
    """An image store on any fsspec file system, chosen by URL: ``s3://bucket/prefix``, ``gs://bucket/prefix``,
    ``az://container/prefix``, ``memory://name``, ``file:///shared/volume``.

    Example::

        store = FsspecImageStore("s3://my-bucket/agent-images", storage_options={"profile": "prod"})
        generator = ImageGenerator(store=store)          # or ImageGenerator(store="s3://my-bucket/agent-images")

    Args:
        url: where the store lives. The bucket (or container) must exist; the prefix is created as needed.
        storage_options: passed to the fsspec file system (e.g. s3fs ``endpoint_url`` via ``client_kwargs``,
            ``profile``, ``anon``). Credentials come from each back-end's usual environment and configuration
            (``AWS_*`` variables, ``~/.aws``, instance roles, ``GOOGLE_APPLICATION_CREDENTIALS``,
            ``AZURE_STORAGE_*``); this package never stores them.
        public_base_url: where the root is served to browsers (a public bucket, a CDN); handles then carry
            ``url = public_base_url + "/images/<file>"`` instead of a presigned URL.
        url_expires: how long presigned URLs stay valid (S3: at most 7 days). ``None``: no presigned URLs.
        grace_period: orphans, previews and temporary files younger than this are left alone by :meth:`prune`
            (another worker may still be writing them).
        conditional_writes: whether the server honours conditional creates; ``None`` (default) probes once.
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        public_base_url: str | None = None,
        url_expires: timedelta | None = timedelta(hours=1),
        grace_period: timedelta = timedelta(hours=1),
        conditional_writes: bool | None = None,
    ) -> None:
        fsspec = _import_fsspec(url)
        protocol, _, rest = url.partition("://")
        protocol = protocol.lower()
        if not rest:
            raise ConfigurationError(f"store URL {url!r} names no bucket or path")
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise ConfigurationError(_unknown_scheme_message(url)) from None
        except ImportError as exc:
            raise ConfigurationError(_missing_backend_message(url, protocol, exc)) from None
        if url_expires is not None and url_expires <= timedelta(0):
            raise ConfigurationError("url_expires must be positive (or None for no presigned URLs)")
        if url_expires is not None and protocol in ("s3", "s3a") and url_expires > _MAX_S3_URL_EXPIRY:
            raise ConfigurationError("S3 presigned URLs are valid for at most 7 days: lower url_expires")
        self.url = url.rstrip("/")
        self.protocol = protocol
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.url_expires = url_expires
        self.grace_period = grace_period
        self._cls = cls
        self._options = _default_options(protocol, cls, {**cls._get_kwargs_from_urls(url), **(storage_options or {})})
        self._async = bool(getattr(cls, "async_impl", False))
        self._local = protocol in ("file", "local")
        root = cls._strip_protocol(url)
        self._root = root.rstrip("/") if root not in ("", "/") else root
        if self._root in ("", "/"):
            raise ConfigurationError(f"store URL {url!r} must name a bucket or directory, not the file system root")
        self._conditional = conditional_writes
        self._sign_works = url_expires is not None and self.public_base_url is None
        self._lock = threading.Lock()
        self._sync_client: _Client | None = None
        self._loop_clients: dict[asyncio.AbstractEventLoop, _Client] = {}

    def __repr__(self) -> str:
        return f"FsspecImageStore({self.url!r})"

    # -- plumbing: one client for sync calls, one per event loop for async ones ------------------------------

    def _make_fs(self, **extra: Any) -> Any:
        try:
            return self._cls(**{**self._options, **extra})
        except ImportError as exc:
            raise ConfigurationError(_missing_backend_message(self.url, self.protocol, exc)) from None
        except Exception as exc:
            raise ConfigurationError(f"cannot open the image store {self.url!r}: {redact(str(exc))[:300]}") from exc

    def _client_on(self, loop: asyncio.AbstractEventLoop) -> _Client:
        """An asyncio file system bound to ``loop``. Its HTTP session is closed by :meth:`close`/:meth:`aclose`,
        or, if the store is dropped without closing, by a finalizer that runs the close on the right loop."""
        fs = self._make_fs(asynchronous=True, loop=loop, skip_instance_cache=True)
        return _Client(_AsyncIO(fs, self._root, self.protocol), loop, weakref.finalize(self, _release, fs, loop))

    def _sync_io(self) -> _ObjectIO:
        with self._lock:
            if self._sync_client is None:
                if self._async:
                    # The sync methods run the same coroutines on fsspec's own I/O thread and loop.
                    from fsspec.asyn import get_loop

                    self._sync_client = self._client_on(get_loop())
                else:
                    io = _BlockingIO(self._make_fs(), self._root, self.protocol, local=self._local)
                    self._sync_client = _Client(io, None, None)
            return self._sync_client.io

    def _async_io(self) -> _ObjectIO:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._loop_clients.get(loop)
            if client is None:
                for old in [old for old in self._loop_clients if old.is_closed()]:
                    self._loop_clients.pop(old).release()
                client = self._loop_clients[loop] = self._client_on(loop)
            return client.io

    def _run(self, operation: Callable[[_ObjectIO], Coroutine[Any, Any, T]]) -> T:
        io = self._sync_io()
        if self._async:
            from fsspec.asyn import get_loop, sync

            result: T = sync(get_loop(), operation, io)
            return result
        return _drive(operation(io))

    async def _arun(self, operation: Callable[[_ObjectIO], Coroutine[Any, Any, T]]) -> T:
        if self._async:
            return await operation(self._async_io())
        io = self._sync_io()
        if self._local:  # disk I/O blocks: keep it off the event loop
            return await asyncio.to_thread(lambda: _drive(operation(io)))
        return _drive(operation(io))  # memory: no I/O at all

    def close(self) -> None:
        """Close the HTTP session of the sync methods and of event loops that are gone (made again on next use).
        In async code use :meth:`aclose`, which also closes the running loop's session."""
        with self._lock:
            client, self._sync_client = self._sync_client, None
            stale = [self._loop_clients.pop(loop) for loop in list(self._loop_clients) if loop.is_closed()]
        for old in stale:
            old.release()
        if client is not None and client.loop is not None:
            from fsspec.asyn import sync

            try:
                sync(client.loop, _close_client, client.io.fs, timeout=30)
            except Exception as exc:
                logger.debug("closing the client of %s failed: %s", self.url, exc)
            client.detach()

    async def aclose(self) -> None:
        """Close the running event loop's HTTP session, then the sync one."""
        with self._lock:
            client = self._loop_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            try:
                await _close_client(client.io.fs)
            except Exception as exc:
                logger.debug("closing the client of %s failed: %s", self.url, exc)
            client.detach()
        if self._sync_client is not None and self._sync_client.loop is not None:
            await asyncio.to_thread(self.close)
        else:
            self.close()

    def __enter__(self) -> FsspecImageStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> FsspecImageStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- public API: each sync method and its async twin run one coroutine ------------------------------------

    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        return self._run(lambda io: self._save(io, data, record))

    async def asave(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        return await self._arun(lambda io: self._save(io, data, record))

    def get(self, image_id: str) -> GeneratedImage:
        checked = _checked_id(image_id)
        return self._run(lambda io: self._get(io, checked))

    async def aget(self, image_id: str) -> GeneratedImage:
        checked = _checked_id(image_id)
        return await self._arun(lambda io: self._get(io, checked))

    def read_bytes(self, image_id: str) -> bytes:
        checked = _checked_id(image_id)
        return self._run(lambda io: self._read_bytes(io, checked))

    async def aread_bytes(self, image_id: str) -> bytes:
        checked = _checked_id(image_id)
        return await self._arun(lambda io: self._read_bytes(io, checked))

    def delete(self, image_id: str) -> None:
        checked = _checked_id(image_id)
        self._run(lambda io: self._delete(io, checked))

    async def adelete(self, image_id: str) -> None:
        checked = _checked_id(image_id)
        await self._arun(lambda io: self._delete(io, checked))

    def save_partial(self, data: bytes, *, call_id: str, index: int) -> PartialImage:
        checked = _checked_id(call_id)
        return self._run(lambda io: self._save_partial(io, data, checked, index))

    async def asave_partial(self, data: bytes, *, call_id: str, index: int) -> PartialImage:
        checked = _checked_id(call_id)
        return await self._arun(lambda io: self._save_partial(io, data, checked, index))

    def delete_partials(self, call_id: str) -> None:
        checked = _checked_id(call_id)
        self._run(lambda io: self._delete_partials(io, checked))

    async def adelete_partials(self, call_id: str) -> None:
        checked = _checked_id(call_id)
        await self._arun(lambda io: self._delete_partials(io, checked))

    def set_latest(self, session: str, image_id: str) -> None:
        checked = _checked_id(image_id)
        self._run(lambda io: self._set_latest(io, session, checked))

    async def aset_latest(self, session: str, image_id: str) -> None:
        checked = _checked_id(image_id)
        await self._arun(lambda io: self._set_latest(io, session, checked))

    def latest(self, session: str) -> str | None:
        return self._run(lambda io: self._latest(io, session))

    async def alatest(self, session: str) -> str | None:
        return await self._arun(lambda io: self._latest(io, session))

    def exists(self, image_id: str) -> bool:
        try:
            self.get(image_id)
        except ImageNotFoundError:
            return False
        return True

    async def aexists(self, image_id: str) -> bool:
        try:
            await self.aget(image_id)
        except ImageNotFoundError:
            return False
        return True

    def list_images(self, *, limit: int | None = None) -> list[GeneratedImage]:
        return self._run(lambda io: self._list_images(io, limit))

    async def alist_images(self, *, limit: int | None = None) -> list[GeneratedImage]:
        return await self._arun(lambda io: self._list_images(io, limit))

    def prune(self, *, older_than: timedelta | None = None, keep_last: int | None = None) -> PruneReport:
        _check_prune_args(older_than, keep_last)
        return self._run(lambda io: self._prune(io, older_than, keep_last))

    async def aprune(self, *, older_than: timedelta | None = None, keep_last: int | None = None) -> PruneReport:
        _check_prune_args(older_than, keep_last)
        return await self._arun(lambda io: self._prune(io, older_than, keep_last))

    def get_upload(self, key: str) -> str | None:
        if not _UPLOAD_KEY_RE.fullmatch(key):
            return None
        return self._run(lambda io: self._get_upload(io, key))

    async def aget_upload(self, key: str) -> str | None:
        if not _UPLOAD_KEY_RE.fullmatch(key):
            return None
        return await self._arun(lambda io: self._get_upload(io, key))

    def put_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        body = _upload_entry(key, file_id, expires_at)
        self._run(lambda io: io.put(f"{_UPLOADS}{key}.json", body, content_type="application/json"))

    async def aput_upload(self, key: str, file_id: str, *, expires_at: datetime | None) -> None:
        body = _upload_entry(key, file_id, expires_at)
        await self._arun(lambda io: io.put(f"{_UPLOADS}{key}.json", body, content_type="application/json"))

    def put_document(self, name: str, data: bytes) -> None:
        # One whole-object put: object stores never show a partly written object.
        key = _DOCUMENTS + _checked_document_name(name) + ".json"
        self._run(lambda io: io.put(key, bytes(data), content_type="application/json"))

    async def aput_document(self, name: str, data: bytes) -> None:
        key = _DOCUMENTS + _checked_document_name(name) + ".json"
        await self._arun(lambda io: io.put(key, bytes(data), content_type="application/json"))

    def get_document(self, name: str) -> bytes | None:
        key = _DOCUMENTS + _checked_document_name(name) + ".json"
        return self._run(lambda io: _get_or_none(io, key))

    async def aget_document(self, name: str) -> bytes | None:
        key = _DOCUMENTS + _checked_document_name(name) + ".json"
        return await self._arun(lambda io: _get_or_none(io, key))

    def list_documents(self, prefix: str = "") -> list[str]:
        return self._run(lambda io: _document_names(io, prefix))

    async def alist_documents(self, prefix: str = "") -> list[str]:
        return await self._arun(lambda io: _document_names(io, prefix))

    # -- atomic counters (shared budgets) -------------------------------------------------------------------

    def update_counter(self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Atomic read-modify-write of ``counters/<key>.json``: conditional writes on S3 (``If-Match`` on the ETag
        read, ``If-None-Match: *`` for a new counter; retried when another worker won), a lock on memory and
        local file systems. Other back-ends refuse (``ConfigurationError``). ``update`` may run more than once (it
        must be a pure function of the value it is given); if it raises, nothing is written."""
        return self._run(lambda io: self._update_counter(io, key, update))

    async def aupdate_counter(
        self, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        return await self._arun(lambda io: self._update_counter(io, key, update))

    async def _update_counter(
        self, io: _ObjectIO, key: str, update: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        if not _COUNTER_KEY_RE.fullmatch(key) or key.startswith("."):
            raise ValueError(f"invalid counter key {key!r}")
        if io.protocol in ("s3", "s3a") and not await self._conditional_writes(io):
            raise ConfigurationError(
                f"the object store at {self.url} does not honour conditional writes, so it cannot hold a shared "
                "budget; use a budget without shared=..."
            )
        return await io.update_json(f"{_COUNTERS}{key}.json", update)

    # -- the operations, written once ------------------------------------------------------------------------

    async def _save(self, io: _ObjectIO, data: bytes, record: ImageRecord) -> GeneratedImage:
        fmt = record.format if record.format in EXTENSIONS else "bin"
        extension = EXTENSIONS[fmt]
        base_id = safe_image_id(record.id)
        digest = hashlib.sha256(data).hexdigest()
        conditional = await self._conditional_writes(io)
        for attempt in range(100):
            image_id = base_id if attempt == 0 else f"{base_id[:120]}-{attempt + 1}"
            # Without conditional writes the check is the only guard; with them it only saves re-uploading the
            # bytes when the id was already seen taken (the conditional record write still decides).
            if (not conditional or attempt > 0) and await _exists(io, _record_key(image_id)):
                continue
            filename = f"{image_id}.{secrets.token_hex(8)}.{extension}"
            final = record.model_copy(
                update={"id": image_id, "filename": filename, "byte_size": len(data), "sha256": digest}
            )
            # The bytes first, under a name only this writer uses; the record last, which publishes them.
            await io.put(_IMAGES + filename, data, content_type=_MIME_OF_EXTENSION[extension])
            try:
                await io.put(
                    _record_key(image_id),
                    final.model_dump_json(indent=2).encode(),
                    create=conditional,
                    content_type="application/json",
                )
            except _AlreadyExists:
                logger.debug("image id %s is taken; trying the next one", image_id)
                await _remove_quietly(io, [_IMAGES + filename])
                continue
            except BaseException:
                # The image stays behind as an invisible orphan that prune() removes after the grace period;
                # deleting it here could fail the same way and would hide the cause.
                raise
            logger.debug("stored image %s (%d bytes) in %s", image_id, len(data), self.url)
            return await self._handle(io, final)
        raise StorageError(f"cannot find a free id for image {base_id!r} in {self.url}")

    async def _conditional_writes(self, io: _ObjectIO) -> bool:
        """Whether conditional creates work here; probed once (create twice: the second must be refused)."""
        if self._conditional is not None:
            return self._conditional
        probe = f"{_PROBES}{secrets.token_hex(8)}"
        try:
            await io.put(probe, b"probe", create=True)
            try:
                await io.put(probe, b"again", create=True)
                supported = False
            except _AlreadyExists:
                supported = True
            except StorageError as exc:  # e.g. 501 Not Implemented for the header
                logger.info("conditional writes refused by %s: %s", self.url, exc)
                supported = False
        finally:
            await _remove_quietly(io, [probe])
        if not supported:
            logger.warning(
                "the object store at %s does not honour conditional writes (If-None-Match); image ids stay "
                "unique because they are random and checked before each write",
                self.url,
            )
        self._conditional = supported
        return supported

    async def _get(self, io: _ObjectIO, image_id: str) -> GeneratedImage:
        return await self._handle(io, await self._record(io, image_id))

    async def _record(self, io: _ObjectIO, image_id: str) -> ImageRecord:
        try:
            raw = await io.get(_record_key(image_id), max_bytes=_MAX_RECORD_BYTES)
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        record = _parse_record(raw, image_id)
        if record is None:
            raise ImageNotFoundError(image_id)
        return record

    async def _read_bytes(self, io: _ObjectIO, image_id: str) -> bytes:
        record = await self._record(io, image_id)
        try:
            data = await io.get(_IMAGES + record.filename)
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        if len(data) != record.byte_size or (record.sha256 and hashlib.sha256(data).hexdigest() != record.sha256):
            raise StorageError(f"the bytes of image {image_id!r} do not match its record (changed or damaged)")
        return data

    async def _delete(self, io: _ObjectIO, image_id: str) -> None:
        try:
            record = await self._record(io, image_id)
        except ImageNotFoundError:
            # No usable record: remove a damaged one, never guess which image it named.
            await io.remove([_record_key(image_id)])
            return
        # The record first: the image is invisible from then on, even if removing the bytes fails.
        await io.remove([_record_key(image_id)])
        await io.remove([_IMAGES + record.filename])

    async def _save_partial(self, io: _ObjectIO, data: bytes, call_id: str, index: int) -> PartialImage:
        info = inspect_image(data)
        key = f"{_PREVIEWS}{call_id}/{int(index)}.{info.extension}"
        await io.put(key, data, content_type=info.mime_type)
        return PartialImage(
            call_id=call_id,
            index=index,
            uri=self._uri(key),
            path=io.path(key) if self._local else None,
            url=await self._url(io, key),
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            byte_size=len(data),
            data=data,
        )

    async def _delete_partials(self, io: _ObjectIO, call_id: str) -> None:
        entries = await io.list(f"{_PREVIEWS}{call_id}/")
        await io.remove(entry.key for entry in entries)

    async def _set_latest(self, io: _ObjectIO, session: str, image_id: str) -> None:
        # One object PUT: atomic, so concurrent writers never leave a torn value; the last writer wins.
        await io.put(_session_key(session), image_id.encode("ascii"), content_type="text/plain")

    async def _latest(self, io: _ObjectIO, session: str) -> str | None:
        try:
            raw = await io.get(_session_key(session), max_bytes=_MAX_SMALL_OBJECT_BYTES)
        except FileNotFoundError:
            return None
        try:
            image_id = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            logger.warning("ignored a damaged session pointer in %s", self.url)
            return None
        return image_id if is_valid_image_id(image_id) else None

    async def _list_images(self, io: _ObjectIO, limit: int | None) -> list[GeneratedImage]:
        if limit is not None and limit <= 0:
            return []
        stored = {entry.key[len(_IMAGES) :] for entry in await io.list(_IMAGES)}
        entries = _newest_first(e for e in await io.list(_RECORDS) if _id_of_record_key(e.key) is not None)
        found: list[tuple[_Entry, ImageRecord]] = []
        position = 0
        while position < len(entries):
            chunk = entries[position : position + _READ_CONCURRENCY]
            position += len(chunk)
            raw = await io.get_many([e.key for e in chunk], max_bytes=_MAX_RECORD_BYTES)
            for entry in chunk:
                image_id = _id_of_record_key(entry.key)
                body = raw.get(entry.key)
                record = _parse_record(body, image_id) if body is not None and image_id else None
                if record is not None and record.filename in stored:  # complete: its bytes are there
                    found.append((entry, record))
            if limit is not None and len(found) >= limit:
                # Object times have a resolution of one second: read on while the next records share the
                # second of the last one kept, so the creation times decide among them.
                last = _second(found[limit - 1][0])
                if position >= len(entries) or _second(entries[position]) < last:
                    break
        found.sort(key=lambda pair: (_second(pair[0]), pair[1].created_at, pair[1].id), reverse=True)
        chosen = found if limit is None else found[:limit]
        return [await self._handle(io, record) for _, record in chosen]

    async def _prune(self, io: _ObjectIO, older_than: timedelta | None, keep_last: int | None) -> PruneReport:
        now = datetime.now(UTC)
        grace_limit = now - self.grace_period
        record_entries = {
            image_id: entry for entry in await io.list(_RECORDS) if (image_id := _id_of_record_key(entry.key))
        }
        images = {entry.key[len(_IMAGES) :]: entry for entry in await io.list(_IMAGES)}
        raw = await io.get_many([e.key for e in record_entries.values()], max_bytes=_MAX_RECORD_BYTES)
        records = {i: _parse_record(raw.get(e.key), i) for i, e in record_entries.items() if raw.get(e.key)}
        damaged = {i for i in record_entries if records.get(i) is None}
        ids_with_images = {name.partition(".")[0] for name in images}

        remove_records: list[str] = []
        remove_images: list[str] = []
        freed = orphans = 0
        complete: list[ImageRecord] = []
        for image_id, entry in record_entries.items():
            record = records.get(image_id)
            if record is not None and record.filename in images:
                complete.append(record)
            elif (record is not None or image_id not in ids_with_images) and _older(entry, grace_limit):
                # A record whose image is gone, or a damaged record alone: junk once past the grace period.
                # A damaged record beside an image is left for a person who may repair it.
                remove_records.append(entry.key)
                freed += entry.size
                orphans += 1
        complete.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        doomed = 0
        for position, record in enumerate(complete):
            too_old = older_than is not None and record.created_at < now - older_than
            too_many = keep_last is not None and position >= keep_last
            if too_old or too_many:
                entry = record_entries[record.id]
                remove_records.append(entry.key)
                remove_images.append(_IMAGES + record.filename)
                freed += entry.size + images[record.filename].size
                doomed += 1
        referenced = {r.filename for r in records.values() if r is not None}
        for name, entry in images.items():
            if name in referenced or not _older(entry, grace_limit) or name.partition(".")[0] in damaged:
                continue
            remove_images.append(entry.key)
            freed += entry.size
            orphans += 1

        # Records go first: an image is never visible without its bytes.
        await io.remove(remove_records)
        await io.remove(remove_images)

        transient: list[_Entry] = [e for e in await io.list(_PREVIEWS) if _older(e, grace_limit)]
        transient += [e for e in await io.list(_PROBES) if _older(e, grace_limit)]
        if self._local:
            transient += [e for e in await io.list(_TEMP) if _older(e, grace_limit)]
        await io.remove(e.key for e in transient)

        await self._prune_uploads(io, now)
        report = PruneReport(
            images_removed=doomed,
            orphans_removed=orphans,
            temp_removed=len(transient),
            bytes_freed=freed + sum(e.size for e in transient),
        )
        logger.info("pruned %s: %s", self.url, report)
        return report

    async def _prune_uploads(self, io: _ObjectIO, now: datetime) -> None:
        """Remove upload-cache entries whose file has expired (their ids would be refused by the API)."""
        entries = await io.list(_UPLOADS)
        raw = await io.get_many([e.key for e in entries], max_bytes=_MAX_SMALL_OBJECT_BYTES)
        expired = [key for key, body in raw.items() if body is None or _upload_file_id(body, now) is None]
        await io.remove(expired)

    async def _get_upload(self, io: _ObjectIO, key: str) -> str | None:
        try:
            raw = await io.get(f"{_UPLOADS}{key}.json", max_bytes=_MAX_SMALL_OBJECT_BYTES)
        except FileNotFoundError:
            return None
        return _upload_file_id(raw, datetime.now(UTC))

    # -- handles and URLs ------------------------------------------------------------------------------------

    async def _handle(self, io: _ObjectIO, record: ImageRecord) -> GeneratedImage:
        key = _IMAGES + record.filename
        return GeneratedImage(
            **dict(record),
            uri=self._uri(key),
            path=io.path(key) if self._local else None,
            url=await self._url(io, key),
        )

    def _uri(self, key: str) -> str:
        return f"{self.url}/{key}"

    async def _url(self, io: _ObjectIO, key: str) -> str | None:
        """A URL a browser can open: the public mapping, else a fresh presigned URL (``None`` if neither)."""
        if self.public_base_url is not None:
            return f"{self.public_base_url}/{quote(key)}"
        if not self._sign_works or self.url_expires is None:
            return None
        try:
            return await io.sign(key, int(self.url_expires.total_seconds()))
        except Exception as exc:  # no signing credentials, or a back-end that cannot sign: no URL, not an error
            logger.info("no presigned URLs for %s (%s: %s)", self.url, type(exc).__name__, redact(str(exc))[:200])
            self._sign_works = False
            return None


# --- small pure helpers ------------------------------------------------------------------------------------


async def _get_or_none(io: _ObjectIO, key: str) -> bytes | None:
    try:
        return await io.get(key, max_bytes=_MAX_DOCUMENT_BYTES)
    except FileNotFoundError:
        return None


async def _document_names(io: _ObjectIO, prefix: str) -> list[str]:
    names = []
    for entry in await io.list(_DOCUMENTS):
        name = entry.key[len(_DOCUMENTS) :] if entry.key.startswith(_DOCUMENTS) else entry.key.rpartition("/")[2]
        if name.endswith(".json"):
            name = name[: -len(".json")]
            if name.startswith(prefix) and is_valid_image_id(name):
                names.append(name)
    return sorted(names)


def _checked_id(image_id: str) -> str:
    if not is_valid_image_id(image_id):
        raise InvalidInputError(
            f"{str(image_id)[:80]!r} is not an image id; ids are letters, digits, '_' and '-' "
            "as returned by an earlier image tool call"
        )
    return image_id


def _check_prune_args(older_than: timedelta | None, keep_last: int | None) -> None:
    if older_than is not None and older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    if keep_last is not None and keep_last < 0:
        raise ValueError("keep_last must not be negative")


def _record_key(image_id: str) -> str:
    return f"{_RECORDS}{image_id}.json"


def _session_key(session: str) -> str:
    # Session keys come from frameworks (thread ids) and may hold any character: hash them into a name.
    return _SESSIONS + hashlib.sha256(session.encode()).hexdigest()[:40]


def _id_of_record_key(key: str) -> str | None:
    name = key[len(_RECORDS) :] if key.startswith(_RECORDS) else ""
    image_id = name.removesuffix(".json")
    return image_id if name.endswith(".json") and is_valid_image_id(image_id) else None


def _id_of_image_key(key: str) -> str | None:
    name = key[len(_IMAGES) :] if key.startswith(_IMAGES) else ""
    image_id = name.partition(".")[0]
    return image_id if is_valid_image_id(image_id) else None


def _filename_pattern(image_id: str) -> re.Pattern[str]:
    extensions = "|".join(sorted(_IMAGE_EXTENSIONS))
    return re.compile(rf"{re.escape(image_id)}\.[0-9a-f]{{16}}\.(?:{extensions})")


def _parse_record(raw: bytes | None, image_id: str) -> ImageRecord | None:
    """The record if it is whole, belongs to ``image_id`` and names an image object of that id; else ``None``
    (a damaged or planted record never points a read or a delete at another object)."""
    if raw is None or len(raw) > _MAX_RECORD_BYTES:
        logger.warning("ignored the oversized record of image %s", image_id)
        return None
    try:
        record = ImageRecord.model_validate_json(raw, context={TRUSTED_CONTEXT: True})
    except ValidationError as exc:
        logger.warning("ignored the damaged record of image %s (%d errors)", image_id, exc.error_count())
        return None
    if record.id != image_id or not _filename_pattern(image_id).fullmatch(record.filename):
        logger.warning("ignored the record of image %s: it names another id or file", image_id)
        return None
    return record


def _newest_first(entries: Iterable[_Entry]) -> list[_Entry]:
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: (e.modified or epoch, e.key), reverse=True)


def _second(entry: _Entry) -> int:
    return int(entry.modified.timestamp()) if entry.modified is not None else 0


def _older(entry: _Entry, limit: datetime) -> bool:
    return entry.modified is not None and entry.modified < limit


async def _exists(io: _ObjectIO, key: str) -> bool:
    try:
        await io.get(key, max_bytes=0)
    except FileNotFoundError:
        return False
    return True


async def _remove_quietly(io: _ObjectIO, keys: list[str]) -> None:
    try:
        await io.remove(keys)
    except StorageError as exc:
        logger.warning("could not remove %s: %s", keys, exc)


def _upload_entry(key: str, file_id: str, expires_at: datetime | None) -> bytes:
    if not _UPLOAD_KEY_RE.fullmatch(key):
        raise ValueError("an upload cache key is the sha256 hex digest of the uploaded bytes")
    if not _FILE_ID_RE.fullmatch(file_id):
        raise ValueError(f"{file_id[:80]!r} is not an OpenAI file id")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    body = {"file_id": file_id, "expires_at": expires_at.isoformat() if expires_at else None}
    return json.dumps(body).encode()


def _upload_file_id(raw: bytes, now: datetime) -> str | None:
    """The file id of a cache entry, or ``None`` when expired or damaged (never a stale id)."""
    try:
        body = json.loads(raw)
        file_id = body["file_id"]
        expires = body.get("expires_at")
        expires_at = datetime.fromisoformat(expires) if expires is not None else None
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(file_id, str) or not _FILE_ID_RE.fullmatch(file_id):
        return None
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        return None
    return file_id


# --- configuration -----------------------------------------------------------------------------------------


def _import_fsspec(url: str) -> Any:
    try:
        import fsspec
    except ImportError:
        scheme = url.partition("://")[0].lower()
        extra = EXTRA_OF_PROTOCOL.get(scheme, "fsspec")
        raise ConfigurationError(f"the store URL {url!r} needs fsspec: pip install 'imagegen-tool[{extra}]'") from None
    return fsspec


def _unknown_scheme_message(url: str) -> str:
    scheme = url.partition("://")[0]
    return (
        f"unknown store URL scheme {scheme!r} in {url!r}: use s3://, gs://, az://, memory:// or file:// "
        "(or any protocol fsspec knows), or a plain directory path for a local store"
    )


def _missing_backend_message(url: str, protocol: str, exc: BaseException) -> str:
    extra = EXTRA_OF_PROTOCOL.get(protocol)
    hint = f"pip install 'imagegen-tool[{extra}]'" if extra else str(exc)
    return f"the store URL {url!r} needs the {protocol!r} file system for fsspec, which is not installed: {hint}"


def _default_options(protocol: str, cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Storage options with the defaults a shared store needs, never overriding what the caller set."""
    options = dict(options)
    if getattr(cls, "async_impl", False):
        # Listings must be fresh: other workers add and remove objects all the time.
        options.setdefault("use_listings_cache", False)
    if protocol in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        # SigV4 presigned URLs work in every AWS region and on S3-compatible servers (SigV2 does not).
        config.setdefault("signature_version", "s3v4")
        # botocore's default pool of 10 connections would queue a busy worker's concurrent saves.
        config.setdefault("max_pool_connections", 64)
        options["config_kwargs"] = config
    return options


async def _close_client(fs: Any) -> None:
    """Close the HTTP session an async file system holds (s3fs, gcsfs, adlfs name it differently)."""
    creator = getattr(fs, "_s3creator", None)  # s3fs: the context manager that made its aiobotocore client
    if creator is not None and getattr(fs, "_s3", None) is not None:
        fs._s3 = None
        await creator.__aexit__(None, None, None)
        return
    for name in ("session", "service_client"):
        client = getattr(fs, name, None)
        close: Callable[[], Awaitable[None]] | None = getattr(client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def _abandon_client(fs: Any) -> None:
    """Release the sockets of a client whose event loop has closed (it can no longer be closed politely)."""
    creator = getattr(fs, "_s3creator", None)
    close_session = getattr(type(fs), "close_session", None)
    if creator is not None and close_session is not None and getattr(fs, "_s3", None) is not None:
        fs._s3 = None
        with contextlib.suppress(Exception):
            close_session(None, creator)
