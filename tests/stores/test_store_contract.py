"""The store contract: every store (local directory, memory://, file://, S3) behaves the same way.

Each test runs once per store kind (see ``conftest.store_location``). Only the public ``ImageStore`` interface is
used, so a new store joins by adding its kind to the fixture.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from imagegen_tool import ImageStore
from imagegen_tool.errors import ImageNotFoundError, InvalidInputError
from imagegen_tool.images import GeneratedImage, ImageRecord
from tests.stores.conftest import StoreLocation


def png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real PNG whose pixels depend on ``seed`` (distinct images have distinct bytes)."""
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.putpixel((seed % size[0], 0), (255 - (seed % 256), 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def record(image_id: str = "img_contract", *, created_at: datetime | None = None, **fields: object) -> ImageRecord:
    values: dict[str, object] = {
        "id": image_id,
        "mime_type": "image/png",
        "format": "png",
        "width": 64,
        "height": 48,
        "prompt": "a contract test",
    }
    if created_at is not None:
        values["created_at"] = created_at
    values.update(fields)
    return ImageRecord.model_validate(values)


# --- images ---------------------------------------------------------------------------------------------


def test_a_saved_image_reads_back_with_its_record(store: ImageStore) -> None:
    data = png(1)
    handle = store.save(data, record("img_roundtrip", revised_prompt="a fox"))
    assert handle.id == "img_roundtrip"
    assert handle.byte_size == len(data)
    assert handle.sha256 == hashlib.sha256(data).hexdigest()
    assert handle.mime_type == "image/png"
    assert handle.uri
    again = store.get("img_roundtrip")
    assert again.model_dump(exclude={"url"}) == handle.model_dump(exclude={"url"})
    assert again.revised_prompt == "a fox"
    assert store.read_bytes("img_roundtrip") == data
    assert store.exists("img_roundtrip")


def test_another_worker_sees_the_image(store_location: StoreLocation) -> None:
    writer, reader = store_location.open(), store_location.open()
    data = png(2)
    handle = writer.save(data, record("img_shared"))
    assert reader.get(handle.id).sha256 == handle.sha256
    assert reader.read_bytes(handle.id) == data


def test_saving_a_taken_id_gives_a_new_id_and_keeps_both(store: ImageStore) -> None:
    first = store.save(png(3), record("img_twice"))
    second = store.save(png(4), record("img_twice"))
    assert first.id == "img_twice"
    assert second.id != first.id
    assert store.read_bytes(first.id) == png(3)
    assert store.read_bytes(second.id) == png(4)


def test_an_invalid_record_id_gets_a_fresh_valid_id(store: ImageStore) -> None:
    handle = store.save(png(5), record("../../etc/passwd"))
    assert handle.id != "../../etc/passwd"
    assert store.read_bytes(handle.id) == png(5)


async def test_concurrent_saves_of_one_id_never_share_an_id(store_location: StoreLocation) -> None:
    stores = [store_location.open() for _ in range(2)]
    payloads = [png(100 + i) for i in range(12)]
    handles = await asyncio.gather(*(stores[i % 2].asave(data, record("img_race")) for i, data in enumerate(payloads)))
    ids = [h.id for h in handles]
    assert len(set(ids)) == len(ids)
    for handle, data in zip(handles, payloads, strict=True):
        assert await stores[0].aread_bytes(handle.id) == data


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "x.json", ".sessions", "a" * 200, "id with space", "é"])
def test_ids_that_are_not_handle_ids_are_refused(store: ImageStore, bad: str) -> None:
    with pytest.raises(InvalidInputError):
        store.get(bad)
    with pytest.raises(InvalidInputError):
        store.read_bytes(bad)


def test_unknown_ids_are_not_found(store: ImageStore) -> None:
    with pytest.raises(ImageNotFoundError):
        store.get("img_missing")
    with pytest.raises(ImageNotFoundError):
        store.read_bytes("img_missing")
    assert not store.exists("img_missing")


