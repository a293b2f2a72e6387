"""``ImageOptions``: validation against the capability table, the error a caller gets for each broken rule, and
the translation to and from the SDK's ``image_generation`` tool parameter.

Every rejection is checked for the field it names and for an ``allowed`` text that tells what to use instead,
because that text is what an agent reads before calling the tool again.
"""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses.tool_param import ImageGenerationInputImageMask
from pydantic import ValidationError

from imagegen_tool.capabilities import capabilities_for, default_image_model, known_models
from imagegen_tool.errors import InvalidInputError, InvalidOptionsError
from imagegen_tool.options import TRUSTED_CONTEXT, ImageMask, ImageOptions, SvgOptions, parse_size
from tests.fixtures.sdk_models import (
    GPT_IMAGE_2,
    GPT_IMAGE_2_5,
    GPT_IMAGE_2_6,
    SDK_HINTS,
    SDK_OLDER_THAN_TABLE,
    STANDARD_SIZES,
    literal_values,
    sdk_typed_dict,
)

# Added to the SDK with SVG output (None with an older SDK: the lowest-versions run).
ImageGenerationSvg = sdk_typed_dict("ImageGenerationSvg")
ImageGenerationSvgReasoning = sdk_typed_dict("ImageGenerationSvgReasoning")

GPT_IMAGE_1_5 = ("gpt-image-1.5", "gpt-image-1.5-2025-12-16", "chatgpt-image-latest")
CUSTOM_SIZE_MODELS = (*GPT_IMAGE_2, *GPT_IMAGE_2_5, *GPT_IMAGE_2_6)
FIXED_SIZE_MODELS = ("gpt-image-1-mini", *GPT_IMAGE_1_5)
CURRENT_MODELS = ("gpt-image-1-mini", *GPT_IMAGE_1_5, *GPT_IMAGE_2, *GPT_IMAGE_2_5, *GPT_IMAGE_2_6)
UNKNOWN_MODEL = "gpt-image-9"
# A model that accepts every output format, so cross-field rules can be tested in isolation.
ALL_FORMATS_MODEL = "gpt-image-2.6-sunburst"

MASK = {"file_id": "file-mask"}


def rejected(**options: Any) -> InvalidOptionsError:
    """The error ``ImageOptions(**options)`` raises; fails the test if it raises nothing or something else."""
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions(**options)
    assert not isinstance(info.value, ValidationError | ValueError)
    return info.value


def outcome(**options: Any) -> ImageOptions | InvalidOptionsError:
    """The options, or the InvalidOptionsError they raise (any other exception propagates and fails the test)."""
    try:
        return ImageOptions(**options)
    except InvalidOptionsError as error:
        return error


def sdk_accepts_custom_size(width: int, height: int) -> bool:
    """The rule for arbitrary sizes: the SDK's "Width and height must both be divisible by 16 and the requested
    aspect ratio must be between 1:3 and 3:1" plus the documented pixel and edge limits (third-party evidence in
    models.toml): 655,360 to 8,294,400 pixels, edges up to 3840 px."""
    long_edge, short_edge = max(width, height), min(width, height)
    return (
        width % 16 == 0
        and height % 16 == 0
        and long_edge <= 3 * short_edge
        and long_edge <= 3840
        and 655_360 <= width * height <= 8_294_400
    )


# -- the model table is the source of the data the tests rely on ---------------------------------------------


def test_test_model_groups_cover_every_current_model() -> None:
    current = {m for m in known_models() if not capabilities_for(m).retired}  # type: ignore[union-attr]
    current -= {"gpt-image-1.5-2025-12-16"} - set(CURRENT_MODELS)
    assert set(CURRENT_MODELS) == current
    assert capabilities_for(UNKNOWN_MODEL) is None


# -- per-model allowed values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [*GPT_IMAGE_2_5, *GPT_IMAGE_2_6])
@pytest.mark.parametrize("quality", ["xhigh", "max"])
def test_xhigh_and_max_quality_accepted_on_gpt_image_2_5(model: str, quality: str) -> None:
    assert ImageOptions(model=model, quality=quality).quality == quality


@pytest.mark.parametrize("model", ["gpt-image-1-mini", *GPT_IMAGE_1_5, *GPT_IMAGE_2])
@pytest.mark.parametrize("quality", ["xhigh", "max"])
def test_xhigh_and_max_quality_rejected_elsewhere(model: str, quality: str) -> None:
    error = rejected(model=model, quality=quality)
    assert error.field == "quality"
    assert error.value == quality
    assert error.allowed == "low, medium, high, auto"


def test_unset_model_is_checked_as_the_default_model() -> None:
    assert default_image_model() == "gpt-image-2.6-sunburst"
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions.build({"input_fidelity": "high"}, validation="strict")
    assert info.value.field == "input_fidelity"
    assert "gpt-image-2.6-sunburst" in str(info.value)


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_standard_qualities_accepted_on_every_current_model(model: str) -> None:
    for quality in ("low", "medium", "high", "auto"):
        assert ImageOptions(model=model, quality=quality).quality == quality


