"""Store growth: the same calls against a store holding 1 image and one holding 10,000, side by side.

Generate, streamed generate (one partial) and edit by id, with realistic images at 0 ms latency. A call should
not depend on how many images the store already holds (no directory scans, no per-store locks). The large store
is filled through the store's own ``save`` with small images, without fsync (``durability="process"``) while
filling: filling is not measured, and 10,000 durable saves take minutes on slow disks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

from openai import OpenAI

from imagegen_tool import ImageGenerator, ImageRecord, LocalImageStore
from imagegen_tool.testing.payloads import noise_image

from .harness import TEXT_MODEL, Figure, RemoteEmulator, Settings, interleaved, median, timed

NAME = "store_growth"
_ids = count()


def fill(root: Path, images: int) -> None:
    store = LocalImageStore(root, durability="process")
    data = noise_image(8, 8)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda number: store.save(
                    data, ImageRecord(id=f"img_fill_{number:06d}", mime_type="image/png", format="png", prompt="fill")
                ),
                range(images),
            )
        )


def run(settings: Settings) -> list[Figure]:
    big = settings.pick(100, 10_000)
    rounds = settings.pick(1, 6)
    with RemoteEmulator(realistic=True) as api, tempfile.TemporaryDirectory(prefix="imagegen-bench-") as tmp:
        client = OpenAI(base_url=api.url, api_key="bench", max_retries=0)
        stores = {"1 image": Path(tmp) / "small", f"{big} images": Path(tmp) / "big"}
        fill(stores["1 image"], 1)
        fill(stores[f"{big} images"], big)
        generators = {
            name: ImageGenerator(store=path, client=client, text_model=TEXT_MODEL) for name, path in stores.items()
        }
        latest = {name: generator.generate("first image").image.id for name, generator in generators.items()}

        def side(name: str, action: str) -> Callable[[], float]:
            generator = generators[name]

            def call() -> float:
                with timed() as t:
                    if action == "generate":
                        generator.generate(f"growth {next(_ids)}")
                    elif action == "stream":
                        generator.generate(f"growth {next(_ids)}", partial_images=1)
                    else:
                        latest[name] = generator.edit(f"growth edit {next(_ids)}", latest[name]).image.id
                return t["wall"] * 1000

            return call

        figures = []
        for action in ("generate", "stream", "edit"):
            sides = {name: side(name, action) for name in stores}
            interleaved(1, sides)
            runs = interleaved(rounds, sides)
            small_name, big_name = list(stores)
            figures.append(
                Figure(
                    NAME,
                    f"{action} with {big} stored images vs 1 (wall per call)",
                    median(runs[small_name]),
                    median(runs[big_name]),
                    "ms",
                    "1 stored image",
                    1.05,
                )
            )
        client.close()
    return figures
