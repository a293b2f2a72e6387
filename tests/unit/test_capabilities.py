"""The capability table (``models.toml``): its structure (tests generated from its own rows), its coverage of the
installed SDK, and a hand-written list of the facts issue 15 asked to verify, each checked against its evidence.

Where a test pins a fact that comes from the SDK, it first checks that the SDK still states it in the same words,
so an SDK upgrade that changes a rule fails here and points at the table.
"""

from __future__ import annotations

import datetime
import inspect
import re
import typing

import pytest
from openai.types.image_model import ImageModel
from openai.types.responses.tool_param import ImageGeneration

from imagegen_tool.capabilities import (
    EVIDENCE_KINDS,
    FIELD_VALUES,
    ModelCapabilities,
    all_evidence,
    capabilities_for,
    default_image_model,
    general_rules,
    known_models,
    offered_models,
)
from imagegen_tool.errors import InvalidOptionsError
from imagegen_tool.options import ImageOptions
from tests.fixtures.sdk_models import (
    GPT_IMAGE_2,
    GPT_IMAGE_2_5,
    GPT_IMAGE_2_6,
    INSTALLED_SDK,
    SDK_HINTS,
    SDK_OLDER_THAN_TABLE,
    STANDARD_SIZES,
    TABLE_SDK,
    backed_by_newer_sdk,
    literal_values,
)

TODAY = datetime.date(2026, 11, 25)
SHUTDOWN_DEC_1 = ("gpt-image-1-mini", "gpt-image-1.5", "gpt-image-1.5-2025-12-16", "chatgpt-image-latest")


def _real_today() -> datetime.date:
    """The calendar's date in UTC (``current_date()`` answers with the suite's pinned ``IMAGEGEN_TODAY``)."""
    return datetime.datetime.now(datetime.UTC).date()


def sdk_doc(field: str, owner: type = ImageGeneration) -> str:
    """The docstring of one field of an SDK TypedDict, whitespace collapsed."""
    match = re.search(rf'^    {field}: .*?"""(.*?)"""', inspect.getsource(owner), re.S | re.M)
    assert match is not None, f"the SDK no longer documents {owner.__name__}.{field}"
    return " ".join(match.group(1).split())


def caps(model: str) -> ModelCapabilities:
    found = capabilities_for(model)
    assert found is not None, f"{model} is not in models.toml"
    return found


ALL_MODELS = known_models()
FACT_ROWS = [(name, fact) for name in ALL_MODELS for fact in caps(name).facts]


# -- generated from the table's own rows ----------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(all_evidence()))
def test_every_evidence_entry_has_a_valid_kind_a_source_and_a_date(key: str) -> None:
    item = all_evidence()[key]
    assert item.kind in EVIDENCE_KINDS
    assert item.source.strip() and item.quote.strip()
    assert item.checked <= _real_today()  # not the suite's pinned date: facts are re-checked after it
    if item.kind in ("openai-docs", "third-party") and not item.source.startswith("recorded responses"):
        assert item.source.startswith("https://"), f"{key}: a page needs its URL"
    if item.kind == "openai-docs":
        assert "openai.com" in item.source
    if item.kind == "sdk":
        assert "openai" in item.source and "types/" in item.source


@pytest.mark.parametrize(("model", "fact"), FACT_ROWS, ids=[f"{m}-{f.field}-{f.status}" for m, f in FACT_ROWS])
def test_every_fact_cites_known_evidence_and_sdk_values(model: str, fact: typing.Any) -> None:
    assert fact.evidence, f"{model}.{fact.field}: every fact needs evidence (use an 'unverified' entry)"
    assert set(fact.evidence) <= set(all_evidence())
    domain = literal_values(SDK_HINTS[fact.field]) if fact.field in SDK_HINTS else set()
    if SDK_OLDER_THAN_TABLE and fact.field in ImageOptions.model_fields:
        # An SDK older than the table's lacks literals newer releases added (gif/svg, complexity); those are
        # ImageOptions' own literals, which the suite pins to the newest SDK (test_options.py) when it is installed.
        domain |= literal_values(ImageOptions.model_fields[fact.field].annotation)
    assert set(fact.values) <= domain, f"{model}.{fact.field}: values the SDK type does not allow"


