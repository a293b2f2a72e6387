"""The capability table (``models.toml``) against the installed openai SDK: every model the SDK lists has an
entry, the per-model limits say what the SDK's docstrings say, and the loaded values are typed and complete.

The SDK docstrings are the source of the table. Where a test hardcodes a fact, it first checks that the SDK
still states it in the same words, so an SDK upgrade that changes a rule fails here and points at the table.
"""

from __future__ import annotations

import inspect
import re
import typing

import pytest
from openai.types.image_model import ImageModel
from openai.types.responses.tool_param import ImageGeneration

from imagegen_tool.capabilities import (
    CustomSizeRule,
    ModelCapabilities,
    capabilities_for,
    default_image_model,
    general_rules,
    known_models,
)
from tests.fixtures.sdk_models import (
    GPT_IMAGE_2,
    GPT_IMAGE_2_5,
    GPT_IMAGE_2_6,
    SDK_HINTS,
    STANDARD_SIZES,
    literal_values,
)

ENUM_FIELDS = ("quality", "background", "output_format", "moderation", "complexity", "input_fidelity")


def sdk_doc(field: str) -> str:
    """The docstring of one ``ImageGeneration`` field, whitespace collapsed."""
    match = re.search(rf'^    {field}: .*?"""(.*?)"""', inspect.getsource(ImageGeneration), re.S | re.M)
    assert match is not None, f"the SDK no longer documents ImageGeneration.{field}"
    return " ".join(match.group(1).split())


def caps(model: str) -> ModelCapabilities:
    found = capabilities_for(model)
    assert found is not None, f"{model} is not in models.toml"
    return found


CURRENT_MODELS = tuple(m for m in known_models() if not caps(m).retired)


# -- the table covers the SDK ---------------------------------------------------------------------------------


def test_every_model_in_the_sdk_tool_param_has_a_table_entry() -> None:
    sdk_models = literal_values(SDK_HINTS["model"])
    assert sdk_models, "the SDK's ImageGeneration.model has no Literal names any more"
    missing = sdk_models - set(known_models())
    assert not missing, f"add these SDK models to models.toml: {sorted(missing)}"


def test_every_gpt_image_model_of_the_images_api_has_a_table_entry() -> None:
    # dall-e-2/3 are retired and never were image_generation tool models.
    gpt_models = {m for m in typing.get_args(ImageModel) if not m.startswith("dall-e")}
    assert gpt_models - set(known_models()) == set()


def test_table_lists_no_model_the_sdk_does_not_know() -> None:
    assert set(known_models()) <= literal_values(SDK_HINTS["model"])


def test_default_model_is_the_sdk_documented_default() -> None:
    match = re.search(r"Default: `([^`]+)`", sdk_doc("model"))
    assert match is not None
    assert default_image_model() == match.group(1) == "gpt-image-2.6-sunburst"
    assert default_image_model() in CURRENT_MODELS


def test_models_the_sdk_says_were_shut_down_are_retired_with_a_replacement() -> None:
    shut_down = re.findall(r"`([^`]+)` was shut down", sdk_doc("model"))
    assert shut_down == ["gpt-image-1"]
    retired = caps("gpt-image-1").retired
    assert retired is not None
    assert caps("gpt-image-1").replaced_by == ("gpt-image-2.5-sunburst", "gpt-image-2.5-flare")
    assert all(caps(m).retired is None for m in caps("gpt-image-1").replaced_by)
    assert [m for m in known_models() if caps(m).retired] == ["gpt-image-1"]


def test_unknown_model_has_no_entry() -> None:
    assert capabilities_for("gpt-image-9") is None
    assert capabilities_for("") is None
    assert "gpt-image-9" not in known_models()


# -- aliases --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("gpt-image-2-2026-04-21", "gpt-image-2"),
        ("gpt-image-2.5-sunburst-2026-09-08", "gpt-image-2.5-sunburst"),
        ("gpt-image-2.5-flare", "gpt-image-2.5-sunburst"),
        ("gpt-image-2.5-flare-2026-09-08", "gpt-image-2.5-sunburst"),
        ("gpt-image-2.6-flare", "gpt-image-2.6-sunburst"),
        ("chatgpt-image-latest", "gpt-image-1.5"),
    ],
)
def test_alias_shares_the_capabilities_of_its_target_under_its_own_name(alias: str, target: str) -> None:
    assert caps(alias).name == alias
    assert caps(alias).model_dump(exclude={"name"}) == caps(target).model_dump(exclude={"name"})


# -- per-model facts, as the SDK states them ------------------------------------------------------------------


def test_custom_sizes_are_exactly_on_the_models_the_sdk_names() -> None:
    doc = sdk_doc("size")
    assert "arbitrary resolutions are supported" in doc
    named = set(re.findall(r"`([^`]+)`", doc.split("arbitrary resolutions")[0]))
    assert named == {*GPT_IMAGE_2, *GPT_IMAGE_2_5}
    assert {m for m in CURRENT_MODELS if caps(m).custom_size is not None} == named


