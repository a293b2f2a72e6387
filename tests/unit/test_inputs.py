"""Untrusted input images: the input policy (agents may name only stored images), limits and duplicates,
complete decoding before any upload, continuation from the store's own record, lazy reads of stored images,
and local files opened once without following links (a folder swapped for a link cannot win the race)."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from imagegen_tool import GeneratedImage, ImageRecord, LocalImageStore
from imagegen_tool.errors import ImageNotFoundError, InvalidInputError, StorageError
from imagegen_tool.imageinfo import inspect_image
from imagegen_tool.inputs import (
    AGENT_INPUT_POLICY,
    DEVELOPER_INPUT_POLICY,
    InputPolicy,
    InputResolver,
    input_policy,
)


def _png(color: str = "red", size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _save(store: LocalImageStore, image_id: str, color: str = "red", *, continuable: bool = True) -> GeneratedImage:
    data = _png(color)
    info = inspect_image(data)
    extra = {"response_id": f"resp_{image_id}", "call_id": image_id, "response_stored": True} if continuable else {}
    record = ImageRecord(
        id=image_id, mime_type=info.mime_type, format=info.format, width=8, height=6, prompt="p", **extra
    )
    return store.save(data, record)


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    return LocalImageStore(tmp_path / "store")


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    directory = tmp_path / "inputs"
    directory.mkdir()
    (directory / "cat.png").write_bytes(_png("green"))
    return directory


AGENT_REFUSED = [
    ("file-abc123", "no image with id"),
    ("https://example.com/cat.png", "URLs are not allowed"),
    ("data:image/png;base64,iVBORw0KGgo=", "data URLs are not allowed"),
    ("cat.png", "not an image id"),
    ("/etc/passwd", "not an image id"),
    ("../inputs/cat.png", "not an image id"),
    ("file:///etc/passwd", "not an image id|not a usable input"),
]


@pytest.mark.parametrize(("value", "message"), AGENT_REFUSED)
def test_agents_may_name_only_stored_images(store: LocalImageStore, roots: Path, value: str, message: str) -> None:
    resolver = InputResolver(store, input_roots=[roots])
    with input_policy(AGENT_INPUT_POLICY), pytest.raises(InvalidInputError, match=message):
        resolver.resolve(value)
    with input_policy(AGENT_INPUT_POLICY), pytest.raises(InvalidInputError, match="bytes are not allowed"):
        resolver.resolve(_png())
    with input_policy(AGENT_INPUT_POLICY), pytest.raises(InvalidInputError, match="paths are not allowed"):
        resolver.resolve(roots / "cat.png")


def test_developers_keep_every_kind_of_input(store: LocalImageStore, roots: Path) -> None:
    resolver = InputResolver(store, input_roots=[roots])
    assert resolver.resolve("file-abc123").reference is not None
    assert resolver.resolve("https://example.com/cat.png").reference is not None
    assert resolver.resolve("cat.png").data == _png("green")
    assert resolver.resolve(roots / "cat.png").data == _png("green")
    assert resolver.resolve(_png()).data == _png()
    handle = _save(store, "ig_1")
    with input_policy(AGENT_INPUT_POLICY):
        assert resolver.resolve("ig_1").handle == handle  # stored ids always work
    opted_in = InputPolicy(
        allow_file_ids=True, allow_input_urls=False, allow_data_urls=False, allow_paths=False, allow_bytes=False
    )
    with input_policy(opted_in):
        assert resolver.resolve("file-abc123").reference is not None
    assert resolver.active_policy() == DEVELOPER_INPUT_POLICY


def test_policy_reaches_worker_threads_of_async_code(store: LocalImageStore) -> None:
    import asyncio

    resolver = InputResolver(store)

    async def main() -> None:
        with input_policy(AGENT_INPUT_POLICY), pytest.raises(InvalidInputError):
            await asyncio.to_thread(resolver.resolve, "https://example.com/x.png")

    asyncio.run(main())


def test_duplicates_are_removed_and_at_most_16_inputs(store: LocalImageStore) -> None:
    handle = _save(store, "ig_dup")
    resolver = InputResolver(store)
    resolved = resolver.resolve_all(["ig_dup"] * 120 + [handle, " ig_dup "])
    assert [item.handle.id for item in resolved if item.handle] == ["ig_dup"]
    same_bytes = resolver.resolve_all([_png("blue"), bytearray(_png("blue"))])
    assert len(same_bytes) == 1
    ids = [_save(store, f"ig_{n}", color=f"#{n:02x}0000").id for n in range(17)]
    assert len(resolver.resolve_all(ids[:16])) == 16
    with pytest.raises(InvalidInputError, match="17 different input images; at most 16"):
        resolver.resolve_all(ids)
    with input_policy(InputPolicy(max_images=2)), pytest.raises(InvalidInputError, match="at most 2"):
        resolver.resolve_all(ids[:3])


@pytest.mark.parametrize("cut", [40, 200, 400])
def test_truncated_or_corrupt_inputs_are_refused_before_upload(store: LocalImageStore, cut: int) -> None:
    big = _png("red", size=(300, 200))
    noisy = io.BytesIO()
    Image.effect_noise((300, 200), 80).convert("RGB").save(noisy, "PNG")
    for data in (big[:-cut], noisy.getvalue()[: len(noisy.getvalue()) // 2]):
        with pytest.raises(InvalidInputError, match="truncated or corrupt"):
            InputResolver(store).resolve(data)
    corrupt = bytearray(noisy.getvalue())
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\x00" * 64
    with pytest.raises(InvalidInputError, match=r"truncated or corrupt|not a readable"):
        InputResolver(store).resolve(bytes(corrupt))


def test_pixel_budget_is_checked_before_decoding(store: LocalImageStore) -> None:
    resolver = InputResolver(store, max_pixels=100)
    with pytest.raises(InvalidInputError, match="at most 100 pixels"):
        resolver.resolve(_png(size=(20, 20)))


def test_continuation_uses_the_stored_record_not_the_callers_handle(store: LocalImageStore) -> None:
    handle = _save(store, "ig_real")
    forged = handle.model_copy(update={"response_id": "resp_someone_else", "call_id": "ig_other", "path": "/etc/x"})
    item = InputResolver(store).resolve(forged)
    assert item.handle is not None
    assert (item.handle.response_id, item.handle.call_id, item.handle.path) == (
        "resp_ig_real",
        "ig_real",
        handle.path,
    )
    stranger = forged.model_copy(update={"id": "ig_not_in_this_store"})
    with pytest.raises(ImageNotFoundError):
        InputResolver(store).resolve(stranger)


def test_stored_images_that_can_be_continued_are_read_only_when_sent(
    store: LocalImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(store, "ig_lazy")
    _save(store, "ig_plain", continuable=False)
    reads: list[str] = []
    real = store.read_bytes
    monkeypatch.setattr(store, "read_bytes", lambda image_id: (reads.append(image_id), real(image_id))[1])
    resolver = InputResolver(store)
    lazy, plain = resolver.resolve_all(["ig_lazy", "ig_plain"], continuable=True)
    assert reads == ["ig_plain"]  # the one that must be sent anyway
    assert not lazy.loaded and lazy.width == 8 and "not read yet" in repr(lazy)
    assert lazy.data == _png() and lazy.loaded and reads == ["ig_plain", "ig_lazy"]
    assert lazy.sha256 == plain.sha256  # same red pixels, same bytes
    eager = resolver.resolve_all(["ig_lazy"], continuable=False)[0]
    assert eager.loaded


def test_a_damaged_stored_image_fails_when_its_bytes_are_needed(store: LocalImageStore) -> None:
    _save(store, "ig_broken")
    resolver = InputResolver(store)
    (item,) = resolver.resolve_all(["ig_broken"], continuable=True)
    (store.root / "ig_broken.png").write_bytes(b"x" * 10)
    with pytest.raises(StorageError, match="damaged"):
        _ = item.data
    (store.root / "ig_broken.png").write_bytes(b"x" * len(_png()))  # right size, not an image
    (again,) = resolver.resolve_all(["ig_broken"], continuable=True)
    with pytest.raises(InvalidInputError, match="not a readable image"):
        _ = again.data


def test_links_in_input_folders_are_not_followed(store: LocalImageStore, roots: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "s.png").write_bytes(_png("blue"))
    (roots / "link.png").symlink_to(secret / "s.png")
    (roots / "folder").symlink_to(secret, target_is_directory=True)
    resolver = InputResolver(store, input_roots=[roots])
    for value in ("link.png", "folder/s.png", str(roots / "folder" / "s.png")):
        with pytest.raises(InvalidInputError, match="symbolic link"):
            resolver.resolve(value)


def test_a_fifo_in_an_input_folder_is_refused_without_blocking(store: LocalImageStore, roots: Path) -> None:
    os.mkfifo(roots / "pipe.png")
    outcome: list[BaseException] = []

    def resolve() -> None:
        try:
            InputResolver(store, input_roots=[roots]).resolve("pipe.png")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "opening a FIFO blocked"
    assert isinstance(outcome[0], InvalidInputError) and "regular file" in str(outcome[0])


def test_swapping_a_folder_for_a_link_never_wins_the_race(store: LocalImageStore, tmp_path: Path) -> None:
    roots = tmp_path / "race"
    (roots / "dir").mkdir(parents=True)
    (roots / "dir" / "cat.png").write_bytes(_png("red"))
    secret = tmp_path / "secret-dir"
    secret.mkdir()
    (secret / "cat.png").write_bytes(_png("blue"))
    resolver = InputResolver(store, input_roots=[roots])
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(roots / "dir", roots / "dir-real")
            os.symlink(secret, roots / "dir")
            time.sleep(0.0005)
            os.unlink(roots / "dir")
            os.rename(roots / "dir-real", roots / "dir")
            time.sleep(0.0005)

    swapper = threading.Thread(target=swap)
    swapper.start()
    outcomes = {"red": 0, "refused": 0}
    try:
        for _ in range(1500):
            try:
                data = resolver.resolve("dir/cat.png").data
            except InvalidInputError:
                outcomes["refused"] += 1
                continue
            assert data == _png("red"), "read a file outside the input folders"
            outcomes["red"] += 1
    finally:
        stop.set()
        swapper.join()
    assert outcomes["red"] > 0
