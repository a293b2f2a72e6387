"""A storyboard as a LangGraph workflow: plan, approve, draw panels in parallel, review, edit by handle, gallery.

A template to copy. The graph::

    plan ──► approve_panels ──(interrupt: a human approves N billed images)──► draw_panel × N (parallel, Send)
         ──► review ──► approve_edits ──(interrupt: a human approves M billed edits)──► edit_panel × M ──► gallery

* **plan**: a chat model turns the brief into a title and N self-contained panel prompts (structured output).
* **approve_panels / approve_edits**: nothing billed happens before a human says yes. The graph stops with
  LangGraph's ``interrupt`` (the pending question is in ``result["__interrupt__"]``) and goes on with
  ``graph.invoke(Command(resume=True), config)``; ``Command(resume=False)`` (or ``{"approved": False}``) skips the
  billed step and sends nothing. State lives in the checkpointer, so the answer can come from another process
  hours later (``--db storyboard.sqlite``).
* **draw_panel**: one task per panel through ``Send``; LangGraph runs them concurrently. Each calls the image
  tool (:class:`imagegen_tool.langchain.ImageGenerationTool`, through its framework-neutral core) and keeps only
  the handle (id, path, URL, revised prompt) in the graph state, never image bytes: checkpoints stay small.
* **review**: a chat model reads the panels' handles and asks for edits **by image id**; the edit continues from
  the stored response, so no image bytes are sent again.
* **gallery**: an HTML page with every panel (relative file paths, or the store's public URLs), text escaped.

Money: the checkpointer records every finished node, so a resumed run never repeats a paid call that finished;
each panel and edit also records its image under an idempotency key in the store (``store.set_latest``), so a
crash between "image stored" and "checkpoint written" does not pay twice either. A failed panel whose error is
worth retrying stops the run (``PanelFailedError``); ``graph.invoke(None, config)`` later re-runs only that one.

Offline by default: the OpenAI API is the emulator from ``imagegen_tool.testing`` and both chat models are
scripted. Online (billed) with ``OPENAI_API_KEY`` set and ``IMAGEGEN_OFFLINE=0``: the planner and the reviewer
are ``langchain-openai`` chat models (``--agent-model``) and the images come from GPT Image.

    python examples/storyboard/storyboard.py [--out DIR] [--brief TEXT] [--panels N] [--yes] [--db FILE]

Without ``--yes`` the script asks on the terminal before each billed step.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import logging
import operator
import os
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel, Field

from imagegen_tool import GeneratedImage, ImageOptions
from imagegen_tool.errors import ImageNotFoundError
from imagegen_tool.langchain import ImageGenerationTool

logger = logging.getLogger(__name__)

__all__ = [
    "EditRequest",
    "Panel",
    "PanelFailedError",
    "Review",
    "StoryboardPlan",
    "StoryboardState",
    "build_storyboard",
    "scripted_planner",
    "scripted_reviewer",
    "write_gallery",
]

MAX_PANELS = 12


# -- what the chat models produce (structured output) -------------------------------------------------------


class StoryboardPlan(BaseModel):
    """The storyboard the planner proposes."""

    title: str = Field(description="A short title for the storyboard.")
    panels: list[str] = Field(
        description="One image prompt per panel, in story order. Each prompt is self-contained: the image model "
        "sees only that prompt, so repeat the characters' looks, the setting and the style in every one."
    )


class EditRequest(BaseModel):
    """One change the reviewer wants, to one image named by its id."""

    image_id: str = Field(description="The id of the panel image to change, exactly as listed.")
    instruction: str = Field(description="What to change, and what must stay the same.")


class Review(BaseModel):
    """The reviewer's verdict: the edits to make (none when every panel is fine)."""

    edits: list[EditRequest] = Field(default_factory=list)


# -- graph state: handles only, JSON-friendly (checkpointers store it) --------------------------------------


class Panel(TypedDict, total=False):
    index: int
    prompt: str
    image_id: str | None
    path: str | None
    url: str | None
    size: str | None
    revised_prompt: str | None
    error: str | None
    """The agent-facing message when the panel could not be drawn (moderation, invalid request)."""
    edited_from: list[str]
    """Ids of the earlier versions of this panel, oldest first."""