@pytest.mark.parametrize("model", GPT_IMAGE_2)
@pytest.mark.parametrize("fidelity", ["high", "low"])
def test_input_fidelity_must_be_omitted_on_gpt_image_2_and_later(model: str, fidelity: str) -> None:
    error = rejected(model=model, input_fidelity=fidelity)
    assert error.field == "input_fidelity"
    assert error.value == fidelity
    assert error.allowed == f"omit input_fidelity for {model}"
    assert ImageOptions(model=model).input_fidelity is None


def test_gpt_image_1_mini_takes_only_low_input_fidelity() -> None:
    assert ImageOptions(model="gpt-image-1-mini", input_fidelity="low").input_fidelity == "low"
    error = rejected(model="gpt-image-1-mini", input_fidelity="high")
    assert error.field == "input_fidelity"
    assert error.allowed == "low"


@pytest.mark.parametrize("model", GPT_IMAGE_1_5)
@pytest.mark.parametrize("fidelity", ["high", "low"])
def test_gpt_image_1_5_takes_high_and_low_input_fidelity(model: str, fidelity: str) -> None:
    assert ImageOptions(model=model, input_fidelity=fidelity).input_fidelity == fidelity


@pytest.mark.parametrize("model", GPT_IMAGE_2_6)
@pytest.mark.parametrize("fmt", ["gif", "svg"])
def test_gif_and_svg_output_accepted_where_the_table_allows(model: str, fmt: str) -> None:
    assert ImageOptions(model=model, output_format=fmt).output_format == fmt


@pytest.mark.parametrize("model", ["gpt-image-1-mini", *GPT_IMAGE_1_5, *GPT_IMAGE_2, *GPT_IMAGE_2_5])
@pytest.mark.parametrize("fmt", ["gif", "svg"])
def test_gif_and_svg_output_rejected_where_the_table_does_not_allow(model: str, fmt: str) -> None:
    error = rejected(model=model, output_format=fmt)
    assert error.field == "output_format"
    assert error.value == fmt
    assert error.allowed == "png, webp, jpeg"


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_raster_formats_accepted_on_every_current_model(model: str) -> None:
    for fmt in ("png", "webp", "jpeg"):
        assert ImageOptions(model=model, output_format=fmt).output_format == fmt


def test_retired_gpt_image_1_is_rejected_with_its_replacements() -> None:
    error = rejected(model="gpt-image-1")
    assert error.field == "model"
    assert error.value == "gpt-image-1"
    assert "gpt-image-2.5-sunburst" in error.allowed
    assert "gpt-image-2.5-sunburst" in error.agent_message
    assert "gpt-image-2.5-flare" in error.agent_message


# -- sizes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_standard_sizes_and_auto_accepted_on_every_current_model(model: str) -> None:
    for size in (*STANDARD_SIZES, "auto"):
        assert ImageOptions(model=model, size=size).size == size


@pytest.mark.parametrize("model", FIXED_SIZE_MODELS)
def test_fixed_size_model_rejects_custom_sizes_and_lists_its_sizes(model: str) -> None:
    error = rejected(model=model, size="1536x864")
    assert error.field == "size"
    assert error.value == "1536x864"
    assert error.allowed == "1024x1024, 1536x1024, 1024x1536, auto"


@pytest.mark.parametrize("model", CUSTOM_SIZE_MODELS)
@pytest.mark.parametrize(
    "size",
    ["1536x864", "3840x2160", "2160x3840", "3072x1024", "1024x3072", "2160x2160", "2880x2880", "2176x2176", "1024x640"],
)
def test_custom_size_model_accepts_sizes_within_the_limits(model: str, size: str) -> None:
    assert ImageOptions(model=model, size=size).size == size


@pytest.mark.parametrize("model", CUSTOM_SIZE_MODELS)
@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ("1540x864", "divisible by 16"),
        ("1536x872", "divisible by 16"),
        ("3088x1024", "aspect ratio"),  # 3.016:1
        ("1024x3088", "aspect ratio"),
        ("3856x2160", "maximum 3840 px"),  # too long
        ("3840x2176", "maximum 8,294,400"),  # over the pixel budget
        ("2176x3840", "maximum 8,294,400"),  # the same, portrait
        ("2896x2896", "maximum 8,294,400"),
        ("4096x2048", "maximum 3840 px"),
        ("16x16", "minimum 655,360"),
        ("1024x624", "minimum 655,360"),
    ],
)
def test_custom_size_model_rejects_sizes_outside_the_limits(model: str, size: str, reason: str) -> None:
    error = rejected(model=model, size=size)
    assert error.field == "size"
    assert error.value == size
    assert reason in (error.reason or "")
    for part in ("1024x1024", "auto", "divisible by 16", "1:3", "3:1", "3840", "655,360", "8,294,400"):
        assert part in error.allowed


