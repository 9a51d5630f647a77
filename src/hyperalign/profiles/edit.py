"""A person's edits to a stored profile: pin, unpin, delete, reword, add hypotheses, set attributes — by flags
or in $EDITOR on a YAML view — and a readable diff between any two versions.

Every edit is an `Edits` value computed against the version the person saw, then applied by `store.modify`, so
an edit that loses a race with another writer is re-applied to the newer version instead of overwriting it."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ..errors import InputError
from ..io import read_text_file
from .model import Evidence, Hypothesis, HypothesisScore, Profile
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
        return not (self.pin or self.unpin or self.delete or self.change or self.add or self.attributes)

    def action(self) -> str:
        if self.pin and not (self.unpin or self.delete or self.change or self.add or self.attributes):
            return Action.PIN
        if self.unpin and not (self.pin or self.delete or self.change or self.add or self.attributes):
            return Action.UNPIN
        return Action.EDIT

    def summary(self) -> str:
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


def apply_edits(profile: Profile, edits: Edits) -> Profile:
    """The edited profile. What a person writes or rewords becomes origin "person": automated updates never
    overwrite or retire it, and it counts as supported — the person vouches for it — so the generator uses it."""
    existing = {h.id: h for h in profile.hypotheses}
    named = [*edits.pin, *edits.unpin, *edits.delete, *edits.change]
    unknown = [i for i in dict.fromkeys(named) if i not in existing]
    if unknown:
        raise InputError(
            f"no hypothesis {', '.join(unknown)} in profile '{profile.user_id}' "
            f"(`hyperalign profile show {profile.user_id}` lists the ids)"
        )
    for a, b, what in ((edits.pin, edits.unpin, "both pinned and unpinned"),
                       (edits.delete, [*edits.pin, *edits.unpin, *edits.change], "both deleted and edited")):
        clash = sorted(set(a) & set(b))
        if clash:
            raise InputError(f"hypothesis {', '.join(clash)} is {what} in one edit")
    hypotheses = []
    for h in profile.hypotheses:
        if h.id in edits.delete:
            continue
        updates: dict[str, Any] = {}
        if h.id in edits.pin or h.id in edits.unpin:
            updates["pinned"] = h.id in edits.pin
        if h.id in edits.change:
            updates |= _reworded(h, edits.change[h.id])
        hypotheses.append(h.model_copy(update=updates) if updates else h)
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
    attributes = dict(profile.attributes)
    for key, value in edits.attributes.items():
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    return profile.model_copy(update={"hypotheses": hypotheses, "attributes": attributes})


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


class _ProfileView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: dict[str, str | None] = {}
    hypotheses: list[_HypothesisView] = []

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
        "#   - attributes: any `key: value`; delete the line to remove one\n"
    )
    view = {
        "attributes": dict(profile.attributes),
        "hypotheses": [
            {"id": h.id, "aspect": h.aspect, "statement": h.statement, "pinned": h.pinned,
             "quotes": [e.quote for e in h.evidence]}
            for h in profile.hypotheses
        ],
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
        raise InputError(f"{source}: expected the keys 'attributes' and 'hypotheses', got a {type(data).__name__}")
    try:
        view = _ProfileView.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt field shows up as both "unknown" and "missing"; the unknown one is the person's typo.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field" + (f"; a hypothesis has {HYPOTHESIS_FIELDS}" if first["loc"][0] == "hypotheses"
                                         else "; the top level has attributes, hypotheses")
        raise InputError(f"{source}: {_where(first['loc'], data)}: {message}") from None

    base_by_id = {h.id: h for h in base.hypotheses}
    edits, seen = Edits(), set()
    for number, entry in enumerate(view.hypotheses, start=1):
        if entry.id is None:
            edits.add.append(NewHypothesis(entry.aspect, entry.statement, list(entry.quotes), entry.pinned))
            continue
        old = base_by_id.get(entry.id)
        if old is None or entry.id in seen:
            problem = "appears twice" if old else "is not in this profile (remove the id line to add it as new)"
            raise InputError(f"{source}: field 'id' of hypothesis #{number}: {entry.id} {problem}")
        seen.add(entry.id)
        if entry.pinned != old.pinned:
            (edits.pin if entry.pinned else edits.unpin).append(entry.id)
        change = HypothesisChange(
            statement=entry.statement if entry.statement != old.statement else None,
            aspect=entry.aspect if entry.aspect != old.aspect else None,
            quotes=list(entry.quotes) if entry.quotes != [e.quote for e in old.evidence] else None,
        )
        if change != HypothesisChange():
            edits.change[entry.id] = change
    edits.delete = [i for i in base_by_id if i not in seen]
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


def editor_command(editor: str | None = None) -> list[str]:
    """The person's editor as an argument list ($EDITOR, then $VISUAL), checked before any file is written."""
    command = editor or os.environ.get("EDITOR") or os.environ.get("VISUAL") or ("notepad" if os.name == "nt" else "vi")
    try:
        words = shlex.split(command, posix=os.name != "nt")
    except ValueError as exc:
        raise InputError(f"the editor command {command!r} (EDITOR) cannot be parsed ({exc}); fix EDITOR, "
                         "or use the flags (--pin, --set, …)") from None
    if not words:
        raise InputError("the editor command (EDITOR) is empty; set EDITOR, or use the flags (--pin, --set, …)")
    return words


