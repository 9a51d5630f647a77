"""The code levers of steering (pipeline/steer.py) on the chat endpoint's answers, whatever the upstream: the
person's habitual opening put in front and their sign-off at the end, where the model did not write them — in a
whole completion, and in a stream without holding it back longer than the opening is long.

The code edits (pipeline/edits.py) apply to whole completions; a stream gets those that act on one character at a
time, piece by piece, and its headers name only those (`for_stream`).

The token levers (biases, prefill) need the model itself: only an upstream whose capabilities allow them applies
them (the built-in backend upstream); an OpenAI-compatible upstream gets the code levers alone, and the response's
X-Hyperalign-Levers header says which levers were applied."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ..pipeline.edits import Edit, apply_edits
from ..pipeline.facts import measure
from ..pipeline.steer import Steering, finish


def finish_completion(content: bytes, steering: Steering) -> bytes:
    """A chat completion's JSON with each choice's text finished; unchanged where nothing applies."""
    if not (steering.opening or steering.sign_off or steering.edits):
        return content
    parsed = json.loads(content)
    for choice in parsed.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message["content"] = finish(message["content"], steering)
    return json.dumps(parsed).encode()


def _with_choice(event: dict[str, Any], delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    index = event["choices"][0].get("index", 0)
    return {**event, "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}]}


async def _edited(events: AsyncIterator[str], edits: list[Edit]) -> AsyncIterator[str]:
    """Each event with its text piece edited (character edits only: pipeline/steer.for_stream)."""
    async for raw in events:
        try:
            event = json.loads(raw)
            delta = event["choices"][0].get("delta") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            yield raw
            continue
        piece = delta.get("content")
        if isinstance(piece, str) and piece and apply_edits(piece, edits) != piece:
            event["choices"][0]["delta"] = {**delta, "content": apply_edits(piece, edits)}
            raw = json.dumps(event)
        yield raw


async def finish_stream(events: AsyncIterator[str], steering: Steering) -> AsyncIterator[str]:
    """The stream's events, with the opening put in front once enough text has come to tell whether the model wrote
    it (the events until then held back), and the sign-off sent as one more piece before the finishing event."""
    if steering.edits:
        events = _edited(events, steering.edits)
    if not (steering.opening or steering.sign_off):
        async for raw in events:
            yield raw
        return
    opening_only = steering.model_copy(update={"sign_off": None})
    written, held, decided = "", list[str](), not steering.opening

    def decide(current: dict[str, Any]) -> list[str]:
        """The held events, after the opening where the text so far lacks it (shaped like the current event)."""
        nonlocal written, decided
        decided, start = True, finish(written, opening_only)
        missing = start[: len(start) - len(written)] if start != written and start.endswith(written) else ""
        written = start
        if not missing:
            return held
        return [json.dumps(_with_choice(current, {"content": missing}, None)), *held]

    async for raw in events:
        try:
            event = json.loads(raw)
            choice = event["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):  # no choice (a usage event), or not JSON: passed on
            if decided:
                yield raw
            else:
                held.append(raw)
            continue
        piece = (choice.get("delta") or {}).get("content") or ""
        finish_reason = choice.get("finish_reason")
        if finish_reason is None:
            written += piece
            if decided:
                yield raw
                continue
            held.append(raw)
            if len(" ".join(written.split())) >= len(steering.opening or ""):
                for out in decide(event):
                    yield out
                held = []
            continue
        # The finishing event: its own text first, then what the levers add, then the finish itself.
        if piece:
            written += piece
            content_event = json.dumps(_with_choice(event, {"content": piece}, None))
            if decided:
                yield content_event
            else:
                held.append(content_event)
        if not decided:
            for out in decide(event):
                yield out
            held = []
        if steering.sign_off and not measure(f"ends_with:{steering.sign_off}", written):
            # As `finish` joins it: a blank line between, counting the newlines already sent.
            gap = "\n\n"[len(written) - len(written.rstrip("\n")):]
            yield json.dumps(_with_choice(event, {"content": gap + steering.sign_off}, None))
        yield json.dumps(_with_choice(event, {}, finish_reason))
    for out in held:  # a stream that ended without a finishing event
        yield out
