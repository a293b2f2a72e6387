"""The Images API (generations and edits, plain and streaming) and the Files API, through the real
``openai`` client."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool.testing import Emulator

IMAGE_MODEL = "gpt-image-1.5"


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def png_bytes(color: tuple[int, int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_generate_returns_n_distinct_images_with_usage(openai_client: OpenAI) -> None:
    result = openai_client.images.generate(
        model=IMAGE_MODEL, prompt="A teapot", n=2, size="1536x1024", quality="low", output_format="webp"
    )
    assert result.data is not None and len(result.data) == 2
    images = [decode(d.b64_json or "") for d in result.data]
    assert all((i.format, i.size) == ("WEBP", (1536, 1024)) for i in images)
    assert images[0].tobytes() != images[1].tobytes()
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1536x1024",
        "low",
        "webp",
        "opaque",
    )
    assert result.usage is not None and result.usage.output_tokens > 0
    assert result.usage.input_tokens_details.text_tokens > 0


def test_generate_transparent_png(openai_client: OpenAI) -> None:
    result = openai_client.images.generate(model=IMAGE_MODEL, prompt="A sticker", background="transparent")
    image = decode(result.data[0].b64_json or "")
    assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0


def test_generate_stream_events(openai_client: OpenAI) -> None:
    stream = openai_client.images.generate(model=IMAGE_MODEL, prompt="A comet", stream=True, partial_images=2)
    events = list(stream)
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    final = events[-1]
    assert final.usage.total_tokens > 0
    assert decode(final.b64_json).size == (1024, 1024)


def test_edit_derives_from_the_uploaded_image_and_mask(openai_client: OpenAI) -> None:
    base = png_bytes((200, 20, 20, 255), (256, 256))
    result = openai_client.images.edit(model=IMAGE_MODEL, image=("red.png", base, "image/png"), prompt="Add a bird")
    image = decode(result.data[0].b64_json or "").convert("RGB")
    assert image.getpixel((3, 3)) == (200, 20, 20)

    mask = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 128, 256, 256))  # edit the bottom half only
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    masked = openai_client.images.edit(
        model=IMAGE_MODEL,
        image=[("red.png", base, "image/png"), ("red2.png", base, "image/png")],
        mask=("mask.png", buffer.getvalue(), "image/png"),
        prompt="Water at the bottom",
    )
    image = decode(masked.data[0].b64_json or "").convert("RGB")
    assert image.crop((0, 0, 1024, 480)).getcolors(1) == [(1024 * 480, (200, 20, 20))]
    assert image.crop((0, 560, 1024, 1024)).getcolors(1) is None


async def test_edit_stream_async(async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator) -> None:
    stream = await async_openai_client.images.edit(
        model=IMAGE_MODEL,
        image=("in.png", png_bytes((0, 0, 255, 255)), "image/png"),
        prompt="Add stars",
        stream=True,
        partial_images=1,
    )
    events = [e async for e in stream]
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    (request,) = imagegen_emulator.requests_to("/images/edits")
    assert request.form["prompt"] == "Add stars"
    assert request.form["stream"] == "true"
    assert [(f.field, f.filename) for f in request.files] == [("image", "in.png")]
    assert request.files[0].size > 0


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"size": "123x45"}, "size", "invalid_value"),
        ({"output_format": "jpeg", "background": "transparent"}, "background", "invalid_value"),
        ({"output_format": "png", "output_compression": 80}, "output_compression", "invalid_value"),
        ({"n": 11}, "n", "invalid_value"),
        ({"response_format": "url"}, "response_format", "unknown_parameter"),
        ({"style": "vivid"}, "style", "unknown_parameter"),
    ],
)
def test_generate_refuses_invalid_options(
    openai_client: OpenAI, kwargs: dict[str, object], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.images.generate(model=IMAGE_MODEL, prompt="x", **kwargs)  # type: ignore[arg-type]
    assert (caught.value.body["param"], caught.value.body["code"]) == (param, code)
    # The recorded unknown-parameter error is an invalid_request_error; option values the image tool refuses
    # use the image tool's own error type.
    expected_type = (
        "invalid_request_error" if code == "unknown_parameter" or param == "n" else "image_generation_user_error"
    )
    assert caught.value.body["type"] == expected_type


def test_edit_refuses_a_file_that_is_not_an_image(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.images.edit(model=IMAGE_MODEL, image=("x.png", b"not an image", "image/png"), prompt="x")
    assert caught.value.body["code"] == "invalid_image_format"


def test_files_upload_retrieve_content_list_delete(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    data = png_bytes((1, 2, 3, 255))
    uploaded = openai_client.files.create(file=("pic.png", data, "image/png"), purpose="vision")
    assert uploaded.id.startswith("file-")
    assert (uploaded.bytes, uploaded.filename, uploaded.purpose, uploaded.status) == (
        len(data),
        "pic.png",
        "vision",
        "processed",
    )
    assert openai_client.files.retrieve(uploaded.id).id == uploaded.id
    assert openai_client.files.content(uploaded.id).read() == data
    assert [f.id for f in openai_client.files.list()] == [uploaded.id]
    assert imagegen_emulator.files[uploaded.id].content == data

    deleted = openai_client.files.delete(uploaded.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        openai_client.files.retrieve(uploaded.id)
    assert imagegen_emulator.files == {}


def test_files_user_data_purpose_and_bad_purpose(openai_client: OpenAI) -> None:
    assert openai_client.files.create(file=("a.bin", b"abc"), purpose="user_data").purpose == "user_data"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.files.create(file=("a.bin", b"abc"), purpose="pictures")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "purpose"


def test_unknown_route_is_a_404_in_the_api_shape(openai_client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.models.list()
    assert caught.value.body["message"] == "Invalid URL (GET /v1/models)"