def run_editor(text: str, editor: str | None = None) -> tuple[str, Path]:
    """Open `text` in the person's editor; the edited text and the file it is in (kept until it parses)."""
    words = editor_command(editor)
    handle, name = tempfile.mkstemp(prefix="hyperalign-profile-", suffix=".yaml")
    path = Path(name)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    try:
        status = subprocess.call([*words, str(path)])
    except OSError as exc:  # not found, not executable
        path.unlink(missing_ok=True)
        raise InputError(
            f"the editor {words[0]!r} cannot be started ({exc.strerror or exc}); set EDITOR, "
            "or use the flags (--pin, --set, …)") from None
    if status != 0:
        path.unlink(missing_ok=True)
        raise InputError(f"the editor ({' '.join(words)}) exited with status {status}; the profile is unchanged")
    try:
        return read_text_file(path, allow_empty=True), path
    except InputError as exc:
        raise InputError(f"{exc} (your edit is kept in {path})") from None


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


def edit_in_editor(
    store: ProfileStore, user_id: str, *, editor: str | None = None, author: str | None = None,
    message: str | None = None,
) -> VersionInfo | None:
    current = store.get(user_id)
    text, path = run_editor(to_yaml(current.profile, current.version), editor)
    try:
        edits = edits_from_yaml(text, current.profile)
        result = edit_profile(store, user_id, edits, author=author, message=message)
    except InputError as exc:
        raise InputError(f"{exc} — your edit is kept in {path}") from None
    path.unlink(missing_ok=True)
    return result


# --- diff --------------------------------------------------------------------------------------------------------

def diff_profiles(old: Profile, new: Profile) -> list[str]:
    """What changed from `old` to `new`, one line per change, for a person to read."""
    lines = []
    for key in dict.fromkeys([*old.attributes, *new.attributes]):
        before, after = old.attributes.get(key), new.attributes.get(key)
        if before == after:
            continue
        if before is None:
            lines.append(f"+ attribute {key}: {after!r}")
        elif after is None:
            lines.append(f"- attribute {key} (was {before!r})")
        else:
            lines.append(f"~ attribute {key}: {before!r} → {after!r}")
    old_by_id, new_by_id = {h.id: h for h in old.hypotheses}, {h.id: h for h in new.hypotheses}
    for h in new.hypotheses:
        if h.id not in old_by_id:
            lines.append(f"+ [{h.id}] {h.aspect}: {h.statement}{_marks(h)}")
    for h in old.hypotheses:
        if h.id not in new_by_id:
            lines.append(f"- [{h.id}] {h.aspect}: {h.statement}{_marks(h)}")
    for h in new.hypotheses:
        previous = old_by_id.get(h.id)
        if previous is not None:
            lines += [f"~ [{h.id}] {change}" for change in _hypothesis_changes(previous, h)]
    return lines


def _marks(h: Hypothesis) -> str:
    marks = (["pinned"] if h.pinned else []) + (["by a person"] if h.origin == "person" else [])
    return f" ({', '.join(marks)})" if marks else ""


def _hypothesis_changes(a: Hypothesis, b: Hypothesis) -> list[str]:
    changes = []
    if a.statement != b.statement:
        changes.append(f"statement: {a.statement!r} → {b.statement!r}")
    if a.aspect != b.aspect:
        changes.append(f"aspect: {a.aspect} → {b.aspect}")
    if a.pinned != b.pinned:
        changes.append(("pinned: " if b.pinned else "unpinned: ") + repr(b.statement))
    if a.origin != b.origin:
        changes.append(f"origin: {a.origin} → {b.origin}")
    quotes_a, quotes_b = [e.quote for e in a.evidence], [e.quote for e in b.evidence]
    if quotes_a != quotes_b:
        changes += [f"quote added: {q!r}" for q in quotes_b if q not in quotes_a]
        changes += [f"quote removed: {q!r}" for q in quotes_a if q not in quotes_b]
    if a.score != b.score:
        changes.append(f"score: {_score(a.score)} → {_score(b.score)}")
    return changes


def _score(score: HypothesisScore | None) -> str:
    if score is None:
        return "unrated"
    return f"{score.supports}/{score.tested} support, {score.contradicts} contradict ({score.value:.2f})"