@pytest.mark.parametrize("model", ALL_MODELS)
def test_no_value_has_two_statuses(model: str) -> None:
    seen: dict[tuple[str, str], str] = {}
    for fact in caps(model).facts:
        for value in fact.values:
            assert seen.setdefault((fact.field, value), fact.status) == fact.status, (model, fact.field, value)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_model_carries_model_level_evidence_and_a_consistent_lifecycle(model: str) -> None:
    entry = caps(model)
    assert entry.evidence and set(entry.evidence) <= set(all_evidence())
    if entry.deprecated is not None:
        assert entry.shutdown is not None and entry.deprecated < entry.shutdown
    if entry.shutdown is not None:
        assert entry.replacement, f"{model}: a model with a shutdown date names its replacement"
        for replacement in entry.replacement:
            assert caps(replacement).lifecycle(entry.shutdown) == "active"
    for rule_keys in [entry.custom_sizes_evidence, entry.custom_size.evidence if entry.custom_size else ()]:
        assert set(rule_keys) <= set(all_evidence())


def test_general_rules_cite_known_evidence() -> None:
    rules = general_rules()
    assert rules.evidence
    for keys in (*rules.evidence.values(), rules.gif_sheet.evidence, rules.gif_sheet.grid_evidence):
        assert keys and set(keys) <= set(all_evidence())


@pytest.mark.parametrize("model", ALL_MODELS)
@pytest.mark.parametrize("field", sorted(FIELD_VALUES))
def test_row_statuses_drive_validation_in_each_mode(model: str, field: str) -> None:
    """Each row of the table is what validation does: refused values refused in every checking mode, unknown
    values sent in "known" and refused in "strict", accepted values always sent."""
    entry = caps(model)
    if entry.lifecycle(TODAY) == "shutdown":
        return
    for value in FIELD_VALUES[field]:
        status = entry.status(field, value).status
        for mode, refused in (("known", status == "refuses"), ("strict", status != "accepts"), ("off", False)):
            data = {"model": model, field: value}
            if field == "output_format" and value == "gif":
                data["size"] = "auto"
            if refused:
                with pytest.raises(InvalidOptionsError, match=field):
                    ImageOptions.build(data, validation=mode, today=TODAY)  # type: ignore[arg-type]
            else:
                ImageOptions.build(data, validation=mode, today=TODAY)  # type: ignore[arg-type]


# -- the table covers the SDK ---------------------------------------------------------------------------------


def test_every_model_of_the_installed_sdk_has_an_entry() -> None:
    sdk_models = literal_values(SDK_HINTS["model"]) | set(typing.get_args(ImageModel))
    assert sdk_models, "the SDK's model literals are gone"
    missing = sdk_models - set(known_models())
    assert not missing, f"add these SDK models to models.toml: {sorted(missing)}"


def test_table_entries_outside_the_sdk_literal_are_documented_snapshots() -> None:
    extra = set(known_models()) - literal_values(SDK_HINTS["model"]) - set(typing.get_args(ImageModel))
    assert "gpt-image-1.5-2025-12-16" in extra
    assert "openai-deprecations" in caps("gpt-image-1.5-2025-12-16").evidence
    newer = extra - {"gpt-image-1.5-2025-12-16"}
    if not SDK_OLDER_THAN_TABLE:
        assert newer == set()
    # With an older SDK (the lowest-versions run), the models it lacks came with a newer SDK release.
    for model in newer:
        assert backed_by_newer_sdk(caps(model).evidence), f"{model}: not in openai {INSTALLED_SDK}'s types"


def test_default_model_is_the_sdk_documented_default_and_active() -> None:
    match = re.search(r"Default: `([^`]+)`", sdk_doc("model"))
    assert match is not None
    assert default_image_model() == "gpt-image-2.6-sunburst"
    assert caps(default_image_model()).lifecycle(TODAY) == "active"
    if SDK_OLDER_THAN_TABLE:
        # The API picks the default when no model is sent (the package never sends one it was not given), so
        # an older SDK's docstring is only stale text; the model it names must still be in the table.
        assert capabilities_for(match.group(1)) is not None
        assert backed_by_newer_sdk(caps(default_image_model()).evidence)
    else:
        assert match.group(1) == default_image_model()


def test_no_model_offered_to_agents_by_default_has_passed_its_shutdown_date() -> None:
    for day in (TODAY, _real_today()):  # the suite's pinned date would hide the real one
        for model in offered_models(day):
            shutdown = caps(model).shutdown
            assert shutdown is None or shutdown > day, model
        assert default_image_model() in offered_models(day)


def test_unknown_model_has_no_entry() -> None:
    assert capabilities_for("gpt-image-9") is None
    assert capabilities_for("") is None


# -- hand-written list of the facts issue 15 asked to verify --------------------------------------------------


