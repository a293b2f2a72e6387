"""Load: the emulator keeps up with many concurrent streaming clients without dropping one."""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI

from imagegen_tool.testing import Emulator

CONCURRENT_STREAMS = 200


@pytest.mark.slow
async def test_200_concurrent_streams_all_complete(imagegen_emulator: Emulator) -> None:
    # Small images keep the load on the server, not on rendering. GPT Image models refuse sizes under 655,360
    # pixels, so the tool names a model the emulated API has no rules for (it then checks types only).
    tool = {"type": "image_generation", "model": "gpt-image-load-test", "size": "256x256", "partial_images": 1}

    async def one(client: AsyncOpenAI, n: int) -> tuple[list[str], str | None]:
        types: list[str] = []
        result = None
        stream = await client.responses.create(model="gpt-5", input=f"Scene number {n}", tools=[tool], stream=True)
        async for event in stream:
            types.append(event.type)
            if event.type == "response.completed":
                (call,) = [i for i in event.response.output if i.type == "image_generation_call"]
                result = call.result
        return types, result

    async with AsyncOpenAI(base_url=imagegen_emulator.url, api_key="test", max_retries=0, timeout=60) as client:
        outcomes = await asyncio.gather(*(one(client, n) for n in range(CONCURRENT_STREAMS)))

    assert len(outcomes) == CONCURRENT_STREAMS
    for types, result in outcomes:
        assert types[0] == "response.created"
        assert types[-1] == "response.completed"
        assert types.count("response.image_generation_call.partial_image") == 1
        assert result
    assert len({result for _, result in outcomes}) == CONCURRENT_STREAMS  # distinct prompts, distinct images
    assert len(imagegen_emulator.requests_to("/responses")) == CONCURRENT_STREAMS
    assert all(r.status == 200 for r in imagegen_emulator.requests)
