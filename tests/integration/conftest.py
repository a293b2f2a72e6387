"""Generators wired to the emulator over real HTTP through the real ``openai`` clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def generator(store_dir: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI) -> ImageGenerator:
    return ImageGenerator(store=store_dir, client=openai_client, async_client=async_openai_client)


def image_files(directory: Path) -> list[str]:
    """Names of the final image files in a store (records, temporaries and session pointers left out)."""
    if not directory.exists():
        return []
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and not p.name.endswith(".json") and not p.name.startswith(".")
    )
