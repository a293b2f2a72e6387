"""Realistic payloads and latency for the emulator: image bytes of the sizes the real API sends, and
generation times drawn from recorded ones.

The emulator's own pictures are small (a 1024x1024 PNG of a few shapes is ~25 KB), which is right for tests that
look at the pixels and wrong for anything that measures cost: a real 1024x1024 PNG is ~1.6 MB (2.2 MB of base64
in one JSON body or SSE event) and a real call takes 20-90 s. :class:`Payload` replaces the rendered images with
given bytes or with noise images of the real sizes; :class:`LatencyModel` gives every answer a fixed delay or one
drawn from the recorded range, scaled down. Noise images are made once per (size, format) and cached with their
base64, so serving them costs the emulator almost nothing.
"""

from __future__ import annotations

import base64
import functools
import io
import random
import threading
from dataclasses import dataclass, field

from PIL import Image

__all__ = [
    "RECORDED_BYTES_PER_PIXEL",
    "RECORDED_SECONDS",
    "LatencyModel",
    "Payload",
    "noise_image",
]

#: Server-side processing times of real image generation calls (``openai-processing-ms``), in seconds, from the
#: recorded pydantic-ai cassettes in ``shared/fixtures/openai-recorded`` (gpt-5 with the image tool, 2025).
RECORDED_SECONDS = (19.385, 68.247, 89.803)

#: Encoded bytes per pixel of real images. PNG: the recorded 1024x1024 PNG is 1,653,343 bytes; JPEG: the
#: recorded 1536x1024 JPEG is 140,908 bytes (both in ``shared/fixtures/openai-recorded/pydantic-ai``). WebP is
#: unknown (no recording): taken as JPEG's. Partial images: ~1.5 MB at 1024x1024 for PNG (issue 17's
#: measurement), the same 0.9 ratio to the final image assumed for the lossy formats.
RECORDED_BYTES_PER_PIXEL: dict[str, tuple[float, float]] = {
    # format: (final, partial)
    "png": (1_653_343 / (1024 * 1024), 1_500_000 / (1024 * 1024)),
    "jpeg": (140_908 / (1536 * 1024), 0.9 * 140_908 / (1536 * 1024)),
    "webp": (140_908 / (1536 * 1024), 0.9 * 140_908 / (1536 * 1024)),
}


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """How long the emulator waits before answering: a fixed delay, or one drawn per request.

    ``LatencyModel.fixed(0.5)`` always waits 0.5 s; ``LatencyModel.recorded(scale=0.01)`` draws uniformly between
    the shortest and longest recorded real generation (19-90 s) times ``scale`` (0.19-0.90 s), from a seeded
    generator so a run is repeatable.
    """

    low: float
    high: float
    seed: int | None = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.low < 0 or self.high < self.low:
            raise ValueError(f"latency range must satisfy 0 <= low <= high, got {self.low}..{self.high}")
        object.__setattr__(self, "_rng", random.Random(self.seed))
        object.__setattr__(self, "_lock", threading.Lock())

    @classmethod
    def fixed(cls, seconds: float) -> LatencyModel:
        return cls(seconds, seconds)

    @classmethod
    def recorded(cls, *, scale: float = 0.01, seed: int | None = 0) -> LatencyModel:
        """Uniform over the recorded real generation times (:data:`RECORDED_SECONDS`) times ``scale``."""
        if scale < 0:
            raise ValueError("scale cannot be negative")
        return cls(min(RECORDED_SECONDS) * scale, max(RECORDED_SECONDS) * scale, seed)

    def draw(self) -> float:
        """The delay for the next request, in seconds."""
        if self.low == self.high:
            return self.low
        with self._lock:  # requests are served from several threads (tests reset and draw concurrently)
            return self._rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class Payload:
    """What the emulator sends instead of its rendered pictures.

    ``image_bytes`` are served as every final image (and ``partial_bytes``, defaulting to ``image_bytes``, as every
    partial image); with ``realistic=True`` (and no bytes given) each image is a noise image of the requested size
    and format with the byte size of a real one (:data:`RECORDED_BYTES_PER_PIXEL`). GIF and SVG output, which
    have no recorded sizes, keep the rendered pictures.
    """

    image_bytes: bytes | None = None
    partial_bytes: bytes | None = None
    realistic: bool = False

    def __post_init__(self) -> None:
        if self.image_bytes is None and self.partial_bytes is not None:
            raise ValueError("partial_bytes needs image_bytes as well")
        if self.image_bytes is not None and not self.image_bytes:
            raise ValueError("image_bytes cannot be empty")

    @property
    def active(self) -> bool:
        return self.image_bytes is not None or self.realistic

    def b64(
        self, width: int, height: int, output_format: str, partial_count: int
    ) -> tuple[str, tuple[str, ...]] | None:
        """The base64 final image and partials to send, or ``None`` to send the rendered pictures."""
        if self.image_bytes is not None:
            final = _b64_of(self.image_bytes)
            partial = _b64_of(self.partial_bytes) if self.partial_bytes is not None else final
            return final, (partial,) * partial_count
        if not self.realistic or output_format not in RECORDED_BYTES_PER_PIXEL:
            return None
        final = _noise_b64(width, height, output_format, False)
        # Real partials differ from each other; the cache keeps one per index so each is a distinct string.
        partials = tuple(_noise_b64(width, height, output_format, True, index) for index in range(partial_count))
        return final, partials