def test_delete_removes_the_image_and_ignores_unknown_ids(store_location: StoreLocation) -> None:
    store, other = store_location.open(), store_location.open()
    handle = store.save(png(6), record("img_delete"))
    store.delete("img_delete")
    store.delete("img_delete")
    store.delete("img_never")
    with pytest.raises(ImageNotFoundError):
        other.get(handle.id)
    assert [h.id for h in other.list_images()] == []


# --- previews -------------------------------------------------------------------------------------------


def test_previews_are_stored_and_deleted_per_call(store: ImageStore) -> None:
    first = store.save_partial(png(7), call_id="ig_call", index=0)
    second = store.save_partial(png(8), call_id="ig_call", index=1)
    other = store.save_partial(png(9), call_id="ig_other", index=0)
    assert first.data == png(7)
    assert (first.mime_type, first.width, first.height, first.byte_size) == ("image/png", 64, 48, len(png(7)))
    assert first.uri != second.uri
    store.delete_partials("ig_call")
    # Previews are not handles, and the other call's preview is untouched.
    assert store.list_images() == []
    report = store.prune(older_than=None)
    assert report.images_removed == 0
    assert other.uri
    # Call ids come from the API: a store refuses an unsafe one, or (the local store) maps it to a safe name.
    try:
        evil = store.save_partial(png(7), call_id="../evil", index=0)
    except InvalidInputError:
        pass
    else:
        assert ".." not in evil.uri and "evil" not in evil.uri
        store.delete_partials("../evil")


# --- sessions -------------------------------------------------------------------------------------------


def test_latest_image_of_a_session(store_location: StoreLocation) -> None:
    store, other = store_location.open(), store_location.open()
    assert store.latest("thread-1") is None
    store.set_latest("thread-1", "img_a")
    store.set_latest("thread/2:é ✓", "img_b")
    assert other.latest("thread-1") == "img_a"
    assert other.latest("thread/2:é ✓") == "img_b"
    other.set_latest("thread-1", "img_c")
    assert store.latest("thread-1") == "img_c"
    with pytest.raises(InvalidInputError):
        store.set_latest("thread-1", "../etc")


async def test_concurrent_session_writers_leave_one_whole_value(store_location: StoreLocation) -> None:
    stores = [store_location.open() for _ in range(3)]
    written = [f"img_writer_{i}" for i in range(24)]
    await asyncio.gather(*(stores[i % 3].aset_latest("shared-thread", image_id) for i, image_id in enumerate(written)))
    assert await stores[0].alatest("shared-thread") in written


# --- listing and retention -----------------------------------------------------------------------------


def _save_aged(store: ImageStore, ages_days: list[float]) -> list[GeneratedImage]:
    now = datetime.now(UTC)
    return [
        store.save(png(20 + i), record(f"img_age_{i}", created_at=now - timedelta(days=age)))
        for i, age in enumerate(ages_days)
    ]


def test_list_images_is_newest_first_and_limited(store: ImageStore) -> None:
    saved = _save_aged(store, [3, 2, 1, 0])
    listed = store.list_images()
    assert [h.id for h in listed] == [h.id for h in reversed(saved)]
    assert [h.id for h in store.list_images(limit=2)] == [saved[3].id, saved[2].id]
    assert store.list_images(limit=0) == []


def test_prune_keeps_the_newest(store: ImageStore) -> None:
    saved = _save_aged(store, [3, 2, 1, 0])
    report = store.prune(keep_last=1)
    assert report.images_removed == 3
    assert report.bytes_freed >= sum(h.byte_size for h in saved[:3])
    assert [h.id for h in store.list_images()] == [saved[3].id]
    for gone in saved[:3]:
        assert not store.exists(gone.id)


def test_prune_by_age(store: ImageStore) -> None:
    saved = _save_aged(store, [10, 5, 0.01])
    report = store.prune(older_than=timedelta(days=2))
    assert report.images_removed == 2
    assert [h.id for h in store.list_images()] == [saved[2].id]
    assert store.prune(older_than=timedelta(days=2)).images_removed == 0


