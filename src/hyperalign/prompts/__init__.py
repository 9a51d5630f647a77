"""Prompt templates, one jinja2 file per pipeline step, versioned in the file name (`<step>.v<N>.j2`).

User texts enter templates only through the `data` filter, which keeps them inside their delimiting tags and
turns anything that a chat template or tokenizer would read as a control token into plain text. Every template —
ours and the judge folders a user supplies — renders in jinja2's immutable sandbox: a template can format the
values it is given, never reach Python internals, the file system or a shell."""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import (
    BaseLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InputError

VERSIONS: dict[str, int] = {
    "infer_profile": 1,
    "fix_evidence": 1,
    "infer_hypotheses": 1,
    "infer_attributes": 1,
    "generate": 3,
    "score_hypotheses": 1,
    "deliberate": 1,
    "safety_spec": 1,
    "safety_cases": 1,
    "ticl_generate": 1,
    "ticl_explain": 1,
    "infer_differences": 2,
    "verify_hypotheses": 1,
    "verify_hypothesis_label": 1,
    "verify_hypothesis_point": 1,
    "revise": 1,
    "identify_profile": 1,
}

_TAG = re.compile(
    r"<(/?)(user_text|task|examples|profile|reference|candidate|request|answer|specification|behaviour|draft|critique|pair|typical_answer)\b",
    re.IGNORECASE,
)


# Chat-control syntax of the model families llama.cpp, vLLM and Ollama serve: ChatML, Llama 3, Phi, Qwen, gpt-oss
# (<|...|>), DeepSeek (fullwidth <｜...｜>), SentencePiece and Gemma markers (<s>, </s>, <bos>, <start_of_turn>, ...),
# SmolLM/StarCoder code markers (<filename>, <repo_name>, ...), Llama 2 and Mistral ([INST], <<SYS>>,
# [SYSTEM_PROMPT], [TOOL_CALLS], ...). Any of these in user data is broken up with a WORD JOINER (U+2060): it reads
# the same, but no tokenizer matches it as a control token and no chat template's structure can be forged with it.
_CONTROL_TOKEN = re.compile(
    r"<\|[^<>|\s]{0,64}\|>"  # <|im_start|>, <|eot_id|>, <|start_header_id|>, <|endoftext|>
    r"|<｜[^<>｜]{0,64}｜>"  # <｜begin▁of▁sentence｜>
    r"|</?[A-Za-z_][\w.:-]{0,40}>"  # <s>, </s>, <bos>, <start_of_turn>, <filename>, <jupyter_code>
    r"|<</?SYS>>"  # Llama 2
    r"|\[/?[A-Z][A-Z_]{1,30}\]",  # [INST], [/INST], [SYSTEM_PROMPT], [TOOL_CALLS]
)
WORD_JOINER = "\u2060"


def neutralize_control_tokens(text: str) -> str:
    return _CONTROL_TOKEN.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:], text)


def as_data(text: str) -> str:
    """User text as data: nothing in it can close (or open) one of our delimiting tags, or become a chat-control
    token of the model."""
    text = _TAG.sub(lambda m: f"‹{m.group(1)}{m.group(2)}", text.replace("\r\n", "\n").strip())
    return neutralize_control_tokens(text)


EXCERPT_WORDS = 6


def excerpt(text: str, words: int = EXCERPT_WORDS) -> str:
    """The first few words of a quote: enough to show the habit, too few to be copied as a sentence (the copy rate
    counts shared word 8-grams)."""
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def environment(loader: BaseLoader) -> Environment:
    """A template environment with hyperalign's conventions; judges use it with their own folder."""
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=False,  # prompts are not HTML; user text is delimited by `data` instead
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["data"] = as_data
    env.filters["excerpt"] = excerpt
    return env


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return environment(PackageLoader("hyperalign", "prompts"))


def template_name(step: str) -> str:
    return f"{step}.v{VERSIONS[step]}.j2"


def render(step: str, **context: object) -> str:
    return _environment().get_template(template_name(step)).render(**context).strip()


def render_messages(step: str, **context: object) -> list[dict[str, str]]:
    return messages_from(_environment().get_template(template_name(step)), **context)


def messages_from(template: Template, **context: object) -> list[dict[str, str]]:
    """A template defines a `system` and a `user` block: one chat message each. A template that cannot render (a
    missing block, an undefined variable, an operation the sandbox refuses) is an InputError naming it."""
    missing = [role for role in ("system", "user") if role not in template.blocks]
    if missing:
        raise InputError(f"template {template.name}: it must define the blocks system and user "
                         f"({', '.join(missing)} missing)")
    try:
        ctx = template.new_context(dict(context))
        return [
            {"role": role, "content": "".join(template.blocks[role](ctx)).strip()}
            for role in ("system", "user")
        ]
    except (SecurityError, OverflowError) as exc:  # OverflowError: the sandbox's range() limit
        raise InputError(f"template {template.name}: refused by the sandbox ({exc})") from None
    except TemplateError as exc:
        raise InputError(f"template {template.name}: {exc}") from None


def version_tag(*steps: str) -> str:
    return "+".join(f"{step}.v{VERSIONS[step]}" for step in steps)
