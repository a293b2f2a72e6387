"""The emulator's mutable state: stored responses and files, the request log and the planned faults.

Tests change faults from their own thread while the server reads them from its event loop thread, so every
access goes through one lock; what leaves this module is a copy. API keys never enter it: the request log
keeps headers with credentials replaced by a marker.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .api_rules import ApiRules

__all__ = [
    "REDACTED",
    "EmulatorState",
    "PlannedFailure",
    "PlannedModeration",
    "RecordedFile",
    "RecordedRequest",
    "StoredFile",
    "redact_headers",
]

#: What the request log shows instead of a credential.
REDACTED = "<redacted>"

_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "openai-api-key", "cookie", "proxy-authorization"}
)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased headers with every credential replaced by :data:`REDACTED` (the scheme is kept)."""
    redacted: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in _SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            redacted[key] = f"{scheme} {REDACTED}" if rest and scheme.isalpha() else REDACTED
        else:
            redacted[key] = value
    return redacted


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """A file part of a multipart request: form field, file name, content type and size in bytes."""

    field: str
    filename: str | None
    content_type: str | None
    size: int


@dataclass(slots=True)
class RecordedRequest:
    """One HTTP request the emulator received, as a test wants to assert on it.

    ``json`` is the parsed JSON body (``None`` for other bodies); multipart requests fill ``form`` (text
    fields) and ``files``. ``headers`` are lower-cased, credentials redacted. ``status`` is the status the
    emulator answered with (200 for a stream, even if it was later cut).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any = None
    form: Mapping[str, str] = field(default_factory=dict)
    files: tuple[RecordedFile, ...] = ()
    status: int | None = None

    @property
    def endpoint(self) -> str:
        """``"POST /v1/responses"``: method and path, handy in assertions."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded file (``POST /v1/files``)."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    content_type: str | None = None
    expires_at: int | None = None
    """Unix time after which the file is gone (``expires_after`` on upload); ``None``: kept until deleted."""

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at

    def to_wire(self) -> dict[str, Any]:
        """The API's ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass(slots=True)
class PlannedFailure:
    """An HTTP error the next matching request(s) get instead of being served."""

    status: int
    remaining: int
    retry_after: float | None = None
    path: str | None = None
    message: str | None = None
    code: str | None = None

    def matches(self, path: str) -> bool:
        return self.path is None or path == self.path or path.startswith(self.path.rstrip("/") + "/")


@dataclass(frozen=True, slots=True)
class PlannedModeration:
    """A moderation block the next image request(s) get, whatever the prompt."""

    categories: tuple[str, ...]
    stage: str


@dataclass(slots=True)
class _Faults:
    latency: float = 0.0
    partial_delay: float = 0.0
    failures: list[PlannedFailure] = field(default_factory=list)
    moderation: list[PlannedModeration] = field(default_factory=list)
    cut_after: list[int] = field(default_factory=list)


class EmulatorState:
    """Everything the emulator remembers between requests. Thread-safe."""

    def __init__(self, *, seed: int = 0, moderation_trigger: str | None = "forbidden") -> None:
        self._lock = threading.Lock()
        self.seed = seed
        self.default_moderation_trigger = moderation_trigger
        self.moderation_trigger = moderation_trigger
        self._faults = _Faults()
        self._requests: list[RecordedRequest] = []
        self._responses: dict[str, dict[str, Any]] = {}
        self._items: dict[str, dict[str, Any]] = {}
        self._files: dict[str, StoredFile] = {}
        #: The emulated API's option rules (its own data); switch answers with ``refuse``/``accept``.
        self.api_rules = ApiRules()

    def reset(self) -> None:
        """Forget requests, responses, files and faults; restore the default moderation trigger."""
        with self._lock:
            self._faults = _Faults()
            self._requests.clear()
            self._responses.clear()
            self._items.clear()
            self._files.clear()
            self.moderation_trigger = self.default_moderation_trigger
        self.api_rules.reset()
        self.api_rules.today = None

    def clear_faults(self) -> None:
        """Forget planned faults only (the logs and stored responses stay)."""
        with self._lock:
            latency, delay = self._faults.latency, self._faults.partial_delay
            self._faults = _Faults(latency=latency, partial_delay=delay)

    # --- request log -----------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    # --- faults ----------------------------------------------------------------------------------------

    def add_failure(self, failure: PlannedFailure) -> None:
        with self._lock:
            self._faults.failures.append(failure)

    def take_failure(self, path: str) -> PlannedFailure | None:
        """The planned failure for a request to ``path``, if any (consumes one use of it)."""
        with self._lock:
            for failure in self._faults.failures:
                if failure.matches(path):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._faults.failures.remove(failure)
                    return failure
            return None

    def add_moderation(self, block: PlannedModeration, times: int) -> None:
        with self._lock:
            self._faults.moderation.extend([block] * times)

    def take_moderation(self) -> PlannedModeration | None:
        with self._lock:
            return self._faults.moderation.pop(0) if self._faults.moderation else None

    def add_stream_cut(self, after_events: int) -> None:
        with self._lock:
            self._faults.cut_after.append(after_events)

    def take_stream_cut(self) -> int | None:
        with self._lock:
            return self._faults.cut_after.pop(0) if self._faults.cut_after else None

    @property
    def latency(self) -> float:
        with self._lock:
            return self._faults.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._faults.latency = seconds

    @property
    def partial_delay(self) -> float:
        with self._lock:
            return self._faults.partial_delay

    @partial_delay.setter
    def partial_delay(self, seconds: float) -> None:
        with self._lock:
            self._faults.partial_delay = seconds

    # --- responses and their items ---------------------------------------------------------------------

    def store_response(self, response: Mapping[str, Any]) -> None:
        """Keep a response (and index its output items) for ``previous_response_id`` and ``GET``."""
        body = copy.deepcopy(dict(response))
        with self._lock:
            self._responses[body["id"]] = body
            for item in body.get("output") or []:
                if isinstance(item, dict) and "id" in item:
                    self._items[item["id"]] = item

    def response(self, response_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._responses.get(response_id)
            return copy.deepcopy(found) if found is not None else None

    def delete_response(self, response_id: str) -> bool:
        with self._lock:
            body = self._responses.pop(response_id, None)
            if body is None:
                return False
            for item in body.get("output") or []:
                if isinstance(item, dict):
                    self._items.pop(item.get("id", ""), None)
            return True

    def item(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(item_id)
            return copy.deepcopy(found) if found is not None else None

    def responses(self) -> Mapping[str, dict[str, Any]]:
        with self._lock:
            return MappingProxyType(copy.deepcopy(self._responses))

    # --- files -----------------------------------------------------------------------------------------

    def add_file(self, stored: StoredFile) -> None:
        with self._lock:
            self._files[stored.id] = stored

    def file(self, file_id: str) -> StoredFile | None:
        """The file, unless unknown or expired (an expired file is gone, as on the real API)."""
        with self._lock:
            stored = self._files.get(file_id)
            if stored is not None and stored.expired():
                del self._files[file_id]
                return None
            return stored

    def delete_file(self, file_id: str) -> bool:
        with self._lock:
            return self._files.pop(file_id, None) is not None

    def expire_file(self, file_id: str) -> bool:
        """Let an uploaded file reach its expiry now (as if its ``expires_after`` had passed)."""
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                return False
            self._files[file_id] = dataclasses.replace(stored, expires_at=int(time.time()) - 1)
            return True

    def files(self) -> Mapping[str, StoredFile]:
        with self._lock:
            return MappingProxyType(dict(self._files))

    def file_list(self) -> Sequence[StoredFile]:
        with self._lock:
            return sorted((f for f in self._files.values() if not f.expired()), key=lambda f: (f.created_at, f.id))
