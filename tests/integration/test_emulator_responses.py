"""The Responses API with the image_generation tool, through the real ``openai`` client (sync and async,
plain and streaming): what comes back parses, and the images are what was asked for."""

from __future__ import annotations

import base64
import io
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.responses import Response
from PIL import Image

from imagegen_tool.testing import Emulator

MODEL = "gpt-5"


def image_tool(**options: Any) -> list[dict[str, Any]]:
    return [{"type": "image_generation", **options}]


def image_call(response: Response) -> Any:
    (call,) = [item for item in response.output if item.type == "image_generation_call"]
    return call


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def png_data_url(color: tuple[int, int, int, int], size: tuple[int, int] = (64, 64)) -> str:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_generate_returns_reasoning_image_call_and_message(openai_client: OpenAI) -> None:
    response = openai_client.responses.create(model=MODEL, input="A lighthouse at dusk", tools=image_tool())

    assert response.status == "completed"
    # As the recorded body (tool_choice "auto"): the model reasons again after the image call.
    assert [item.type for item in response.output] == ["reasoning", "image_generation_call", "reasoning", "message"]
    call = image_call(response)
    assert call.id.startswith("ig_") and response.id.startswith("resp_")
    assert call.status == "completed" and call.action == "generate"
    # `auto` resolved as the recordings report it (quality high for both recorded auto requests).
    assert (call.size, call.quality, call.background, call.output_format) == ("1024x1024", "high", "opaque", "png")
    assert call.revised_prompt and "lighthouse" in call.revised_prompt.lower()
    image = decode(call.result)
    assert (image.format, image.size, image.mode) == ("PNG", (1024, 1024), "RGB")
    assert response.output_text
    assert response.usage is not None and response.usage.total_tokens > 0
    assert response.tool_usage is not None
    # A typed object with the newest SDK; an older SDK (the lowest-versions run) keeps the field as a plain dict.
    image_gen = getattr(response.tool_usage, "image_gen", None) or response.tool_usage["image_gen"]
    output_tokens = getattr(image_gen, "output_tokens", None) or image_gen["output_tokens"]
    assert output_tokens > 0
    assert response.tools[0].type == "image_generation"


