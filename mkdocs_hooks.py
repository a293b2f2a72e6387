"""MkDocs hooks for the documentation site: one API reference page per public module, generated at build time.

Every module of ``src/imagegen_tool`` whose name does not start with an underscore gets a page rendered by
mkdocstrings from its docstrings, and the "API reference" section of the navigation lists them, so a module
added by anyone appears in the reference without editing ``mkdocs.yml``. Packages (``__init__``) show their
docstring only; their members are documented on the pages of the modules that define them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

SOURCE = Path(__file__).resolve().parent / "src"
PACKAGE = "imagegen_tool"
SECTION = "API reference"


def public_modules() -> list[str]:
    """Dotted names of the public modules and packages, packages first within their folder."""
    names: list[str] = []
    for path in sorted((SOURCE / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return sorted(names, key=lambda name: (name != PACKAGE, name))


def _page(name: str) -> str:
    return f"api/{name}.md"


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    entries: list[Any] = [{"Overview": "api/index.md"}]
    entries += [{name: _page(name)} for name in public_modules()]
    # The entry "API reference: api/index.md" (anywhere one level down) becomes a section listing the modules.
    for section in config.nav or []:
        children = next(iter(section.values())) if isinstance(section, dict) else None
        if isinstance(children, list):
            for index, item in enumerate(children):
                if isinstance(item, dict) and SECTION in item:
                    children[index] = {SECTION: entries}
    return config


_MODELS_PLACEHOLDER = """# Models and capabilities

The capability table (which values each GPT Image model accepts, with the evidence for each fact) lives in
`src/imagegen_tool/models.toml`; this page is generated from it once the table's page generator is in place.
Until then, see [Configuration](configuration.md) for how options are validated.
"""


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    # The capability page is generated from the table into docs/models.md by the table's own generator; until
    # that file exists, a placeholder keeps the navigation entry (and links to it) valid.
    if files.get_file_from_path("models.md") is None:
        files.append(File.generated(config, "models.md", content=_MODELS_PLACEHOLDER))
    for name in public_modules():
        is_package = (SOURCE / Path(*name.split(".")) / "__init__.py").exists()
        options = "    options:\n      members: false\n      show_root_heading: false\n" if is_package else ""
        content = f"# `{name}`\n\n::: {name}\n{options}"
        files.append(File.generated(config, _page(name), content=content))
    return files
