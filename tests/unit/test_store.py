"""The local store: atomic writes, no overwrites, untrusted ids, handles resolvable from another process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagegen_tool import ImageOptions, ImageRecord, LocalImageStore
from imagegen_tool.errors import ImageNotFoundError, InvalidInputError, StorageError
from imagegen_tool.imageinfo import inspect_image


def _files(root: Path) -> list[str]:
    """Every file under ``root`` (the id claims in ``.ids/`` included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _png(size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "red").save(buffer, "PNG")
    return buffer.getvalue()


def _record(image_id: str = "ig_abc", data: bytes | None = None, **extra: object) -> ImageRecord:
    info = inspect_image(data if data is not None else _png())
    return ImageRecord(
        id=image_id,
        mime_type=info.mime_type,
        format=info.format,
        width=info.width,
        height=info.height,
        prompt="a red square",
        **extra,  # type: ignore[arg-type]
    )


def test_save_writes_image_and_record_and_get_resolves_it(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    data = _png()
    handle = store.save(data, _record(data=data, options=ImageOptions(quality="low")))
    assert handle.id == "ig_abc"
    assert Path(handle.path or "").read_bytes() == data
    assert handle.uri == (tmp_path / "ig_abc.png").resolve().as_uri()
    assert handle.byte_size == len(data)
    assert len(handle.sha256) == 64
    assert store.get("ig_abc") == handle
    assert store.read_bytes("ig_abc") == data
    assert _files(tmp_path) == ["ig_abc.json", "ig_abc.png"]


def test_same_id_never_overwrites(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    first = store.save(_png((4, 4)), _record(data=_png((4, 4))))
    second = store.save(_png((5, 5)), _record(data=_png((5, 5))))
    assert first.id != second.id
    assert second.id.startswith("ig_abc-")
    assert store.get(first.id).width == 4
    assert store.get(second.id).width == 5


@pytest.mark.parametrize(
    "bad_id", ["../etc/passwd", "/etc/passwd", "a/b", "..", "", "x" * 200, "id with space", "ig_1.json", "~root"]
)
def test_untrusted_ids_never_reach_the_file_system(tmp_path: Path, bad_id: str) -> None:
    store = LocalImageStore(tmp_path)
    with pytest.raises(InvalidInputError):
        store.get(bad_id)


def test_unknown_id_is_image_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError) as caught:
        LocalImageStore(tmp_path).get("ig_missing")
    assert "earlier image tool call" in caught.value.agent_message


def test_failed_record_write_keeps_the_paid_image_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalImageStore(tmp_path)
    real_link = os.link

    def broken_record_link(src: Any, dst: str, **kwargs: Any) -> None:
        if dst.endswith(".json"):
            raise OSError(28, "No space left on device")
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", broken_record_link)
    with pytest.raises(StorageError, match="No space left") as caught:
        store.save(_png(), _record(response_id="resp_9"))
    assert "resp_9" in str(caught.value)
    assert str(tmp_path / "ig_abc.png") in str(caught.value)
    assert _files(tmp_path) == ["ig_abc.png"]
    assert (tmp_path / "ig_abc.png").read_bytes() == _png()
    with pytest.raises(ImageNotFoundError):  # invisible without its record
        store.get("ig_abc")


def test_failed_image_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalImageStore(tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StorageError, match="I/O error"):
        store.save(_png(), _record())
    assert _files(tmp_path) == []


def test_unwritable_root_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError):
        LocalImageStore(blocker / "images").save(_png(), _record())


def test_another_process_resolves_the_handle_from_the_directory_alone(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    handle = store.save(_png(), _record(response_id="resp_1", call_id="ig_abc", options=ImageOptions(size="1024x1536")))
    code = (
        "import sys; from imagegen_tool import LocalImageStore; "
        "h = LocalImageStore(sys.argv[1]).get(sys.argv[2]); "
        "print(h.response_id, h.call_id, h.options.size, h.prompt, h.sha256)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), handle.id], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["resp_1", "ig_abc", "1024x1536", "a", "red", "square", handle.sha256]


def test_record_of_a_since_retired_model_still_loads(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    handle = store.save(_png(), _record())
    record_path = tmp_path / f"{handle.id}.json"
    record = json.loads(record_path.read_text())
    record["options"]["model"] = "gpt-image-1"
    record_path.write_text(json.dumps(record))
    assert store.get(handle.id).options.model == "gpt-image-1"


def test_delete_removes_both_files_and_ignores_unknown(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    handle = store.save(_png(), _record())
    store.delete(handle.id)
    store.delete(handle.id)
    assert _files(tmp_path) == []
    assert not store.exists(handle.id)


async def test_async_save_and_get(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    handle = await store.asave(_png(), _record())
    assert (await store.aget(handle.id)) == handle
    assert (await store.aread_bytes(handle.id)) == _png()


@pytest.mark.parametrize(
    ("mode", "fmt", "mime"),
    [
        ("RGBA", "PNG", "image/png"),
        ("RGB", "JPEG", "image/jpeg"),
        ("RGBA", "WEBP", "image/webp"),
        ("P", "GIF", "image/gif"),
    ],
)
def test_format_is_detected_from_bytes(mode: str, fmt: str, mime: str) -> None:
    buffer = io.BytesIO()
    Image.new(mode, (12, 7)).save(buffer, fmt)
    info = inspect_image(buffer.getvalue())
    assert (info.mime_type, info.width, info.height) == (mime, 12, 7)


def test_svg_dimensions_and_unknown_bytes() -> None:
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="640px" height="480"><rect/></svg>'
    info = inspect_image(svg)
    assert (info.format, info.mime_type, info.width, info.height) == ("svg", "image/svg+xml", 640, 480)
    boxed = inspect_image(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 150"></svg>')
    assert (boxed.width, boxed.height) == (300, 150)
    unknown = inspect_image(b"definitely not an image")
    assert (unknown.format, unknown.extension, unknown.width) == ("bin", "bin", None)


def test_trailing_newline_is_not_an_id() -> None:
    from imagegen_tool.store import is_valid_image_id

    assert is_valid_image_id("ig_1")
    assert not is_valid_image_id("ig_1\n")


def test_concurrent_saves_of_one_id_in_two_formats_get_distinct_ids(tmp_path: Path) -> None:
    import threading

    store = LocalImageStore(tmp_path)
    png, jpeg = _png(), io.BytesIO()
    Image.new("RGB", (8, 6)).save(jpeg, "JPEG")
    barrier = threading.Barrier(8)
    handles: list[Any] = []

    def save(data: bytes) -> None:
        barrier.wait()
        handles.append(store.save(data, _record("ig_same", data=data)))

    threads = [threading.Thread(target=save, args=(png if i % 2 else jpeg.getvalue(),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({h.id for h in handles}) == 8
    for handle in handles:
        assert store.get(handle.id).filename == handle.filename
        assert Path(handle.path or "").read_bytes() == store.read_bytes(handle.id)
