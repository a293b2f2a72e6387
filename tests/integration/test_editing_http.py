"""Editing by handle, path, URL, data URL, file id and bytes; continuation, upload-once and fallback; refusals."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator, InvalidInputError, ResponsesBackend
from imagegen_tool.testing import Emulator
from tests.integration.conftest import image_files


def _png(size: tuple[int, int] = (64, 64), mode: str = "RGB", color: Any = "blue") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _mask(size: tuple[int, int] = (64, 64)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _responses(emulator: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in emulator.requests_to("/v1/responses")]


def _input_images(body: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(body["input"], str):
        return []
    return [
        part
        for item in body["input"]
        if item.get("role") == "user"
        for part in item["content"]
        if part["type"] == "input_image"
    ]


def test_seed_flow_edit_continues_with_previous_response_id(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    first = generator.generate("a cartoon cat on a sofa", quality="low")
    second = generator.edit("now make it look realistic", first.image.id)
    body = _responses(imagegen_emulator)[1]
    assert body["previous_response_id"] == first.response_id
    assert body["input"] == "now make it look realistic"
    assert body["tools"][0]["action"] == "edit"
    assert imagegen_emulator.requests_to("/v1/files") == []  # nothing re-sent
    assert second.image.input_ids == (first.image.id,)
    assert second.image.id != first.image.id


def test_two_stored_handles_use_previous_response_and_item_reference(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    cat = generator.generate("a cat").image
    hat = generator.generate("a hat").image
    generator.edit("put the hat from the second image on the cat", [cat, hat.id])
    body = _responses(imagegen_emulator)[2]
    assert body["previous_response_id"] == cat.response_id
    assert body["input"][0] == {"type": "item_reference", "id": hat.call_id}


def test_unstored_responses_upload_the_image_once(
    store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, store_responses=False)
    first = generator.generate("a cat").image
    generator.edit("make it blue", first.id)
    generator.edit("make it green", first.id)
    uploads = imagegen_emulator.requests_to("/v1/files", method="POST")
    assert len(uploads) == 1
    file_id = next(iter(imagegen_emulator.files))
    for body in _responses(imagegen_emulator)[1:]:
        assert "previous_response_id" not in body
        assert _input_images(body) == [{"type": "input_image", "detail": "auto", "file_id": file_id}]
        assert body["store"] is False


def test_rejected_continuation_falls_back_to_sending_the_image(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    first = generator.generate("a cat").image
    imagegen_emulator.reset()  # the emulator forgets the stored response, as an expired one would be
    result = generator.edit("add a hat", first.id)
    bodies = _responses(imagegen_emulator)
    assert [b.get("previous_response_id") for b in bodies] == [first.response_id, None]
    assert len(_input_images(bodies[1])) == 1
    assert Path(result.image.path or "").exists()


def test_local_path_inside_an_input_root(
    tmp_path: Path, store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    roots = tmp_path / "uploads"
    roots.mkdir()
    (roots / "photo.png").write_bytes(_png())
    generator = ImageGenerator(store=store_dir, client=openai_client, input_roots=[roots])
    for name in ("photo.png", str(roots / "photo.png")):
        result = generator.edit("make it a painting", name)
        assert Path(result.image.path or "").exists()
    assert len(imagegen_emulator.requests_to("/v1/files", method="POST")) == 1


@pytest.mark.parametrize("kind", ["bytes", "data_url"])
def test_bytes_and_data_urls(generator: ImageGenerator, imagegen_emulator: Emulator, kind: str) -> None:
    data = _png((32, 48))
    value: Any = data if kind == "bytes" else "data:image/png;base64," + base64.b64encode(data).decode()
    generator.edit("add stars", value)
    (upload,) = imagegen_emulator.requests_to("/v1/files", method="POST")
    assert upload.files[0].size == len(data)


def test_inline_small_images_as_data_urls(store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator) -> None:
    backend = ResponsesBackend(client=openai_client, inline_max_bytes=100_000)
    ImageGenerator(store=store_dir, backend=backend).edit("add stars", _png())
    assert imagegen_emulator.requests_to("/v1/files") == []
    (part,) = _input_images(_responses(imagegen_emulator)[0])
    assert part["image_url"].startswith("data:image/png;base64,")


def test_urls_and_file_ids_pass_through_unfetched(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    uploaded = OpenAI(base_url=imagegen_emulator.url, api_key="k").files.create(
        file=("a.png", _png(), "image/png"), purpose="vision"
    )
    generator.edit("combine them", ["https://example.com/cat.png", uploaded.id])
    parts = _input_images(_responses(imagegen_emulator)[0])
    assert parts == [
        {"type": "input_image", "detail": "auto", "image_url": "https://example.com/cat.png"},
        {"type": "input_image", "detail": "auto", "file_id": uploaded.id},
    ]


def test_urls_can_be_disallowed(store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, allow_input_urls=False)
    with pytest.raises(InvalidInputError, match="URLs are not allowed"):
        generator.edit("x", "https://example.com/cat.png")
    assert imagegen_emulator.requests == []


def test_mask_with_alpha_is_uploaded_and_sent(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    generator.edit("replace the left half with the sea", _png(), mask=_mask(), input_fidelity=None)
    body = _responses(imagegen_emulator)[0]
    mask = body["tools"][0]["input_image_mask"]
    assert set(mask) == {"file_id"}
    assert mask["file_id"] in imagegen_emulator.files
    assert len(imagegen_emulator.requests_to("/v1/files", method="POST")) == 2


def test_session_follow_up_edits_the_latest_image(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    first = generator.generate("a robot", session="thread-42")
    generator.generate("now give it a red scarf", session="thread-42")
    generator.generate("a completely new scene", session="thread-42", action="generate")
    bodies = _responses(imagegen_emulator)
    assert "previous_response_id" not in bodies[0]
    assert bodies[1]["previous_response_id"] == first.response_id
    assert "previous_response_id" not in bodies[2]
    assert generator.store.latest("thread-42") is not None
    assert generator.store.latest("other-thread") is None


def test_edit_from_a_second_process_sharing_only_the_store(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    first = generator.generate("a cat").image
    script = (
        "import sys; from openai import OpenAI; from imagegen_tool import ImageGenerator; "
        "g = ImageGenerator(store=sys.argv[1], client=OpenAI(base_url=sys.argv[2], api_key='k', max_retries=0)); "
        "r = g.edit('make it realistic', sys.argv[3]); print(r.image.id, r.image.input_ids[0])"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(store_dir), imagegen_emulator.url, first.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    new_id, parent = out.stdout.split()
    assert parent == first.id
    assert generator.store.get(new_id).input_ids == (first.id,)
    assert _responses(imagegen_emulator)[1]["previous_response_id"] == first.response_id


# -- refusals: each before any request ---------------------------------------------------------------------


def _refused(
    generator: ImageGenerator, emulator: Emulator, store_dir: Path, match: str, *inputs: Any, **kwargs: Any
) -> None:
    before = image_files(store_dir)
    with pytest.raises(InvalidInputError, match=match):
        generator.edit("edit it", list(inputs), **kwargs)
    assert emulator.requests == []
    assert image_files(store_dir) == before


def test_paths_outside_the_roots_are_refused(
    tmp_path: Path, generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png())
    store_dir.mkdir(parents=True, exist_ok=True)
    (store_dir / "escape.png").symlink_to(secret)
    for bad in ("../secret.png", str(secret), "/etc/passwd", "../../../../etc/passwd"):
        _refused(generator, imagegen_emulator, store_dir, "outside the directories", bad)
    _refused(generator, imagegen_emulator, store_dir, "symbolic link", "escape.png")  # links are never followed


def test_missing_file_and_unknown_id_are_refused(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    _refused(generator, imagegen_emulator, store_dir, "no image", "nothing-here.png")
    _refused(generator, imagegen_emulator, store_dir, "no image", "ig_doesnotexist")


def test_non_images_and_oversized_images_are_refused(
    tmp_path: Path, store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, input_roots=[tmp_path], max_input_bytes=10_000)
    (tmp_path / "notes.png").write_text("not an image at all")
    _refused(generator, imagegen_emulator, store_dir, "not a readable image", "notes.png")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    _refused(generator, imagegen_emulator, store_dir, "png, jpeg or webp", buffer.getvalue())
    big = Image.effect_noise((200, 200), 100).convert("RGB")
    noisy = io.BytesIO()
    big.save(noisy, "PNG")
    _refused(generator, imagegen_emulator, store_dir, "at most", noisy.getvalue())


def test_bad_masks_are_refused(generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path) -> None:
    _refused(generator, imagegen_emulator, store_dir, "alpha channel", _png(), mask=_png())
    _refused(generator, imagegen_emulator, store_dir, "same size", _png((64, 64)), mask=_mask((32, 32)))
    with pytest.raises(InvalidInputError, match="needs an image"):
        generator.generate("x", mask=_mask())


def test_nul_bytes_and_overlong_paths_are_refused(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    for bad in ("a\x00b.png", "y" * 300, "z/" * 3000):
        _refused(generator, imagegen_emulator, store_dir, "path|no image|outside", bad)


def test_bytearray_input(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    generator.edit("add stars", bytearray(_png()))
    assert len(imagegen_emulator.requests_to("/v1/files", method="POST")) == 1


def test_session_whose_latest_image_was_deleted_starts_fresh(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    first = generator.generate("a robot", session="s")
    generator.store.delete(first.image.id)
    result = generator.generate("a boat at sea", session="s")
    assert "previous_response_id" not in _responses(imagegen_emulator)[1]
    assert generator.store.latest("s") == result.image.id