@pytest.mark.parametrize("model", [*GPT_IMAGE_2, *GPT_IMAGE_2_5])
def test_custom_size_limits_follow_the_sdk_text(model: str) -> None:
    doc = sdk_doc("size")
    assert "must both be divisible by 16" in doc
    assert "aspect ratio must be between 1:3 and 3:1" in doc
    assert "maximum supported resolution is `3840x2160`" in doc
    assert caps(model).custom_size == CustomSizeRule(
        multiple=16, max_aspect=3.0, max_long_edge=3840, max_short_edge=2160
    )


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_every_current_model_takes_the_standard_sizes_and_auto(model: str) -> None:
    assert "standard sizes `1024x1024`, `1536x1024`, and `1024x1536` are supported" in sdk_doc("size")
    assert set(caps(model).sizes) == set(STANDARD_SIZES)
    assert caps(model).auto_size is True


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_xhigh_and_max_quality_only_on_gpt_image_2_5(model: str) -> None:
    assert (
        "`gpt-image-2.5-sunburst` and `gpt-image-2.5-flare`, including their `2026-09-08` snapshots, "
        "also support `xhigh` and `max`"
    ) in sdk_doc("quality")
    quality = set(caps(model).quality or ())
    assert {"low", "medium", "high", "auto"} <= quality
    assert ({"xhigh", "max"} <= quality) is (model in GPT_IMAGE_2_5)
    assert ({"xhigh", "max"} & quality == set()) is (model not in GPT_IMAGE_2_5)


@pytest.mark.parametrize(
    ("model", "allowed"),
    [
        ("gpt-image-1-mini", ("low",)),
        ("gpt-image-1.5", ("high", "low")),
        ("chatgpt-image-latest", ("high", "low")),
        *((m, ()) for m in (*GPT_IMAGE_2, *GPT_IMAGE_2_5, *GPT_IMAGE_2_6)),
    ],
)
def test_input_fidelity_per_model(model: str, allowed: tuple[str, ...]) -> None:
    doc = sdk_doc("input_fidelity")
    assert "Supports `high` and `low` on `gpt-image-1.5`; `gpt-image-1-mini` supports only `low`" in doc
    assert "For `gpt-image-2`, omit this parameter" in doc
    assert caps(model).allowed_values("input_fidelity") == allowed


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_gif_and_svg_output_only_on_the_2_5_and_2_6_families(model: str) -> None:
    # The SDK only says "GIF and SVG output require a model that supports the selected format"; which models
    # do is the table's own claim, pinned here so that a change to it is deliberate.
    formats = set(caps(model).output_format or ())
    assert {"png", "webp", "jpeg"} <= formats
    animated_or_vector = model in (*GPT_IMAGE_2_5, *GPT_IMAGE_2_6)
    assert ("gif" in formats) is animated_or_vector
    assert ("svg" in formats) is animated_or_vector


# -- the table's values are values the SDK types allow --------------------------------------------------------


@pytest.mark.parametrize("model", CURRENT_MODELS)
@pytest.mark.parametrize("field", ENUM_FIELDS)
def test_table_values_are_allowed_by_the_sdk_type(model: str, field: str) -> None:
    allowed = caps(model).allowed_values(field)
    if allowed is not None:
        assert set(allowed) <= literal_values(SDK_HINTS[field])
        assert len(set(allowed)) == len(allowed)


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_fixed_sizes_are_sizes_the_sdk_lists(model: str) -> None:
    assert set(caps(model).sizes) <= literal_values(SDK_HINTS["size"]) - {"auto"}


def test_field_left_out_of_a_model_table_is_unrestricted() -> None:
    assert caps("gpt-image-2").allowed_values("background") is None
    assert caps("gpt-image-2").allowed_values("moderation") is None
    assert caps("gpt-image-2").allowed_values("not_a_field") is None


# -- general rules --------------------------------------------------------------------------------------------


def test_general_rules_follow_the_sdk_text() -> None:
    assert "When using `transparent`, set the output format to `png` or `webp`" in sdk_doc("background")
    assert "from 0 (default value) to 3" in sdk_doc("partial_images")
    rules = general_rules()
    assert set(rules.alpha_formats) == {"png", "webp"}
    assert set(rules.compression_formats) == {"jpeg", "webp"}  # image_generate_params: "`webp` or `jpeg`"
    assert rules.gif_frame_count == (2, 16)  # image_generate_params: "Accepts integers from 2 through 16"
    assert rules.gif_frame_duration_ms == (10, 655350)  # "rounds to the nearest 10 ms and caps ... at 655,350"


def test_general_rule_formats_are_sdk_output_formats() -> None:
    formats = literal_values(SDK_HINTS["output_format"])
    assert set(general_rules().alpha_formats) <= formats
    assert set(general_rules().compression_formats) <= formats


# -- descriptions shown to callers ----------------------------------------------------------------------------


def test_describe_sizes_of_a_fixed_size_model_lists_sizes_and_auto_only() -> None:
    text = caps("gpt-image-2.6-sunburst").describe_sizes()
    for size in (*STANDARD_SIZES, "auto"):
        assert size in text
    assert "divisible" not in text


def test_describe_sizes_of_a_custom_size_model_states_the_limits() -> None:
    text = caps("gpt-image-2").describe_sizes()
    for part in (*STANDARD_SIZES, "auto", "divisible by 16", "1:3", "3:1", "3840x2160", "either orientation"):
        assert part in text


def test_describe_sizes_leaves_out_auto_when_a_model_has_no_automatic_size() -> None:
    text = ModelCapabilities(name="fixed", sizes=("1024x1024",), auto_size=False).describe_sizes()
    assert text == "1024x1024"
