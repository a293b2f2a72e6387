"""Edit by id when the API already holds the image: the continuation sends no bytes, so the stored image is
neither read nor hashed (a 1.6-3 MB file per edit), sync and async, through the real SDK and the emulator. When
the continuation is rejected, the bytes are read then, once, and sent."""

from __future__ import annotations

from pathlib import Path

from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator, LocalImageStore
from imagegen_tool.testing import Emulator


class _CountingStore(LocalImageStore):
    """The local store, counting every read of image bytes (sync and async)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def read_bytes(self, image_id: str) -> bytes:
        self.reads.append(image_id)
        return super().read_bytes(image_id)


def test_edit_by_id_does_not_read_the_stored_bytes(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    store = _CountingStore(tmp_path / "images")
    generator = ImageGenerator(store=store, client=openai_client)
    first = generator.generate("a lighthouse").image
    edited = generator.edit("add a storm", first.id)
    again = generator.edit("now at night", edited.image.id, session=None)
    assert store.reads == []
    creates = [r.json for r in imagegen_emulator.requests_to("/v1/responses", method="POST")]
    assert [body.get("previous_response_id") for body in creates] == [None, first.response_id, edited.response_id]
    assert again.image.input_ids == (edited.image.id,)


async def test_async_edit_by_id_does_not_read_the_stored_bytes(
    tmp_path: Path, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    store = _CountingStore(tmp_path / "images")
    generator = ImageGenerator(store=store, async_client=async_openai_client)
    first = (await generator.agenerate("a lighthouse")).image
    await generator.aedit("add a storm", first.id)
    assert store.reads == []


def test_a_rejected_continuation_reads_the_bytes_once_and_sends_them(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    store = _CountingStore(tmp_path / "images")
    generator = ImageGenerator(store=store, client=openai_client)
    first = generator.generate("a lighthouse").image
    assert first.response_id is not None
    imagegen_emulator.reset()  # the emulator forgets the stored response, as an expired one would be
    generator.edit("add a storm", first.id)
    assert store.reads == [first.id]
