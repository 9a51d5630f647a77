"""Profile files change shape through named, ordered migrations, as the store's schema does (alembic).

A profile records its `schema_version`. Reading one from an older schema upgrades it step by step (each step is a
function from the dict of version N to the dict of version N+1, named in `STEPS`); one from a newer schema than this
hyperalign knows is refused by name, never half-read. (The store's tables have their own alembic migrations in
`store_migrations/`; these are about the profile document itself, in files, the store and the API alike.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CURRENT_SCHEMA_VERSION = 9
FIRST_SCHEMA_VERSION = 1


def _v1_to_v2_measured_facts(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds measured style facts: hypotheses of origin "measured" with a `measure`. A version-1 profile has
    none, and every version-1 field means the same in version 2; its facts appear when it is inferred again."""
    return dict(document)


def _v2_to_v3_contrast(document: dict[str, Any]) -> dict[str, Any]:
    """Version 3 adds the contrast (the default voice a profile was told apart from), hypotheses' discrimination,
    counterpart and generic marks, and facts' distinctiveness. All are optional: a version-2 profile has none of them
    (its method was the paper's), and every version-2 field means the same in version 3."""
    return dict(document)


_FACT_FIELDS = ("id", "statement", "measure", "evidence", "pinned")
_USAGE_FIELDS = ("llm_calls", "cache_hits", "prompt_tokens", "completion_tokens")


def _usage_apart(block: Any) -> Any:
    """A report's or contrast's call and token counts gathered into its `usage`."""
    if not isinstance(block, dict):
        return block
    moved = {name: block[name] for name in _USAGE_FIELDS if name in block}
    kept = {name: value for name, value in block.items() if name not in _USAGE_FIELDS}
    return kept | {"usage": moved} if moved else kept


def _v3_to_v4_facts_and_usage(document: dict[str, Any]) -> dict[str, Any]:
    """Version 4 keeps measured style facts in `facts`, apart from the hypotheses (they were hypotheses with a
    `measure`, of origin "measured" unless a person reworded them), and gathers an inference's LLM calls and tokens
    into one `usage` in the report and in the contrast (they were four fields of each)."""
    upgraded = dict(document)
    hypotheses, facts = [], []
    for item in document.get("hypotheses") or []:
        if isinstance(item, dict) and item.get("measure") is not None:
            fact = {name: item[name] for name in _FACT_FIELDS if name in item}
            facts.append(fact | {"origin": "person" if item.get("origin") == "person" else "measured"})
        elif isinstance(item, dict):
            origin = "inferred" if item.get("origin") == "measured" else item.get("origin", "inferred")
            hypotheses.append({k: v for k, v in item.items() if k != "measure"} | {"origin": origin})
        else:
            hypotheses.append(item)  # refused by validation, with the field named
    upgraded["hypotheses"] = hypotheses
    upgraded["facts"] = facts
    for block in ("report", "contrast"):
        if block in document:
            upgraded[block] = _usage_apart(document[block])
    return upgraded


def _v4_to_v5_voice_samples(document: dict[str, Any]) -> dict[str, Any]:
    """Version 5 adds `voice_samples`: sentences of the person's own texts shown to the generator as written. A
    version-4 profile has none (its generation is what it was); they appear when it is inferred again."""
    return dict(document)


def _v5_to_v6_verification_leans(document: dict[str, Any]) -> dict[str, Any]:
    """Version 6 keeps, in the report, the hypotheses verification dropped (`failed_verification`), and each
    discrimination's per-pair leans and their lower bound. A version-5 profile has none of them: its dropped
    hypotheses were counted, not kept."""
    return dict(document)


def _v6_to_v7_copied_statements(document: dict[str, Any]) -> dict[str, Any]:
    """Version 7 keeps, in the report, the proposed statements dropped for copying the person's text
    (`copied_statements`). A version-6 profile counted them only (`dropped_copied`)."""
    return dict(document)


def _v7_to_v8_measured_hypotheses(document: dict[str, Any]) -> dict[str, Any]:
    """Version 8 adds hypotheses' `measured_by`: the measured fact a hypothesis explains, which checks it. A
    version-7 profile's hypotheses were all checked by the LLM (or not at all), so none has one."""
    return dict(document)


def _v8_to_v9_word_use(document: dict[str, Any]) -> dict[str, Any]:
    """Version 9 adds `word_use`: the person's rates of common words against the default voice, which best-of-N's
    margin ranks by. A version-8 profile has none: its best-of-N ranks by the facts' margin, as it did."""
    return dict(document)


# version N -> (name, function turning a version-N document into a version-(N+1) one)
STEPS: dict[int, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    1: ("0002_measured_style_facts", _v1_to_v2_measured_facts),
    2: ("0003_contrast", _v2_to_v3_contrast),
    3: ("0004_facts_and_usage_apart", _v3_to_v4_facts_and_usage),
    4: ("0005_voice_samples", _v4_to_v5_voice_samples),
    5: ("0006_verification_leans", _v5_to_v6_verification_leans),
    6: ("0007_copied_statements", _v6_to_v7_copied_statements),
    7: ("0008_measured_hypotheses", _v7_to_v8_measured_hypotheses),
    8: ("0009_word_use", _v8_to_v9_word_use),
}


class SchemaVersionError(ValueError):
    """The document's schema version cannot be read by this hyperalign."""


def upgrade(document: dict[str, Any]) -> dict[str, Any]:
    """The document at the current schema version (a new dict; the input is left alone)."""
    version = document.get("schema_version")
    if version is None:
        raise SchemaVersionError("schema_version is missing: this is not a hyperalign profile")
    if isinstance(version, bool) or not isinstance(version, int):
        raise SchemaVersionError(f"schema_version must be a whole number, got {version!r}")
    if version > CURRENT_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"schema_version {version} is newer than this hyperalign reads ({CURRENT_SCHEMA_VERSION}): "
            "the profile was written by a newer hyperalign; upgrade hyperalign to read it"
        )
    if version < FIRST_SCHEMA_VERSION:
        raise SchemaVersionError(f"schema_version {version} is not a hyperalign profile schema")
    upgraded = dict(document)
    while upgraded["schema_version"] < CURRENT_SCHEMA_VERSION:
        _, step = STEPS[upgraded["schema_version"]]
        upgraded = step(upgraded)
        upgraded["schema_version"] += 1
    return upgraded
