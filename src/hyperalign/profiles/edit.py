"""A person's edits to a stored profile: pin, unpin, delete, reword, add hypotheses, set attributes — by flags or on
a YAML view (the CLI opens it in the person's editor). Measured facts are edited by id like hypotheses: pinned,
unpinned, deleted, their statement reworded; their measure stays what the texts say.

Every edit is an `Edits` value computed against the version the person saw, then applied by `store.modify`, so
an edit that loses a race with another writer is re-applied to the newer version instead of overwriting it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ..errors import InputError
from .model import Evidence, Fact, Hypothesis, Profile
from .store import Action, ProfileStore, VersionInfo, default_author


@dataclass
class HypothesisChange:
    statement: str | None = None
    aspect: str | None = None
    quotes: list[str] | None = None


@dataclass
class NewHypothesis:
    aspect: str
    statement: str
    quotes: list[str] = field(default_factory=list)
    pinned: bool = False


@dataclass
class Edits:
    """A person's edits, by hypothesis or fact id: pin, unpin, delete, reword (`change`), add their own
    hypotheses, set or remove attributes — computed against the version the person saw, applied to the current."""

    pin: list[str] = field(default_factory=list)
    unpin: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    change: dict[str, HypothesisChange] = field(default_factory=dict)
    add: list[NewHypothesis] = field(default_factory=list)
    attributes: dict[str, str | None] = field(default_factory=dict)  # None removes the attribute

    @classmethod
    def from_flags(
        cls,
        pin: Iterable[str] = (),
        unpin: Iterable[str] = (),
        delete: Iterable[str] = (),
        set_statement: Iterable[str] = (),
        add: Iterable[str] = (),
        attribute: Iterable[str] = (),
    ) -> Edits:
        """From the CLI's strings: --set ID=STATEMENT, --add ASPECT=STATEMENT, --attribute KEY=VALUE (an empty
        VALUE removes the attribute)."""
        edits = cls(pin=list(pin), unpin=list(unpin), delete=list(delete))
        for hypothesis_id, statement in (_pair("--set", "ID=STATEMENT", s) for s in set_statement):
            edits.change[hypothesis_id] = HypothesisChange(statement=statement)
        edits.add = [NewHypothesis(*_pair("--add", "ASPECT=STATEMENT", s)) for s in add]
        for pair in attribute:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise InputError(f"--attribute expects KEY=VALUE, got {pair!r}")
            edits.attributes[key.strip()] = value.strip() or None
        return edits

    def is_empty(self) -> bool:
        """Whether the edits change nothing."""
        return not (self.pin or self.unpin or self.delete or self.change or self.add or self.attributes)

    def action(self) -> str:
        """The version's action in the history: pin, unpin, or edit."""
        if self.pin and not (self.unpin or self.delete or self.change or self.add or self.attributes):
            return Action.PIN
        if self.unpin and not (self.pin or self.delete or self.change or self.add or self.attributes):
            return Action.UNPIN
        return Action.EDIT

    def summary(self) -> str:
        """The version's message when the person gives none: what was pinned, deleted, reworded, added."""
        parts = [f"{verb} {', '.join(ids)}" for verb, ids in
                 (("pin", self.pin), ("unpin", self.unpin), ("delete", self.delete), ("reword", list(self.change)))
                 if ids]
        if self.add:
            parts.append(f"add {len(self.add)}")
        if self.attributes:
            parts.append(f"attributes {', '.join(self.attributes)}")
        return "; ".join(parts)


def _pair(flag: str, shape: str, text: str) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    if not sep or not left.strip() or not right.strip():
        raise InputError(f"{flag} expects {shape}, got {text!r}")
    return left.strip(), right.strip()


def with_their_measures(hypotheses: list[Hypothesis], facts: list[Fact]) -> list[Hypothesis]:
    """The hypotheses, each checked by a measurement only while the profile holds that fact: one whose fact a person
    deleted, or an update's blend left out, is no longer marked as checked by it (it stays, as any other statement)."""
    held = {f.id for f in facts}
    return [h.model_copy(update={"measured_by": None}) if h.measured_by and h.measured_by not in held else h
            for h in hypotheses]


