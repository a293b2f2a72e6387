"""Delay from the emulator sending a partial image to our callback receiving it decoded and stored.

Target (issue #6): under 5 ms median for a 1024x1024 partial on this machine. The emulator runs in this
process, so one ``perf_counter`` clock serves both ends: we stamp each ``partial_image`` event when the
emulator serialises it, and again when (a) the raw ``openai`` stream yields it (the baseline: transport and SDK
parsing only) and (b) ``ImageGenerator``'s ``on_event`` callback receives the stored, decoded partial.

    python benchmarks/bench_partial_latency.py [--rounds 15] [--partials 3] [--spacing 0.05]

Prints medians and the ratio ours/baseline; exits non-zero if our median misses the target.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from openai import OpenAI

from imagegen_tool import ImageGenerator, PartialImageEvent, StreamEvent
from imagegen_tool.testing import Emulator, server

TARGET_MS = 5.0


class SendClock:
    """Wraps the emulator's SSE serialiser to remember when each partial image left it."""

    def __init__(self) -> None:
        self.sent: dict[tuple[str, int], float] = {}
        self.sizes: list[int] = []
        self._original: Callable[[Any], Any] = server.wire.sse

    def __enter__(self) -> SendClock:
        def stamped(event: Any) -> Any:
            data = self._original(event)
            if event.get("type") == "response.image_generation_call.partial_image":
                self.sent[(event["item_id"], event["partial_image_index"])] = time.perf_counter()
                self.sizes.append(len(event["partial_image_b64"]) * 3 // 4)
            return data

        server.wire.sse = stamped
        return self

    def __exit__(self, *exc: object) -> None:
        server.wire.sse = self._original


def measure_sdk(client: OpenAI, clock: SendClock, rounds: int, partials: int) -> list[float]:
    delays = []
    for round_ in range(rounds):
        stream = client.responses.create(
            model="gpt-5.4-mini",
            input=f"baseline {round_}",
            tools=[{"type": "image_generation", "partial_images": partials, "size": "1024x1024"}],
            tool_choice={"type": "image_generation"},
            stream=True,
        )
        for event in stream:
            if event.type == "response.image_generation_call.partial_image":
                base64.b64decode(event.partial_image_b64)  # a consumer must decode at least
                delays.append(time.perf_counter() - clock.sent[(event.item_id, event.partial_image_index)])
    return delays


def measure_ours(generator: ImageGenerator, clock: SendClock, rounds: int, partials: int) -> list[float]:
    delays = []

    def on_event(event: StreamEvent) -> None:
        if isinstance(event, PartialImageEvent):
            received = time.perf_counter()
            delays.append(received - clock.sent[(event.partial.call_id, event.partial.index)])

    for round_ in range(rounds):
        generator.generate(f"ours {round_}", partial_images=partials, size="1024x1024", on_event=on_event)
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--partials", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--spacing", type=float, default=0.05, help="seconds between partial events")
    args = parser.parse_args()
    with Emulator() as api, SendClock() as clock, tempfile.TemporaryDirectory() as store:
        # Real partials arrive seconds apart; spacing them keeps one event's processing from queueing the next.
        api.set_partial_delay(args.spacing)
        client = OpenAI(base_url=api.url, api_key="bench", max_retries=0)
        generator = ImageGenerator(store=store, client=client)
        measure_sdk(client, clock, 2, args.partials)  # warm-up: connections, caches
        measure_ours(generator, clock, 2, args.partials)
        baseline = measure_sdk(client, clock, args.rounds, args.partials)
        ours = measure_ours(generator, clock, args.rounds, args.partials)
    base_ms = statistics.median(baseline) * 1000
    ours_ms = statistics.median(ours) * 1000
    p90 = statistics.quantiles(ours, n=10)[-1] * 1000
    size_kb = statistics.median(clock.sizes) / 1024
    print(f"partial image: 1024x1024, median {size_kb:.0f} KiB decoded, {len(ours)} samples each")
    print(f"baseline (raw SDK stream + b64 decode): median {base_ms:.2f} ms")
    print(f"imagegen-tool callback (decoded, stored): median {ours_ms:.2f} ms, p90 {p90:.2f} ms")
    print(
        f"ratio ours/baseline: {ours_ms / base_ms:.2f}x; target median < {TARGET_MS:.0f} ms: "
        + ("met" if ours_ms < TARGET_MS else "MISSED")
    )
    return 0 if ours_ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
