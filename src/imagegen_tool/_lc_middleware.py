"""The LangChain agent middleware that moves preview images out of tool messages for Chat Completions models.

Kept apart from :mod:`imagegen_tool.langchain` because it needs the optional ``langchain`` package (agents and
middleware), which the tool itself does not; ``imagegen_tool.langchain.PreviewsAsUserMessages`` imports it on use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from langchain.agents.middleware import AgentMiddleware, ModelRequest

from .langchain import previews_as_user_messages

__all__ = ["PreviewsAsUserMessages"]


class PreviewsAsUserMessages(AgentMiddleware):
    """For agents whose model is on the Chat Completions API (``ChatOpenAI`` without the Responses API): before
    each model call, image previews in tool messages move into a user message after them, since that API's
    ``tool`` messages take text only. The agent's state keeps the original messages.

    Example::

        agent = create_agent(ChatOpenAI(model="gpt-5-mini"), tools=[ImageGenerationTool(include_image_block=True)],
                             middleware=[PreviewsAsUserMessages()])
    """

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        return handler(request.override(messages=_moved(request)))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[Any]],
    ) -> Any:
        return await handler(request.override(messages=_moved(request)))


def _moved(request: ModelRequest) -> Any:
    return cast("Any", previews_as_user_messages(request.messages))
