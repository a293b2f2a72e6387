"""The emulator's Files endpoint honours ``expires_after`` as the SDK documents it (file_create_params.py):
anchor ``created_at``, 3600 to 2592000 seconds; an expired file is gone."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from imagegen_tool.testing import Emulator

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_expires_after_sets_expires_at(openai_client: OpenAI) -> None:
    uploaded = openai_client.files.create(
        file=("a.png", PNG, "image/png"), purpose="vision", expires_after={"anchor": "created_at", "seconds": 7200}
    )
    assert uploaded.expires_at == uploaded.created_at + 7200
    assert openai_client.files.retrieve(uploaded.id).expires_at == uploaded.expires_at
    plain = openai_client.files.create(file=("b.png", PNG, "image/png"), purpose="vision")
    assert plain.expires_at is None


@pytest.mark.parametrize(
    ("expires_after", "param"),
    [
        ({"anchor": "created_at", "seconds": 60}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 2592001}, "expires_after.seconds"),
        ({"anchor": "last_active_at", "seconds": 7200}, "expires_after.anchor"),
    ],
)
def test_out_of_range_expiry_is_refused(openai_client: OpenAI, expires_after: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.files.create(
            file=("a.png", PNG, "image/png"),
            purpose="vision",
            expires_after=expires_after,  # type: ignore[arg-type]
        )
    assert caught.value.param == param


def test_an_expired_file_is_gone(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    uploaded = openai_client.files.create(
        file=("a.png", PNG, "image/png"), purpose="vision", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert imagegen_emulator.expire_file(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.files.retrieve(uploaded.id)
    assert uploaded.id not in [f.id for f in openai_client.files.list()]
