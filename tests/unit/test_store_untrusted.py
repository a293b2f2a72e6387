"""Untrusted store contents: edited records, links, FIFOs and damaged files never make the store read, write or
delete outside its directory, hang, or raise anything but its own typed errors."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from imagegen_tool import ImageRecord, LocalImageStore
from imagegen_tool.errors import ImageNotFoundError, StorageError
from imagegen_tool.imageinfo import inspect_image


def _png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, "PNG")
    return buffer.getvalue()


def _record(image_id: str = "ig_a") -> ImageRecord:
    info = inspect_image(_png())
    return ImageRecord(id=image_id, mime_type=info.mime_type, format=info.format, prompt="p", width=8, height=6)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.png").write_bytes(_png("blue"))
    return directory


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    store = LocalImageStore(tmp_path / "store")
    store.save(_png(), _record())
    return store


def _edit_record(store: LocalImageStore, image_id: str = "ig_a", **changes: object) -> None:
    path = store.root / f"{image_id}.json"
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_a_record_naming_an_outside_file_is_ignored_for_reads_and_deletes(
    store: LocalImageStore, outside: Path
) -> None:
    _edit_record(store, filename=str(outside / "secret.png"))
    handle = store.get("ig_a")
    assert handle.path == str(store.root / "ig_a.png")
    assert store.read_bytes("ig_a") == _png()
    _edit_record(store, filename="../outside/secret.png")
    store.delete("ig_a")
    assert (outside / "secret.png").read_bytes() == _png("blue")
    assert not (store.root / "ig_a.png").exists()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xfe\x00garbage", "damaged"),
        (b"{not json", "damaged"),
        (b"[]", "damaged"),
        (b"", "damaged"),
        (json.dumps({"id": "ig_other", "mime_type": "image/png", "format": "png", "prompt": "p"}).encode(), "another"),
        (json.dumps({"id": "ig_a", "mime_type": "image/png", "format": "../../x", "prompt": "p"}).encode(), "format"),
        (b'{"id": "ig_a", "prompt": "' + b"x" * (2 << 20) + b'"}', "too large"),
    ],
)
def test_damaged_records_are_image_not_found_with_a_clear_message(store: LocalImageStore, raw: bytes, why: str) -> None:
    (store.root / "ig_a.json").write_bytes(raw)
    with pytest.raises(ImageNotFoundError, match=why) as caught:
        store.get("ig_a")
    assert "damaged" in str(caught.value)
    with pytest.raises(ImageNotFoundError):
        store.read_bytes("ig_a")
    assert store.list_images() == []


def test_fifos_never_block_a_read(store: LocalImageStore) -> None:
    (store.root / "ig_a.png").unlink()
    os.mkfifo(store.root / "ig_a.png")
    result: list[BaseException | bytes] = []

    def read() -> None:
        try:
            result.append(store.read_bytes("ig_a"))
        except BaseException as exc:
            result.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert isinstance(result[0], StorageError) and "regular file" in str(result[0])
    store.save(_png(), _record("ig_b"))
    (store.root / "ig_b.json").unlink()
    os.mkfifo(store.root / "ig_b.json")
    with pytest.raises(ImageNotFoundError, match="regular file"):
        store.get("ig_b")


def test_a_linked_image_or_record_is_never_followed(store: LocalImageStore, outside: Path) -> None:
    (store.root / "ig_a.png").unlink()
    (store.root / "ig_a.png").symlink_to(outside / "secret.png")
    with pytest.raises(StorageError):
        store.read_bytes("ig_a")
    secret_record = outside / "ig_b.json"
    secret_record.write_text(_record("ig_b").model_dump_json())
    (store.root / "ig_b.json").symlink_to(secret_record)
    with pytest.raises((ImageNotFoundError, StorageError)):
        store.get("ig_b")


@pytest.mark.parametrize("folder", [".sessions", ".partials", ".uploads", ".tmp"])
def test_linked_store_folders_cannot_redirect_writes(tmp_path: Path, outside: Path, folder: str) -> None:
    root = tmp_path / "store"
    root.mkdir()
    target = outside / "redirected"
    target.mkdir()
    (root / folder).symlink_to(target, target_is_directory=True)
    store = LocalImageStore(root)
    if folder == ".tmp":
        store._anonymous_temp = False  # the named-temporary-file path (file systems without O_TMPFILE)
    if folder == ".uploads":
        store.put_upload("a" * 64, "file-1", expires_at=None)  # a cache: a failed write only costs an upload
        assert store.get_upload("a" * 64) is None
    else:
        write = {
            ".sessions": lambda: store.set_latest("thread", "ig_a"),
            ".partials": lambda: store.save_partial(_png(), call_id="ig_call", index=0),
            ".tmp": lambda: store.save(_png(), _record()),
        }[folder]
        with pytest.raises(StorageError, match=r"symbolic link|not a directory"):
            write()
    assert list(target.iterdir()) == []
    if folder == ".sessions":
        with pytest.raises(StorageError):
            store.latest("thread")


def test_linked_legacy_claims_folder_is_never_written_through(store: LocalImageStore, outside: Path) -> None:
    victim = outside / "ig_a"
    victim.write_text("keep me")
    (store.root / ".ids").symlink_to(outside, target_is_directory=True)
    store.delete("ig_a")
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("content", [b"\xff\xfe\xfd", b"../../etc/passwd", b"", b"ig_a\x00"])
def test_a_damaged_session_file_is_a_storage_error_naming_it(store: LocalImageStore, content: bytes) -> None:
    store.set_latest("thread-1", "ig_a")
    (session_file,) = (store.root / ".sessions").iterdir()
    session_file.write_bytes(content)
    with pytest.raises(StorageError, match=r"damaged.*delete it"):
        store.latest("thread-1")
    store.set_latest("thread-1", "ig_a")  # writing again repairs it
    assert store.latest("thread-1") == "ig_a"


def test_a_store_whose_folder_was_replaced_keeps_working(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalImageStore(root)
    store.save(_png(), _record())
    (root / "ig_a.png").unlink()
    (root / "ig_a.json").unlink()
    root.rmdir()
    handle = store.save(_png(), _record("ig_new"))  # the directory is created and reopened
    assert Path(handle.path or "").exists()
    assert store.get("ig_new") == handle
