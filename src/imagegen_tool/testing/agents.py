"""A scripted tool-calling chat model, for running real LangChain / LangGraph agents offline.

Each turn of :class:`ScriptedChatModel` is a function of the conversation so far, so a script can read the
previous ``ToolMessage`` (for instance the image id the tool returned) and act on it, as a real model would.
``bind_tools`` converts every tool to an OpenAI function schema first, as provider integrations do, so a tool
whose schema does not convert fails here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

__all__ = ["ScriptedChatModel", "Step"]

#: One turn of the script: the messages so far in, the model's reply out.
Step = Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """Replies with ``steps[n]`` on its n-th turn (n = the number of AI messages already in the conversation).

    Example::

        model = ScriptedChatModel(steps=[
            lambda messages: AIMessage("", tool_calls=[{"name": "generate_image", "args": {"prompt": "a kite"},
                                                         "id": "call_1"}]),
            lambda messages: AIMessage("Done."),
        ])
    """

    steps: list[Step]
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    """The function schemas of the tools last bound (what a provider would send to its API)."""

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound_tools = [convert_to_openai_tool(tool) for tool in tools]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(isinstance(message, AIMessage) for message in messages)
        if turn >= len(self.steps):
            raise RuntimeError(f"the script has {len(self.steps)} turns; the agent asked for turn {turn + 1}")
        return ChatResult(generations=[ChatGeneration(message=self.steps[turn](messages))])