MALFORMED_SIZES = [
    "",
    "big",
    "AUTO",
    "1024",
    "1024x",
    "x1024",
    "1024*1024",
    "1024X1024",
    "1024x1024x1",
    " 1024x1024",
    "1024x1024 ",
    "1024 x 1024",
    "-16x16",
    "0x16",
    "16x0",
    "01024x1024",
    "1.5x16",
    "１０２４x１０２４",  # full-width digits
]


@pytest.mark.parametrize("size", MALFORMED_SIZES)
def test_malformed_size_rejected_for_every_model(size: str) -> None:
    for model in (*CUSTOM_SIZE_MODELS, *FIXED_SIZE_MODELS, UNKNOWN_MODEL, None):
        error = rejected(model=model, size=size)
        assert error.field == "size"
        assert error.value == size
        assert "WIDTHxHEIGHT" in error.allowed
        assert "auto" in error.allowed


@pytest.mark.parametrize("model", ["gpt-image-2", UNKNOWN_MODEL])
def test_size_with_trailing_newline_rejected(model: str) -> None:
    error = rejected(model=model, size="1536x864\n")
    assert error.field == "size"


def test_parse_size_rejects_trailing_newline() -> None:
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("1024x1024\n")


dimension = st.integers(1, 4500) | st.integers(1, 280).map(lambda k: k * 16)


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(CUSTOM_SIZE_MODELS), width=dimension, height=dimension)
def test_custom_size_accepted_iff_the_sdk_rule_holds(model: str, width: int, height: int) -> None:
    size = f"{width}x{height}"
    result = outcome(model=model, size=size)
    if isinstance(result, InvalidOptionsError):
        assert result.field == "size"
    accepted = isinstance(result, ImageOptions)
    assert accepted is sdk_accepts_custom_size(width, height), f"{size}: accepted={accepted}"


@settings(max_examples=100, deadline=None)
@given(model=st.sampled_from(FIXED_SIZE_MODELS), width=dimension, height=dimension)
def test_fixed_size_model_accepts_exactly_the_standard_sizes(model: str, width: int, height: int) -> None:
    size = f"{width}x{height}"
    result = outcome(model=model, size=size)
    if isinstance(result, InvalidOptionsError):
        assert result.field == "size"
    assert isinstance(result, ImageOptions) is (size in STANDARD_SIZES)


size_like_junk = (
    st.text(max_size=20)
    | st.from_regex(r"[0-9x X*+.\-]{0,16}", fullmatch=True)
    | st.tuples(st.integers(-5000, 10**8), st.sampled_from("xX*,: "), st.integers(-5000, 10**8)).map(
        lambda t: f"{t[0]}{t[1]}{t[2]}"
    )
)


@settings(max_examples=120, deadline=None)
@given(model=st.sampled_from([*CURRENT_MODELS, UNKNOWN_MODEL, None]), size=size_like_junk)
def test_any_size_string_is_accepted_or_rejected_with_invalid_options_error(model: str | None, size: str) -> None:
    result = outcome(model=model, size=size)
    if isinstance(result, InvalidOptionsError):
        assert result.field == "size"
        assert result.value == size
    else:
        assert result.size == size
        assert size == "auto" or re.match(r"[1-9][0-9]*x[1-9][0-9]*", size)
        # None means the default model (gpt-image-2.6-sunburst), which takes custom sizes since table v2.
        if model in FIXED_SIZE_MODELS:
            assert size in (*STANDARD_SIZES, "auto")


@settings(max_examples=100, deadline=None)
@given(width=st.integers(1, 999_999), height=st.integers(1, 999_999))
def test_parse_size_round_trips(width: int, height: int) -> None:
    assert parse_size(f"{width}x{height}") == (width, height)


def test_parse_size_of_auto_is_none() -> None:
    assert parse_size("auto") is None


@settings(max_examples=100, deadline=None)
@given(size=size_like_junk)
def test_parse_size_returns_a_pair_or_raises_value_error(size: str) -> None:
    try:
        parsed = parse_size(size)
    except ValueError as error:
        message = str(error)
    else:
        message = ""
        if parsed is None:
            assert size == "auto"
        else:
            width, height = parsed
            assert width > 0
            assert height > 0
            # rstrip: a trailing newline is accepted today, see test_parse_size_rejects_trailing_newline.
            assert size.rstrip("\n") == f"{width}x{height}"
    assert message == "" or "WIDTHxHEIGHT" in message


@pytest.mark.parametrize("size", ["9999x16", "16x9999", "10x10", "999999x999999", "1024x1024", "auto"])
def test_unknown_model_accepts_any_well_formed_size(size: str) -> None:
    assert ImageOptions(model=UNKNOWN_MODEL, size=size).size == size


# -- cross-field rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "png", "webp"])
def test_transparent_background_with_an_alpha_format(fmt: str | None) -> None:
    # Unset output_format means png, which has alpha.
    options = ImageOptions(model=ALL_FORMATS_MODEL, background="transparent", output_format=fmt)
    assert options.background == "transparent"
    assert options.effective_output_format == (fmt or "png")


