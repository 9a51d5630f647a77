"""`hyperalign profile …`: the living-profile store from the command line, a thin shell over store/edit/update."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer

from ..errors import HyperAlignError, InputError
from ..io import check_name, rescue
from ..pipeline.infer import InferenceOptions
from ..pipeline.update import UpdateOptions
from ..profiles.diff import diff_profiles
from ..profiles.edit import Edits, edit_profile, edits_from_yaml, to_yaml
from ..profiles.model import Profile, read_examples
from ..profiles.store import Action, ProfileStore, VersionInfo, default_author
from ..profiles.update import AUTOMATED_AUTHOR
from .common import (
    app,
    cli_command,
    client,
    echo,
    echo_json,
    err,
    report_usage,
    say,
    terminal_safe,
)
from .core import infer_with_status, parse_attributes, print_markdown

MAX_VERSION = 2**31 - 1  # what every database stores as a version number (larger: bad input, not a bug)

profile_app = typer.Typer(
    help="Living profiles: stored, versioned, editable by a person, updated from new texts.", no_args_is_help=True
)
app.add_typer(profile_app, name="profile")

Store = Annotated[Optional[str], typer.Option(
    "--store", show_default=False,
    help="SQLAlchemy URL or SQLite file. Default: $HYPERALIGN_STORE, else "
         "~/.local/share/hyperalign/profiles.sqlite3 (under $XDG_DATA_HOME if set).",
)]
Author = Annotated[Optional[str], typer.Option(help="Who the new version is attributed to.", show_default=False)]


def author_or(author: str | None, default: str) -> str:
    """The --author given (checked before any work), or the default."""
    return check_name(author, "--author") if author is not None else default
Message = Annotated[Optional[str], typer.Option("-m", "--message", help="Why: kept in the history.")]
UserId = Annotated[str, typer.Argument(metavar="ID", help="The profile's user id.")]


def command(name: str) -> Callable[[Callable[..., Any]], Any]:
    # Command names such as `import` and `list` are not usable as function names.
    def register(function: Callable[..., Any]) -> Any:
        return cli_command(function, group=profile_app, name=name)

    return register


def _saved(info: VersionInfo | None, user_id: str) -> None:
    if info is None:
        say(f"No changes; {user_id} stays at its current version.", style="")
    else:
        what = f"{info.action}: {info.message}" if info.message else info.action
        say(f"Saved version {info.version} of {user_id} ({what}).", style="")


@command("list")
def list_profiles(store: Store = None) -> None:
    """List the stored profiles."""
    opened = ProfileStore(store)
    summaries = opened.list_profiles()
    if not summaries:
        say(f"No profiles in {opened.display_url}.", style="")
    for s in summaries:
        echo(f"{s.user_id}\tversion {s.version}\t{s.hypotheses} hypotheses\t"
             f"{s.updated_at:%Y-%m-%d %H:%M} UTC\t{s.action} by {s.author}")


@command("show")
def show(
    user_id: UserId,
    version: Annotated[Optional[int], typer.Option(min=1, max=MAX_VERSION, help="An older version (default: the current one).")] = None,
    plain: Annotated[bool, typer.Option("--plain/", help="Print raw Markdown even on a terminal.")] = False,
    store: Store = None,
) -> None:
    """Show a stored profile as Markdown."""
    stored = ProfileStore(store).get(user_id, version)
    i = stored.info
    text = stored.profile.to_markdown() + (
        f"\n_Version {i.version}: {i.action} by {i.author} on {i.created_at:%Y-%m-%d %H:%M} UTC._\n")
    print_markdown(text, plain)


@command("history")
def history(user_id: UserId, store: Store = None) -> None:
    """List every version of a profile: when, who, what."""
    for v in ProfileStore(store).history(user_id):
        line = f"{v.version:>4}  {v.created_at:%Y-%m-%d %H:%M:%S}  {v.author:<12} {v.action:<7} {v.message or ''}"
        echo(line.rstrip())


@command("diff")
def diff(
    user_id: UserId,
    old: Annotated[int, typer.Argument(metavar="V1", min=1, max=MAX_VERSION, help="The earlier version.")],
    new: Annotated[int, typer.Argument(metavar="V2", min=1, max=MAX_VERSION, help="The later version.")],
    store: Store = None,
) -> None:
    """What changed between two versions of a profile."""
    opened = ProfileStore(store)
    lines = diff_profiles(opened.get(user_id, old).profile, opened.get(user_id, new).profile)
    echo(f"{user_id}: version {old} → version {new}")
    for line in lines or ["no differences"]:
        echo(f"  {line}")


@command("edit")
def edit(
    user_id: UserId,
    pin: Annotated[list[str], typer.Option(metavar="ID", help="Keep this hypothesis or fact through automated updates.")] = [],
    unpin: Annotated[list[str], typer.Option(metavar="ID")] = [],
    delete: Annotated[list[str], typer.Option(metavar="ID")] = [],
    set_statement: Annotated[list[str], typer.Option("--set", metavar="ID=STATEMENT", help="Reword a hypothesis.")] = [],
    add: Annotated[list[str], typer.Option(metavar="ASPECT=STATEMENT", help="Add a hypothesis of your own.")] = [],
    attribute: Annotated[list[str], typer.Option(metavar="KEY=VALUE", help="Set an attribute (KEY= removes it).")] = [],
    author: Author = None,
    message: Message = None,
    store: Store = None,
) -> None:
    """Edit a profile: with flags, or with no flags in $VISUAL or $EDITOR on a YAML view. Saves a new version."""
    opened = ProfileStore(store)
    edits = Edits.from_flags(pin, unpin, delete, set_statement, add, attribute)
    who = author_or(author, default_author())
    if edits.is_empty():
        info = _edit_in_editor(opened, user_id, author=who, message=message)
    else:
        info = edit_profile(opened, user_id, edits, author=who, message=message)
    _saved(info, user_id)


def _edit_in_editor(store: ProfileStore, user_id: str, *, author: str, message: str | None) -> VersionInfo | None:
    """The YAML view in the person's editor ($VISUAL, else $EDITOR: click's round trip); None when closed without
    saving. An edit that cannot be applied is kept in a file named in the error, never lost."""
    current = store.get(user_id)
    try:
        text = click.edit(to_yaml(current.profile, current.version), extension=".yaml", require_save=True)
    except (click.ClickException, ValueError) as exc:  # ValueError: an editor command shlex cannot split
        reason = exc.format_message() if isinstance(exc, click.ClickException) else f"EDITOR: {exc}"
        raise InputError(f"the editor could not be used ({reason}); set EDITOR, or edit with the flags (--pin, "
                         "--set, …); the profile is unchanged") from None
    if text is None:
        return None
    try:
        return edit_profile(store, user_id, edits_from_yaml(text, current.profile), author=author, message=message)
    except HyperAlignError as exc:  # not applied (a bad edit, a store that failed): the person's edit is kept
        kept = rescue(text, Path(f"{user_id}.yaml"))
        raise InputError(f"{exc} — your edit is kept in {kept}" if kept else str(exc)) from None


@command("update")
def update(
    user_id: UserId,
    examples_file: Annotated[Path, typer.Argument(metavar="NEW_EXAMPLES.jsonl", help='Lines {"prompt"?, "text"}.')],
    retire_below: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Retire inferred, unpinned hypotheses scoring below this…")] = 0.1,
    min_ratings: Annotated[int, typer.Option(min=1, help="…once rated on at least this many texts.")] = 3,
    max_per_aspect: Annotated[int, typer.Option(min=1, max=5, help="New candidates per aspect.")] = 4,
    infer_new: Annotated[bool, typer.Option(
        "--infer-new/--no-infer-new", help="Infer new hypotheses from the texts.")] = True,
    author: Author = None,
    message: Message = None,
    store: Store = None,
) -> None:
    """Rescore a profile on new texts, add hypotheses inferred from them, retire the ones they contradict."""
    who = author_or(author, AUTOMATED_AUTHOR)
    examples = read_examples(examples_file)
    opened = ProfileStore(store)
    opened.get(user_id)  # a missing profile should fail before any LLM call
    ha = client()
    options = UpdateOptions(retire_below=retire_below, min_ratings=min_ratings, infer_new=infer_new,
                            inference=InferenceOptions(method="paper", max_per_aspect=max_per_aspect,
                                                       infer_attributes=False))  # as UpdateOptions' default
    with err.status(terminal_safe(f"Updating {user_id} from {len(examples)} new texts with {ha.client.model}…")):
        result = ha.update_profile(opened, user_id, examples, options,
                                author=who, message=message)
    _saved(result.version, user_id)
    report_usage(ha)


@command("infer")
def infer(
    examples_file: Annotated[Path, typer.Argument(metavar="EXAMPLES.jsonl", help='Lines {"prompt"?: str, "text": str}.')],
    user: Annotated[str, typer.Option("--user", help="The user's id.")],
    attribute: Annotated[list[str], typer.Option(help="Known attribute KEY=VALUE (wins over inferred).")] = [],
    max_per_aspect: Annotated[int, typer.Option(min=1, max=5)] = 4,
    replace: Annotated[bool, typer.Option("--replace/", help="Store a fresh inference over an existing profile.")] = False,
    author: Author = None,
    message: Message = None,
    store: Store = None,
) -> None:
    """Infer a profile from a user's texts and store it."""
    check_name(user, "--user")
    who = author_or(author, AUTOMATED_AUTHOR)
    attributes = parse_attributes(attribute)
    examples = read_examples(examples_file)
    opened = ProfileStore(store)
    current = opened.current_version(user)
    if current is not None and not replace:
        # A fresh inference would drop what a person pinned or wrote; updating keeps it.
        raise InputError(
            f"profile '{user}' is already stored (version {current}): `hyperalign profile update {user} NEW.jsonl` "
            "adds texts to it; --replace stores a fresh inference as its next version (the history keeps the old)"
        )
    ha = client()
    profile = infer_with_status(ha, user, examples, attributes, InferenceOptions(max_per_aspect=max_per_aspect))
    try:
        info = opened.save(profile, expected_version=None if replace else 0, author=who,
                           action=Action.INFER, message=message)
    except HyperAlignError as exc:  # the inference is finished work: keep it where the person can import it
        kept = rescue(profile.to_json() + "\n", Path(f"{user}.json"))
        raise InputError(f"{exc}; the inferred profile is kept in {kept} (`hyperalign profile import` it)"
                         if kept else str(exc)) from None
    _saved(info, user)
    report_usage(ha)


