"""Per-call ``svg_usage`` (the SVG author model's tokens) survives parsing and lands on that image's handle."""

from __future__ import annotations

import base64

from imagegen_tool.images import SvgUsage
from imagegen_tool.parse import parse_response

SVG = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>').decode()


def _body(**call_extra: object) -> dict[str, object]:
    call = {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": SVG, **call_extra}
    return {"id": "resp_1", "object": "response", "model": "gpt-5", "status": "completed", "output": [call]}


def test_svg_usage_is_kept_per_call() -> None:
    usage = {"input_tokens": 10, "output_tokens": 200, "reasoning_tokens": 50, "total_tokens": 210, "model": "gpt-5"}
    (image,) = parse_response(_body(svg_usage=usage, output_format="svg")).images
    assert image.svg_usage == SvgUsage(
        model="gpt-5", input_tokens=10, output_tokens=200, total_tokens=210, reasoning_tokens=50
    )


def test_no_svg_usage_on_a_raster_call_and_malformed_counts_are_dropped() -> None:
    (raster,) = parse_response(_body()).images
    assert raster.svg_usage is None
    (odd,) = parse_response(_body(svg_usage={"input_tokens": "many", "model": 3})).images
    assert odd.svg_usage is not None and odd.svg_usage.input_tokens == 0 and odd.svg_usage.model is None