@pytest.mark.parametrize("model", SHUTDOWN_DEC_1)
def test_lifecycle_dec_1_shutdowns_per_the_deprecations_page(model: str) -> None:
    entry = caps(model)
    assert entry.deprecated == datetime.date(2026, 6, 2)
    assert entry.shutdown == datetime.date(2026, 12, 1)
    assert entry.replacement == ("gpt-image-2.6-sunburst", "gpt-image-2.6-flare")
    assert "openai-deprecations" in entry.evidence or entry.alias_of == "gpt-image-1.5"
    assert all_evidence()["openai-deprecations"].source == "https://developers.openai.com/api/docs/deprecations"
    assert entry.lifecycle(datetime.date(2026, 11, 30)) == "deprecated"
    assert entry.lifecycle(datetime.date(2026, 12, 1)) == "shutdown"
    assert model not in offered_models(TODAY)


def test_lifecycle_of_models_the_sdk_says_were_shut_down() -> None:
    doc = sdk_doc("model")
    said = re.findall(r"`([^`]+)` was shut down on October 23, 2026", doc)
    if SDK_OLDER_THAN_TABLE and not said:  # an SDK released before the shutdown: the table has it from a newer one
        assert backed_by_newer_sdk(caps("gpt-image-1").evidence)
    else:
        assert said == ["gpt-image-1"]
    assert caps("gpt-image-1").shutdown == datetime.date(2026, 10, 23)
    assert caps("gpt-image-1").replacement == ("gpt-image-2.5-sunburst", "gpt-image-2.5-flare")
    for dalle in ("dall-e-2", "dall-e-3"):
        assert caps(dalle).shutdown == datetime.date(2026, 5, 12)
    assert caps("gpt-image-1").retired is not None


def test_gif_and_svg_are_in_the_2_6_family_not_2_5() -> None:
    for model in GPT_IMAGE_2_6:
        assert caps(model).status("output_format", "gif").status == "accepts"
        assert caps(model).status("output_format", "svg").status == "accepts"
    for model in (*GPT_IMAGE_2_5, *GPT_IMAGE_2, "gpt-image-1.5", "gpt-image-1-mini"):
        assert caps(model).status("output_format", "gif").status == "refuses"
        assert caps(model).status("output_format", "svg").status == "refuses"


@pytest.mark.parametrize(
    ("size", "frames", "fits"),
    [
        ("1024x1024", 6, False),  # the recorded refusal: a 4096 px sheet
        ("1024x1024", None, False),  # 9 frames: 3072x3072 > 8.3 MP
        ("1536x1024", 2, True),
        ("1536x1024", 3, False),
        ("1024x1536", 16, False),
        ("1024x1024", 4, False),
        ("768x768", 9, True),  # made by varg with 2.6
        ("768x768", 12, True),
        ("768x768", 6, True),
        ("1024x768", 9, True),  # varg's default 4:3 example
        ("512x512", 16, True),
        ("960x960", 9, True),
        ("1280x720", 16, False),  # "larger sizes only fit lower frame counts"
        ("1280x720", 2, True),
        ("500x500", 4, False),  # not a multiple of 16
    ],
)
def test_gif_sizes_are_per_frame_within_the_sprite_sheet_budget(size: str, frames: int | None, fits: bool) -> None:
    sheet = general_rules().gif_sheet
    assert sheet.max_pixels == 8_294_400 and sheet.max_edge == 3840 and sheet.frame_multiple == 16
    w, h = (int(x) for x in size.split("x"))
    assert (sheet.problem(w, h, frames) is None) is fits
    data = {"output_format": "gif", "size": size, **({"frame_count": frames} if frames else {})}
    if fits:
        ImageOptions.build(data, today=TODAY)
    else:
        with pytest.raises(Exception, match="size"):
            ImageOptions.build(data, today=TODAY)


@pytest.mark.parametrize("model", [*GPT_IMAGE_2, *GPT_IMAGE_2_5, *GPT_IMAGE_2_6])
def test_custom_size_limits_are_the_pixel_budget_not_a_short_edge(model: str) -> None:
    doc = sdk_doc("size")
    assert "must both be divisible by 16" in doc and "between 1:3 and 3:1" in doc
    rule = caps(model).custom_size
    assert rule is not None
    assert (rule.multiple, rule.max_aspect, rule.max_edge) == (16, 3.0, 3840)
    assert (rule.min_pixels, rule.max_pixels) == (655_360, 8_294_400)
    assert rule.problem(2880, 2880) is None  # 8,294,400 px exactly
    assert rule.problem(3840, 2160) is None and rule.problem(2160, 3840) is None
    assert rule.problem(16, 16) is not None  # under the 655,360 px floor
    assert rule.problem(1024, 624) is not None  # 638,976 px
    assert rule.problem(1024, 640) is None  # 655,360 px
    assert rule.problem(3856, 1296) is not None  # edge over 3840
    assert rule.problem(2896, 2896) is not None  # over the budget