def apply_edits(profile: Profile, edits: Edits) -> Profile:
    """The edited profile. What a person writes or rewords becomes origin "person": automated updates never
    overwrite or retire it, and it counts as supported — the person vouches for it — so the generator uses it."""
    existing = {h.id for h in profile.statements} | {v.id for v in profile.voice_samples}
    named = [*edits.pin, *edits.unpin, *edits.delete, *edits.change]
    unknown = [i for i in dict.fromkeys(named) if i not in existing]
    if unknown:
        raise InputError(
            f"no hypothesis or fact {', '.join(unknown)} in profile '{profile.user_id}' "
            "(the profile's view lists every id)"
        )
    for a, b, what in ((edits.pin, edits.unpin, "both pinned and unpinned"),
                       (edits.delete, [*edits.pin, *edits.unpin, *edits.change], "both deleted and edited")):
        clash = sorted(set(a) & set(b))
        if clash:
            raise InputError(f"hypothesis {', '.join(clash)} is {what} in one edit")
    hypotheses = _edited(profile.hypotheses, edits, _reworded)
    ids = {h.id for h in hypotheses}
    for new in edits.add:
        if not new.aspect.strip() or not new.statement.strip():
            raise InputError("a new hypothesis needs an aspect and a statement")
        h = Hypothesis(
            aspect=new.aspect.strip(), statement=new.statement.strip(), evidence=[Evidence(quote=q) for q in new.quotes],
            supported=True, pinned=new.pinned, origin="person",
        )
        if h.id in ids:
            raise InputError(f"'{h.statement}' ({h.aspect}) is already in the profile as {h.id}")
        ids.add(h.id)
        hypotheses.append(h)
    facts = _edited(profile.facts, edits, _reworded_fact)
    attributes = dict(profile.attributes)
    for key, value in edits.attributes.items():
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    samples = [v for v in profile.voice_samples if v.id not in edits.delete]
    return profile.model_copy(update={"hypotheses": with_their_measures(hypotheses, facts), "facts": facts,
                                      "attributes": attributes,
                                      "voice_samples": samples})


Item = TypeVar("Item", Hypothesis, Fact)


def _edited(items: list[Item], edits: Edits, reworded: Callable[[Item, HypothesisChange], dict[str, Any]]
            ) -> list[Item]:
    """The items left after `edits` deletes some, with the pins and rewordings it makes."""
    kept = []
    for item in items:
        if item.id in edits.delete:
            continue
        updates: dict[str, Any] = {}
        if item.id in edits.pin or item.id in edits.unpin:
            updates["pinned"] = item.id in edits.pin
        if item.id in edits.change:
            updates |= reworded(item, edits.change[item.id])
        kept.append(item.model_copy(update=updates) if updates else item)
    return kept


def _reworded_fact(f: Fact, change: HypothesisChange) -> dict[str, Any]:
    if change.aspect is not None or change.quotes is not None:
        raise InputError(f"{f.id} is a measured style fact: its statement can be reworded, its aspect and quotes "
                         "are what the texts show")
    if change.statement is None or change.statement.strip() == f.statement:
        return {}
    if not change.statement.strip():
        raise InputError(f"the new statement of {f.id} is empty (delete the fact instead)")
    return {"statement": change.statement.strip(), "origin": "person"}


def _reworded(h: Hypothesis, change: HypothesisChange) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    if change.statement is not None and change.statement.strip() != h.statement:
        if not change.statement.strip():
            raise InputError(f"the new statement of {h.id} is empty (delete the hypothesis instead)")
        # The counts rated the old wording; they say nothing about the new one.
        updates |= {"statement": change.statement.strip(), "score": None}
    if change.aspect is not None and change.aspect.strip() != h.aspect:
        updates["aspect"] = change.aspect.strip()
    if change.quotes is not None and change.quotes != [e.quote for e in h.evidence]:
        known = {e.quote: e for e in h.evidence}
        # A quote the person types in cannot be checked here (the store keeps no examples): kept, unverified.
        updates["evidence"] = [known.get(q, Evidence(quote=q)) for q in change.quotes]
    if updates:
        updates |= {"origin": "person", "supported": True}
    return updates