@pytest.mark.parametrize("fmt", ["jpeg", "gif", "svg"])
def test_transparent_background_without_an_alpha_format(fmt: str) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, background="transparent", output_format=fmt)
    assert error.field == "background"
    assert error.value == "transparent"
    assert "opaque" in error.allowed
    assert "png" in (error.reason or "")
    assert "webp" in (error.reason or "")


@pytest.mark.parametrize("background", ["opaque", "auto"])
@pytest.mark.parametrize("fmt", ["jpeg", "gif", "svg"])
def test_opaque_and_auto_backgrounds_with_any_format(background: str, fmt: str) -> None:
    ImageOptions(model=ALL_FORMATS_MODEL, background=background, output_format=fmt)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
@pytest.mark.parametrize("compression", [0, 50, 100])
def test_output_compression_with_jpeg_and_webp(fmt: str, compression: int) -> None:
    options = ImageOptions(output_format=fmt, output_compression=compression)
    assert options.output_compression == compression


@pytest.mark.parametrize("fmt", [None, "png", "gif", "svg"])
def test_output_compression_with_other_formats(fmt: str | None) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format=fmt, output_compression=80)
    assert error.field == "output_compression"
    assert error.value == 80
    assert "jpeg" in error.allowed
    assert "webp" in error.allowed
    assert "omit" in error.allowed


@pytest.mark.parametrize("fmt", ["gif", "svg"])
@pytest.mark.parametrize("partial", [1, 3])
def test_gif_and_svg_forbid_partial_images(fmt: str, partial: int) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format=fmt, partial_images=partial)
    assert error.field == "partial_images"
    assert error.value == partial
    assert error.allowed == f"0 with {fmt} output"


@pytest.mark.parametrize("fmt", ["gif", "svg"])
def test_gif_and_svg_accept_zero_partial_images(fmt: str) -> None:
    assert ImageOptions(model=ALL_FORMATS_MODEL, output_format=fmt, partial_images=0).partial_images == 0


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_raster_formats_stream_up_to_three_partial_images(fmt: str) -> None:
    ImageOptions(output_format=fmt, partial_images=3)


def test_gif_forbids_a_mask() -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format="gif", mask=MASK)
    assert error.field == "mask"
    assert "no mask" in error.allowed
    assert "file-mask" not in str(error)


@pytest.mark.parametrize("fmt", [None, "png", "webp", "jpeg", "svg"])
def test_mask_with_other_formats(fmt: str | None) -> None:
    assert ImageOptions(model=ALL_FORMATS_MODEL, output_format=fmt, mask=MASK).mask == ImageMask(**MASK)


@pytest.mark.parametrize("count", [2, 9, 16])
def test_frame_count_in_range_with_gif(count: int) -> None:
    assert ImageOptions(model=ALL_FORMATS_MODEL, output_format="gif", frame_count=count).frame_count == count


@pytest.mark.parametrize("count", [1, 17, 100])
def test_frame_count_out_of_range_with_gif(count: int) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format="gif", frame_count=count)
    assert error.field == "frame_count"
    assert error.value == count
    assert error.allowed == "an integer from 2 to 16"


@pytest.mark.parametrize("duration", [10, 200, 655350])
def test_frame_duration_in_range_with_gif(duration: int) -> None:
    options = ImageOptions(model=ALL_FORMATS_MODEL, output_format="gif", frame_duration_ms=duration)
    assert options.frame_duration_ms == duration


@pytest.mark.parametrize("duration", [1, 9, 655351])
def test_frame_duration_out_of_range_with_gif(duration: int) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format="gif", frame_duration_ms=duration)
    assert error.field == "frame_duration_ms"
    assert error.value == duration
    assert error.allowed == "an integer from 10 to 655350"


@pytest.mark.parametrize("field", ["frame_count", "frame_duration_ms"])
@pytest.mark.parametrize("fmt", [None, "png", "jpeg", "svg"])
def test_gif_settings_need_gif_output(field: str, fmt: str | None) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format=fmt, **{field: 20})
    assert error.field == field
    assert error.value == 20
    assert "output_format='gif'" in error.allowed


@pytest.mark.parametrize("fmt", [None, "png", "gif"])
def test_svg_settings_need_svg_output(fmt: str | None) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format=fmt, svg={"model": "gpt-5"})
    assert error.field == "svg"
    assert error.value == {"model": "gpt-5"}
    assert "output_format='svg'" in error.allowed


def test_svg_settings_with_svg_output() -> None:
    options = ImageOptions(output_format="svg", svg={"model": "gpt-5", "reasoning_effort": "high"})
    assert options.svg == SvgOptions(model="gpt-5", reasoning_effort="high")


@pytest.mark.parametrize(
    "options",
    [
        {"quality": "max", "size": "16x16", "output_format": "png"},
        {"background": "transparent", "output_format": "jpeg", "output_compression": 5},
        {"output_format": "gif", "partial_images": 3, "mask": MASK, "frame_count": 16},
        {"frame_duration_ms": 100, "svg": {"model": "gpt-5"}},
    ],
)
def test_unknown_model_skips_capability_and_cross_field_checks(options: dict[str, Any]) -> None:
    ImageOptions(model=UNKNOWN_MODEL, **options)
    with pytest.raises(InvalidOptionsError):
        ImageOptions(model=ALL_FORMATS_MODEL, **options)


