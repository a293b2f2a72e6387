"""FsspecImageStore in object-store terms: untrusted objects, crash leftovers, conditional writes, browser URLs,
and the async path that needs no threads. Runs on memory://, file:// and S3 (SeaweedFS on loopback)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imagegen_tool.errors import ImageNotFoundError, StorageError
from imagegen_tool.fsspec_store import FsspecImageStore
from tests.fixtures.seaweedfs import SeaweedS3
from tests.stores.conftest import BUCKET, StoreLocation, _location
from tests.stores.test_store_contract import png, record


@pytest.fixture(params=["memory", "file", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreLocation]:
    where = _location(request.param, tmp_path, request)
    try:
        yield where
    finally:
        where.close()


def open_fsspec(location: StoreLocation, **options: Any) -> FsspecImageStore:
    store = location.open(**options)
    assert isinstance(store, FsspecImageStore)
    return store


_RAW: weakref.WeakKeyDictionary[FsspecImageStore, Any] = weakref.WeakKeyDictionary()


def raw_fs(store: FsspecImageStore) -> Any:
    """A plain sync client of the store's file system, to plant or inspect objects the way another program
    (or someone with access to the bucket) could."""
    if store not in _RAW:
        _RAW[store] = store._cls(**store._options)
    return _RAW[store]


def raw_key(store: FsspecImageStore, key: str) -> str:
    return f"{store._root}/{key}"


def plant(store: FsspecImageStore, key: str, data: bytes) -> None:
    fs = raw_fs(store)
    path = raw_key(store, key)
    if store._local:
        fs.makedirs(fs._parent(path), exist_ok=True)
    fs.pipe_file(path, data)


def raw_keys(store: FsspecImageStore, prefix: str) -> list[str]:
    fs = raw_fs(store)
    try:
        found = fs.find(raw_key(store, prefix.rstrip("/")))
    except FileNotFoundError:
        return []
    keys = (path.removeprefix(store._root + "/") for path in found)
    return sorted(key for key in keys if key.startswith(prefix))


# --- untrusted objects ----------------------------------------------------------------------------------


def test_a_damaged_record_is_not_an_image(location: StoreLocation) -> None:
    store = open_fsspec(location)
    handle = store.save(png(1), record("img_damaged"))
    plant(store, "records/img_damaged.json", b'{"id": "img_damaged", "trunc')
    with pytest.raises(ImageNotFoundError):
        store.get(handle.id)
    assert store.list_images() == []
    # A damaged record beside its image is left for a person who may repair it.
    assert store.prune(keep_last=0).images_removed == 0
    assert raw_keys(store, "images/") == [f"images/{handle.filename}"]


def test_a_planted_record_cannot_point_at_another_object(location: StoreLocation) -> None:
    store = open_fsspec(location)
    victim = store.save(png(2), record("img_victim"))
    for filename in [victim.filename, "../records/img_victim.json", "/etc/passwd", f"img_evil.{'0' * 16}.png"]:
        planted = victim.model_copy(update={"id": "img_evil", "filename": filename})
        body = planted.model_dump_json(exclude={"uri", "path", "url"}).encode()
        plant(store, "records/img_evil.json", body)
        with pytest.raises(ImageNotFoundError):
            store.read_bytes("img_evil")
        store.delete("img_evil")
    # A record copied under another id does not impersonate it either.
    copy = raw_fs(store).cat_file(raw_key(store, f"records/{victim.id}.json"))
    plant(store, "records/img_copy.json", copy)
    with pytest.raises(ImageNotFoundError):
        store.get("img_copy")
    assert store.read_bytes(victim.id) == png(2)


def test_changed_bytes_are_detected(location: StoreLocation) -> None:
    store = open_fsspec(location)
    handle = store.save(png(3), record("img_changed"))
    plant(store, f"images/{handle.filename}", png(4))
    with pytest.raises(StorageError, match="do not match"):
        store.read_bytes(handle.id)


def test_oversized_and_odd_session_pointers_are_ignored(location: StoreLocation) -> None:
    store = open_fsspec(location)
    store.set_latest("thread", "img_ok")
    key = next(k for k in raw_keys(store, "sessions/"))
    for junk in [b"\xff\xfe", b"../../etc", b"x" * 100_000]:
        plant(store, key, junk)
        assert store.latest("thread") is None


def test_damaged_upload_cache_entries_are_ignored(location: StoreLocation) -> None:
    store = open_fsspec(location)
    key = "ab" * 32
    for junk in [b"not json", b'{"file_id": "../x"}', b'{"file_id": "file-1", "expires_at": "2020-01-01T00:00:00"}']:
        plant(store, f"uploads/{key}.json", junk)
        assert store.get_upload(key) is None
    assert store.get_upload("not-a-sha256") is None


# --- crash leftovers and retention ----------------------------------------------------------------------


def test_an_image_without_its_record_is_invisible_and_pruned_after_the_grace_period(location: StoreLocation) -> None:
    store = open_fsspec(location)
    kept = store.save(png(5), record("img_kept"))
    # What a worker killed between the image PUT and the record PUT leaves behind.
    plant(store, f"images/img_crashed.{'1' * 16}.png", png(6))
    store.save_partial(png(7), call_id="ig_crashed", index=0)
    with pytest.raises(ImageNotFoundError):
        store.get("img_crashed")
    assert [h.id for h in store.list_images()] == [kept.id]

    young = store.prune()  # inside the grace period another worker may still be writing them
    assert (young.orphans_removed, young.temp_removed) == (0, 0)

    report = open_fsspec(location, grace_period=timedelta(0)).prune()
    assert report.orphans_removed == 1
    assert report.temp_removed == 1
    assert report.images_removed == 0
    assert report.bytes_freed >= len(png(6)) + len(png(7))
    assert raw_keys(store, "images/") == [f"images/{kept.filename}"]
    assert raw_keys(store, "previews/") == []
    assert store.read_bytes(kept.id) == png(5)


def test_prune_removes_records_whose_image_is_gone_and_expired_upload_entries(location: StoreLocation) -> None:
    store = open_fsspec(location, grace_period=timedelta(0))
    handle = store.save(png(8), record("img_gone"))
    raw_fs(store).rm_file(raw_key(store, f"images/{handle.filename}"))
    assert store.list_images() == []  # not complete, so not listed
    store.put_upload("cd" * 32, "file-old", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    store.put_upload("ef" * 32, "file-new", expires_at=datetime.now(UTC) + timedelta(hours=1))
    report = store.prune()
    assert report.orphans_removed == 1
    assert raw_keys(store, "records/") == []
    assert raw_keys(store, "uploads/") == [f"uploads/{'ef' * 32}.json"]


def test_without_conditional_writes_ids_are_checked_before_writing(location: StoreLocation) -> None:
    store = open_fsspec(location, conditional_writes=False)
    first = store.save(png(9), record("img_same"))
    second = store.save(png(10), record("img_same"))
    assert first.id != second.id
    assert store.read_bytes(first.id) == png(9)
    assert store.read_bytes(second.id) == png(10)


def test_the_server_is_probed_for_conditional_writes(location: StoreLocation) -> None:
    store = open_fsspec(location)
    store.save(png(11), record("img_probe"))
    # SeaweedFS honours If-None-Match (see tests/fixtures/seaweedfs.py); memory:// and file:// create atomically.
    assert store._conditional is True
    assert raw_keys(store, ".probe/") == []


# --- S3: browser URLs, credentials, no threads ----------------------------------------------------------


@pytest.fixture
def s3_location(s3_server: SeaweedS3, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[StoreLocation]:
    where = _location("s3", tmp_path, request)
    try:
        yield where
    finally:
        where.close()


def fetch(url: str) -> tuple[int, bytes, str]:
    assert url.startswith("http://127.0.0.1:")  # tests talk to loopback only
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def test_presigned_url_serves_the_same_bytes_to_a_browser(s3_location: StoreLocation) -> None:
    store = open_fsspec(s3_location)
    data = png(12, size=(600, 400))
    handle = store.save(data, record("img_browser"))
    assert handle.url is not None
    assert "X-Amz-Signature=" in handle.url and "X-Amz-Expires=3600" in handle.url
    status, body, content_type = fetch(handle.url)
    assert (status, body, content_type) == (200, data, "image/png")
    # The server checks the signature: a forged URL is refused.
    forged = handle.url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert fetch(forged)[0] == 403


def test_urls_expire_and_are_refreshed_on_get(s3_location: StoreLocation) -> None:
    store = open_fsspec(s3_location, url_expires=timedelta(seconds=1))
    handle = store.save(png(13), record("img_expiring"))
    assert handle.url is not None
    import time

    time.sleep(2.5)
    assert fetch(handle.url)[0] == 403
    fresh = store.get(handle.id).url
    assert fresh is not None and fresh != handle.url
    assert fetch(fresh)[:2] == (200, png(13))


def test_previews_get_presigned_urls(s3_location: StoreLocation) -> None:
    store = open_fsspec(s3_location)
    partial = store.save_partial(png(14), call_id="ig_preview", index=0)
    assert partial.url is not None
    assert fetch(partial.url)[:2] == (200, png(14))
    store.delete_partials("ig_preview")
    assert fetch(partial.url)[0] == 404


def test_credentials_come_from_the_environment(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    store = FsspecImageStore(f"s3://{BUCKET}/from-env")
    handle = store.save(png(15), record("img_env"))
    assert store.read_bytes(handle.id) == png(15)
    store.close()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StorageError):
        FsspecImageStore(f"s3://{BUCKET}/from-env").get(handle.id)


async def test_the_async_path_hands_no_store_work_to_threads(
    s3_location: StoreLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 concurrent agents must not need 200 threads: every S3 call of the async methods is a coroutine on the
    caller's loop. (aiohttp may still resolve host names in its executor; that is not per store operation.)"""
    store = open_fsspec(s3_location)
    real_to_thread = asyncio.to_thread
    ours: list[str] = []

    async def watching_to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        if getattr(func, "__module__", "").startswith("imagegen_tool"):
            ours.append(getattr(func, "__qualname__", repr(func)))
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", watching_to_thread)
    payloads = [png(200 + i) for i in range(40)]
    handles = await asyncio.gather(*(store.asave(data, record(f"img_many_{i}")) for i, data in enumerate(payloads)))
    assert [await store.aread_bytes(h.id) for h in handles[:5]] == payloads[:5]
    assert len(await store.alist_images()) == 40
    await store.aset_latest("t", handles[0].id)
    assert await store.alatest("t") == handles[0].id
    assert (await store.aprune(keep_last=10)).images_removed == 30
    await store.asave_partial(png(1), call_id="ig_t", index=0)
    await store.adelete_partials("ig_t")
    assert ours == []
    monkeypatch.undo()
    await store.aclose()


def test_each_save_is_two_puts_and_the_record_is_conditional(s3_location: StoreLocation) -> None:
    """The record PUT carries If-None-Match: the server refuses to replace a record, whoever writes it."""
    store = open_fsspec(s3_location)
    handle = store.save(png(16), record("img_conditional"))
    fs = raw_fs(store)
    body = json.dumps({"id": "img_conditional"}).encode()
    with pytest.raises(OSError) as caught:  # noqa: PT011 - how s3fs wraps the 412 differs by server
        fs.pipe_file(raw_key(store, f"records/{handle.id}.json"), body, mode="create")
    from imagegen_tool.fsspec_store import _is_precondition_failure

    assert _is_precondition_failure(caught.value)
    assert store.read_bytes(handle.id) == png(16)
