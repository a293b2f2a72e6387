"""The baselines: what a developer writes without imagegen-tool, the way OpenAI's image generation guide shows it.

``responses.create`` with ``tools=[{"type": "image_generation"}]``, pick the ``image_generation_call`` outputs,
``base64.b64decode`` the result and write the file (sync and async, the async one exactly as people port it: the
decode and the write stay on the event loop). For partial images, the raw SDK stream with each partial decoded.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from openai import AsyncOpenAI, OpenAI

from .harness import TEXT_MODEL

__all__ = ["aplain_generate", "aplain_stream", "plain_generate", "plain_stream"]


def plain_generate(client: OpenAI, path: Path, prompt: str) -> None:
    response = client.responses.create(model=TEXT_MODEL, input=prompt, tools=[{"type": "image_generation"}])
    image_data = [output.result for output in response.output if output.type == "image_generation_call"]
    if image_data and image_data[0]:
        with open(path, "wb") as f:
            f.write(base64.b64decode(image_data[0]))


async def aplain_generate(client: AsyncOpenAI, path: Path, prompt: str) -> None:
    response = await client.responses.create(model=TEXT_MODEL, input=prompt, tools=[{"type": "image_generation"}])
    image_data = [output.result for output in response.output if output.type == "image_generation_call"]
    if image_data and image_data[0]:
        with open(path, "wb") as f:
            f.write(base64.b64decode(image_data[0]))


def plain_stream(client: OpenAI, prompt: str, partials: int, on_partial: Callable[[str, int, bytes], None]) -> None:
    stream = client.responses.create(
        model=TEXT_MODEL,
        input=prompt,
        tools=[{"type": "image_generation", "partial_images": partials}],
        stream=True,
    )
    for event in stream:
        if event.type == "response.image_generation_call.partial_image":
            on_partial(event.item_id, event.partial_image_index, base64.b64decode(event.partial_image_b64))


async def aplain_stream(
    client: AsyncOpenAI, prompt: str, partials: int, on_partial: Callable[[str, int, bytes], None]
) -> None:
    stream = await client.responses.create(
        model=TEXT_MODEL,
        input=prompt,
        tools=[{"type": "image_generation", "partial_images": partials}],
        stream=True,
    )
    async for event in stream:
        if event.type == "response.image_generation_call.partial_image":
            on_partial(event.item_id, event.partial_image_index, base64.b64decode(event.partial_image_b64))