def test_default_model_2_6_gets_sizes_and_qualities_from_third_party_evidence() -> None:
    entry = caps("gpt-image-2.6-sunburst")
    assert set(entry.sizes) == set(STANDARD_SIZES) and entry.auto_size
    assert entry.custom_size is not None
    for quality in ("xhigh", "max"):
        verdict = entry.status("quality", quality)
        assert verdict.status == "accepts"
        assert {e.kind for e in verdict.evidence} == {"third-party"}
    assert "also support `xhigh` and `max`" in sdk_doc("quality")  # the SDK names 2.5 only: it is silent on 2.6


def test_more_than_16_input_images_is_a_rule() -> None:
    from openai.types import image_edit_params

    assert "You can provide up to 16 images" in " ".join(inspect.getsource(image_edit_params).split())
    assert general_rules().max_input_images == 16


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        *((m, "complexity", "high") for m in ("gpt-image-1.5", "gpt-image-1-mini", *GPT_IMAGE_2, *GPT_IMAGE_2_5)),
        *((m, "action", "edit") for m in ("gpt-image-1.5", *GPT_IMAGE_2, *GPT_IMAGE_2_5)),
        *((m, "background", "auto") for m in GPT_IMAGE_2_5),
        *((m, "input_fidelity", v) for m in (*GPT_IMAGE_2_5, *GPT_IMAGE_2_6) for v in ("high", "low")),
        *((m, "background", "transparent") for m in GPT_IMAGE_2),
    ],
)
def test_the_open_questions_stay_unknown(model: str, field: str, value: str) -> None:
    verdict = caps(model).status(field, value)
    assert verdict.status == "unknown"
    ImageOptions.build({"model": model, field: value}, today=TODAY)  # unknown is not forbidden
    with pytest.raises(Exception, match=field):
        ImageOptions.build({"model": model, field: value}, validation="strict", today=TODAY)


def test_input_fidelity_follows_the_sdk_text() -> None:
    doc = sdk_doc("input_fidelity")
    # Older SDKs also list gpt-image-1 (since shut down) before gpt-image-1.5; the statements checked are the same.
    assert re.search(
        r"Supports `high` and `low` on (`gpt-image-1` and )?`gpt-image-1.5`; `gpt-image-1-mini` supports only `low`",
        doc,
    )
    assert "For `gpt-image-2`, omit this parameter" in doc
    assert caps("gpt-image-1-mini").allowed_values("input_fidelity") == ("low",)
    assert caps("gpt-image-1.5").allowed_values("input_fidelity") is None
    assert caps("gpt-image-2").allowed_values("input_fidelity") == ()


def test_general_rules_follow_the_sdk_text() -> None:
    assert "When using `transparent`, set the output format to `png` or `webp`" in sdk_doc("background")
    assert "from 0 (default value) to 3" in sdk_doc("partial_images")
    rules = general_rules()
    assert set(rules.alpha_formats) == {"png", "webp"}
    assert set(rules.compression_formats) == {"jpeg", "webp"}
    assert rules.gif_frame_count == (2, 16)
    assert rules.gif_frame_duration_ms == (10, 655350)
    assert rules.partial_images == (0, 3)


def test_allowed_values_per_mode() -> None:
    entry = caps("gpt-image-2.5-sunburst")
    assert entry.allowed_values("output_format") == ("png", "webp", "jpeg")
    assert entry.allowed_values("background") is None  # nothing refused
    assert entry.allowed_values("background", "strict") == ("transparent", "opaque")
    assert entry.allowed_values("background", "off") is None


def test_describe_sizes_states_the_limits() -> None:
    text = caps("gpt-image-2").describe_sizes()
    for part in (*STANDARD_SIZES, "auto", "divisible by 16", "1:3", "3:1", "3840", "655,360", "8,294,400"):
        assert part in text
    assert "divisible" not in caps("gpt-image-1.5").describe_sizes()


def test_the_table_was_checked_against_an_sdk_no_older_than_the_floor() -> None:
    """The table's SDK evidence names a real release at or above the installed one in the main suite, and the
    installed SDK is never newer than what the table was checked against without the suite noticing."""
    import importlib.metadata

    floor = next(
        r.split(">=")[1] for r in importlib.metadata.requires("imagegen-tool") or () if r.startswith("openai>=")
    )
    floor_version = type(TABLE_SDK)(floor)
    assert floor_version <= TABLE_SDK
    assert floor_version <= INSTALLED_SDK
