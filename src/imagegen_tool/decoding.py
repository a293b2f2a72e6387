"""Base64 decoding of image data: fast, strict, and without stalling an event loop.

Images arrive as 2-4 MB of base64. The standard library decodes a 1.6 MB image in 10-30 ms and holds the GIL
the whole time, so decoding "in a worker thread" still freezes the event loop that awaits it, and many decodes in
the default executor's threads freeze it longer (the loop queues for the GIL behind each of them). What
``benchmarks/`` measured and this module does:

- ``pybase64`` (a SIMD decoder that releases the GIL) when its C extension is available: ~100x faster (0.2 ms
  for a 1.6 MB image) and the GIL stays free while it runs.
- otherwise the standard decoder in chunks of :data:`CHUNK_CHARS` characters: each chunk is one short C call, so
  the interpreter can hand the GIL to the loop between chunks instead of after the whole image.
- async callers decode on one dedicated thread (not the loop's default executor), so at most one decode
  competes with the loop at any time, whatever the number of concurrent calls. Not on the loop itself, even
  with the fast decoder: a call that releases the GIL on the loop's thread must take it back afterwards, behind
  every busy worker thread (measured: 10x the stall of the decode thread with 50 concurrent images).
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["CHUNK_CHARS", "FAST_INLINE_LIMIT", "adecode_b64", "b64decode", "decoder_name"]

logger = logging.getLogger(__name__)

#: Base64 characters decoded per standard-library call (a multiple of 4): well under a millisecond each.
CHUNK_CHARS = 256 * 1024
#: Strings up to this size are decoded inline by the SIMD decoder (a few microseconds; a thread hop costs more).
FAST_INLINE_LIMIT = 64 * 1024
#: Without the SIMD decoder, strings up to this size are decoded inline (tens of microseconds).
SLOW_INLINE_LIMIT = 16 * 1024

_Decoder = Callable[[str | bytes], bytes]

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_fast: _Decoder | None = None
_fast_checked = False


def b64decode(data: str | bytes) -> bytes:
    """Strict base64 decoding, like ``base64.b64decode(data, validate=True)``: only the standard alphabet and
    final padding are accepted. Raises :class:`binascii.Error` (or :class:`ValueError` for non-ASCII text)."""
    fast = _fast_decoder()
    if fast is not None:
        return fast(data)
    return _chunked_b64decode(data)


async def adecode_b64(data: str | bytes) -> bytes:
    """:func:`b64decode` without holding the running event loop: small strings inline, others on the
    dedicated decode thread."""
    limit = FAST_INLINE_LIMIT if _fast_decoder() is not None else SLOW_INLINE_LIMIT
    if len(data) <= limit:
        return b64decode(data)
    return await asyncio.get_running_loop().run_in_executor(_decode_executor(), b64decode, data)


def decoder_name() -> str:
    """Which decoder is in use: ``"pybase64"`` or ``"stdlib-chunked"`` (benchmarks print it)."""
    return "pybase64" if _fast_decoder() is not None else "stdlib-chunked"


# --- internals -------------------------------------------------------------------------------------------


def _chunked_b64decode(data: str | bytes) -> bytes:
    raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    if len(raw) <= CHUNK_CHARS:
        return binascii.a2b_base64(raw, strict_mode=True)
    view = memoryview(raw)
    parts: list[bytes] = []
    for start in range(0, len(raw), CHUNK_CHARS):
        end = start + CHUNK_CHARS
        # Strict mode checks padding within a chunk; padding that ends an inner chunk is data after padding.
        if end < len(raw) and raw[end - 1] == 0x3D:  # "="
            raise binascii.Error("Excess data after padding")
        parts.append(binascii.a2b_base64(view[start:end], strict_mode=True))
    return b"".join(parts)


def _fast_decoder() -> _Decoder | None:
    """pybase64's decoder if its C extension is active (its pure-Python fallback holds the GIL like the
    standard library and is no faster). Imported on first use: it is not needed to import this package."""
    global _fast, _fast_checked
    if _fast_checked:
        return _fast
    found: _Decoder | None = None
    try:
        import pybase64
    except ImportError:
        pass
    else:
        if "C extension active" in pybase64.get_version():
            found = functools.partial(pybase64.b64decode, validate=True)
        else:
            logger.info("pybase64 has no C extension here; decoding base64 with the standard library in chunks")
    _fast, _fast_checked = found, True
    return _fast


def _decode_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            # One thread for the whole process: decodes queue here instead of queueing the loop for the GIL.
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imagegen-decode")
        return _executor
