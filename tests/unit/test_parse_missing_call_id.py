"""An image_generation_call item without a usable id still delivers its (paid) image, under an id synthesized
from the response id and the item's position: the same for a stream, the final body and a later recovery."""

from __future__ import annotations

import base64
import copy
import io
from typing import Any

import pytest
from PIL import Image

from imagegen_tool.parse import ParsedImage, parse_image_call, parse_response, synthesized_call_id
from imagegen_tool.store import is_valid_image_id
from imagegen_tool.streaming import ResponseStreamAccumulator


def _png(color: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _item(call_id: Any, color: str) -> dict[str, Any]:
    return {"id": call_id, "type": "image_generation_call", "status": "completed", "result": _png(color)}


def _body(response_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "model": "gpt-5",
        "output": [{"id": "rs_1", "type": "reasoning", "summary": []}, *items],
    }


@pytest.mark.parametrize("bad_id", [None, "", 7, ["ig_1"]])
def test_an_item_without_a_usable_id_keeps_its_image(bad_id: Any) -> None:
    body = _body("resp_abc", _item(bad_id, "red"))
    parsed = parse_response(body)
    assert len(parsed.images) == 1
    image = parsed.images[0]
    assert is_valid_image_id(image.call_id) and image.call_id.startswith("ig_missing_")
    assert image.b64 == body["output"][1]["result"]
    # Deterministic: parsing the same response again (a recovery by id) names the image the same way.
    assert parse_response(copy.deepcopy(body)).images[0].call_id == image.call_id


def test_synthesized_ids_differ_per_position_and_per_response() -> None:
    two = parse_response(_body("resp_abc", _item("", "red"), _item(None, "blue")))
    ids = [image.call_id for image in two.images]
    assert len(set(ids)) == 2
    other = parse_response(_body("resp_xyz", _item("", "red"), _item(None, "blue")))
    assert not set(ids) & {image.call_id for image in other.images}


def test_a_good_id_beside_a_missing_one_is_kept_as_it_is() -> None:
    parsed = parse_response(_body("resp_abc", _item("ig_good", "red"), _item("", "blue")))
    assert parsed.images[0].call_id == "ig_good"
    assert parsed.images[1].call_id == synthesized_call_id("resp_abc", 2)


def test_an_odd_response_id_never_reaches_the_synthesized_id() -> None:
    call_id = synthesized_call_id("resp_../../etc/passwd\x00", 1)
    assert is_valid_image_id(call_id) and "etc" not in call_id


def test_without_a_response_id_the_image_data_names_it() -> None:
    item = _item("", "red")
    first = parse_image_call(item)
    assert isinstance(first, ParsedImage) and is_valid_image_id(first.call_id)
    again = parse_image_call(copy.deepcopy(item))
    assert isinstance(again, ParsedImage) and again.call_id == first.call_id
    other = parse_image_call(_item("", "blue"))
    assert isinstance(other, ParsedImage) and other.call_id != first.call_id


def test_a_failed_item_without_an_id_is_still_reported_as_a_failure() -> None:
    item = {
        "id": "",
        "type": "image_generation_call",
        "status": "failed",
        "result": None,
        "error": {"code": "moderation_blocked", "message": "blocked"},
    }
    parsed = parse_response(_body("resp_abc", item))
    assert not parsed.images
    assert [failure.code for failure in parsed.failures] == ["moderation_blocked"]


class _Event:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def _done(index: int, item: dict[str, Any], sequence: int) -> _Event:
    return _Event(type="response.output_item.done", output_index=index, item=_Event(**item), sequence_number=sequence)


def test_a_cut_stream_keeps_every_item_without_an_id_under_the_final_bodys_ids() -> None:
    red, blue = _item("", "red"), _item("", "blue")
    accumulator = ResponseStreamAccumulator()
    accumulator.feed(_Event(type="response.created", response=_Event(id="resp_abc", store=True), sequence_number=0))
    # Two items with the same (empty) id: neither replaces the other.
    accumulator.feed(_done(1, red, 1))
    accumulator.feed(_done(2, blue, 2))
    salvaged = accumulator.finish(interrupted=ConnectionError("cut"))
    assert [image.b64 for image in salvaged.images] == [red["result"], blue["result"]]
    final = parse_response(_body("resp_abc", red, blue))
    assert [image.call_id for image in salvaged.images] == [image.call_id for image in final.images]
