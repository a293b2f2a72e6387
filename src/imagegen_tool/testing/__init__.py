"""Offline emulator of the OpenAI image endpoints and a scripted chat model, for tests, demos and CI.

:class:`Emulator` serves the parts of the OpenAI HTTP API that imagegen-tool uses (the Responses API with the
``image_generation`` tool, the Images API and the Files API) on a loopback port, so the real ``openai``
client works against it unchanged through ``base_url``. It returns real, deterministic images that show the
prompt's words and an "emulated" caption, keeps responses and files in memory, logs every request (credentials
redacted) and injects faults on demand. It needs the ``emulator`` extra (``pip install
"imagegen-tool[emulator]"``, see the installation guide for git and path installs). With pytest, the
``imagegen_emulator``, ``openai_client`` and ``async_openai_client`` fixtures are available automatically.

:class:`ScriptedChatModel` is a LangChain chat model whose turns are functions of the conversation, to run
real agents offline; it needs only the core dependencies.

Names are imported on first use, so ``import imagegen_tool.testing`` (which the pytest plugin does in every
project that installs the package) never needs the optional extra, and a missing extra is reported with the
command that installs it instead of a bare ``ModuleNotFoundError: uvicorn``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agents import ScriptedChatModel, Step
    from .emulator import Emulator
    from .state import REDACTED, RecordedFile, RecordedRequest, StoredFile

__all__ = [
    "EMULATOR_EXTRA_HINT",
    "REDACTED",
    "Emulator",
    "EmulatorNotInstalledError",
    "RecordedFile",
    "RecordedRequest",
    "ScriptedChatModel",
    "Step",
    "StoredFile",
    "emulator_available",
]

#: What to run when the emulator's optional dependencies are missing.
EMULATOR_EXTRA_HINT = (
    "install the emulator extra: pip install 'imagegen-tool[emulator]' "
    "(from a git URL: pip install 'imagegen-tool[emulator] @ git+<repository URL>'; "
    "from a checkout: pip install '/path/to/imagegen-tool[emulator]')"
)

# The third-party modules only the emulator needs (the ``emulator`` extra in pyproject.toml); python-multipart
# is imported by Starlette under either name, depending on its version.
_EMULATOR_MODULES = ("starlette", "uvicorn")
_EMULATOR_IMPORTS = frozenset({*_EMULATOR_MODULES, "multipart", "python_multipart"})

# Public name -> submodule that defines it. Only ``emulator`` needs the optional extra.
_LAZY = {
    "Emulator": "emulator",
    "ScriptedChatModel": "agents",
    "Step": "agents",
    "REDACTED": "state",
    "RecordedFile": "state",
    "RecordedRequest": "state",
    "StoredFile": "state",
}


class EmulatorNotInstalledError(ImportError):
    """The emulator was asked for, but the ``emulator`` extra (starlette, uvicorn, python-multipart) is absent."""


def emulator_available() -> bool:
    """Whether the emulator's optional dependencies are importable (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in _EMULATOR_MODULES)


def _import_emulator() -> Any:
    try:
        return importlib.import_module(".emulator", __name__)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in _EMULATOR_IMPORTS:
            raise
        raise EmulatorNotInstalledError(
            f"imagegen_tool.testing.Emulator needs the {exc.name!r} package, which is not installed: "
            f"{EMULATOR_EXTRA_HINT}",
            name=exc.name,
        ) from exc


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _import_emulator() if module_name == "emulator" else importlib.import_module(f".{module_name}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