@command("export")
def export(
    user_id: UserId,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the JSON here, not to stdout.")] = None,
    version: Annotated[Optional[int], typer.Option(min=1, max=MAX_VERSION, help="An older version (default: the current one).")] = None,
    store: Store = None,
) -> None:
    """Export a profile as JSON (the format `hyperalign show`, `generate --profile` and `import` read)."""
    stored = ProfileStore(store).get(user_id, version)
    if output:
        stored.profile.save(output)
        say(f"Wrote version {stored.version} of {user_id} to {output}.", style="")
    else:
        echo_json(stored.profile.to_json())


@command("import")
def import_profile(
    profile_file: Annotated[Path, typer.Argument(metavar="PROFILE.json")],
    user: Annotated[Optional[str], typer.Option("--user", help="Store under this id instead of the file's.")] = None,
    author: Author = None,
    message: Message = None,
    store: Store = None,
) -> None:
    """Import a profile JSON into the store (a new version if the user already has one)."""
    profile = Profile.load(profile_file)
    if user is not None:
        profile = profile.model_copy(update={"user_id": check_name(user, "--user")})
    info = ProfileStore(store).save(profile, expected_version=None, author=author_or(author, default_author()),
                                    action=Action.IMPORT, message=message or f"from {profile_file.name}")
    _saved(info, profile.user_id)
