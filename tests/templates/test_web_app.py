"""The live web page template (examples/web/): the event stream (partials, then the final image, by URL), edits by
handle, errors with the agent message, disconnects that keep the paid image, and the image route's confinement.
The app runs under uvicorn on a loopback port, the emulator behind it, both over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import starlette  # noqa: F401 - the template's server (the [web] extra); left out where it is not installed

from imagegen_tool.testing import Emulator
from tests.templates.loader import EXAMPLES, load_example

web = load_example("web/app.py")


@pytest.fixture
def served(imagegen_emulator: Emulator, tmp_path: Path) -> Iterator[tuple[str, Any, Emulator]]:
    tool, store = web.make_tool(tmp_path / "store", base_url=imagegen_emulator.url, api_key="test")
    with web.AppServer(web.create_app(tool, store)) as server:
        yield server.url, store, imagegen_emulator


def start(url: str, prompt: str, image_id: str | None = None) -> str:
    body: dict[str, Any] = {"prompt": prompt}
    if image_id:
        body["image_id"] = image_id
    answer = httpx.post(f"{url}/api/draw", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["events"])


def events(url: str, path: str, *, stop_after: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Read the event stream until the drawing ends (or until the first ``stop_after`` event: then hang up)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    with httpx.stream("GET", url + path, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                seen.append((kind, json.loads(line[6:])))
                if kind in ("final", "failed") or kind == stop_after:
                    return seen
    return seen


def test_partials_then_the_final_image_each_served_by_url(served: tuple[str, Any, Emulator]) -> None:
    url, store, _ = served
    seen = events(url, start(url, "a lighthouse at dusk"))
    kinds = [kind for kind, _ in seen]
    assert kinds.count("partial") == 2 and kinds[-1] == "final"
    assert kinds.index("partial") < kinds.index("final")
    partial_bytes = []
    for kind, data in seen:
        if kind == "partial":
            assert data["url"].startswith("/images/.partials/")
            got = httpx.get(url + data["url"])
            assert got.status_code == 200 and got.headers["content-type"] == "image/png"
            assert got.headers["x-content-type-options"] == "nosniff"
            partial_bytes.append(got.content)
    final = seen[-1][1]["images"][0]
    assert final.get("path") is None  # the page gets URLs, never the server's file paths
    got = httpx.get(url + final["url"])
    assert got.content == store.read_bytes(final["id"])  # the stored image, through its handle's public URL
    assert len(set(partial_bytes) | {got.content}) == 3  # each step shows a different picture
    assert "base64" not in json.dumps(seen)  # the page loads images by URL, the stream carries no bytes


def test_follow_up_edit_by_handle(served: tuple[str, Any, Emulator]) -> None:
    url, _, api = served
    first = events(url, start(url, "a lighthouse at dusk"))[-1][1]["images"][0]
    edited = events(url, start(url, "add a full moon", image_id=first["id"]))[-1]
    assert edited[0] == "final", edited
    assert edited[1]["images"][0]["input_ids"] == [first["id"]]
    body = api.requests_to("/responses", "POST")[-1].json
    assert body.get("previous_response_id") and "input_image" not in str(body.get("input"))


def test_errors_reach_the_page_with_the_agent_message(served: tuple[str, Any, Emulator]) -> None:
    url, _, api = served
    blocked = events(url, start(url, "something forbidden"))[-1]  # the emulator's moderation trigger word
    assert blocked[0] == "failed" and "rephrase" in blocked[1]["error"].lower()
    unknown = events(url, start(url, "edit it", image_id="ig_doesnotexist"))[-1]
    assert unknown[0] == "failed" and "ig_doesnotexist" in unknown[1]["error"]
    sent = len(api.requests)
    for bad in ({"prompt": ""}, {"prompt": 3}, {"prompt": "x", "image_id": "../etc/passwd"}):
        answer = httpx.post(f"{url}/api/draw", json=bad)
        assert answer.status_code == 400 and answer.json()["error"]
    assert httpx.post(f"{url}/api/draw", content=b"not json").status_code == 400
    assert len(api.requests) == sent  # refused before any request


def test_a_closed_page_does_not_lose_the_paid_image(served: tuple[str, Any, Emulator]) -> None:
    url, store, api = served
    api.set_partial_delay(0.3)
    path = start(url, "a kite over hills")
    first = events(url, path, stop_after="partial")  # the page closes after the first preview
    assert first[-1][0] == "partial"
    job = path.split("/")[3]
    deadline = time.monotonic() + 60
    while not (status := httpx.get(f"{url}/api/jobs/{job}").json())["done"] and time.monotonic() < deadline:
        time.sleep(0.1)
    final = status["events"][-1]
    assert final["event"] == "final"
    image_id = final["data"]["images"][0]["id"]
    assert store.get(image_id).byte_size > 0
    assert len(api.generations) == 1
    # A page coming back replays the drawing from its last seen event (EventSource's Last-Event-ID).
    last_seen = len(first) - 1  # events are numbered from 0 in stream order
    with httpx.stream("GET", url + path, headers={"Last-Event-ID": str(last_seen)}) as response:
        text = response.read().decode()
    assert "event: final" in text and f"id: {last_seen}\n" not in text
    # Once a page has seen everything, 204: an EventSource stops reconnecting to a finished drawing.
    final_id = len(status["events"]) - 1
    assert httpx.get(url + path, headers={"Last-Event-ID": str(final_id)}).status_code == 204


def test_the_image_route_serves_only_images_under_the_store_root(
    served: tuple[str, Any, Emulator], tmp_path: Path
) -> None:
    url, store, _ = served
    final = events(url, start(url, "a lighthouse at dusk"))[-1][1]["images"][0]
    secret = tmp_path / "secret.png"
    secret.write_bytes(store.read_bytes(final["id"]))
    os.symlink(secret, store.root / "ig_escape.png")  # a link inside the root that points outside
    (store.root / ".sessions").mkdir(exist_ok=True)
    for path in (
        "/images/../pyproject.toml",
        "/images/..%2f..%2fetc%2fpasswd",
        "/images/%2e%2e/secret.png",
        "/images//etc/passwd",
        f"/images/{final['id']}.json",  # the record beside the image
        "/images/ig_escape.png",
        "/images/.sessions/x.png",
        "/images/.partials/a/b.partial-0.png",  # a partial outside its own call's folder
        "/images/.tmp/x.png",
        "/images/",
    ):
        answer = httpx.get(url + path)
        assert answer.status_code == 404, path
    assert httpx.get(url + final["url"]).status_code == 200


def test_the_template_serves_offline_as_a_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = "sk-must-not-be-used"  # offline stays on unless IMAGEGEN_OFFLINE=0
    env.pop("IMAGEGEN_OFFLINE", None)
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "web" / "app.py"),
            "--out",
            str(tmp_path / "store"),
            "--port",
            "0",
            "--partial-delay",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url, printed = web_url(process)
        page = httpx.get(url + "/")
        assert page.status_code == 200 and "<form" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert events(url, start(url, "a red kite"))[-1][0] == "final"
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    output = printed + output
    assert "offline" in output and "sk-must-not-be-used" not in output
    assert len(list((tmp_path / "store").glob("*.png"))) == 1


def web_url(process: subprocess.Popen[str]) -> tuple[str, str]:
    """The app's URL from its "serving on" line, and what it printed up to there."""
    assert process.stdout is not None
    printed = ""
    for line in process.stdout:
        printed += line
        if line.startswith("serving on "):
            return line.split()[2], printed
    raise AssertionError(f"the web template did not start: {printed}")