def _merge_panels(current: list[Panel], update: list[Panel]) -> list[Panel]:
    """Panels by index: a later write for the same panel (its edit) replaces the earlier one."""
    merged = {panel["index"]: panel for panel in current or []}
    for panel in update or []:
        merged[panel["index"]] = {**merged.get(panel["index"], {}), **panel}
    return [merged[index] for index in sorted(merged)]


class StoryboardState(TypedDict, total=False):
    brief: str
    panel_count: int
    title: str
    prompts: list[str]
    panels: Annotated[list[Panel], _merge_panels]
    edits: list[dict[str, str]]
    """The edits the reviewer asked for (image_id, instruction)."""
    notes: Annotated[list[str], operator.add]
    """What happened that the user should know (rejected steps, skipped edits)."""
    gallery: str


class PanelTask(TypedDict):
    """What one ``Send`` hands to ``draw_panel`` / ``edit_panel``."""

    index: int
    prompt: str
    image_id: str | None


class PanelFailedError(RuntimeError):
    """A panel could not be made for a reason worth retrying (service down, connection lost): the run stops here,
    the finished panels are kept in the checkpoint, and ``graph.invoke(None, config)`` retries only this one."""


# -- the graph ----------------------------------------------------------------------------------------------

PLANNER_PROMPT = (
    "You plan storyboards. Split the user's brief into exactly {count} panels and write one image prompt per "
    "panel. Keep the characters, the setting and the visual style consistent across the panels."
)
REVIEWER_PROMPT = (
    "You review storyboard panels for consistency with the brief. For each panel that needs a change, give its "
    "image id and a precise edit instruction. Ask for no edit when a panel is fine."
)


