"""A worker process for the multi-worker store tests: ``python -m tests.stores.s3_worker COMMAND CONFIG_JSON``.

It gets its S3 credentials from the standard ``AWS_*`` environment variables (as a deployed worker would) and
the store URL, endpoint and emulator address from the JSON config. Results go to stdout as JSON lines.

Commands:
    generate    ``count`` concurrent ``agenerate`` calls; prints the ids.
    edit        edits ``image_id`` (made by another process); prints the new handle's id and inputs.
    race        ``count`` concurrent ``asave`` of one record id; prints the ids.
    save-loop   saves ~1.6 MB images until killed; prints each id once its save returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
from typing import Any

from PIL import Image

from imagegen_tool import ImageGenerator
from imagegen_tool.images import ImageRecord
from imagegen_tool.store_factory import open_store


def _emit(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _generator(config: dict[str, Any]) -> ImageGenerator:
    return ImageGenerator(
        store=config["store"],
        storage_options=config.get("storage_options"),
        base_url=config["emulator"],
        api_key="test-key",
        store_responses=config.get("store_responses", True),
    )


async def _generate(config: dict[str, Any]) -> None:
    generator = _generator(config)
    try:
        results = await asyncio.gather(
            *(generator.agenerate(f"{config['label']} picture {i}", size="1024x1024") for i in range(config["count"]))
        )
    finally:
        await generator.aclose()
    _emit([{"id": r.image.id, "sha256": r.image.sha256} for r in results])


def _edit(config: dict[str, Any]) -> None:
    with _generator(config) as generator:
        result = generator.edit("make it blue", [config["image_id"]])
    _emit({"id": result.image.id, "input_ids": list(result.image.input_ids), "sha256": result.image.sha256})


def _record(image_id: str) -> ImageRecord:
    return ImageRecord(id=image_id, mime_type="image/png", format="png", prompt="worker test")


async def _race(config: dict[str, Any]) -> None:
    store = open_store(config["store"], storage_options=config.get("storage_options"))
    payloads = [f"{config['label']}-{i}".encode() * 50 for i in range(config["count"])]
    handles = await asyncio.gather(*(store.asave(data, _record(config["image_id"])) for data in payloads))
    _emit([{"id": h.id, "sha256": h.sha256} for h in handles])
    await store.aclose()  # type: ignore[attr-defined]


def _noise_png(pixels: int = 730) -> bytes:
    """An incompressible PNG of about 1.6 MB, like a real generated image."""
    image = Image.frombytes("RGB", (pixels, pixels), os.urandom(pixels * pixels * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _save_loop(config: dict[str, Any]) -> None:
    store = open_store(config["store"], storage_options=config.get("storage_options"))
    base = _noise_png()
    n = 0
    while True:
        data = base + n.to_bytes(8, "big")  # trailing bytes after IEND: each image distinct
        handle = store.save(data, _record(f"img_{config['label']}_{n}"))
        _emit({"id": handle.id, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        n += 1


def main(argv: list[str]) -> int:
    command, config = argv[0], json.loads(argv[1])
    if command == "generate":
        asyncio.run(_generate(config))
    elif command == "edit":
        _edit(config)
    elif command == "race":
        asyncio.run(_race(config))
    elif command == "save-loop":
        _save_loop(config)
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