def test_non_reasoning_model_has_no_reasoning_item(openai_client: OpenAI) -> None:
    response = openai_client.responses.create(model="gpt-4.1-mini", input="A cat", tools=image_tool())
    assert [item.type for item in response.output] == ["image_generation_call", "message"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"size": "1536x1024", "output_format": "webp", "quality": "low"}, ("WEBP", (1536, 1024))),
        ({"size": "1024x1536", "output_format": "jpeg", "output_compression": 40}, ("JPEG", (1024, 1536))),
        ({"output_format": "png", "background": "transparent"}, ("PNG", (1024, 1024))),
        ({"output_format": "webp", "background": "transparent"}, ("WEBP", (1024, 1024))),
    ],
)
def test_requested_size_format_and_alpha(
    openai_client: OpenAI, options: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    call = image_call(openai_client.responses.create(model=MODEL, input="A logo", tools=image_tool(**options)))
    image = decode(call.result)
    assert (image.format, image.size) == expected
    assert call.size == "{}x{}".format(*expected[1])
    if options.get("background") == "transparent":
        assert call.background == "transparent"
        rgba = image.convert("RGBA")
        assert rgba.getpixel((0, 0))[3] == 0  # really transparent
        assert rgba.getchannel("A").getextrema() == (0, 255)
    else:
        assert "A" not in image.getbands()


def test_gif_has_the_requested_frames_and_duration(openai_client: OpenAI) -> None:
    tools = image_tool(output_format="gif", frame_count=4, frame_duration_ms=120)
    call = image_call(openai_client.responses.create(model=MODEL, input="A spinning coin", tools=tools))
    image = decode(call.result)
    assert image.format == "GIF" and image.n_frames == 4
    assert image.info["duration"] == 120
    image.seek(1)
    second = image.convert("RGB").tobytes()
    image.seek(0)
    assert image.convert("RGB").tobytes() != second  # it moves


def test_svg_is_a_real_svg_document(openai_client: OpenAI) -> None:
    tools = image_tool(output_format="svg", size="1536x1024")
    call = image_call(openai_client.responses.create(model=MODEL, input="A flat icon of a tree", tools=tools))
    text = base64.b64decode(call.result).decode()
    assert call.output_format == "svg"
    assert "<svg" in text and 'width="1536"' in text and 'height="1024"' in text and text.rstrip().endswith("</svg>")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    assert root.tag.endswith("svg")


def test_same_prompt_same_bytes_and_seed_changes_them(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    def generate(prompt: str) -> str:
        return image_call(openai_client.responses.create(model=MODEL, input=prompt, tools=image_tool())).result

    first = generate("A red bicycle")
    assert generate("A red bicycle") == first
    assert generate("A blue bicycle") != first
    imagegen_emulator.seed = 7
    assert generate("A red bicycle") != first


def test_stream_helper_delivers_partials_then_final(openai_client: OpenAI) -> None:
    partials: list[Image.Image] = []
    with openai_client.responses.stream(
        model=MODEL, input="A mountain lake", tools=image_tool(partial_images=3, size="1024x1024")
    ) as stream:
        types = []
        for event in stream:
            types.append(event.type)
            if event.type == "response.image_generation_call.partial_image":
                assert event.partial_image_index == len(partials)
                partials.append(decode(event.partial_image_b64))
        final = stream.get_final_response()

    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert types.count("response.image_generation_call.partial_image") == 3
    assert (
        types.index("response.image_generation_call.generating")
        < types.index("response.image_generation_call.partial_image")
        < types.index("response.image_generation_call.completed")
    )
    result = decode(image_call(final).result)
    assert all(p.size == result.size for p in partials)

    # Progressively less blurred: each partial is closer to the final image than the previous one.
    def distance(a: Image.Image, b: Image.Image) -> float:
        small_a = a.convert("RGB").resize((128, 128))
        small_b = b.convert("RGB").resize((128, 128))
        return sum(abs(x - y) for x, y in zip(small_a.tobytes(), small_b.tobytes(), strict=True)) / (128 * 128 * 3)

    distances = [distance(p, result) for p in partials]
    assert distances == sorted(distances, reverse=True) and distances[-1] > 0


def test_raw_stream_has_consecutive_sequence_numbers(openai_client: OpenAI) -> None:
    stream = openai_client.responses.create(
        model=MODEL, input="A kite", tools=image_tool(partial_images=1), stream=True
    )
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = [e for e in events if e.type == "response.output_item.done" and e.item.type == "image_generation_call"]
    assert done and done[0].item.result
    completed = events[-1]
    assert completed.type == "response.completed"
    assert image_call(completed.response).result == done[0].item.result


def test_stream_without_partials_still_has_the_lifecycle(openai_client: OpenAI) -> None:
    events = list(openai_client.responses.create(model=MODEL, input="A gif", tools=image_tool(), stream=True))
    types = [e.type for e in events]
    assert "response.image_generation_call.partial_image" not in types
    assert "response.image_generation_call.completed" in types


async def test_async_client_plain_and_streaming(async_openai_client: AsyncOpenAI) -> None:
    response = await async_openai_client.responses.create(model=MODEL, input="A fox", tools=image_tool(quality="low"))
    assert decode(image_call(response).result).size == (1024, 1024)

    async with async_openai_client.responses.stream(
        model=MODEL, input="A fox", tools=image_tool(partial_images=2)
    ) as stream:
        partials = [e async for e in stream if e.type == "response.image_generation_call.partial_image"]
        final = await stream.get_final_response()
    assert len(partials) == 2
    assert image_call(final).status == "completed"


def test_previous_response_id_turns_into_an_edit_of_the_earlier_image(
    imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    first = openai_client.responses.create(model=MODEL, input="A house", tools=image_tool())
    second = openai_client.responses.create(
        model=MODEL, input="Make the roof red", previous_response_id=first.id, tools=image_tool()
    )
    call = image_call(second)
    assert second.previous_response_id == first.id
    assert call.action == "edit"
    before, after = decode(image_call(first).result), decode(call.result)
    # Derived from the earlier image: corners kept, middle changed.
    assert after.getpixel((2, 2)) == before.getpixel((2, 2))
    assert after.tobytes() != before.tobytes()
    assert openai_client.responses.retrieve(second.id).id == second.id
    assert set(imagegen_emulator.responses) == {first.id, second.id}


def test_unknown_previous_response_id_is_the_api_error(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model=MODEL, input="x", previous_response_id="resp_nope", tools=image_tool())
    error = caught.value.body
    assert error == {
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_store_false_responses_cannot_be_continued_or_retrieved(
    imagegen_emulator: Emulator, openai_client: OpenAI
) -> None:
    first = openai_client.responses.create(model=MODEL, input="A boat", tools=image_tool(), store=False)
    assert first.store is False
    assert imagegen_emulator.responses == {}
    with pytest.raises(openai.BadRequestError, match="not found"):
        openai_client.responses.create(model=MODEL, input="again", previous_response_id=first.id, tools=image_tool())
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(first.id)


@pytest.mark.parametrize("source", ["data_url", "file_id", "http_url"])
def test_input_image_makes_an_edit(openai_client: OpenAI, source: str) -> None:
    data_url = png_data_url((10, 200, 30, 255))
    part: dict[str, Any] = {"type": "input_image", "detail": "auto"}
    if source == "data_url":
        part["image_url"] = data_url
    elif source == "file_id":
        raw = base64.b64decode(data_url.split(",", 1)[1])
        uploaded = openai_client.files.create(file=("green.png", raw, "image/png"), purpose="vision")
        part["file_id"] = uploaded.id
    else:
        part["image_url"] = "https://example.invalid/never-fetched.png"
    response = openai_client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Add a sun"}, part]}],
        tools=image_tool(),
    )
    call = image_call(response)
    assert call.action == "edit"
    image = decode(call.result).convert("RGB")
    if source != "http_url":
        assert image.getpixel((1, 1)) == (10, 200, 30)  # starts from the input image


def test_action_generate_ignores_input_and_edit_without_image_is_refused(openai_client: OpenAI) -> None:
    content = [
        {"type": "input_text", "text": "A new idea"},
        {"type": "input_image", "image_url": png_data_url((0, 0, 0, 255)), "detail": "auto"},
    ]
    response = openai_client.responses.create(
        model=MODEL, input=[{"role": "user", "content": content}], tools=image_tool(action="generate")
    )
    assert image_call(response).action == "generate"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model=MODEL, input="Edit what?", tools=image_tool(action="edit"))
    assert caught.value.body["param"] == "tools[0].action"


def test_item_reference_and_image_generation_call_items_feed_the_edit(openai_client: OpenAI) -> None:
    first = openai_client.responses.create(model=MODEL, input="A tree", tools=image_tool())
    earlier = image_call(first)
    base_pixel = decode(earlier.result).convert("RGB").getpixel((0, 0))
    by_reference = openai_client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": "Add snow"}, {"type": "item_reference", "id": earlier.id}],
        tools=image_tool(),
    )
    assert image_call(by_reference).action == "edit"
    assert decode(image_call(by_reference).result).convert("RGB").getpixel((0, 0)) == base_pixel

    by_item = openai_client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Add snow"},
            {"type": "image_generation_call", "id": earlier.id, "status": "completed", "result": earlier.result},
        ],
        tools=image_tool(),
    )
    assert image_call(by_item).action == "edit"

    with pytest.raises(openai.NotFoundError):
        openai_client.responses.create(
            model=MODEL,
            input=[{"role": "user", "content": "x"}, {"type": "item_reference", "id": "ig_unknown"}],
            tools=image_tool(),
        )