def build_storyboard(
    *,
    tool: ImageGenerationTool,
    planner: BaseChatModel,
    reviewer: BaseChatModel,
    gallery_path: str | os.PathLike[str],
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    max_edits: int = 4,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled storyboard graph.

    Args:
        tool: the image tool (its store holds the panels; its options, e.g. quality and size, apply to all).
        planner, reviewer: chat models with structured output (any provider; scripted ones offline).
        gallery_path: where the HTML gallery is written (panels are linked relative to it, or by URL).
        checkpointer: where the graph's state is kept between the interrupts; a durable one
            (``SqliteSaver``, ``PostgresSaver``) lets the approval come from another process.
        max_edits: at most this many edits per review (each is a billed image).
    """
    core = tool.core
    store = core.generator.store
    gallery_file = Path(gallery_path)

    def plan(state: StoryboardState) -> dict[str, Any]:
        count = state.get("panel_count", 4)
        if not 1 <= count <= MAX_PANELS:
            raise ValueError(f"panel_count must be 1 to {MAX_PANELS}, not {count}")
        structured = planner.with_structured_output(StoryboardPlan)
        proposal = structured.invoke([SystemMessage(PLANNER_PROMPT.format(count=count)), HumanMessage(state["brief"])])
        if not isinstance(proposal, StoryboardPlan):
            proposal = StoryboardPlan.model_validate(proposal)
        prompts = [" ".join(p.split()) for p in proposal.panels if p.strip()][:count]
        if not prompts:
            raise ValueError("the planner proposed no panel prompts")
        return {"title": proposal.title.strip() or "Storyboard", "prompts": prompts}

    def approve_panels(state: StoryboardState) -> Command[Any]:
        # Everything before interrupt() runs again on resume: keep it free of side effects.
        prompts = state["prompts"]
        answer = interrupt(
            {
                "step": "draw_panels",
                "question": f"Draw {len(prompts)} panels? Each is a billed image.",
                "title": state["title"],
                "prompts": prompts,
                "billed_images": len(prompts),
            }
        )
        if not _approved(answer):
            return Command(goto="gallery", update={"notes": ["panels rejected: no image was requested"]})
        sends = [Send("draw_panel", PanelTask(index=i, prompt=p, image_id=None)) for i, p in enumerate(prompts)]
        return Command(goto=sends)

    def draw_panel(task: PanelTask, config: RunnableConfig) -> dict[str, Any]:
        key = _task_key(config, "panel", task["index"], task["prompt"])
        image, error = _make_image(key, {"prompt": task["prompt"]})
        panel = Panel(index=task["index"], prompt=task["prompt"], error=error, **_handle_fields(image))
        return {"panels": [panel]}

    def review(state: StoryboardState) -> dict[str, Any]:
        panels = [p for p in state.get("panels", []) if p.get("image_id")]
        if not panels:
            return {"edits": []}
        listing = "\n".join(
            f"Panel {p['index'] + 1}: id {p['image_id']}; prompt: {p['prompt']}"
            + (f"; the image model drew: {p['revised_prompt']}" if p.get("revised_prompt") else "")
            for p in panels
        )
        structured = reviewer.with_structured_output(Review)
        verdict = structured.invoke(
            [SystemMessage(REVIEWER_PROMPT), HumanMessage(f"Brief: {state['brief']}\n\n{listing}")]
        )
        if not isinstance(verdict, Review):
            verdict = Review.model_validate(verdict)
        known = {p["image_id"] for p in panels}
        wanted: dict[str, list[str]] = {}  # one edit per panel: parallel edits of one image would race
        notes = []
        for edit in verdict.edits:
            instruction = edit.instruction.strip()
            # A model may name an id that is not on this storyboard: never edit what we did not draw here.
            if edit.image_id not in known:
                notes.append(f"edit skipped: {edit.image_id!r} is not a panel of this storyboard")
            elif edit.image_id not in wanted and len(wanted) >= max_edits:
                notes.append(f"edit skipped: at most {max_edits} edits per review")
            elif instruction:
                wanted.setdefault(edit.image_id, []).append(instruction)
        edits = [{"image_id": image_id, "instruction": "; ".join(parts)} for image_id, parts in wanted.items()]
        return {"edits": edits, "notes": notes}

    def approve_edits(state: StoryboardState) -> Command[Any]:
        edits = state.get("edits", [])
        if not edits:
            return Command(goto="gallery")
        answer = interrupt(
            {
                "step": "edit_panels",
                "question": f"Make {len(edits)} edits? Each is a billed image.",
                "edits": edits,
                "billed_images": len(edits),
            }
        )
        if not _approved(answer):
            return Command(goto="gallery", update={"notes": ["edits rejected: no edit was requested"]})
        by_id = {p["image_id"]: p for p in state.get("panels", []) if p.get("image_id")}
        sends = [
            Send(
                "edit_panel",
                PanelTask(index=by_id[e["image_id"]]["index"], prompt=e["instruction"], image_id=e["image_id"]),
            )
            for e in edits
        ]
        return Command(goto=sends)

    def edit_panel(task: PanelTask, config: RunnableConfig) -> dict[str, Any]:
        source = task["image_id"] or ""
        key = _task_key(config, "edit", source, task["prompt"])
        # By handle: the tool continues from the stored response that made the image; no bytes are re-sent.
        image, error = _make_image(key, {"prompt": task["prompt"], "image_ids": [source]})
        if image is None:
            return {"notes": [f"edit of panel {task['index'] + 1} failed: {error}"]}
        panel = Panel(index=task["index"], edited_from=[source], error=None, **_handle_fields(image))
        return {"panels": [panel]}

    def gallery(state: StoryboardState) -> dict[str, Any]:
        write_gallery(gallery_file, state.get("title", "Storyboard"), state.get("panels", []), state.get("notes", []))
        return {"gallery": str(gallery_file)}

    def _make_image(key: str, arguments: Mapping[str, Any]) -> tuple[GeneratedImage | None, str | None]:
        done = _already_made(key)
        if done is not None:
            logger.info("reusing %s for %s (made before a restart)", done.id, key)
            return done, None
        output = core.call_safely(arguments)
        if output.is_error:
            if output.error is None or output.error.retryable:
                raise PanelFailedError(output.text)
            return None, output.text  # moderation, invalid request: retrying the same call would not help
        image = output.images[0]
        store.set_latest(key, image.id)
        return image, None

    def _already_made(key: str) -> GeneratedImage | None:
        image_id = store.latest(key)
        if image_id is None:
            return None
        try:
            return store.get(image_id)
        except ImageNotFoundError:
            return None

    graph = StateGraph(StoryboardState)
    graph.add_node("plan", plan)
    graph.add_node("approve_panels", approve_panels, destinations=("draw_panel", "gallery"))
    graph.add_node("draw_panel", draw_panel)
    graph.add_node("review", review)
    graph.add_node("approve_edits", approve_edits, destinations=("edit_panel", "gallery"))
    graph.add_node("edit_panel", edit_panel)
    graph.add_node("gallery", gallery)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "approve_panels")
    graph.add_edge("draw_panel", "review")
    graph.add_edge("review", "approve_edits")
    graph.add_edge("edit_panel", "gallery")
    graph.add_edge("gallery", END)
    return graph.compile(checkpointer=checkpointer or InMemorySaver())


def _approved(answer: object) -> bool:
    """``True``/``"yes"``/``{"approved": True}`` approve; anything else (no answer, ``False``, ...) rejects."""
    if isinstance(answer, Mapping):
        answer = answer.get("approved")
    if isinstance(answer, str):
        return answer.strip().lower() in {"y", "yes", "approve", "approved", "true"}
    return answer is True


def _task_key(config: RunnableConfig, kind: str, ref: object, prompt: str) -> str:
    """A per-run idempotency key: the same panel of the same thread maps to the same stored image."""
    thread = (config.get("configurable") or {}).get("thread_id", "")
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    return f"storyboard:{thread}:{kind}:{ref}:{digest}"


def _handle_fields(image: GeneratedImage | None) -> dict[str, Any]:
    if image is None:
        return {"image_id": None, "path": None, "url": None, "size": None, "revised_prompt": None}
    size = f"{image.width}x{image.height}" if image.width and image.height else None
    return {
        "image_id": image.id,
        "path": image.path,
        "url": image.url,
        "size": size,
        "revised_prompt": image.revised_prompt,
    }


# -- the gallery page -----------------------------------------------------------------------------------------


def write_gallery(path: Path, title: str, panels: list[Panel], notes: list[str]) -> None:
    """An HTML page with each panel (image, prompt, edits), every text escaped; images by relative path from the
    page (or by the store's public URL). Written atomically: a reader never sees half a page."""
    figures = []
    for panel in panels:
        caption = f"<figcaption><b>Panel {panel['index'] + 1}</b> {html.escape(panel.get('prompt', ''))}"
        if panel.get("edited_from"):
            caption += f" <i>(edited from {html.escape(', '.join(panel['edited_from']))})</i>"
        caption += "</figcaption>"
        source = _image_src(path.parent, panel)
        if source is not None:
            alt = html.escape(panel.get("revised_prompt") or panel.get("prompt", ""), quote=True)
            body = f'<img src="{html.escape(source, quote=True)}" alt="{alt}" loading="lazy">'
        else:
            body = f'<p class="error">{html.escape(panel.get("error") or "not drawn")}</p>'
        figures.append(f'<figure id="panel-{panel["index"] + 1}">{body}{caption}</figure>')
    note_items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}main{display:grid;"
        "grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem}img{width:100%;height:auto}"
        "figure{margin:0}.error{color:#b00}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><main>{''.join(figures)}</main>"
        + (f'<ul class="notes">{note_items}</ul>' if note_items else "")
        + "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temp.write_text(page, encoding="utf-8")
    os.replace(temp, path)


def _image_src(page_dir: Path, panel: Panel) -> str | None:
    if panel.get("url"):
        return panel["url"]
    if not panel.get("path"):
        return None
    relative = os.path.relpath(panel["path"] or "", page_dir)
    return Path(relative).as_posix()


# -- offline: scripted chat models --------------------------------------------------------------------------


def scripted_planner(brief: str, count: int) -> BaseChatModel:
    """The offline planner: N prompts derived from the brief, as a structured-output tool call."""
    from imagegen_tool.testing import ScriptedChatModel

    beats = ["the opening scene", "the problem appears", "the turning point", "the resolution", "the epilogue"]

    def propose(messages: list[BaseMessage]) -> AIMessage:
        panels = [f"{brief}; panel {i + 1}: {beats[i % len(beats)]}; flat illustration" for i in range(count)]
        args = {"title": brief[:60], "panels": panels}
        return AIMessage("", tool_calls=[{"name": "StoryboardPlan", "args": args, "id": "call_plan"}])

    return ScriptedChatModel(steps=[propose])


def scripted_reviewer(instruction: str = "make the lighting warmer; keep everything else") -> BaseChatModel:
    """The offline reviewer: asks for one edit of the first panel, by the id it reads in the listing."""
    from imagegen_tool.testing import ScriptedChatModel

    def review(messages: list[BaseMessage]) -> AIMessage:
        listing = str(messages[-1].content)
        first = listing.split("id ", 1)[1].split(";", 1)[0] if "id " in listing else ""
        edits = [{"image_id": first, "instruction": instruction}] if first else []
        return AIMessage("", tool_calls=[{"name": "Review", "args": {"edits": edits}, "id": "call_review"}])

    return ScriptedChatModel(steps=[review])


# -- the command line -----------------------------------------------------------------------------------------


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


@contextlib.contextmanager
def image_service(offline: bool) -> Iterator[dict[str, Any]]:
    """Client settings for the tool: the emulator's address offline, the SDK's defaults (OPENAI_API_KEY) online."""
    if not offline:
        yield {}
        return
    from imagegen_tool.testing import Emulator

    with Emulator() as api:
        yield {"base_url": api.url, "api_key": "offline"}


@contextlib.contextmanager
def checkpointer_for(db: str | None) -> Iterator[BaseCheckpointSaver[Any]]:
    """A SQLite checkpointer (the run survives a restart) or an in-memory one."""
    if db is None:
        yield InMemorySaver()
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    connection = sqlite3.connect(db, check_same_thread=False)  # LangGraph runs parallel nodes in threads
    try:
        yield SqliteSaver(connection)
    finally:
        connection.close()


def ask(question: Mapping[str, Any], assume_yes: bool) -> bool:
    print(f"\n[approval] {question['question']}")
    for line in question.get("prompts", []) or [f"{e['image_id']}: {e['instruction']}" for e in question["edits"]]:
        print(f"    - {line}")
    if assume_yes:
        print("    approved (--yes)")
        return True
    return input("    approve? [y/N] ").strip().lower() in {"y", "yes"}


def run(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    start: Any,
    config: RunnableConfig,
    decide: Callable[[Mapping[str, Any]], bool],
) -> dict[str, Any]:
    """Run until the end, answering each approval question with ``decide``."""
    result: dict[str, Any] = graph.invoke(start, config)
    while result.get("__interrupt__"):
        question = result["__interrupt__"][0].value
        result = graph.invoke(Command(resume={"approved": decide(question)}), config)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="storyboard", help="directory for the images and gallery.html")
    parser.add_argument("--brief", default="a fox who learns to fly a paper kite on a windy hill")
    parser.add_argument("--panels", type=int, default=4, help=f"number of panels (1-{MAX_PANELS})")
    parser.add_argument("--yes", action="store_true", help="approve every billed step without asking")
    parser.add_argument("--db", help="SQLite file for the checkpoints (resume after a restart with --thread)")
    parser.add_argument("--thread", help="thread id to resume (default: a new one)")
    parser.add_argument("--agent-model", default="gpt-5.4-mini", help="planner/reviewer chat model when online")
    args = parser.parse_args()

    offline = offline_mode()
    print("mode:", "offline (emulated OpenAI API, scripted planner and reviewer)" if offline else "online (billed)")
    if offline:
        print("      for OpenAI: export OPENAI_API_KEY=sk-... IMAGEGEN_OFFLINE=0")
        planner, reviewer = scripted_planner(args.brief, args.panels), scripted_reviewer()
        assume_yes = True  # nothing is billed offline; the approval questions are still printed
    else:
        from langchain_openai import ChatOpenAI

        planner = reviewer = ChatOpenAI(model=args.agent_model)
        assume_yes = args.yes
    out = Path(args.out)
    thread = args.thread or uuid.uuid4().hex
    with image_service(offline) as client, checkpointer_for(args.db) as saver:
        tool = ImageGenerationTool(
            store=out / "images", options=ImageOptions(quality="low", size="1024x1024"), **client
        )
        with tool:
            graph = build_storyboard(
                tool=tool, planner=planner, reviewer=reviewer, gallery_path=out / "gallery.html", checkpointer=saver
            )
            config: RunnableConfig = {"configurable": {"thread_id": thread}}
            resuming = args.thread is not None and graph.get_state(config).next
            start = None if resuming else {"brief": args.brief, "panel_count": args.panels}
            result = run(graph, start, config, lambda q: ask(q, assume_yes))
    for panel in result.get("panels", []):
        state = panel.get("image_id") or f"failed: {panel.get('error')}"
        print(f"panel {panel['index'] + 1}: {state}" + (" (edited)" if panel.get("edited_from") else ""))
    for note in result.get("notes", []):
        print(f"note: {note}")
    print(f"gallery: {Path(result['gallery']).resolve()}  (thread {thread})")
    return 0 if all(p.get("image_id") for p in result.get("panels", [])) else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
