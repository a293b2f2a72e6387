"""The capability table against the emulated API's own rules, end to end through the real SDK over HTTP.

"Unknown is not forbidden": what the table does not know is sent, and the API's refusal comes back as
``InvalidOptionsError(source="api")`` with nothing stored and no retry. What evidence says the API refuses is
refused before any request. Validation modes, lifecycle dates, the final-request rules (mask from any source with
gif, more than 16 inputs) and ``safety_identifier`` are checked on the wire.
"""

from __future__ import annotations

import datetime
import io
import logging
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator, InvalidOptionsError
from imagegen_tool.errors import ConfigurationError
from imagegen_tool.options import _WARNED_DEPRECATED
from imagegen_tool.testing import Emulator
from tests.integration.conftest import image_files

BEFORE_SHUTDOWN = datetime.date(2026, 11, 25)
SHUTDOWN = datetime.date(2026, 12, 1)


def _png(size: tuple[int, int] = (64, 64), mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (0, 0, 255, 255) if mode == "RGBA" else "blue").save(buffer, "PNG")
    return buffer.getvalue()


def _generator(store: Path, client: OpenAI, **kwargs: Any) -> ImageGenerator:
    return ImageGenerator(store=store, client=client, today=lambda: BEFORE_SHUTDOWN, **kwargs)


def _error_body(emulator: Emulator, error: BaseException) -> dict[str, Any]:
    """The API's error object, as the SDK received it (the cause of the package's error)."""
    (request,) = emulator.requests_to("/v1/responses")
    assert request.status == 400
    cause = error.__cause__
    while cause is not None and not isinstance(cause, openai.APIStatusError):
        cause = cause.__cause__
    assert isinstance(cause, openai.APIStatusError)
    body = cause.body
    assert isinstance(body, dict)
    return dict(body.get("error", body))


# -- the table allowed it, the API refused it ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"model": "gpt-image-2.5-sunburst", "input_fidelity": "high"}, "input_fidelity"),  # unknown in the table
        ({"model": "gpt-image-2", "background": "transparent"}, "background"),  # unknown: "preview" vs no support
        ({"model": "gpt-image-2.6-flare", "quality": "max"}, "quality"),  # believed accepted (third-party)
        ({"model": "gpt-image-2.5-flare", "complexity": "high"}, "complexity"),  # unknown before 2.6
    ],
)
def test_table_allowed_api_refused_is_an_api_option_error(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator, options: dict[str, Any], field: str
) -> None:
    model = options["model"]
    imagegen_emulator.api_rules.refuse(field, options[field], model=model)
    generator = _generator(tmp_path / "images", openai_client)

    with pytest.raises(InvalidOptionsError) as info:
        generator.generate("a paper boat", **options)

    error = info.value
    assert error.source == "api" and error.field == field and error.retryable is False
    assert error.value == options[field]
    assert "refused" in error.agent_message and "Nothing was generated" in error.agent_message
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1  # never retried
    assert image_files(tmp_path / "images") == []
    body = _error_body(imagegen_emulator, info.value)
    assert body["type"] == "image_generation_user_error" and body["code"] == "invalid_value"
    assert body["param"] == f"tools[0].{field}"
    assert body["message"].startswith(f"Invalid value: '{options[field]}'. Supported values are: ")


