"""The LangGraph storyboard template (examples/storyboard/): panels + edits by handle, the approval gates, parallel
panels, and restarts from a durable checkpointer that never pay twice. Real graph, real emulator over HTTP."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from imagegen_tool import ImageGenerator, ImageOptions, LocalImageStore
from imagegen_tool.backends import ResponsesBackend
from imagegen_tool.images import GeneratedImage, ImageRecord
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.testing import Emulator
from tests.templates.loader import EXAMPLES, load_example

storyboard = load_example("storyboard/storyboard.py")

BRIEF = 'a robot gardener <script>alert("x")</script> & friends'
PANELS = 3


def make_tool(
    api: Emulator, root: Path, *, store: LocalImageStore | None = None, **backend: Any
) -> ImageGenerationTool:
    generator = ImageGenerator(
        store=store or LocalImageStore(root),
        backend=ResponsesBackend(base_url=api.url, api_key="test", **backend),
        options=ImageOptions(quality="low", size="1024x1024"),
    )
    return ImageGenerationTool(generator=generator)


def make_graph(tool: ImageGenerationTool, out: Path, checkpointer: Any = None, count: int = PANELS) -> Any:
    return storyboard.build_storyboard(
        tool=tool,
        planner=storyboard.scripted_planner(BRIEF, count),
        reviewer=storyboard.scripted_reviewer(),
        gallery_path=out / "gallery.html",
        checkpointer=checkpointer,
    )


def creates(api: Emulator) -> list[Any]:
    return api.requests_to("/responses", "POST")


CONFIG = {"configurable": {"thread_id": "t1"}}


def test_run_makes_every_panel_and_the_reviewers_edit_by_handle(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    with make_tool(api, tmp_path / "images") as tool:
        graph = make_graph(tool, tmp_path)
        result = storyboard.run(graph, {"brief": BRIEF, "panel_count": PANELS}, CONFIG, lambda question: True)

    panels = result["panels"]
    assert [p["index"] for p in panels] == list(range(PANELS))
    assert all(p["image_id"] and Path(p["path"]).is_file() for p in panels)
    edited = [p for p in panels if p.get("edited_from")]
    assert len(edited) == 1 and edited[0]["index"] == 0
    original = edited[0]["edited_from"][0]
    assert edited[0]["image_id"] != original
    assert len(api.generations) == PANELS + 1  # N panels + 1 edit, each billed once

    # The edit went by handle: it continues the stored response that drew the panel, no image bytes re-sent.
    edit_request = creates(api)[-1].json
    assert edit_request.get("previous_response_id")
    assert "input_image" not in str(edit_request.get("input"))
    assert "base64" not in str(edit_request)

    # The gallery links every current panel by a relative path that resolves, with the text escaped.
    page = (tmp_path / "gallery.html").read_text()
    for panel in panels:
        relative = os.path.relpath(panel["path"], tmp_path)
        assert f'src="{relative}"' in page
        assert (tmp_path / relative).is_file()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert f'src="images/{original}' not in page  # the replaced version is not shown


def test_nothing_is_sent_before_approval_and_rejecting_sends_nothing(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    api = imagegen_emulator
    with make_tool(api, tmp_path / "images") as tool:
        graph = make_graph(tool, tmp_path)
        paused = graph.invoke({"brief": BRIEF, "panel_count": PANELS}, CONFIG)
        question = paused["__interrupt__"][0].value
        assert question["step"] == "draw_panels" and question["billed_images"] == PANELS
        assert api.requests == []  # the plan exists, not a single request went to the image API

        done = graph.invoke(Command(resume={"approved": False}), CONFIG)
    assert api.requests == []
    assert done.get("panels", []) == []
    assert any("rejected" in note for note in done["notes"])
    assert (tmp_path / "gallery.html").is_file()
    assert not list(tmp_path.rglob("*.png"))  # nothing was drawn


def test_rejected_edits_are_not_sent(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    with make_tool(api, tmp_path / "images") as tool:
        graph = make_graph(tool, tmp_path)
        graph.invoke({"brief": BRIEF, "panel_count": PANELS}, CONFIG)
        paused = graph.invoke(Command(resume=True), CONFIG)
        assert paused["__interrupt__"][0].value["step"] == "edit_panels"
        sent = len(api.requests)
        done = graph.invoke(Command(resume=False), CONFIG)
    assert len(api.requests) == sent  # nothing after the rejection
    assert len(api.generations) == PANELS
    assert not any(p.get("edited_from") for p in done["panels"])


class BarrierStore(LocalImageStore):
    """A store whose image writes wait until ``parties`` writers are in ``save`` at the same time: the run passes
    only if the panels' calls really overlap (sequential panels would leave the first writer waiting alone)."""

    def __init__(self, root: Path, parties: int) -> None:
        super().__init__(root)
        self.barrier = threading.Barrier(parties, timeout=30)
        self.met = threading.Event()

    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        if not self.met.is_set():
            self.barrier.wait()  # BrokenBarrierError (a failed panel) if the calls do not overlap
            self.met.set()
        return super().save(data, record)