# --- the YAML view, for $EDITOR ----------------------------------------------------------------------------------

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
HYPOTHESIS_FIELDS = "id, aspect, statement, pinned, quotes"


class _HypothesisView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    aspect: Text
    statement: Text
    pinned: bool = False
    quotes: list[Text] = []

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # An all-digit id typed without quotes reads as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _FactView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    statement: Text
    pinned: bool = False


class _SampleView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    text: Text


class _ProfileView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: dict[str, str | None] = {}
    hypotheses: list[_HypothesisView] = []
    facts: list[_FactView] = []
    voice_samples: list[_SampleView] = []

    @field_validator("attributes", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        # YAML reads `year: 1999` as a number; the person meant the text, so take it as text rather than refuse.
        if isinstance(value, dict):
            return {k: v if v is None or isinstance(v, (str, dict, list)) else str(v) for k, v in value.items()}
        return value


def to_yaml(profile: Profile, version: int | None = None) -> str:
    header = (
        f"# Profile of {profile.user_id}{f' (version {version})' if version else ''}. Save and close the editor to\n"
        "# store your changes as a new version; leave the file unchanged or empty to cancel.\n"
        "#   - reword a statement, change its aspect or quotes; `pinned: true` keeps it through updates\n"
        "#   - delete an entry to remove that hypothesis\n"
        "#   - add an entry without an id (aspect, statement, optional quotes) for a hypothesis of your own\n"
        "#   - facts are measured from the texts: reword, pin or delete one; they cannot be added here\n"
        "#   - attributes: any `key: value`; delete the line to remove one\n"
        "#   - voice_samples are your own sentences, shown to the writer as written: delete one to stop showing it;\n"
        "#     they cannot be reworded or added (reworded, they would no longer be yours)\n"
    )
    view = {
        "attributes": dict(profile.attributes),
        "hypotheses": [
            {"id": h.id, "aspect": h.aspect, "statement": h.statement, "pinned": h.pinned,
             "quotes": [e.quote for e in h.evidence]}
            for h in profile.hypotheses
        ],
        "facts": [{"id": f.id, "statement": f.statement, "pinned": f.pinned} for f in profile.facts],
        **({"voice_samples": [{"id": v.id, "text": v.text} for v in profile.voice_samples]}
           if profile.voice_samples else {}),
    }
    return header + yaml.safe_dump(view, sort_keys=False, allow_unicode=True, width=110)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a profile view never needs them, and nested aliases expand into
    billions of nodes ("billion laughs") that validation would then walk."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here", event.start_mark)
        return super().compose_node(parent, index)


def _listed(base_by_id: dict[str, Item], item_id: str, pinned: bool, edits: Edits, seen: set[str], where: str,
            unknown: str) -> Item:
    """The base's item that the edited view lists by `item_id` (each id once: `seen` keeps them), its pin or unpin
    added to `edits`; an unknown or repeated id is an InputError at `where`."""
    old = base_by_id.get(item_id)
    if old is None or item_id in seen:
        raise InputError(f"{where} {'appears twice' if old else unknown}")
    seen.add(item_id)
    if pinned != old.pinned:
        (edits.pin if pinned else edits.unpin).append(item_id)
    return old


