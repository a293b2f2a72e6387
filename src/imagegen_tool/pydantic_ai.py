"""The pydantic-ai adapter: the image tool as a pydantic-ai ``Tool`` and ``FunctionToolset``.

Everything the agent sees and sends comes from the framework-neutral core
(:class:`~imagegen_tool.agent_tool.AgentImageTool`): the argument schema (the core's portable JSON schema, used
as is), the lenient argument parsing (``null``/``""`` = not given), the agent error messages and the previews.
This module only converts to pydantic-ai's types:

* the **typed return** is the structured result model :class:`~imagegen_tool.agent_tool.ToolResult` (handles,
  never bytes), wrapped in a ``ToolReturn`` whose ``metadata`` holds the full
  :class:`~imagegen_tool.GeneratedImage` handles for the program (pydantic-ai never sends ``metadata`` to the
  model);
* arguments the agent can fix (invalid options, an unknown or malformed image id, a bad mask) raise
  ``ModelRetry`` with the agent message, so the model is asked to correct its call (within the tool's retry
  budget); failures it cannot fix by changing arguments (moderation, quota, the service, storage, configuration)
  raise ``ToolFailed``: the model reads what happened and what to do next (rephrase, tell the user), and no
  retry budget is spent;
* previews are sent as ``BinaryContent`` only when the developer turns them on (``include_preview=True`` on the
  core), in the return's ``content`` (a user part after the tool result, which every provider accepts).

The framework is an optional extra (``pip install 'imagegen-tool[pydantic-ai]'``); ``import imagegen_tool`` never
imports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pydantic_ai import BinaryContent, FunctionToolset, ModelRetry, RunContext, Tool, ToolReturn
from pydantic_ai.exceptions import ToolFailed

from .agent_tool import AgentImageTool, ToolOutput, agent_error_message
from .errors import ConfigurationError, ImageGenerationError, InvalidInputError, InvalidOptionsError

__all__ = ["ImageToolset", "image_tool", "raise_for_agent"]

logger = logging.getLogger(__name__)

#: Reads a conversation key from the run context (``ctx.deps``) for the core's ``thread_sessions``.
ThreadIdFunction = Callable[[RunContext[Any]], object]
#: Reads the end user of a run from its context (``ctx.deps``), sent as the call's ``safety_identifier``.
SafetyIdentifierFunction = Callable[[RunContext[Any]], str | None]
#: Called with each typed error before the model is told about it (to record or count failures).
ErrorCallback = Callable[[ImageGenerationError], object]
#: Picks the tool core of a run from its context (``ctx.deps``): a per-user or per-tenant store.
CoreFunction = Callable[[RunContext[Any]], AgentImageTool]


def raise_for_agent(error: ImageGenerationError, *, tool_name: str = "the tool") -> None:
    """Raise what pydantic-ai should do with a failed call: ``ModelRetry`` when the agent can fix its arguments
    (invalid options or inputs, including invalid tool arguments), ``ToolFailed`` otherwise. Both carry the
    agent error message."""
    message = agent_error_message(error, tool_name=tool_name)
    if isinstance(error, InvalidOptionsError | InvalidInputError):
        raise ModelRetry(message) from error
    raise ToolFailed(message) from error


def image_tool(
    tool: AgentImageTool | None = None,
    *,
    thread_id: ThreadIdFunction | None = None,
    core_for: CoreFunction | None = None,
    safety_identifier_for: SafetyIdentifierFunction | None = None,
    on_error: ErrorCallback | None = None,
    sync: bool = False,
    max_retries: int | None = None,
    requires_approval: bool = False,
    **core_settings: Any,
) -> Tool[Any]:
    """The image tool as a pydantic-ai ``Tool`` (works with any deps type; see :class:`ImageToolset` for a toolset
    that also closes the core's clients).

    Example::

        from pydantic_ai import Agent
        from imagegen_tool.agent_tool import AgentImageTool
        from imagegen_tool.pydantic_ai import image_tool

        core = AgentImageTool(store="images/", display="id")
        agent = Agent("openai:gpt-5.4-mini", tools=[image_tool(core)])
        result = await agent.run("Draw a red kite")
        await core.aclose()

    Args:
        tool: the tool core; without it one is made from ``core_settings`` (the keyword arguments of
            :class:`~imagegen_tool.agent_tool.AgentImageTool`).
        thread_id: reads a conversation key from the run context, e.g. ``lambda ctx: ctx.deps.conversation_id``,
            for the core's ``thread_sessions`` (continue from the conversation's latest image).
        core_for: picks the core of each run from its context, e.g. ``lambda ctx: ctx.deps.images`` for a store per
            user; ``tool`` then only defines what the model sees (name, description, schema), and a core whose
            schema differs from it is refused (a configuration error the developer sees, never the model). The
            cores ``core_for`` returns are the caller's to close.
        safety_identifier_for: reads the end user of a run from its context, e.g. ``lambda ctx: ctx.deps.user_hash``,
            sent as that call's ``safety_identifier`` instead of the core's own (one tool for many users). A value
            that is not a string, is empty or too long, or looks like an API key fails the call (``ToolFailed``)
            before anything is sent.
        on_error: called with each typed error (the model is told via ``ModelRetry``/``ToolFailed`` regardless).
        sync: run the core's blocking path (the sync ``OpenAI`` client) in a worker thread.
        max_retries: how many ``ModelRetry`` corrections the model gets (default: the agent's).
        requires_approval: defer each call for a human's approval before anything is billed.
    """
    if tool is None:
        tool = AgentImageTool(**core_settings)
    elif core_settings:
        raise TypeError(f"pass either a tool core or its settings, not both: {', '.join(sorted(core_settings))}")
    template = tool
    schema = template.json_schema()

    async def generate_image(ctx: RunContext[Any], **arguments: Any) -> ToolReturn:
        core = template if core_for is None else _checked_core(core_for(ctx), template, schema)
        key = thread_id(ctx) if thread_id is not None else None
        try:
            user = safety_identifier_for(ctx) if safety_identifier_for is not None else None
            if sync:
                output = await asyncio.to_thread(core.call, arguments, thread_id=key, safety_identifier=user)
            else:
                output = await core.acall(arguments, thread_id=key, safety_identifier=user)
        except ImageGenerationError as exc:
            logger.info("%s failed: %s", core.name, exc)
            if on_error is not None:
                on_error(exc)
            raise_for_agent(exc, tool_name=core.name)
            raise  # unreachable: raise_for_agent always raises
        return tool_return(output)

    made: Tool[Any] = Tool.from_schema(
        generate_image,
        name=template.name,
        description=template.description,
        json_schema=schema,
        takes_ctx=True,
    )
    made.max_retries = max_retries
    made.requires_approval = requires_approval
    return made


def _checked_core(core: AgentImageTool, template: AgentImageTool, schema: dict[str, Any]) -> AgentImageTool:
    if not isinstance(core, AgentImageTool):
        raise ConfigurationError(f"core_for must return an AgentImageTool, not {type(core).__name__}")
    if core is not template and (core.name != template.name or core.json_schema() != schema):
        raise ConfigurationError(
            f"the core picked for this run ({core!r}) does not take the arguments the model was shown: give it "
            "the same options, exposed_options and allow_inputs as the tool's"
        )
    return core


def tool_return(output: ToolOutput) -> ToolReturn:
    """The pydantic-ai ``ToolReturn`` of a successful call: the :class:`~imagegen_tool.agent_tool.ToolResult` as
    the value, the ``GeneratedImage`` handles as metadata, and the previews (if any) as ``BinaryContent``."""
    content: list[Any] | None = None
    if output.previews:
        content = [f"Previews of the images returned by {len(output.previews)} image tool call result(s):"]
        content.extend(BinaryContent(data=preview.data, media_type=preview.mime_type) for preview in output.previews)
    return ToolReturn(return_value=output.structured(), content=content, metadata=output.images)


class ImageToolset(FunctionToolset[Any]):
    """A ``FunctionToolset`` holding the image tool, owning the core's lifecycle.

    Example::

        from pydantic_ai import Agent
        from imagegen_tool.pydantic_ai import ImageToolset

        images = ImageToolset(store="images/", options={"quality": "low"})
        agent = Agent("openai:gpt-5.4-mini", toolsets=[images])
        result = await agent.run("Draw a red kite, then make it blue")

    Arguments are those of :func:`image_tool` (the core or its settings, ``thread_id``, ``on_error``, ...).
    ``core`` is the :class:`~imagegen_tool.agent_tool.AgentImageTool`. pydantic-ai enters the toolset for each
    run; when the last run leaves it, the HTTP clients the core made are closed (they are made again on the next
    call), so no connection outlives a run. ``async with images:`` around several runs keeps them open in between;
    :meth:`close`/:meth:`aclose` close them at any time.
    """

    def __init__(
        self,
        tool: AgentImageTool | None = None,
        *,
        thread_id: ThreadIdFunction | None = None,
        core_for: CoreFunction | None = None,
        safety_identifier_for: SafetyIdentifierFunction | None = None,
        on_error: ErrorCallback | None = None,
        sync: bool = False,
        max_retries: int | None = None,
        requires_approval: bool = False,
        id: str | None = None,
        **core_settings: Any,
    ) -> None:
        self.core = tool if tool is not None else AgentImageTool(**core_settings)
        if tool is not None and core_settings:
            raise TypeError(f"pass either a tool core or its settings, not both: {', '.join(sorted(core_settings))}")
        made = image_tool(
            self.core,
            thread_id=thread_id,
            core_for=core_for,
            safety_identifier_for=safety_identifier_for,
            on_error=on_error,
            sync=sync,
            max_retries=max_retries,
            requires_approval=requires_approval,
        )
        super().__init__([made], id=id)
        self._entered = 0

    async def __aenter__(self) -> ImageToolset:
        self._entered += 1
        await super().__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> bool | None:
        result = await super().__aexit__(*args)
        self._entered -= 1
        if self._entered == 0:
            # The last user left: close the connections now rather than leave them to the garbage collector.
            # Closing is reversible (clients and store handles are made again on the next call), so a later
            # run works as before.
            await self.core.aclose()
        return result

    def close(self) -> None:
        """Close the HTTP clients the core made (a generator passed to the core stays open)."""
        self.core.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.core.aclose()