@pytest.mark.parametrize("mask_source", ["image_url", "file_id"])
def test_mask_limits_the_edit_to_its_transparent_area(openai_client: OpenAI, mask_source: str) -> None:
    # Mask: opaque (keep) on the left half, transparent (edit) on the right half.
    mask_image = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask_image.paste((0, 0, 0, 0), (32, 0, 64, 64))
    buffer = io.BytesIO()
    mask_image.save(buffer, "PNG")
    if mask_source == "file_id":
        mask = {"file_id": openai_client.files.create(file=("mask.png", buffer.getvalue()), purpose="vision").id}
    else:
        mask = {"image_url": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}
    content = [
        {"type": "input_text", "text": "Paint the right side"},
        {"type": "input_image", "image_url": png_data_url((250, 250, 250, 255)), "detail": "auto"},
    ]
    response = openai_client.responses.create(
        model=MODEL, input=[{"role": "user", "content": content}], tools=image_tool(input_image_mask=mask)
    )
    image = decode(image_call(response).result).convert("RGB")
    left = image.crop((0, 0, 500, 1024)).getcolors(1)
    assert left == [(500 * 1024, (250, 250, 250))]  # untouched
    assert image.crop((540, 0, 1024, 1024)).getcolors(1) is None  # repainted


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"size": "999x999"}, "tools[0].size"),
        ({"background": "transparent", "output_format": "jpeg"}, "tools[0].background"),
        ({"output_compression": 50, "output_format": "png"}, "tools[0].output_compression"),
        ({"partial_images": 4}, "tools[0].partial_images"),
        ({"output_format": "gif", "partial_images": 1}, "tools[0].partial_images"),
        ({"output_format": "gif", "output_compression": 50}, "tools[0].output_compression"),
        ({"output_format": "gif", "frame_count": 17}, "tools[0].frame_count"),
        ({"frame_count": 4}, "tools[0].frame_count"),
        ({"svg": {"model": "gpt-5"}}, "tools[0].svg"),
        ({"quality": "ultra"}, "tools[0].quality"),
    ],
)
def test_invalid_options_are_refused_like_the_api(openai_client: OpenAI, options: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model=MODEL, input="x", tools=image_tool(**options))
    body = caught.value.body
    assert body["type"] == "image_generation_user_error"
    assert body["param"] == param
    assert body["code"] == "invalid_value"
    assert caught.value.status_code == 400


