"""``imagegen``: the command line for people and scripts, and its exit codes.

The commands live in :mod:`imagegen_tool.cli_app` (Typer + Rich, the ``cli`` extra). This module is the console
script's entry point: it says what to install when the extra is missing, turns every failure into one clear line
on stderr (a traceback only with ``--debug``, never an API key) and into a documented exit code:

====  ==========================================================================================
0     success
1     an unexpected internal error (a bug: run again with ``--debug`` and report the traceback)
2     invalid options, input or configuration (no API key, a missing extra): nothing was sent
3     the request or the image was blocked by moderation: rephrase, do not retry as is
4     the API or the network failed (rate limit, server error, timeout, cut stream, no image)
5     the image store failed (cannot write or read the store directory)
130   interrupted (Ctrl-C)
====  ==========================================================================================
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from .errors import (
    ConfigurationError,
    ImageGenerationError,
    InvalidInputError,
    InvalidOptionsError,
    ModerationBlockedError,
    StorageError,
)
from .redact import redact

__all__ = [
    "EXIT_API",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_MODERATION",
    "EXIT_OK",
    "EXIT_STORAGE",
    "exit_code_for",
    "main",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INVALID = 2
EXIT_MODERATION = 3
EXIT_API = 4
EXIT_STORAGE = 5
EXIT_INTERRUPTED = 130

_INSTALL_HINT = "the imagegen command needs the cli extra: pip install 'imagegen-tool[cli]'"


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an exception raised by a command."""
    if isinstance(error, StorageError):
        return EXIT_STORAGE
    if isinstance(error, ModerationBlockedError):
        return EXIT_MODERATION
    if isinstance(error, InvalidOptionsError | InvalidInputError | ConfigurationError):
        return EXIT_INVALID
    if isinstance(error, ImageGenerationError):
        return EXIT_API
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_INTERNAL


def error_line(error: BaseException) -> str:
    """The one line a failure prints: what went wrong and, for an unexpected error, how to learn more."""
    if isinstance(error, KeyboardInterrupt):
        return "imagegen: interrupted"
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, ImageGenerationError):
        text = f"internal error ({type(error).__name__}): {text}; run again with --debug for the traceback"
    return "imagegen: error: " + hide_secrets(text)


def hide_secrets(text: str) -> str:
    """``text`` with API keys removed: the known patterns, and the exact value of ``OPENAI_API_KEY``."""
    key = os.environ.get("OPENAI_API_KEY")
    if key and len(key) >= 8:
        text = text.replace(key, "***")
    return redact(text)


def print_traceback(error: BaseException) -> None:
    """The traceback for ``--debug``, with secrets hidden like everything else printed."""
    lines = traceback.format_exception(error)
    sys.stderr.write(hide_secrets("".join(lines)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``imagegen`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        from .cli_app import run
    except ImportError as exc:  # Typer or Rich missing: the only thing to say is what to install
        print(f"imagegen: {_INSTALL_HINT} ({exc.name or exc})", file=sys.stderr)
        return EXIT_INVALID
    return run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
