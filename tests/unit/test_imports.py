"""What ``import imagegen_tool`` loads: only what every call needs. Heavy or optional modules (httpx, which the
SDK no longer uses; Pillow; LangChain; the Images API route; the SIMD decoder) load on first use. Checked in fresh
interpreters, by the modules loaded, never by time."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest


@functools.cache
def _loaded_after(statement: str) -> frozenset[str]:
    # One fresh interpreter per statement, shared by the cases that ask about it (each costs a second or more).
    script = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return frozenset(json.loads(done.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "httpx",
        "PIL",
        "langchain_core",
        "imagegen_tool.images_api",
        "imagegen_tool.langchain",
        "imagegen_tool.testing",
        "pybase64",
        "uvicorn",
        "fastapi",
        "starlette",
        "mcp",
        "agents",
        "pydantic_ai",
        "opentelemetry",
        "fsspec",
        "typer",
        "rich",
        "numpy",
    ],
)
def test_import_imagegen_tool_leaves_out(module: str) -> None:
    assert module not in _loaded_after("import imagegen_tool")


def test_lazy_exports_still_import() -> None:
    loaded = _loaded_after("from imagegen_tool import ImagesBackend, ImageGenerator; assert ImagesBackend.name")
    assert "imagegen_tool.images_api" in loaded


def test_unknown_attribute_is_an_attribute_error() -> None:
    import imagegen_tool

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = imagegen_tool.no_such_name  # type: ignore[attr-defined]


# What each adapter must not load: the other frameworks, the emulator and its server, Pillow (previews load it on
# first use), and httpx (the SDK uses its own transport; an adapter whose framework needs httpx says so here).
_FRAMEWORKS = {
    "imagegen_tool.langchain": "langchain_core",
    "imagegen_tool.mcp": "mcp",
    "imagegen_tool.openai_agents": "agents",
    "imagegen_tool.pydantic_ai": "pydantic_ai",
}
_NEVER_WITH_AN_ADAPTER = ("PIL", "imagegen_tool.testing", "uvicorn", "fastapi", "typer", "rich", "numpy")
_NEEDS_HTTPX = {"imagegen_tool.mcp", "imagegen_tool.openai_agents", "imagegen_tool.pydantic_ai"}


@pytest.mark.parametrize("adapter", sorted(_FRAMEWORKS))
def test_an_adapter_loads_its_framework_only(adapter: str) -> None:
    import importlib.util

    try:
        if importlib.util.find_spec(adapter) is None:
            pytest.skip(f"{adapter} does not exist in this version")
    except ImportError:
        pytest.skip(f"{adapter} cannot be found")
    try:
        loaded = _loaded_after(f"import {adapter}")
    except subprocess.CalledProcessError as exc:
        if "ModuleNotFoundError" in exc.stderr:
            pytest.skip(f"{adapter}'s framework is not installed")
        raise
    unwanted = [*_NEVER_WITH_AN_ADAPTER, *(f for a, f in _FRAMEWORKS.items() if a != adapter)]
    if adapter not in _NEEDS_HTTPX:
        unwanted.append("httpx")
    # What the framework loads by itself (the Agents SDK imports mcp, mcp imports uvicorn, ...) is not ours.
    framework = _loaded_after(f"import {_FRAMEWORKS[adapter]}")
    assert sorted(m for m in unwanted if m in loaded and m not in framework) == []


def test_pillow_loads_with_the_first_image_it_is_needed_for() -> None:
    loaded = _loaded_after(
        "from imagegen_tool.imageinfo import inspect_image; import base64; "
        "inspect_image(base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=='))"
    )
    assert "PIL" in loaded
