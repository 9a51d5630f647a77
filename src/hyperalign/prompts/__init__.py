"""Prompt templates, one jinja2 file per pipeline step, versioned in the file name (`<step>.v<N>.j2`).

User texts enter templates only through the `data` filter, which keeps them inside their delimiting tags."""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, Template

VERSIONS: dict[str, int] = {
    "infer_hypotheses": 1,
    "infer_attributes": 1,
    "generate": 1,
    "repair": 1,
    "score_hypotheses": 1,
    "deliberate": 1,
    "safety_spec": 1,
}

_TAG = re.compile(r"<(/?)(user_text|task|examples|profile|reference|candidate|request|answer|specification|behaviour)\b", re.IGNORECASE)


def as_data(text: str) -> str:
    """Neutralize anything in user text that could close (or open) one of our delimiting tags."""
    return _TAG.sub(lambda m: f"‹{m.group(1)}{m.group(2)}", text.replace("\r\n", "\n").strip())


def environment(loader: BaseLoader) -> Environment:
    """A template environment with hyperalign's conventions; judges use it with their own folder."""
    env = Environment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=False,  # prompts are not HTML; user text is delimited by `data` instead
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["data"] = as_data
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
    """A template defines a `system` and a `user` block: one chat message each."""
    ctx = template.new_context(dict(context))
    return [
        {"role": role, "content": "".join(template.blocks[role](ctx)).strip()}
        for role in ("system", "user")
    ]


def version_tag(*steps: str) -> str:
    return "+".join(f"{step}.v{VERSIONS[step]}" for step in steps)