# -- type errors become InvalidOptionsError -------------------------------------------------------------------


LITERAL_FIELDS = ("action", "background", "quality", "output_format", "moderation", "complexity", "input_fidelity")


@pytest.mark.parametrize("model", [None, ALL_FORMATS_MODEL, UNKNOWN_MODEL])
@pytest.mark.parametrize("field", LITERAL_FIELDS)
def test_bad_literal_names_the_field_and_lists_the_allowed_values(model: str | None, field: str) -> None:
    error = rejected(model=model, **{field: "ultra"})
    assert error.field == field
    assert error.value == "ultra"
    expected = literal_values(ImageOptions.model_fields[field].annotation)
    assert set(re.findall(r"'([^']*)'", error.allowed)) == expected


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("output_compression", -1, "an integer from 0 to 100"),
        ("output_compression", 101, "an integer from 0 to 100"),
        ("partial_images", -1, "an integer from 0 to 3"),
        ("partial_images", 4, "an integer from 0 to 3"),
    ],
)
def test_out_of_range_integer_names_the_field_and_the_range(field: str, value: int, allowed: str) -> None:
    for model in (None, UNKNOWN_MODEL):
        error = rejected(model=model, output_format="webp", **{field: value})
        assert error.field == field
        assert error.value == value
        assert error.allowed == allowed


@pytest.mark.parametrize(("field", "low", "high"), [("frame_count", 2, 16), ("frame_duration_ms", 10, 655350)])
def test_zero_gif_setting_reports_the_real_range(field: str, low: int, high: int) -> None:
    error = rejected(model=ALL_FORMATS_MODEL, output_format="gif", **{field: 0})
    assert error.field == field
    assert str(low) in error.allowed
    assert str(high) in error.allowed


@pytest.mark.parametrize(
    ("field", "value"),
    [("output_compression", "strong"), ("partial_images", 1.5), ("model", 5), ("size", 1024)],
)
def test_wrong_type_names_the_field(field: str, value: Any) -> None:
    error = rejected(**{field: value})
    assert error.field == field
    assert error.value == value
    assert error.allowed


def test_unknown_option_names_it_and_lists_the_real_fields() -> None:
    error = rejected(qualty="high")
    assert error.field == "qualty"
    assert error.value == "high"
    assert error.reason == "unknown option"
    for field in ImageOptions.model_fields:
        assert field in error.allowed


@pytest.mark.parametrize(
    ("options", "field", "allowed_fields"),
    [
        ({"output_format": "svg", "svg": {"model": "gpt-5", "effort": "high"}}, "svg.effort", {"reasoning_effort"}),
        ({"mask": {"file_id": "f", "url": "u"}}, "mask.url", {"image_url"}),
    ],
)
def test_unknown_nested_option_lists_the_nested_fields(
    options: dict[str, Any], field: str, allowed_fields: set[str]
) -> None:
    error = rejected(**options)
    assert error.field == field
    assert all(name in error.allowed for name in allowed_fields)
    assert "frame_count" not in error.allowed


def test_bad_svg_reasoning_effort_names_the_nested_field() -> None:
    error = rejected(output_format="svg", svg={"model": "gpt-5", "reasoning_effort": "extreme"})
    assert error.field == "svg.reasoning_effort"
    assert "'minimal'" in error.allowed
    assert "'max'" in error.allowed


def test_non_mapping_input_is_an_invalid_options_error() -> None:
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions.model_validate(["quality", "high"])
    assert info.value.field == "options"


def test_mask_needs_exactly_one_source() -> None:
    with pytest.raises(InvalidInputError, match="exactly one"):
        ImageOptions(mask={"file_id": "f", "image_url": "data:image/png;base64,AAAA"})
    with pytest.raises(InvalidInputError, match="exactly one"):
        ImageOptions(mask={})


def test_options_are_frozen() -> None:
    options = ImageOptions(quality="low")
    with pytest.raises(ValidationError):
        options.quality = "high"  # type: ignore[misc]


# -- the SDK tool parameter -----------------------------------------------------------------------------------


def test_empty_options_give_the_bare_tool() -> None:
    assert ImageOptions().to_tool_param() == {"type": "image_generation"}


def test_tool_param_carries_every_set_field_under_the_sdk_names() -> None:
    options = ImageOptions(
        model="gpt-image-2.5-flare",
        action="edit",
        size="1536x864",
        quality="xhigh",
        background="opaque",
        output_format="webp",
        output_compression=80,
        moderation="low",
        partial_images=2,
        complexity="high",
        mask=ImageMask(image_url="data:image/png;base64,AAAA"),
    )
    assert options.to_tool_param() == {
        "type": "image_generation",
        "model": "gpt-image-2.5-flare",
        "action": "edit",
        "size": "1536x864",
        "quality": "xhigh",
        "background": "opaque",
        "output_format": "webp",
        "output_compression": 80,
        "moderation": "low",
        "partial_images": 2,
        "complexity": "high",
        "input_image_mask": {"image_url": "data:image/png;base64,AAAA"},
    }


