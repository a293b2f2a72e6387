"""How to decode base64 images without stalling the event loop: each way measured, the package keeps the best.

N concurrent decodes (+ sha256, as the store does) of a realistic image (1.65 MB PNG, 2.2 MB of base64) while a
probe measures the longest event-loop stall; also the CPU time per image. The baseline is what the seed did:
``asyncio.to_thread(base64.b64decode)`` in the loop's default executor.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from imagegen_tool import decoding
from imagegen_tool.testing.payloads import noise_image

from .harness import Figure, LoopLagProbe, Settings, ainterleaved, median

NAME = "decoders"


def _stdlib(data: str) -> str:
    return hashlib.sha256(base64.b64decode(data, validate=True)).hexdigest()


def _chunked(data: str) -> str:
    return hashlib.sha256(decoding._chunked_b64decode(data)).hexdigest()


def _fast(data: str) -> str:
    return hashlib.sha256(decoding.b64decode(data)).hexdigest()


def _strategies(single: Executor, processes: Executor | None) -> dict[str, Callable[[str], Awaitable[object]]]:
    loop = asyncio.get_running_loop()
    found: dict[str, Callable[[str], Awaitable[object]]] = {
        "stdlib, to_thread (seed)": lambda s: asyncio.to_thread(_stdlib, s),
        "stdlib, one dedicated thread": lambda s: loop.run_in_executor(single, _stdlib, s),
        "stdlib in 256 KB chunks, one dedicated thread": lambda s: loop.run_in_executor(single, _chunked, s),
    }
    if decoding.decoder_name() == "pybase64":
        found["pybase64, to_thread"] = lambda s: asyncio.to_thread(_fast, s)
        found["pybase64, one dedicated thread"] = lambda s: loop.run_in_executor(single, _fast, s)

        async def inline(s: str) -> object:
            return _fast(s)

        found["pybase64 inline on the loop"] = inline
    if processes is not None:
        found["stdlib in a process pool"] = lambda s: loop.run_in_executor(processes, _stdlib, s)
    found["package (imagegen_tool.decoding.adecode_b64)"] = lambda s: decoding.adecode_b64(s)
    return found


def run(settings: Settings) -> list[Figure]:
    return asyncio.run(_run(settings))


async def _run(settings: Settings) -> list[Figure]:
    payload = base64.b64encode(noise_image(1024, 1024)).decode("ascii")
    figures: list[Figure] = []
    with ThreadPoolExecutor(1) as single, ProcessPoolExecutor(2) as processes:
        strategies = _strategies(single, processes if not settings.quick else None)
        for concurrent in settings.pick((10,), (10, 50)):
            strings = [payload[:-4] + payload[-4:] for _ in range(concurrent)]  # distinct objects, made up front

            def side(
                strategy: Callable[[str], Awaitable[object]], strings: list[str] = strings, concurrent: int = concurrent
            ) -> Callable[[], Awaitable[tuple[float, float]]]:
                async def measure() -> tuple[float, float]:
                    cpu = time.process_time()
                    async with LoopLagProbe() as probe:
                        await asyncio.gather(*(strategy(s) for s in strings))
                    return probe.longest_ms, (time.process_time() - cpu) * 1000 / concurrent

                return measure

            sides = {name: side(strategy) for name, strategy in strategies.items()}
            await ainterleaved(1, sides)
            runs = await ainterleaved(settings.pick(1, 5), sides)
            seed = "stdlib, to_thread (seed)"
            base_stall = median([stall for stall, _ in runs[seed]])
            for name, values in runs.items():
                if name == seed:
                    continue
                figures.append(
                    Figure(
                        NAME,
                        f"longest loop stall, {concurrent} concurrent decodes: {name}",
                        base_stall,
                        median([stall for stall, _ in values]),
                        "ms",
                        "seed (stdlib, to_thread)",
                        note="CPU is this process's only (a process pool's workers are not counted)"
                        if "process" in name
                        else "",
                        extra={
                            "cpu_ms_per_image": median([cpu for _, cpu in values]),
                            "seed_cpu_ms_per_image": median([cpu for _, cpu in runs[seed]]),
                        },
                    )
                )
    return figures
