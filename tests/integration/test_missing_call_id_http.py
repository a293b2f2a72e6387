"""A response whose image_generation_call item has an empty id, served over real HTTP to the real SDK: the paid
image is delivered and stored, and recovering the same response later finds it instead of storing it twice."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from imagegen_tool import ImageGenerator
from imagegen_tool.store import is_valid_image_id
from tests.integration.servers import serve_app

RESPONSE_ID = "resp_emptyid0001"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "purple").save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


def _body() -> dict[str, Any]:
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1764000000,
        "status": "completed",
        "model": "gpt-5",
        "store": True,
        "background": False,
        "output": [
            {
                "id": "",
                "type": "image_generation_call",
                "status": "completed",
                "result": base64.b64encode(PNG).decode(),
                "revised_prompt": "a purple square",
                "size": "1024x1024",
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def test_an_image_with_an_empty_call_id_is_delivered_and_recovered_once(tmp_path: Path) -> None:
    requests: list[str] = []

    async def create(request: Request) -> JSONResponse:
        requests.append("create")
        return JSONResponse(_body())

    async def retrieve(request: Request) -> JSONResponse:
        requests.append("retrieve")
        return JSONResponse(_body())

    app = Starlette(
        routes=[
            Route("/v1/responses", create, methods=["POST"]),
            Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
        ]
    )
    with serve_app(app) as url:
        generator = ImageGenerator(store=tmp_path / "store", api_key="test", base_url=url + "/v1", background=False)
        try:
            result = generator.generate("a purple square", model="gpt-image-1.5")
            [image] = result.images
            assert is_valid_image_id(image.id)
            assert Path(image.path).read_bytes() == PNG
            assert image.revised_prompt == "a purple square"

            again = generator.recover(RESPONSE_ID)
        finally:
            generator.close()
    assert [i.id for i in again.images] == [image.id]
    assert [i.id for i in generator.store.list_images()] == [image.id]
    assert requests == ["create", "retrieve"]
