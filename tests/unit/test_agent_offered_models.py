"""With ``model`` exposed, the agent is offered only models that are neither deprecated nor shut down on the
tool's date (``capabilities.offered_models``); a developer's own deprecated default stays offered until its
shutdown; anything else is refused before any request."""

from __future__ import annotations

import datetime
from pathlib import Path

from imagegen_tool import ImageGenerator, ImageOptions
from imagegen_tool.agent_tool import AgentImageTool, build_args_schema
from imagegen_tool.capabilities import capabilities_for, known_models, offered_models


def _enum(schema: dict[str, object]) -> list[str]:
    prop = schema["properties"]["model"]  # type: ignore[index]
    for option in prop.get("anyOf", [prop]):  # type: ignore[union-attr]
        if "enum" in option:
            return list(option["enum"])
    return []


def _deprecated_on(day: datetime.date) -> list[str]:
    return [name for name in known_models() if capabilities_for(name).lifecycle(day) == "deprecated"]  # type: ignore[union-attr]


def _a_deprecation() -> tuple[str, datetime.date, datetime.date]:
    """A model of the table with a shutdown date, a day it is deprecated, and its shutdown day."""
    for name in known_models():
        caps = capabilities_for(name)
        assert caps is not None
        if caps.shutdown is not None and caps.lifecycle(caps.shutdown - datetime.timedelta(days=1)) == "deprecated":
            return name, caps.shutdown - datetime.timedelta(days=1), caps.shutdown
    raise AssertionError("the table has no model with a shutdown date")


def test_deprecated_models_are_not_offered() -> None:
    name, deprecated_day, _ = _a_deprecation()
    offered = _enum(build_args_schema(ImageOptions(), ("model",), today=deprecated_day).model_json_schema())
    assert name not in offered
    assert offered == sorted(offered_models(deprecated_day))
    assert not set(offered) & set(_deprecated_on(deprecated_day))


def test_before_its_deprecation_a_model_is_offered() -> None:
    for name in known_models():
        caps = capabilities_for(name)
        assert caps is not None
        if caps.deprecated is not None and caps.shutdown is None:
            day = caps.deprecated - datetime.timedelta(days=1)
            assert name in _enum(build_args_schema(ImageOptions(), ("model",), today=day).model_json_schema())
            return
    # Every deprecation in the table comes with a shutdown date: check the lifecycle function instead.
    name, deprecated_day, _ = _a_deprecation()
    assert name not in offered_models(deprecated_day)


def test_the_developers_deprecated_default_stays_offered_until_its_shutdown(tmp_path: Path) -> None:
    name, deprecated_day, shutdown_day = _a_deprecation()
    chosen = ImageOptions.build({"model": name}, today=deprecated_day)
    schema = build_args_schema(chosen, ("model",), today=deprecated_day).model_json_schema()
    assert name in _enum(schema)
    late = ImageOptions.build({"model": name}, validation="off", today=shutdown_day)
    after = build_args_schema(late, ("model",), today=shutdown_day).model_json_schema()
    assert name not in _enum(after)


def test_the_tool_uses_its_generators_clock_and_refuses_a_deprecated_model_before_any_request(
    tmp_path: Path,
) -> None:
    name, deprecated_day, _ = _a_deprecation()
    generator = ImageGenerator(
        store=tmp_path, api_key="test", base_url="http://127.0.0.1:9/v1", today=lambda: deprecated_day
    )
    with AgentImageTool(generator=generator, exposed_options=("model",)) as tool:
        assert name not in _enum(tool.json_schema())
        output = tool.call_safely({"prompt": "a kite", "model": name})
    # Refused by the schema: port 9 (discard) was never contacted, or the error would name a connection.
    assert output.is_error and "model" in output.text and "connect" not in output.text.lower()
    generator.close()