def test_without_a_refusal_the_unknown_value_is_generated(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    result = _generator(tmp_path / "images", openai_client).generate(
        "a paper boat", model="gpt-image-2.5-sunburst", input_fidelity="high"
    )
    assert result.image.path
    (request,) = imagegen_emulator.requests_to("/v1/responses")
    assert request.json["tools"][0]["input_fidelity"] == "high"


def test_strict_mode_refuses_unknown_values_before_any_request(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = _generator(tmp_path / "images", openai_client, validation="strict")
    with pytest.raises(InvalidOptionsError) as info:
        generator.generate("a paper boat", model="gpt-image-2.5-sunburst", input_fidelity="high")
    assert info.value.source == "client" and info.value.field == "input_fidelity"
    assert imagegen_emulator.requests == []


def test_off_mode_sends_what_evidence_refuses_and_the_emulated_api_refuses_it_by_its_own_rules(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    with pytest.raises(InvalidOptionsError) as refused:
        _generator(tmp_path / "a", openai_client).generate("x", model="gpt-image-2.5-sunburst", output_format="gif")
    assert refused.value.source == "client"
    assert imagegen_emulator.requests == []

    generator = _generator(tmp_path / "b", openai_client, validation="off")
    with pytest.raises(InvalidOptionsError) as info:
        generator.generate("a spinning coin", model="gpt-image-2.5-sunburst", output_format="gif")
    assert info.value.source == "api" and info.value.field == "output_format"
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1


def test_the_emulator_can_accept_what_the_table_refuses(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    """A real API that grew a feature: the switch accepts it, and validation="off" reaches it."""
    imagegen_emulator.api_rules.accept("output_format", "gif", model="gpt-image-2.5-flare")
    generator = _generator(tmp_path / "images", openai_client, validation="off")
    result = generator.generate("a spinning coin", model="gpt-image-2.5-flare", output_format="gif", size="512x512")
    assert result.image.mime_type == "image/gif"


# -- lifecycle ---------------------------------------------------------------------------------------------------


def test_deprecated_model_works_and_warns_once_before_its_shutdown_date(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    _WARNED_DEPRECATED.discard("gpt-image-1.5")
    imagegen_emulator.api_rules.today = BEFORE_SHUTDOWN
    generator = _generator(tmp_path / "images", openai_client)
    with caplog.at_level(logging.WARNING, logger="imagegen_tool"):
        generator.generate("a kite", model="gpt-image-1.5", quality="low")
        generator.generate("a kite", model="gpt-image-1.5", quality="low")
    warnings = [r for r in caplog.records if "gpt-image-1.5" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2026-12-01" in warnings[0].getMessage() and "gpt-image-2.6-sunburst" in warnings[0].getMessage()
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 2


@pytest.mark.parametrize("model", ["gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"])
def test_from_the_shutdown_date_the_model_is_refused_before_any_request(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator, model: str
) -> None:
    generator = ImageGenerator(store=tmp_path / "images", client=openai_client, today=lambda: SHUTDOWN)
    with pytest.raises(InvalidOptionsError) as info:
        generator.generate("a kite", model=model)
    assert info.value.field == "model" and info.value.source == "client"
    assert "gpt-image-2.6-sunburst" in info.value.agent_message and "2026-12-01" in str(info.value)
    assert imagegen_emulator.requests == []


def test_a_shut_down_model_sent_anyway_is_model_not_found(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.api_rules.today = SHUTDOWN
    generator = _generator(tmp_path / "images", openai_client)  # the client's clock is a week late
    with pytest.raises(InvalidOptionsError) as info:
        generator.generate("a kite", model="gpt-image-1.5")
    assert info.value.source == "api" and info.value.field == "model"
    body = _error_body(imagegen_emulator, info.value)
    assert body["code"] == "model_not_found"
    assert body["message"] == "The model `gpt-image-1.5` does not exist or you do not have access to it."


# -- rules on the final request -----------------------------------------------------------------------------------


def test_gif_with_a_mask_given_as_an_argument_is_refused_before_any_request(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(_png())
    mask = tmp_path / "mask.png"
    mask.write_bytes(_png())
    generator = _generator(tmp_path / "images", openai_client, input_roots=[tmp_path])
    with pytest.raises(InvalidOptionsError) as info:
        generator.edit("make it wave", [image], mask=mask, output_format="gif", size="512x512")
    assert info.value.field == "mask"
    assert imagegen_emulator.requests == []


def test_more_than_16_input_images_are_refused_before_any_request(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    paths = []
    for i in range(17):
        path = tmp_path / f"in{i}.png"
        path.write_bytes(_png((16 + i, 16)))
        paths.append(path)
    generator = _generator(tmp_path / "images", openai_client, input_roots=[tmp_path])
    with pytest.raises(InvalidOptionsError) as info:
        generator.edit("combine them", paths)
    assert "16" in str(info.value)
    assert imagegen_emulator.requests == []


def test_gif_frames_are_sized_per_frame_on_the_wire(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = _generator(tmp_path / "images", openai_client)
    with pytest.raises(InvalidOptionsError) as info:
        generator.generate("a bouncing ball", output_format="gif", size="1024x1024", frame_count=6)
    assert info.value.field == "size" and "sprite sheet" in str(info.value)
    assert imagegen_emulator.requests == []
    result = generator.generate("a bouncing ball", output_format="gif", size="768x768", frame_count=6)
    assert result.image.mime_type == "image/gif"


def test_custom_sizes_follow_the_pixel_budget(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = _generator(tmp_path / "images", openai_client)
    result = generator.generate("a square mural", model="gpt-image-2", size="2880x2880", quality="low")
    assert (result.image.width, result.image.height) == (2880, 2880)
    with pytest.raises(InvalidOptionsError):
        generator.generate("a stamp", model="gpt-image-2", size="16x16")
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1


# -- safety_identifier ---------------------------------------------------------------------------------------------


def test_safety_identifier_per_generator_and_per_call(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = _generator(tmp_path / "images", openai_client, safety_identifier="user-hash-1")
    generator.generate("a kite", quality="low")
    generator.generate("a kite", quality="low", safety_identifier="user-hash-2")
    first, second = imagegen_emulator.requests_to("/v1/responses")
    assert first.json["safety_identifier"] == "user-hash-1"
    assert second.json["safety_identifier"] == "user-hash-2"
    plain = _generator(tmp_path / "plain", openai_client)
    plain.generate("a kite", quality="low")
    assert "safety_identifier" not in imagegen_emulator.requests_to("/v1/responses")[-1].json


@pytest.mark.parametrize("value", ["", "   ", "sk-proj-abc123", "x" * 129])
def test_safety_identifier_that_is_empty_too_long_or_a_key_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError):
        ImageGenerator(store=tmp_path, api_key="offline", safety_identifier=value)