def test_unknown_tool_option_and_mask_with_gif(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model=MODEL, input="x", tools=image_tool(sharpness=3))
    assert (caught.value.body["code"], caught.value.body["param"]) == ("unknown_parameter", "tools[0].sharpness")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(
            model=MODEL,
            input="x",
            tools=image_tool(output_format="gif", input_image_mask={"image_url": png_data_url((0, 0, 0, 0))}),
        )
    assert caught.value.body["param"] == "tools[0].input_image_mask"


def test_any_text_model_name_is_accepted_but_model_is_required(openai_client: OpenAI) -> None:
    response = openai_client.responses.create(model="my-local-model", input="hi", tools=image_tool())
    assert response.model == "my-local-model"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.post("/responses", body={"input": "hi"}, cast_to=Response)
    assert caught.value.body["code"] == "missing_required_parameter"


def test_text_only_request_gets_a_message(openai_client: OpenAI) -> None:
    response = openai_client.responses.create(model=MODEL, input="Say hi")
    assert [i.type for i in response.output] == ["reasoning", "message"]
    assert "Say hi" in response.output_text


def test_get_and_delete_a_stored_response(openai_client: OpenAI) -> None:
    created = openai_client.responses.create(model=MODEL, input="A star", tools=image_tool())
    fetched = openai_client.responses.retrieve(created.id)
    assert image_call(fetched).result == image_call(created).result
    openai_client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(created.id)


def test_unknown_image_model_gets_type_checks_only_within_emulator_limits(openai_client: OpenAI) -> None:
    tools = image_tool(model="future-image-model", size="272x96")
    call = image_call(openai_client.responses.create(model=MODEL, input="A banner", tools=tools))
    assert decode(call.result).size == (272, 96)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(
            model=MODEL, input="x", tools=image_tool(model="future-image-model", size="20000x20000")
        )
    assert caught.value.body["code"] == "invalid_value"