def test_tool_param_of_gif_options() -> None:
    options = ImageOptions(output_format="gif", frame_count=4, frame_duration_ms=120)
    assert options.to_tool_param() == {
        "type": "image_generation",
        "output_format": "gif",
        "frame_count": 4,
        "frame_duration_ms": 120,
    }


def test_tool_param_of_input_fidelity() -> None:
    param = ImageOptions(model="gpt-image-1.5", input_fidelity="high").to_tool_param()
    assert param == {"type": "image_generation", "model": "gpt-image-1.5", "input_fidelity": "high"}


@pytest.mark.parametrize(
    ("svg", "expected"),
    [
        (SvgOptions(model="gpt-5", reasoning_effort="low"), {"model": "gpt-5", "reasoning": {"effort": "low"}}),
        (SvgOptions(model="gpt-5"), {"model": "gpt-5"}),
        (SvgOptions(reasoning_effort="none"), {"reasoning": {"effort": "none"}}),
        (SvgOptions(), {}),
    ],
)
def test_svg_settings_take_the_sdk_nested_shape(svg: SvgOptions, expected: dict[str, Any]) -> None:
    param = ImageOptions(output_format="svg", svg=svg).to_tool_param()
    assert param["svg"] == expected
    if ImageGenerationSvg is None:
        return  # an SDK without SVG types: the shape is pinned when the newest SDK is installed
    assert set(param["svg"]) <= set(typing.get_type_hints(ImageGenerationSvg))
    if "reasoning" in expected:
        assert set(param["svg"]["reasoning"]) <= set(typing.get_type_hints(ImageGenerationSvgReasoning))


def test_mask_takes_the_sdk_shape() -> None:
    param = ImageOptions(mask=ImageMask(file_id="file-1")).to_tool_param()
    assert param["input_image_mask"] == {"file_id": "file-1"}
    assert "mask" not in param


def test_from_tool_param_reads_the_wire_shape() -> None:
    options = ImageOptions.from_tool_param(
        {
            "type": "image_generation",
            "model": "gpt-image-2.6-sunburst",
            "output_format": "svg",
            "svg": {"model": "gpt-5", "reasoning": {"effort": "high"}},
            "input_image_mask": {"file_id": "file-1"},
        }
    )
    assert options == ImageOptions(
        model="gpt-image-2.6-sunburst",
        output_format="svg",
        svg=SvgOptions(model="gpt-5", reasoning_effort="high"),
        mask=ImageMask(file_id="file-1"),
    )


def test_from_tool_param_accepts_null_svg_reasoning_and_a_missing_type() -> None:
    options = ImageOptions.from_tool_param({"output_format": "svg", "svg": {"model": "gpt-5", "reasoning": None}})
    assert options.svg == SvgOptions(model="gpt-5")


def test_from_tool_param_rejects_another_tool() -> None:
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions.from_tool_param({"type": "web_search"})
    assert info.value.field == "type"
    assert "image_generation" in info.value.allowed


def test_from_tool_param_rejects_unknown_keys() -> None:
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions.from_tool_param({"type": "image_generation", "n": 2})
    assert info.value.field == "n"


def test_from_tool_param_validates_against_the_table() -> None:
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions.from_tool_param({"type": "image_generation", "model": "gpt-image-2", "input_fidelity": "high"})
    assert info.value.field == "input_fidelity"


