"""The generated docs page stays in step with the table, and the emulator's rules are its own (not the client's)."""

from __future__ import annotations

import ast
import datetime
import inspect
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from imagegen_tool import capabilities_doc
from imagegen_tool.capabilities import EVIDENCE_KINDS, all_evidence
from imagegen_tool.testing import api_rules
from imagegen_tool.testing.api_rules import ApiRules, RuleViolation

ROOT = Path(__file__).resolve().parents[2]


def test_committed_models_page_is_what_the_table_renders() -> None:
    page = ROOT / "docs" / "models.md"
    assert page.read_text("utf-8") == capabilities_doc.render(), (
        "docs/models.md is stale: run python -m imagegen_tool.capabilities_doc"
    )
    assert capabilities_doc.main([str(page), "--check"]) == 0


def test_models_page_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "models.md"
    stale.write_text("# old\n", "utf-8")
    assert capabilities_doc.main([str(stale), "--check"]) == 1
    assert capabilities_doc.main([str(stale)]) == 0
    assert capabilities_doc.main([str(stale), "--check"]) == 0


def test_models_page_shows_every_evidence_entry_and_the_unknowns() -> None:
    page = capabilities_doc.render()
    for key, item in all_evidence().items():
        assert f"### {key}" in page and item.source in page
    assert "| input_fidelity | `high` | unknown |" in page
    assert "| output_format | `gif` | **no** |" in page


# -- the emulator's own rules ---------------------------------------------------------------------------------


def test_emulator_rules_do_not_import_the_client_table() -> None:
    tree = ast.parse(inspect.getsource(api_rules))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any("capabilities" in name or "options" in name or name.startswith("imagegen_tool") for name in imported)
    server_source = inspect.getsource(__import__("imagegen_tool.testing.server", fromlist=["x"]))
    assert "imagegen_tool.options" not in server_source and "capabilities" not in server_source


def test_emulator_rules_data_carries_the_same_evidence_fields() -> None:
    data = tomllib.loads(resources.files("imagegen_tool.testing").joinpath("api_rules.toml").read_text("utf-8"))
    for key, item in data["evidence"].items():
        assert item["kind"] in EVIDENCE_KINDS, key
        assert item["source"] and item["quote"] and isinstance(item["checked"], datetime.date)
    for name, model in data["models"].items():
        assert set(model["evidence"]) <= set(data["evidence"]), name
    for name, family in data["families"].items():
        assert set(family["evidence"]) <= set(data["evidence"]), name


def violation(rules: ApiRules, tool: dict[str, object], **kwargs: object) -> RuleViolation:
    with pytest.raises(RuleViolation) as info:
        rules.check_tool({"type": "image_generation", **tool}, prefix="tools[0]", **kwargs)  # type: ignore[arg-type]
    return info.value


def test_refusals_use_the_api_shape_and_wording() -> None:
    rules = ApiRules(today=datetime.date(2026, 11, 25))
    error = violation(rules, {"model": "gpt-image-2", "quality": "xhigh"})
    assert (error.status, error.type, error.code, error.param) == (
        400,
        "image_generation_user_error",
        "invalid_value",
        "tools[0].quality",
    )
    assert error.message == (
        "Invalid value: 'xhigh'. Supported values are: 'low', 'medium', 'high', and 'auto' with model 'gpt-image-2'."
    )
    unknown = violation(rules, {"qualty": "high"})
    assert (unknown.code, unknown.type) == ("unknown_parameter", "invalid_request_error")


def test_switches_refuse_and_accept_any_option_until_reset() -> None:
    rules = ApiRules(today=datetime.date(2026, 11, 25))
    rules.check_tool({"model": "gpt-image-2.5-flare", "input_fidelity": "high"}, prefix="tools[0]")
    rules.refuse("input_fidelity", model="gpt-image-2.5-flare", message="input_fidelity is not supported.")
    assert violation(rules, {"model": "gpt-image-2.5-flare", "input_fidelity": "low"}).message == (
        "input_fidelity is not supported."
    )
    rules.check_tool({"model": "gpt-image-2.5-sunburst", "input_fidelity": "low"}, prefix="tools[0]")
    rules.accept("quality", "max", model="gpt-image-2")
    rules.check_tool({"model": "gpt-image-2", "quality": "max"}, prefix="tools[0]")
    rules.reset()
    violation(rules, {"model": "gpt-image-2", "quality": "max"})


def test_emulated_lifecycle_and_limits() -> None:
    rules = ApiRules(today=datetime.date(2026, 12, 1))
    assert violation(rules, {"model": "chatgpt-image-latest"}).code == "model_not_found"
    rules.today = datetime.date(2026, 11, 30)
    rules.check_tool({"model": "chatgpt-image-latest"}, prefix="tools[0]")
    assert "Too many input images" in violation(rules, {}, input_count=17).message
    assert "sheet" in violation(rules, {"output_format": "gif", "size": "1024x1024", "frame_count": 6}).message
    rules.check_tool({"output_format": "gif", "size": "768x768", "frame_count": 12}, prefix="tools[0]")
    rules.check_tool({"model": "gpt-image-2", "size": "2880x2880"}, prefix="tools[0]")
    assert "pixel" in violation(rules, {"model": "gpt-image-2", "size": "16x16"}).message