def test_prune_without_limits_keeps_every_complete_image(store: ImageStore) -> None:
    saved = _save_aged(store, [400, 1])
    report = store.prune()
    assert report.images_removed == 0
    assert {h.id for h in store.list_images()} == {h.id for h in saved}


# --- upload cache ---------------------------------------------------------------------------------------


def test_upload_cache_is_shared_and_never_returns_expired_ids(store_location: StoreLocation) -> None:
    store, other = store_location.open(), store_location.open()
    fresh, stale, forever = (hashlib.sha256(s).hexdigest() for s in (b"fresh", b"stale", b"forever"))
    assert store.get_upload(fresh) is None
    store.put_upload(fresh, "file-fresh", expires_at=datetime.now(UTC) + timedelta(hours=1))
    store.put_upload(stale, "file-stale", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    store.put_upload(forever, "file-forever", expires_at=None)
    assert other.get_upload(fresh) == "file-fresh"
    assert other.get_upload(stale) is None
    assert other.get_upload(forever) == "file-forever"


# --- async twins ----------------------------------------------------------------------------------------


async def test_async_twins_behave_like_the_sync_methods(store_location: StoreLocation) -> None:
    store, other = store_location.open(), store_location.open()
    data = png(30)
    handle = await store.asave(data, record("img_async"))
    assert (await other.aget(handle.id)).sha256 == handle.sha256
    assert await other.aread_bytes(handle.id) == data
    assert other.read_bytes(handle.id) == data  # sync and async paths share one store
    partial = await store.asave_partial(png(31), call_id="ig_async", index=0)
    assert partial.data == png(31)
    await store.adelete_partials("ig_async")
    await store.aset_latest("async-thread", handle.id)
    assert await other.alatest("async-thread") == handle.id
    assert [h.id for h in await other.alist_images(limit=5)] == [handle.id]
    key = hashlib.sha256(data).hexdigest()
    await store.aput_upload(key, "file-async", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert await other.aget_upload(key) == "file-async"
    assert (await other.aprune(keep_last=5)).images_removed == 0
    await other.adelete(handle.id)
    with pytest.raises(ImageNotFoundError):
        await store.aget(handle.id)
    for opened in (store, other):
        aclose = getattr(opened, "aclose", None)
        if aclose is not None:
            await aclose()


# --- browser URLs ---------------------------------------------------------------------------------------


def test_public_base_url_maps_handles_to_browser_urls(store_location: StoreLocation) -> None:
    store = store_location.open(public_base_url="https://cdn.example.test/images/")
    handle = store.save(png(40), record("img_public"))
    assert handle.url is not None
    assert handle.url.startswith("https://cdn.example.test/images/")
    assert handle.url.endswith(".png")
    assert "//" not in handle.url.removeprefix("https://")
    assert store.get(handle.id).url == handle.url


# --- documents (batch job manifests) -----------------------------------------------------------------------


def test_a_document_is_replaced_whole_and_listed_by_prefix(store: ImageStore) -> None:
    assert store.get_document("bj_contract") is None
    store.put_document("bj_contract", b'{"version": 1}')
    store.put_document("bj_contract", b'{"version": 2}')
    store.put_document("other_doc", b"{}")
    assert store.get_document("bj_contract") == b'{"version": 2}'
    assert store.list_documents("bj_") == ["bj_contract"]
    assert set(store.list_documents()) >= {"bj_contract", "other_doc"}
    assert asyncio.run(store.aget_document("bj_contract")) == b'{"version": 2}'
    asyncio.run(store.aput_document("bj_async", b"[]"))
    assert asyncio.run(store.alist_documents("bj_")) == ["bj_async", "bj_contract"]
    # documents are not images
    assert all(not image.id.startswith("bj_") for image in store.list_images())


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 129])
def test_a_document_name_is_never_a_path(store: ImageStore, name: str) -> None:
    with pytest.raises(InvalidInputError):
        store.put_document(name, b"{}")
    with pytest.raises(InvalidInputError):
        store.get_document(name)
