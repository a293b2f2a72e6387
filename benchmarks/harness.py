"""Shared machinery of the benchmark suite: the emulator in its own process, interleaved runs, figures.

Every figure is a ratio of imagegen-tool against a baseline measured in the same run, side by side: runs of the
two sides alternate (A B B A ...) so that a change in the machine's load hits both alike. Absolute times are
printed for context only; nothing here passes or fails on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

#: The text model both sides ask for (the package's default).
TEXT_MODEL = "gpt-5.4-mini"


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: ``quick`` proves the suite works in seconds (CI); ``full`` gives the figures."""

    quick: bool

    def pick(self, quick: T, full: T) -> T:
        return quick if self.quick else full


@dataclass
class Figure:
    """One measured comparison: ``ours`` against ``baseline`` (same unit), and the target ratio if any."""

    benchmark: str
    name: str
    baseline: float
    ours: float
    unit: str
    baseline_label: str
    target: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")

    def line(self) -> str:
        target = ""
        if self.target is not None:
            target = f"  (target <= {self.target:.2f}x: {'met' if self.ratio <= self.target else 'missed'})"
        text = (
            f"  {self.name}: {self.ratio:.3f}x  [ours {self.ours:.2f} {self.unit} vs {self.baseline_label} "
            f"{self.baseline:.2f} {self.unit}]{target}"
        )
        if self.extra:
            text += "\n    " + ", ".join(f"{k} {v:.2f}" for k, v in self.extra.items())
        if self.note:
            text += f"\n    {self.note}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def interleaved(rounds: int, sides: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run each side ``rounds`` times, alternating the order every round (A B, B A, ...)."""
    results: dict[str, list[T]] = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            results[name].append(sides[name]())
    return results


async def ainterleaved(rounds: int, sides: dict[str, Callable[[], Any]]) -> dict[str, list[Any]]:
    """:func:`interleaved` for coroutine functions."""
    results: dict[str, list[Any]] = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            results[name].append(await sides[name]())
    return results


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall and process CPU time (all threads of this process; the emulator runs in another one)."""
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - wall
        out["cpu"] = time.process_time() - cpu


class LoopLagProbe:
    """Measures how late the event loop wakes a coroutine that sleeps ``interval``: the longest such delay is
    the longest stall of the loop (the time nothing else on it could run)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(time.perf_counter() - start - self.interval)

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(self.interval * 3)
        self.lags.clear()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        # A stall at the very end would be lost if the probe were cancelled before it woke up: let it record.
        await asyncio.sleep(self.interval * 3)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def longest_ms(self) -> float:
        return max(self.lags, default=0.0) * 1000


# --- the emulator in its own process -------------------------------------------------------------------


class RemoteEmulator:
    """The emulator in a child process, so its own work (serialising multi-megabyte JSON, uvicorn) never
    competes with the measured client for the GIL. Knobs are turned over a pipe.

    The child stamps every partial image event when it serialises it, with ``time.perf_counter`` (the system's
    monotonic clock, shared by both processes on Linux and macOS), for the partial-latency benchmark.
    """

    def __init__(self, *, realistic: bool = True, latency: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_emulator, args=(child, realistic, latency), name="bench-emulator", daemon=True
        )
        self._process.start()
        child.close()
        self.url: str = self._call("url")

    def _call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"emulator {name}: {value}")
        return value

    def set_latency(self, seconds: float) -> None:
        self._call("set_latency", seconds)

    def set_partial_delay(self, seconds: float) -> None:
        self._call("set_partial_delay", seconds)

    def take_partial_stamps(self) -> dict[tuple[str, int], float]:
        """When each partial image left the emulator since the last call, by (call id, partial index)."""
        stamps: dict[tuple[str, int], float] = self._call("stamps")
        return stamps

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._call("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)

    def __enter__(self) -> RemoteEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_emulator(conn: Connection, realistic: bool, latency: float) -> None:
    from imagegen_tool.testing import Emulator, server

    stamps: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    original = server.wire.sse

    def stamped(event: Any) -> bytes:
        data = original(event)
        if str(event.get("type", "")).endswith("partial_image") and "item_id" in event:
            with lock:
                stamps[(event["item_id"], event["partial_image_index"])] = time.perf_counter()
        return data

    server.wire.sse = stamped
    with Emulator(realistic=realistic, latency=latency, moderation_trigger=None) as api:
        while True:
            try:
                name, args = conn.recv()
            except EOFError:
                return
            try:
                if name == "stop":
                    conn.send((True, None))
                    return
                if name == "url":
                    conn.send((True, api.url))
                elif name == "stamps":
                    with lock:
                        taken = dict(stamps)
                        stamps.clear()
                    conn.send((True, taken))
                else:
                    getattr(api, name)(*args)
                    conn.send((True, None))
            except Exception as exc:  # reported to the parent, which raises it
                conn.send((False, repr(exc)))


# --- the machine -----------------------------------------------------------------------------------------


def machine_description() -> dict[str, str]:
    """What the figures were measured on: cores, CPU, load, Python and the packages that matter."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in ("imagegen-tool", "openai", "pydantic", "langchain-core", "pybase64", "pillow", "uvicorn"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    load = ""
    with contextlib.suppress(OSError, AttributeError):
        load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    from imagegen_tool.decoding import decoder_name

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "load average (1/5/15 min)": load,
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "packages": ", ".join(versions),
        "base64 decoder": decoder_name(),
    }