def edits_from_yaml(text: str, base: Profile, source: str = "edited profile") -> Edits:
    """What changed between `base` and the person's YAML, as edits that can be re-applied to a newer version."""
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader that also refuses aliases
    except RecursionError:
        raise InputError(f"{source}: nested too deeply to be read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return Edits()
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected the keys 'attributes', 'hypotheses' and 'facts', got a "
                         f"{type(data).__name__}")
    try:
        view = _ProfileView.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt field shows up as both "unknown" and "missing"; the unknown one is the person's typo.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field" + (f"; a hypothesis has {HYPOTHESIS_FIELDS}" if first["loc"][0] == "hypotheses"
                                         else "; a fact has id, statement, pinned" if first["loc"][0] == "facts"
                                         else "; a voice sample has id, text" if first["loc"][0] == "voice_samples"
                                         else "; the top level has attributes, hypotheses, facts, voice_samples")
        raise InputError(f"{source}: {_where(first['loc'], data)}: {message}") from None

    base_by_id = {h.id: h for h in base.hypotheses}
    edits, seen = Edits(), set[str]()
    for number, entry in enumerate(view.hypotheses, start=1):
        if entry.id is None:
            edits.add.append(NewHypothesis(entry.aspect, entry.statement, list(entry.quotes), entry.pinned))
            continue
        old = _listed(base_by_id, entry.id, entry.pinned, edits, seen,
                      f"{source}: field 'id' of hypothesis #{number}: {entry.id}",
                      "is not in this profile (remove the id line to add it as new)")
        change = HypothesisChange(
            statement=entry.statement if entry.statement != old.statement else None,
            aspect=entry.aspect if entry.aspect != old.aspect else None,
            quotes=list(entry.quotes) if entry.quotes != [e.quote for e in old.evidence] else None,
        )
        if change != HypothesisChange():
            edits.change[entry.id] = change
    facts_by_id = {f.id: f for f in base.facts}
    for listed in view.facts:
        fact = _listed(facts_by_id, listed.id, listed.pinned, edits, seen, f"{source}: field 'id' of fact {listed.id}:",
                       "is not a measured fact of this profile (facts cannot be added)")
        if listed.statement != fact.statement:
            edits.change[listed.id] = HypothesisChange(statement=listed.statement)
    samples_by_id = {v.id: v for v in base.voice_samples}
    for listed_sample in view.voice_samples:
        sample = samples_by_id.get(listed_sample.id)
        where = f"{source}: field 'id' of voice sample {listed_sample.id}:"
        if sample is None or listed_sample.id in seen:
            raise InputError(f"{where} {'appears twice' if sample else 'is not a voice sample of this profile (they cannot be added)'}")
        if listed_sample.text != sample.text:
            raise InputError(f"{where} its text was changed: a voice sample is the person's own sentence, delete it "
                             "rather than reword it")
        seen.add(listed_sample.id)
    edits.delete = [i for i in [*base_by_id, *facts_by_id, *samples_by_id] if i not in seen]
    attributes = {k: v for k, v in view.attributes.items() if v and v.strip()}
    edits.attributes = {k: None for k in base.attributes if k not in attributes}
    edits.attributes |= {k: v for k, v in attributes.items() if base.attributes.get(k) != v}
    return edits


def _where(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    if len(loc) >= 2 and loc[0] == "hypotheses" and isinstance(loc[1], int) and isinstance(data["hypotheses"], list):
        entry = data["hypotheses"][loc[1]]
        ident = entry.get("id") if isinstance(entry, dict) else None
        name = ".".join(str(part) for part in loc[2:]) or "(the entry itself)"
        return f"field '{name}' of hypothesis #{loc[1] + 1}" + (f" (id {ident})" if ident else "")
    return f"field '{'.'.join(str(part) for part in loc)}'"


# --- with a store ------------------------------------------------------------------------------------------------

def edit_profile(
    store: ProfileStore, user_id: str, edits: Edits, *, author: str | None = None, message: str | None = None
) -> VersionInfo | None:
    """Apply `edits` to the current version and save the result; None when it changes nothing."""
    if edits.is_empty():
        return None
    return store.modify(
        user_id, lambda profile: apply_edits(profile, edits),
        author=author or default_author(), action=edits.action(), message=message or edits.summary(),
    )