def _optional(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | value


@st.composite
def valid_options(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of a valid ``ImageOptions``, built per model from the SDK's types and the table."""
    model = draw(st.sampled_from([*CURRENT_MODELS, UNKNOWN_MODEL, None]))
    caps = capabilities_for(model or default_image_model())

    def allowed(field: str) -> list[Any]:
        table = caps.allowed_values(field) if caps else None
        if table is not None:
            return sorted(table)
        # ImageOptions' literals where an older SDK lacks the field (they equal the newest SDK's, pinned below)
        return sorted(literal_values(SDK_HINTS.get(field, ImageOptions.model_fields[field].annotation)))

    fmt = draw(_optional(st.sampled_from(allowed("output_format"))))
    effective = fmt or "png"
    sizes = [*STANDARD_SIZES, "auto"]
    if caps is None or caps.custom_size is not None:
        sizes += ["1536x864", "3840x2160", "2160x3840", "1024x3072"]
    if caps is None:
        sizes += ["9999x16"]
    if effective == "gif":  # sizes are per frame and share one sprite sheet
        sizes = ["auto", "512x512", "720x720"]
    fields: dict[str, Any] = {
        "model": model,
        "output_format": fmt,
        "action": draw(_optional(st.sampled_from(allowed("action")))),
        "quality": draw(_optional(st.sampled_from(allowed("quality")))),
        "moderation": draw(_optional(st.sampled_from(allowed("moderation")))),
        "complexity": draw(_optional(st.sampled_from(allowed("complexity")))),
        "size": draw(_optional(st.sampled_from(sizes))),
        "background": draw(
            _optional(st.sampled_from(allowed("background") if effective in ("png", "webp") else ["opaque", "auto"]))
        ),
    }
    if allowed("input_fidelity"):
        fields["input_fidelity"] = draw(_optional(st.sampled_from(allowed("input_fidelity"))))
    if effective in ("jpeg", "webp"):
        fields["output_compression"] = draw(_optional(st.integers(0, 100)))
    fields["partial_images"] = draw(_optional(st.integers(0, 0 if effective in ("gif", "svg") else 3)))
    if effective == "gif":
        fields["frame_count"] = draw(_optional(st.integers(2, 16)))
        fields["frame_duration_ms"] = draw(_optional(st.integers(10, 655350)))
    else:
        fields["mask"] = draw(_optional(st.sampled_from([ImageMask(file_id="file-m"), ImageMask(image_url="u")])))
    if effective == "svg":
        fields["svg"] = draw(
            _optional(
                st.builds(
                    SvgOptions,
                    model=_optional(st.sampled_from(["gpt-5", "gpt-5-mini"])),
                    reasoning_effort=_optional(
                        st.sampled_from(sorted(literal_values(SvgOptions.model_fields["reasoning_effort"].annotation)))
                    ),
                )
            )
        )
    return {name: value for name, value in fields.items() if value is not None}


@settings(max_examples=80, deadline=None)
@given(fields=valid_options())
def test_tool_param_has_the_sdk_shape_and_round_trips(fields: dict[str, Any]) -> None:
    options = ImageOptions(**fields)
    param = options.to_tool_param()

    unknown = set(param) - set(SDK_HINTS)
    # An SDK older than the table's lacks keys newer releases added (complexity, frame_count, svg); they are
    # ImageOptions fields, which the newest SDK's types pin in the main suite.
    assert not unknown or (SDK_OLDER_THAN_TABLE and unknown <= set(ImageOptions.model_fields)), (
        f"keys the SDK does not know: {unknown}"
    )
    assert param["type"] == "image_generation"
    wire_names = {"mask": "input_image_mask"}
    assert set(param) - {"type"} == {wire_names.get(name, name) for name in fields}
    for name in set(param) & set(LITERAL_FIELDS):
        known = literal_values(SDK_HINTS[name]) if name in SDK_HINTS else set()
        assert param[name] in known or SDK_OLDER_THAN_TABLE, (name, param[name])
    if "input_image_mask" in param:
        assert set(param["input_image_mask"]) <= set(typing.get_type_hints(ImageGenerationInputImageMask))

    assert ImageOptions.from_tool_param(param) == options


# -- parity with the SDK types --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", LITERAL_FIELDS)
def test_literal_values_match_the_sdk(field: str) -> None:
    ours = literal_values(ImageOptions.model_fields[field].annotation)
    assert ours
    sdk = literal_values(SDK_HINTS[field]) if field in SDK_HINTS else set()
    if SDK_OLDER_THAN_TABLE:
        assert sdk <= ours, f"openai's {field} values we do not know: {sdk - ours}"  # ours adds newer values
    else:
        assert ours == sdk


def test_svg_reasoning_effort_values_match_the_sdk() -> None:
    ours = literal_values(SvgOptions.model_fields["reasoning_effort"].annotation)
    if ImageGenerationSvgReasoning is None:
        assert SDK_OLDER_THAN_TABLE and ours
        return
    assert ours == literal_values(typing.get_type_hints(ImageGenerationSvgReasoning)["effort"])


def test_every_sdk_key_has_an_option_and_back() -> None:
    wire_names = {"mask": "input_image_mask"}
    # n (images per call) belongs to the Images API route only; the Responses tool has no such key.
    ours = {wire_names.get(name, name) for name in ImageOptions.model_fields} - {"n"}
    sdk = set(SDK_HINTS) - {"type"}
    if SDK_OLDER_THAN_TABLE:  # an older SDK lacks keys newer releases added (they still reach the wire)
        assert sdk <= ours, f"openai's tool keys we do not know: {sdk - ours}"
    else:
        assert ours == sdk


def test_mask_fields_match_the_sdk() -> None:
    assert set(ImageMask.model_fields) == set(typing.get_type_hints(ImageGenerationInputImageMask))


# -- merge ----------------------------------------------------------------------------------------------------


def test_merge_applies_changes_and_leaves_the_original() -> None:
    base = ImageOptions(quality="low", output_format="webp")
    merged = base.merge(quality="high", output_compression=70)
    assert merged == ImageOptions(quality="high", output_format="webp", output_compression=70)
    assert base == ImageOptions(quality="low", output_format="webp")


def test_merge_with_other_options_overrides_only_their_set_fields() -> None:
    base = ImageOptions(quality="low", size="1024x1536")
    merged = base.merge(ImageOptions(quality="high"))
    assert merged == ImageOptions(quality="high", size="1024x1536")


def test_merge_with_a_mapping_then_keyword_changes_on_top() -> None:
    base = ImageOptions(quality="low")
    merged = base.merge({"quality": "medium", "moderation": "low"}, quality="high")
    assert merged == ImageOptions(quality="high", moderation="low")


def test_merge_none_does_not_unset() -> None:
    base = ImageOptions(quality="low", output_format="jpeg", output_compression=50)
    assert base.merge(quality=None, output_compression=None) == base
    assert base.merge({"quality": None}) == base
    assert base.merge() == base


@pytest.mark.parametrize(
    ("base", "changes", "field"),
    [
        ({"background": "transparent"}, {"output_format": "jpeg"}, "background"),
        ({"output_format": "jpeg", "output_compression": 50}, {"output_format": "png"}, "output_compression"),
        ({"model": "gpt-image-1.5", "input_fidelity": "high"}, {"model": "gpt-image-2"}, "input_fidelity"),
        ({"model": "gpt-image-2", "size": "1536x864"}, {"model": "gpt-image-1.5"}, "size"),
        ({"output_format": "gif", "size": "512x512"}, {"size": "1024x1024"}, "size"),
        ({"output_format": "gif", "frame_count": 4}, {"output_format": "png"}, "frame_count"),
        ({"quality": "low"}, {"quality": "ultra"}, "quality"),
        ({"quality": "low"}, {"qualty": "high"}, "qualty"),
    ],
)
def test_merge_revalidates_the_combination(base: dict[str, Any], changes: dict[str, Any], field: str) -> None:
    options = ImageOptions(**base)
    with pytest.raises(InvalidOptionsError) as info:
        options.merge(**changes)
    assert info.value.field == field
    with pytest.raises(InvalidOptionsError) as info:
        options.merge(changes)
    assert info.value.field == field


# -- trusted context ------------------------------------------------------------------------------------------


def test_trusted_context_skips_the_capability_table() -> None:
    data = {"model": "gpt-image-1", "quality": "max", "background": "transparent", "output_format": "jpeg"}
    options = ImageOptions.model_validate(data, context={TRUSTED_CONTEXT: True})
    assert options.model == "gpt-image-1"
    assert options.to_tool_param() == {"type": "image_generation", **data}
    with pytest.raises(InvalidOptionsError):
        ImageOptions.model_validate(data)
    with pytest.raises(InvalidOptionsError):
        ImageOptions.model_validate(data, context={TRUSTED_CONTEXT: False})


def test_trusted_context_still_checks_types() -> None:
    with pytest.raises(InvalidOptionsError) as info:
        ImageOptions.model_validate({"model": "gpt-image-1", "quality": "ultra"}, context={TRUSTED_CONTEXT: True})
    assert info.value.field == "quality"


# -- effective values -----------------------------------------------------------------------------------------


def test_effective_model_and_format_fall_back_to_the_api_defaults() -> None:
    assert ImageOptions().effective_model == "gpt-image-2.6-sunburst"
    assert ImageOptions().effective_output_format == "png"
    options = ImageOptions(model="gpt-image-2", output_format="jpeg")
    assert options.effective_model == "gpt-image-2"
    assert options.effective_output_format == "jpeg"


# -- messages for the agent -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"model": "gpt-image-2", "quality": "max"},
        {"model": "gpt-image-2", "input_fidelity": "high"},
        {"model": "gpt-image-1.5", "output_format": "gif"},
        {"model": "gpt-image-2", "size": "1540x864"},
        {"size": "huge"},
        {"background": "transparent", "output_format": "jpeg"},
        {"output_compression": 50},
        {"output_format": "gif", "partial_images": 2},
        {"frame_count": 4},
        {"quality": "ultra"},
        {"partial_images": 9},
        {"qualty": "high"},
        {"model": "gpt-image-1"},
    ],
)
def test_agent_message_names_the_field_the_allowed_values_and_asks_to_call_again(options: dict[str, Any]) -> None:
    error = rejected(**options)
    message = error.agent_message
    assert error.field in message
    assert error.allowed in message
    assert "again" in message
    assert message != str(error)
    if error.reason:
        assert error.reason in message


def test_agent_message_shortens_long_values() -> None:
    error = rejected(model=UNKNOWN_MODEL, size="9" * 500)
    assert len(error.agent_message) < 400
    assert "..." in error.agent_message


def test_default_compression_is_accepted_with_any_format() -> None:
    # The API echoes output_compression=100 for png tools (recorded responses): sending it back must work.
    for fmt in ("png", "gif", "svg", None):
        assert (
            ImageOptions(model=ALL_FORMATS_MODEL, output_format=fmt, output_compression=100).output_compression == 100
        )
    assert rejected(model=ALL_FORMATS_MODEL, output_format="png", output_compression=99).field == "output_compression"


def test_empty_model_name_is_refused() -> None:
    assert rejected(model="").field == "model"
