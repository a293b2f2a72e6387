"""``imagegen-emulator``: run the emulator as a standalone server (for demos and manual testing).

Prints the base URL to give to an ``openai`` client (``OPENAI_BASE_URL``) and serves until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegen-emulator",
        description="Serve an offline emulation of the OpenAI image endpoints (Responses image_generation "
        "tool, Images API, Files API) with real, deterministic images.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument("--seed", type=int, default=0, help="seed mixed into every generated image")
    parser.add_argument(
        "--moderation-trigger",
        default="forbidden",
        help="word that makes a prompt blocked by moderation; empty to disable (default: %(default)s)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every request on stderr: method, path, status, time, model, prompt and image options",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the emulator until Ctrl-C (or until ``stop`` is set, for tests). Returns the exit status."""
    args = _parser().parse_args(argv)
    if args.latency < 0:
        print("imagegen-emulator: --latency cannot be negative", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    # Only the emulator's own loggers get chattier with -v (uvicorn's access log would repeat the request line).
    if args.verbose:
        logging.getLogger("imagegen_tool.testing").setLevel(logging.INFO)
    from . import EmulatorNotInstalledError

    try:
        from . import Emulator
    except EmulatorNotInstalledError as exc:
        print(f"imagegen-emulator: {exc}", file=sys.stderr)
        return 1
    emulator = Emulator(
        host=args.host,
        port=args.port,
        seed=args.seed,
        latency=args.latency,
        moderation_trigger=args.moderation_trigger or None,
    )
    done = stop or threading.Event()
    _stop_on_signals(done)
    with emulator:
        print(emulator.url, flush=True)
        print(
            f"imagegen emulator: export OPENAI_BASE_URL={emulator.url}  (Ctrl-C to stop)", file=sys.stderr, flush=True
        )
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def _stop_on_signals(done: threading.Event) -> None:
    """Stop cleanly on SIGTERM (``docker stop``, process managers) and on SIGINT even when it was inherited as
    ignored: a program started in the background by a non-interactive shell gets SIGINT ignored, and then
    Ctrl-C / ``kill -INT`` would leave the server running. Only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGINT"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, lambda signum, frame: done.set())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
