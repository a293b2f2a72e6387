"""``ImageGenerator.store_response``: images of a Responses API response made elsewhere (an agent framework's own
hosted image tool) become handles, once, whatever the number of calls; a response with no image raises its typed
error. The response comes from the emulator over real HTTP through the real ``openai`` client."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator, ModerationBlockedError
from imagegen_tool.testing import Emulator

from .conftest import image_files


def test_store_response_is_idempotent(openai_client: OpenAI, store_dir: Path) -> None:
    response = openai_client.responses.create(
        model="gpt-5", input="a red kite", tools=[{"type": "image_generation", "quality": "low"}]
    )
    generator = ImageGenerator(store=store_dir, api_key="unused")
    first = generator.store_response(response, session="s1")
    again = generator.store_response(response.model_dump(mode="json"))
    assert [image.id for image in first.images] == [image.id for image in again.images]
    assert first.image.response_id == response.id and first.image.response_stored
    assert len(image_files(store_dir)) == 1
    assert generator.store.latest("s1") == first.image.id
    generator.close()


async def test_astore_response_raises_the_typed_error(
    imagegen_emulator: Emulator, async_openai_client: AsyncOpenAI, store_dir: Path
) -> None:
    response = await async_openai_client.responses.create(
        model="gpt-5",
        input=f"a {imagegen_emulator.moderation_trigger} scene",
        tools=[{"type": "image_generation"}],
    )
    generator = ImageGenerator(store=store_dir, api_key="unused")
    with pytest.raises(ModerationBlockedError):
        await generator.astore_response(response)
    assert image_files(store_dir) == []
    await generator.aclose()