def noise_image(
    width: int, height: int, output_format: str = "png", *, partial: bool = False, variant: int = 0
) -> bytes:
    """A deterministic noise image of ``width`` x ``height`` whose encoded size is that of a real image of the
    same size and format (final or partial). Cached: the first call for a size costs tens of milliseconds."""
    if output_format not in RECORDED_BYTES_PER_PIXEL:
        raise ValueError(
            f"no recorded size for {output_format!r} images; expected one of {sorted(RECORDED_BYTES_PER_PIXEL)}"
        )
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    return _noise(width, height, output_format, partial, variant)


# --- internals -------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _b64_of(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.lru_cache(maxsize=64)
def _noise_b64(width: int, height: int, output_format: str, partial: bool, variant: int = 0) -> str:
    return base64.b64encode(_noise(width, height, output_format, partial, variant)).decode("ascii")


@functools.lru_cache(maxsize=64)
def _noise(width: int, height: int, output_format: str, partial: bool, variant: int) -> bytes:
    final_bpp, partial_bpp = RECORDED_BYTES_PER_PIXEL[output_format]
    target = (partial_bpp if partial else final_bpp) * width * height
    rng = random.Random(f"{width}x{height}:{output_format}:{partial}:{variant}")
    # Rows of random pixels do not compress, flat rows vanish: the share of random rows sets the size. One
    # measured encode calibrates the share (encoders add headers, JPEG spreads noise over 8x8 blocks).
    share = min(1.0, target / (3 * width * height))
    data = _encode_noise(rng, width, height, output_format, share)
    if len(data) and abs(len(data) - target) > 0.03 * target:
        share = max(0.0, min(1.0, share * target / len(data)))
        data = _encode_noise(random.Random(rng.random()), width, height, output_format, share)
    return data


def _encode_noise(rng: random.Random, width: int, height: int, output_format: str, share: float) -> bytes:
    row = 3 * width
    flat = bytes([rng.randrange(256), rng.randrange(256), rng.randrange(256)]) * width
    rows: list[bytes] = []
    carried = 0.0
    for _ in range(height):  # spread the random rows evenly (Bresenham), so every region looks alike
        carried += share
        if carried >= 1.0:
            carried -= 1.0
            rows.append(rng.randbytes(row))
        else:
            rows.append(flat)
    image = Image.frombytes("RGB", (width, height), b"".join(rows))
    out = io.BytesIO()
    if output_format == "png":
        image.save(out, "PNG", compress_level=1)
    elif output_format == "jpeg":
        image.save(out, "JPEG", quality=75)
    else:
        image.save(out, "WEBP", quality=75, method=0)
    return out.getvalue()
