"""The store interface every store implements: listing, pruning, async twins, the upload cache, public URLs,
file modes, durability settings and the per-call preview folders of the local store."""

from __future__ import annotations

import io
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from imagegen_tool import ImageRecord, LocalImageStore
from imagegen_tool.errors import ConfigurationError, ImageNotFoundError, InvalidInputError
from imagegen_tool.imageinfo import inspect_image
from imagegen_tool.store import ImageStore, PruneReport


def _png(size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, "PNG")
    return buffer.getvalue()


def _record(image_id: str, data: bytes, *, created_at: datetime | None = None) -> ImageRecord:
    info = inspect_image(data)
    extra = {"created_at": created_at} if created_at else {}
    return ImageRecord(
        id=image_id,
        mime_type=info.mime_type,
        format=info.format,
        width=info.width,
        height=info.height,
        prompt="p",
        **extra,  # type: ignore[arg-type]
    )


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())


def test_list_images_newest_first_with_limit(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    ids = []
    for number in range(4):
        handle = store.save(_png((4 + number, 4)), _record(f"ig_{number}", _png((4 + number, 4))))
        _age(tmp_path / f"{handle.id}.json", 100 - number)  # later saves are newer
        ids.append(handle.id)
    assert [h.id for h in store.list_images()] == list(reversed(ids))
    assert [h.id for h in store.list_images(limit=2)] == ["ig_3", "ig_2"]
    assert store.list_images(limit=0) == []
    assert store.list_images()[0] == store.get("ig_3")


def test_list_images_skips_orphans_damaged_records_and_records_without_images(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    store.save(_png(), _record("ig_ok", _png()))
    (tmp_path / "ig_orphan.png").write_bytes(_png())
    (tmp_path / "ig_bad.json").write_bytes(b"\xff\xfe not json")
    (tmp_path / "ig_bad.png").write_bytes(_png())
    store.save(_png(), _record("ig_gone", _png()))
    (tmp_path / "ig_gone.png").unlink()
    assert [h.id for h in store.list_images()] == ["ig_ok"]
    with pytest.raises(ImageNotFoundError):
        store.get("ig_orphan")


def test_prune_by_age_and_count(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    now = datetime.now(UTC)
    for days in range(5):
        data = _png((4 + days, 4))
        store.save(data, _record(f"ig_{days}d", data, created_at=now - timedelta(days=days, minutes=1)))
    size_of_two = sum((tmp_path / f"ig_{d}d.{ext}").stat().st_size for d in (3, 4) for ext in ("png", "json"))
    report = store.prune(older_than=timedelta(days=3))
    assert report == PruneReport(images_removed=2, bytes_freed=size_of_two)
    assert sorted(h.id for h in store.list_images()) == ["ig_0d", "ig_1d", "ig_2d"]
    report = store.prune(keep_last=1)
    assert report.images_removed == 2
    assert [h.id for h in store.list_images()] == ["ig_0d"]
    assert _files(tmp_path) == ["ig_0d.json", "ig_0d.png"]
    assert store.prune() == PruneReport()


def test_prune_removes_stale_orphans_and_temporaries_but_not_fresh_ones(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path, grace_period=timedelta(minutes=10))
    keep = store.save(_png(), _record("ig_keep", _png()))
    stale = {
        "ig_orphan.png": _png(),  # image without record (killed between the two links)
        "ig_norecord.webp": b"x" * 10,
        ".tmp-abc123.part": b"x" * 100,  # temporary file of an earlier version
        "ig_old.partial-0.png": b"x" * 7,  # preview of an earlier version
        "ig_lost.json": b"{}",  # record without image
    }
    for name, data in stale.items():
        (tmp_path / name).write_bytes(data)
        _age(tmp_path / name, 3600)
    (tmp_path / ".ids").mkdir()
    (tmp_path / ".ids" / "ig_claim").touch()  # id claim without record, earlier versions
    _age(tmp_path / ".ids" / "ig_claim", 3600)
    (tmp_path / ".ids" / "ig_keep").touch()
    _age(tmp_path / ".ids" / "ig_keep", 3600)
    (tmp_path / "ig_fresh.png").write_bytes(_png())  # maybe another process is between its two links
    store.save_partial(_png(), call_id="ig_call", index=0)
    _age(tmp_path / ".partials" / "ig_call", 3600)
    report = store.prune()
    assert report.images_removed == 0
    assert report.orphans_removed == 4  # two images, one record, one claim
    assert report.temp_removed == 3  # legacy temp, legacy preview, the stale preview folder's file
    assert report.bytes_freed >= len(_png()) + 10 + 100 + 7 + 2
    assert _files(tmp_path) == [".ids/ig_keep", "ig_fresh.png", "ig_keep.json", "ig_keep.png"]
    assert store.get(keep.id) == keep


def test_prune_never_follows_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.png"
    victim.write_bytes(b"precious")
    root = tmp_path / "store"
    store = LocalImageStore(root, grace_period=timedelta(0))
    store.save(_png(), _record("ig_a", _png()))
    (root / "ig_link.png").symlink_to(victim)
    (root / ".tmp").mkdir(exist_ok=True)
    (root / ".tmp" / "x.part").symlink_to(victim)
    time.sleep(0.01)
    store.prune()
    assert victim.read_bytes() == b"precious"
    assert not (root / "ig_link.png").is_symlink()


async def test_async_twins_match_the_sync_methods(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    handle = await store.asave(_png(), _record("ig_async", _png()))
    assert await store.aget(handle.id) == handle
    assert await store.aread_bytes(handle.id) == _png()
    assert await store.aexists(handle.id)
    partial = await store.asave_partial(_png(), call_id="ig_async", index=0)
    assert Path(partial.path or "").exists()
    await store.adelete_partials("ig_async")
    assert not Path(partial.path or "").exists()
    await store.aset_latest("thread", handle.id)
    assert await store.alatest("thread") == handle.id
    assert [h.id for h in await store.alist_images()] == [handle.id]
    assert await store.aprune() == PruneReport()
    await store.aput_upload("a" * 64, "file-1", expires_at=None)
    assert await store.aget_upload("a" * 64) == "file-1"
    await store.adelete(handle.id)
    assert not await store.aexists(handle.id)


def test_upload_cache_survives_a_new_store_and_drops_expired_entries(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    key, old = "b" * 64, "c" * 64
    assert store.get_upload(key) is None
    store.put_upload(key, "file-abc", expires_at=datetime.now(UTC) + timedelta(days=1))
    store.put_upload(old, "file-old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    other = LocalImageStore(tmp_path)
    assert other.get_upload(key) == "file-abc"
    assert other.get_upload(old) is None
    assert other.get_upload("../../etc/passwd") is None
    with pytest.raises(ValueError, match="sha256"):
        other.put_upload("not-a-digest", "file-x", expires_at=None)


def test_abc_default_upload_cache_is_per_instance_and_expires() -> None:
    class Minimal(ImageStore):
        save = get = read_bytes = delete = save_partial = delete_partials = None  # type: ignore[assignment]
        set_latest = latest = list_images = prune = None  # type: ignore[assignment]

    first, second = Minimal(), Minimal()
    first.put_upload("k", "file-1", expires_at=None)
    first.put_upload("gone", "file-2", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert first.get_upload("k") == "file-1"
    assert first.get_upload("gone") is None
    assert second.get_upload("k") is None


def test_public_base_url_fills_handle_and_preview_urls(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path, public_base_url="https://cdn.example/images/")
    handle = store.save(_png(), _record("ig_u", _png()))
    assert handle.url == "https://cdn.example/images/ig_u.png"
    assert store.get("ig_u").url == handle.url
    assert handle.summary()["url"] == handle.url
    partial = store.save_partial(_png(), call_id="ig_u", index=1)
    assert partial.url == "https://cdn.example/images/.partials/ig_u/ig_u.partial-1.png"
    assert LocalImageStore(tmp_path).get("ig_u").url is None


def test_files_follow_the_umask_unless_a_mode_is_configured(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        default = LocalImageStore(tmp_path / "a").save(_png(), _record("ig_m", _png()))
        configured = LocalImageStore(tmp_path / "b", file_mode=0o600).save(_png(), _record("ig_m", _png()))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(default.path or "").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "ig_m.json").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(configured.path or "").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "b" / "ig_m.json").st_mode) == 0o600
    with pytest.raises(ConfigurationError, match="file_mode"):
        LocalImageStore(tmp_path, file_mode=0o10000)


@pytest.mark.parametrize("durability", ["durable", "process"])
def test_durability_setting_controls_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str) -> None:
    store = LocalImageStore(tmp_path, durability=durability)  # type: ignore[arg-type]
    store.save(_png(), _record("ig_warm", _png()))  # opens the directory once
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store.save(_png(), _record("ig_d", _png()))
    # image, record and the directory entry that makes them visible
    assert len(synced) == (3 if durability == "durable" else 0)
    with pytest.raises(ConfigurationError, match="durability"):
        LocalImageStore(tmp_path, durability="sometimes")  # type: ignore[arg-type]


def test_a_save_creates_no_directory_and_few_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalImageStore(tmp_path)
    store.save(_png(), _record("ig_first", _png()))
    calls: list[str] = []
    for name in ("mkdir", "makedirs", "open", "link", "rename", "replace", "unlink", "stat"):
        real = getattr(os, name)

        def spy(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
            calls.append(_name)
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(os, name, spy)
    store.save(_png(), _record("ig_second", _png()))
    assert "mkdir" not in calls and "makedirs" not in calls
    assert calls.count("open") <= 2 and calls.count("link") <= 2


def test_partials_live_in_a_folder_per_call_removed_without_scanning_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalImageStore(tmp_path)
    for number in range(3):
        store.save(_png(), _record(f"ig_{number}", _png()))
    first = store.save_partial(_png(), call_id="ig_call", index=0)
    second = store.save_partial(_png((9, 9)), call_id="ig_call", index=1)
    other = store.save_partial(_png(), call_id="ig_other", index=0)
    assert Path(first.path or "").parent == tmp_path / ".partials" / "ig_call"
    assert Path(second.path or "").name == "ig_call.partial-1.png"
    scanned: list[object] = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda target=".": (scanned.append(target), real_scandir(target))[1])
    store.delete_partials("ig_call")
    assert not (tmp_path / ".partials" / "ig_call").exists()
    assert Path(other.path or "").exists()
    assert len(scanned) == 1 and scanned[0] != str(tmp_path)  # only the call's own folder was listed
    store.delete_partials("ig_never_streamed")
    store.delete_partials("../ig_other")  # an odd call id from the API names its own (hashed) folder
    assert Path(other.path or "").exists()


def test_call_ids_that_are_not_safe_names_still_get_previews(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    for call_id in ("../../escape", "ig/with/slashes", "x" * 500, "ig_\n\x00"):
        partial = store.save_partial(_png(), call_id=call_id, index=0)
        assert Path(partial.path or "").resolve().is_relative_to(tmp_path / ".partials")
        assert partial.call_id == call_id or partial.call_id.startswith("call-")
        store.delete_partials(call_id)
        assert not Path(partial.path or "").exists()
    assert not outside.exists()
    assert os.listdir(tmp_path / ".partials") == []
    with pytest.raises(InvalidInputError):
        store.get("../ig_other")


def test_stale_temporaries_and_previews_are_cleaned_when_a_store_opens(tmp_path: Path) -> None:
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "dead.part").write_bytes(b"x" * 1000)
    _age(tmp_path / ".tmp" / "dead.part", 7200)
    (tmp_path / ".tmp" / "young.part").write_bytes(b"x")
    (tmp_path / ".partials" / "ig_dead").mkdir(parents=True)
    (tmp_path / ".partials" / "ig_dead" / "ig_dead.partial-0.png").write_bytes(b"x")
    _age(tmp_path / ".partials" / "ig_dead" / "ig_dead.partial-0.png", 7200)
    _age(tmp_path / ".partials" / "ig_dead", 7200)
    store = LocalImageStore(tmp_path)
    with pytest.raises(ImageNotFoundError):
        store.get("ig_anything")  # first use opens the store
    assert _files(tmp_path) == [".tmp/young.part"]
