"""The upload cache lives in the store: every worker of a store reuses an uploaded input image, each upload
expires on OpenAI's side (``expires_after``), and an id past its expiry is never sent again."""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from openai import OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator
from imagegen_tool.backends import DEFAULT_UPLOAD_TTL, ResponsesBackend, upload_cache_key
from imagegen_tool.errors import ConfigurationError
from imagegen_tool.testing import Emulator


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def worker(emulator: Emulator, store: str) -> ImageGenerator:
    # store_responses=False: nothing to continue from, so the input bytes must travel through the Files API.
    return ImageGenerator(store=store, base_url=emulator.url, api_key="test-key", store_responses=False)


def uploads(emulator: Emulator) -> list[dict[str, str]]:
    return [dict(r.form or {}) for r in emulator.requests_to("/v1/files", "POST")]


def test_workers_sharing_a_store_upload_an_input_once(imagegen_emulator: Emulator) -> None:
    store = f"memory://uploads-{secrets.token_hex(4)}"
    first, second = worker(imagegen_emulator, store), worker(imagegen_emulator, store)
    first.edit("make it red", photo())
    second.edit("make it green", photo())
    sent = uploads(imagegen_emulator)
    assert len(sent) == 1
    assert sent[0]["expires_after[anchor]"] == "created_at"
    assert sent[0]["expires_after[seconds]"] == str(int(DEFAULT_UPLOAD_TTL.total_seconds()))


async def test_the_async_path_uses_the_same_cache(imagegen_emulator: Emulator) -> None:
    store = f"memory://uploads-{secrets.token_hex(4)}"
    first, second = worker(imagegen_emulator, store), worker(imagegen_emulator, store)
    await first.aedit("make it red", photo())
    await second.aedit("make it green", photo())
    second.edit("make it blue", photo())
    assert len(uploads(imagegen_emulator)) == 1
    await first.aclose()
    await second.aclose()


def test_an_expired_upload_is_uploaded_again(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    store_url = f"memory://uploads-{secrets.token_hex(4)}"
    generator = worker(imagegen_emulator, store_url)
    generator.edit("make it red", photo())
    (file_id,) = imagegen_emulator.files
    key = upload_cache_key(hashlib.sha256(photo()).hexdigest(), openai_client)
    assert generator.store.get_upload(key) == file_id
    # The file expired on OpenAI's side and the cache says so: a new upload, never the stale id.
    imagegen_emulator.expire_file(file_id)
    generator.store.put_upload(key, file_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    generator.edit("make it green", photo())
    assert len(uploads(imagegen_emulator)) == 2
    fresh = generator.store.get_upload(key)
    assert fresh is not None and fresh != file_id


def test_cached_ids_stop_before_the_file_expires(imagegen_emulator: Emulator, openai_client: OpenAI) -> None:
    generator = worker(imagegen_emulator, f"memory://uploads-{secrets.token_hex(4)}")
    generator.edit("make it red", photo())
    (stored,) = imagegen_emulator.files.values()
    assert stored.expires_at is not None
    key = upload_cache_key(hashlib.sha256(photo()).hexdigest(), openai_client)
    raw = generator.store._run(lambda io: io.get(f"uploads/{key}.json"))  # type: ignore[attr-defined]
    import json

    reuse_until = datetime.fromisoformat(json.loads(raw)["expires_at"])
    assert reuse_until < datetime.fromtimestamp(stored.expires_at, UTC)


def test_upload_cache_keys_depend_on_the_endpoint() -> None:
    one = OpenAI(base_url="http://127.0.0.1:1/v1", api_key="k")
    two = OpenAI(base_url="http://127.0.0.1:2/v1", api_key="k", project="proj_2")
    assert upload_cache_key("ab" * 32, one) != upload_cache_key("ab" * 32, two)
    assert len(upload_cache_key("ab" * 32, one)) == 64


def test_upload_ttl_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="1 hour and 30 days"):
        ResponsesBackend(api_key="k", upload_ttl=timedelta(minutes=5))
