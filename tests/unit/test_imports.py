"""What ``import imagegen_tool`` loads: only what every call needs. Heavy or optional modules (httpx, which the
SDK no longer uses; Pillow; LangChain; the Images API route; the SIMD decoder) load on first use. Checked in fresh
interpreters, by the modules loaded, never by time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(statement: str) -> set[str]:
    script = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    "module",
    ["httpx", "langchain_core", "imagegen_tool.images_api", "imagegen_tool.langchain", "pybase64"],
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
