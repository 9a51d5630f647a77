"""A plugin package, as a third party would write one (see docs/plugins.md): a backend that answers with the user's
last message reversed word by word, and a judge. Its dist-info folder beside it declares the entry points, so putting
tests/plugins on the path installs it for the tests."""

from __future__ import annotations

from typing import Any, ClassVar

from hyperalign.llm import Capabilities, Completion, CompletionRequest, LLMBackend, Usage


class EchoBackend(LLMBackend):
    name: ClassVar[str] = "echo"
    capabilities = Capabilities(count_tokens=True)

    def __init__(self, model: str | None = None, **_: Any):
        self.model = model or "echo-1"
        self.context_tokens = 4096

    async def acomplete(self, request: CompletionRequest) -> Completion:
        words = request.messages[-1]["content"].split()
        text = " ".join(reversed(words))
        return Completion(text=text, model=self.model,
                          usage=Usage(prompt_tokens=len(words), completion_tokens=len(words)))

    def count_tokens(self, text: str) -> int:
        return len(text.split())