def test_panels_are_drawn_concurrently(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    store = BarrierStore(tmp_path / "images", PANELS)
    with make_tool(api, tmp_path / "images", store=store) as tool:
        graph = make_graph(tool, tmp_path)
        graph.invoke({"brief": BRIEF, "panel_count": PANELS}, CONFIG)
        paused = graph.invoke(Command(resume=True), CONFIG)
    assert store.met.is_set()
    assert paused["__interrupt__"][0].value["step"] == "edit_panels"
    # Every panel's request reached the emulator before any of their images was stored.
    assert len(creates(api)) == PANELS
    assert len({g.response_id for g in api.generations}) == PANELS


def test_restarts_resume_from_the_checkpointer_without_paying_twice(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    api = imagegen_emulator
    db = tmp_path / "checkpoints.sqlite"

    def session(start: Any) -> dict[str, Any]:
        # A new process in all but name: new connection, saver, graph, tool and HTTP clients each time.
        connection = sqlite3.connect(db, check_same_thread=False)
        try:
            with make_tool(api, tmp_path / "images") as tool:
                return make_graph(tool, tmp_path, SqliteSaver(connection)).invoke(start, CONFIG)
        finally:
            connection.close()

    assert session({"brief": BRIEF, "panel_count": PANELS})["__interrupt__"]
    assert api.requests == []
    assert session(Command(resume=True))["__interrupt__"][0].value["step"] == "edit_panels"
    assert len(api.generations) == PANELS
    done = session(Command(resume=True))
    assert len(done["panels"]) == PANELS and done["gallery"]
    assert len(api.generations) == PANELS + 1  # each panel and the edit paid exactly once
    assert len(creates(api)) == PANELS + 1
    # The checkpoints hold handles, never image bytes (PNG base64 starts with iVBORw0KGgo).
    assert b"iVBORw0KGgo" not in db.read_bytes()


def test_a_failed_panel_stops_the_run_and_resuming_retries_only_that_panel(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    api = imagegen_emulator
    api.fail_next(500, path="/responses")  # one panel's create fails; no retry (max_retries=0), nothing billed
    with make_tool(api, tmp_path / "images", max_retries=0) as tool:
        graph = make_graph(tool, tmp_path)
        graph.invoke({"brief": BRIEF, "panel_count": PANELS}, CONFIG)
        with pytest.raises(storyboard.PanelFailedError):
            graph.invoke(Command(resume=True), CONFIG)
        assert len(api.generations) == PANELS - 1
        resumed = graph.invoke(None, CONFIG)  # after the outage: go on from the checkpoint
        assert resumed["__interrupt__"][0].value["step"] == "edit_panels"
    prompts = [g.prompt for g in api.generations]
    assert len(prompts) == PANELS and len(set(prompts)) == PANELS  # the finished panels were not drawn again
    assert len(creates(api)) == PANELS + 1  # the failed create, then only the missing panel


def test_the_template_runs_offline_as_a_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = "sk-must-not-be-used"  # offline stays on unless IMAGEGEN_OFFLINE=0
    env.pop("IMAGEGEN_OFFLINE", None)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "storyboard" / "storyboard.py"),
            "--out",
            str(out),
            "--panels",
            "2",
            "--db",
            str(tmp_path / "sb.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "offline" in done.stdout
    assert "sk-must-not-be-used" not in done.stdout + done.stderr
    assert (out / "gallery.html").is_file()
    assert len(list((out / "images").glob("*.png"))) == 3  # 2 panels + 1 edit


def test_the_reviewer_can_only_edit_this_storyboards_panels(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage

    from imagegen_tool.testing import ScriptedChatModel

    def review(messages: list[Any]) -> AIMessage:
        first = str(messages[-1].content).split("id ", 1)[1].split(";", 1)[0]
        edits = [
            {"image_id": "ig_someone_elses_image", "instruction": "make it mine"},
            {"image_id": first, "instruction": "warmer light"},
            {"image_id": first, "instruction": "add a bird"},
        ]
        return AIMessage("", tool_calls=[{"name": "Review", "args": {"edits": edits}, "id": "call_review"}])

    api = imagegen_emulator
    with make_tool(api, tmp_path / "images") as tool:
        graph = storyboard.build_storyboard(
            tool=tool,
            planner=storyboard.scripted_planner(BRIEF, 2),
            reviewer=ScriptedChatModel(steps=[review]),
            gallery_path=tmp_path / "gallery.html",
        )
        graph.invoke({"brief": BRIEF, "panel_count": 2}, CONFIG)
        question = graph.invoke(Command(resume=True), CONFIG)["__interrupt__"][0].value
        assert question["billed_images"] == 1  # one edit per panel, the instructions combined
        assert question["edits"][0]["instruction"] == "warmer light; add a bird"
        done = graph.invoke(Command(resume=True), CONFIG)
    assert any("ig_someone_elses_image" in note for note in done["notes"])
    assert "ig_someone_elses_image" not in str([r.json for r in api.requests])
    assert len(api.generations) == 3
