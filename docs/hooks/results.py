"""MkDocs hook: the "Measured results" pages, generated at build time from benchmarks/results/*.json.

No measured number is typed into any page by hand. Each result file becomes its own page (how it was produced —
script, command, commit, machine — and the report the script wrote beside it), and the overview page shows the main
numbers of every result in tables. Where a result's JSON only records how it was produced (the evaluations keep
their numbers in the run folder), the numbers come from the run folder's results.json, committed under
benchmarks/runs/ as a folder or one compressed archive.

Loaded by mkdocs.yml (`hooks:`); `render_pages` is also what tests/test_docs.py checks."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Sibling modules: mkdocs puts the hook's folder on the path while it loads it (tests/test_docs.py does the same).
from across_corpora import across_corpora
from formatting import Json, cell, interval, number, table
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

SECTION = "results"  # the pages' folder in the site



def page_name(stem: str) -> str:
    return f"{SECTION}/{stem}.md"


# --- where a result's numbers are ----------------------------------------------------------------------------------


def run_folder_name(result: Json) -> str | None:
    """The run folder an evaluation wrote to: its command's `--out`."""
    words = shlex.split(result.get("command", ""))
    for flag, value in zip(words, words[1:], strict=False):
        if flag == "--out":
            return Path(value).name
    return None


def run_results(root: Path, result: Json) -> Json | None:
    """The run folder's results.json, from benchmarks/runs/NAME/ or its archive benchmarks/runs/NAME.* (a tar file,
    compressed as tarfile reads: gzip, bzip2, xz)."""
    name = run_folder_name(result)
    if not name:
        return None
    runs = root / "benchmarks" / "runs"
    folder = runs / name / "results.json"
    if folder.is_file():
        return json.loads(folder.read_text(encoding="utf-8"))
    for archive in sorted(runs.glob(f"{name}.*")):
        try:
            tar = tarfile.open(archive)
        except tarfile.ReadError as exc:  # an archive this page cannot read must not silently drop its numbers
            raise ValueError(f"{archive}: not a tar archive Python can read ({exc})") from None
        with tar:
            for member in tar.getmembers():
                if member.isfile() and Path(member.name).parts[-2:] == (name, "results.json"):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return json.loads(extracted.read().decode("utf-8"))
    return None


def made(root: Path, stem: str, result: Json) -> str:
    """When a result's run was made: its result file's first commit (ISO date), else its `finished_at` (a tree that
    is not a git checkout)."""
    try:
        log = subprocess.run(["git", "log", "--reverse", "--format=%cI", "--", f"benchmarks/results/{stem}.json"],
                             cwd=root, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        log = []
    return log[0] if log else str(result.get("finished_at", ""))


# --- provenance ----------------------------------------------------------------------------------------------------


def provenance(result: Json, stem: str) -> str:
    """How the result was produced, as far as its JSON says."""
    lines = []
    if result.get("script"):
        lines.append(f"- Script: `{result['script']}`")
    if result.get("command"):
        where = f" (run from {result['cwd']})" if result.get("cwd") else " (run from the repository root)"
        lines.append(f"- Command{where}:\n\n    ```text\n    {result['command']}\n    ```\n")
    code = result.get("code") or {}
    if code.get("commit"):
        dirty = " with uncommitted changes" if code.get("dirty") else ""
        lines.append(f"- Code: commit `{code['commit'][:12]}`{dirty}")
    machine = result.get("machine") or {}
    if machine:
        described = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in machine.items())
        lines.append(f"- Machine: {described}")
    if result.get("wall_time_s") is not None:
        covers = f" — {result['wall_time_covers']}" if result.get("wall_time_covers") else ""
        lines.append(f"- Wall time: {number(result['wall_time_s'], 1)} s{covers}")
    if result.get("finished_at"):
        lines.append(f"- Finished: {result['finished_at']}")
    lines.append(f"- Data: `benchmarks/results/{stem}.json`")
    return "\n".join(lines) + "\n"


# --- the main tables -----------------------------------------------------------------------------------------------


def authorship_table(run: Json) -> str:
    attribution = run.get("attribution", {})
    masked = attribution.get("views", {}).get("masked", {})
    copying = attribution.get("copying", {})
    second = attribution.get("second", {})
    cost = run.get("cost", {}).get("methods", {})
    has_margin = any("delta_margin" in m for m in second.get("methods", {}).values())
    paired = f"delta_margin_vs_{second.get('paired_against', '')}"
    has_paired = any(paired in m for m in second.get("methods", {}).values())
    # Runs that recorded what the backend reused of each prompt (its prefix cache) show what it computed, too.
    has_computed = any((m or {}).get("computed_prompt_tokens_per_generation") is not None for m in cost.values())
    header = ["method", "masked attribution", "Delta margin" if has_margin else "Delta to target",
              *(["margin − few-shot (paired)"] if has_paired else []), "copy rate", "prompt tokens / generation",
              *(["of them computed"] if has_computed else [])]
    second_key = "delta_margin" if has_margin else "delta"
    rows = []
    for method in run.get("methods", []):
        rows.append([
            f"`{method}`",
            interval(masked.get("methods", {}).get(method, {}).get("all", {}).get("accuracy")),
            interval(second.get("methods", {}).get(method, {}).get(second_key), 3 if has_margin else 2),
            *([interval(second.get("methods", {}).get(method, {}).get(paired), 3)] if has_paired else []),
            number(copying.get(method, {}).get("mean_copy_rate"), 3),
            number(cost.get(method, {}).get("prompt_tokens_per_generation"), 0),
            *([number(cost.get(method, {}).get("computed_prompt_tokens_per_generation"), 0)] if has_computed else []),
        ])
    for label, key, second_label in (("real held-out texts (ceiling)", "ceiling_real_texts", "ceiling_real_texts"),
                                     ("floor", "floor_opening_only", "floor_other_authors")):
        rows.append([f"*{label}*", interval(masked.get(key, {}).get("accuracy")),
                     interval(second.get(second_label, {}).get(second_key), 3 if has_margin else 2),
                     *([""] if has_paired else []), "", "", *([""] if has_computed else [])])
    chance = attribution.get("chance")
    note = (f"Masked attribution: accuracy of a char 3-gram classifier on style-only (masked) text, chance "
            f"{number(chance)}; floor: the given opening alone. Delta margin: Burrows' Delta to the other authors minus "
            "Delta to the target (higher is more the target's); floor: other authors' real texts. Paired: the "
            "method's margin minus few-shot's on the same prompts. "
            + ("Prompt tokens are billed (each call's whole prompt); computed: less what the backend reused from its "
               "prefix cache, as it reported it. " if has_computed else "")
            + "Brackets: bootstrap 95% intervals.\n")
    return table(header, rows) + "\n" + note


def deliberative_table(run: Json) -> str:
    metrics = run.get("metrics", {})
    controls = run.get("controls", {})
    harm = controls.get("harm judge", {})
    harm_ok = harm.get("passed", True)
    header = ["method", "harmful rate", "helpfulness", "refusal rate", "partial refusals", "over-refusal (benign)",
              "prompt tokens / answer"]
    rows = []
    for method, row in metrics.items():
        rows.append([f"`{method}`", interval(row.get("harmful_rate")) if harm_ok else "judge failed its controls",
                     interval(row.get("helpfulness")), interval(row.get("refusal_rate")),
                     interval(row.get("partial_refusal_rate")), interval(row.get("over_refusal_rate")),
                     number(row.get("prompt_tokens_per_answer"), 0)])
    checks = "; ".join(f"{name} {c.get('correct')}/{c.get('n')} ({'passed' if c.get('passed') else 'failed'})"
                       for name, c in controls.items())
    note = f"Judges on the labelled control set: {checks}. A judge that fails shows no number.\n" if checks else ""
    return table(header, rows) + "\n" + note


def refusal_table(result: Json) -> str:
    parts = []
    for split, detectors in result.get("splits", {}).items():
        rows = [[cell(name), number(d.get("n")), number(d.get("accuracy"), 3), number(d.get("kappa"), 3),
                 *(f"{number(d.get('per_label', {}).get(label, {}).get('precision'))} / "
                   f"{number(d.get('per_label', {}).get(label, {}).get('recall'))}"
                   for label in ("refusal", "partial", "compliance")),
                 number(d.get("two_way_accuracy"), 3)]
                for name, d in detectors.items()]
        parts.append(f"**{cell(split)}**\n\n" + table(
            ["detector", "n", "accuracy", "Cohen's κ", "refusal P / R", "partial P / R", "compliance P / R",
             "any-refusal accuracy"], rows))
    return "\n".join(parts)


def summary_table(summary: Json) -> str:
    """{variant: {metric: value}} as one row per variant."""
    columns: list[str] = []
    for values in summary.values():
        columns += [k for k in values if k not in columns]
    rows = [[cell(variant), *(number(values.get(c)) for c in columns)] for variant, values in summary.items()]
    return table(["variant", *(c.replace("_", " ") for c in columns)], rows)


def rows_table(rows: list[Json], limit: int = 30) -> str:
    """Flat rows with scalar columns; long texts and nested values are left to the JSON."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k, v in row.items() if k not in columns and _shown(v)]
    body = [[number(row.get(c)) for c in columns] for row in rows[:limit]]
    more = f"\n{len(rows) - limit} more rows in the JSON.\n" if len(rows) > limit else ""
    return table([c.replace("_", " ") for c in columns], body) + more


def gpu_table(estimates: list[Json], inputs: Json) -> str:
    """A cost model's GPU-hours: one row per cited throughput, each as the low, assumed and high weight of a prompt
    token against an output token (the model's inputs say which)."""
    weights = inputs.get("prompt_token_cost") or {}
    spread = " / ".join(k for k in ("low", "assumed", "high") if k in weights) or "low / assumed / high"
    rows = []
    for estimate in estimates:
        cited = estimate.get("throughput") or {}
        rows.append([f"{number(cited.get('output_tokens_per_s'), 0)} output tokens/s: {cell(cited.get('model', ''))}, "
                     f"{cell(cited.get('gpu', ''))}, {cell(cited.get('engine', ''))}",
                     " / ".join(number(v, 0) for v in estimate.get("inference_gpu_hours", [])),
                     " / ".join(number(v, 0) for v in estimate.get("chat_gpu_hours_per_day", []))])
    note = (f"\nA prompt token weighed {' / '.join(number(weights[k], 1) for k in ('low', 'assumed', 'high') if k in weights)}"
            f" of an output token: {cell(weights['why'])}\n" if weights.get("why") else "")
    return table(["cited throughput", f"inference, all users: GPU-hours ({spread})",
                  f"chat, per day: GPU-hours ({spread})"], rows) + note


def variant_tables(result: Json, skip: set[str]) -> list[str]:
    """Each top-level {variant: {metric: value}} field (not the summary) as its own titled table."""
    return [f"**{key.replace('_', ' ')}**\n\n" + summary_table(value) for key, value in result.items()
            if key not in skip and isinstance(value, dict) and value
            and all(isinstance(v, dict) and v and all(_shown(x) for x in v.values()) for v in value.values())]


def _shown(value: Any) -> bool:
    return value is None or isinstance(value, int | float | bool) or (isinstance(value, str) and len(value) <= 80)


def scalars(result: Json, skip: set[str]) -> str:
    """Top-level and one-level-nested scalar fields, as a definition list."""
    lines = []
    for key, value in result.items():
        if key in skip:
            continue
        if isinstance(value, dict) and all(_shown(v) for v in value.values()):
            shown = ", ".join(f"{k.replace('_', ' ')}: {number(v)}" for k, v in value.items())
            lines.append(f"- {key.replace('_', ' ')}: {shown}")
        elif _shown(value):
            lines.append(f"- {key.replace('_', ' ')}: {number(value)}")
    return "\n".join(lines) + "\n" if lines else ""


PROVENANCE = {"report", "script", "command", "cwd", "wall_time_s", "wall_time_covers", "finished_at", "code",
              "machine", "files"}


def run_summary(config: Json) -> str:
    """What an evaluation ran: its sample and its models, in one line."""
    facts = []
    if "authors" in config:
        facts.append(f"{config['authors']} authors × {config.get('prompts_per_author')} prompts, "
                     f"{config.get('shots')} shots")
    if "users" in config:
        facts.append(f"{config['users']} users × {config.get('requests_per_user')} requests, "
                     f"{config.get('shots')} example messages each")
    if config.get("model"):
        judge = config.get("judge_model")
        facts.append(f"model `{config['model']}`" + (f", judge `{judge}`" if judge else ""))
    if "seed" in config:
        facts.append(f"seed {config['seed']}")
    return ("- " + "; ".join(facts) + "\n") if facts else ""


def main_numbers(root: Path, result: Json, row_limit: int = 30) -> str:
    """The result's main table: a known shape rendered for reading, anything else generically (at most `row_limit`
    raw rows: a longer list is per-item data, left to the result's own page and its JSON)."""
    run = run_results(root, result) if "run_config" in result else None
    if run is not None and run.get("kind") == "authorship":
        return authorship_table(run)
    if run is not None and run.get("kind") == "deliberative":
        return deliberative_table(run)
    if "run_config" in result:
        return "The run folder is not in the repository: the numbers are in the report on this result's page.\n"
    if "splits" in result:
        return refusal_table(result)
    parts = []
    if isinstance(result.get("summary"), dict):
        parts.append(summary_table(result["summary"]))
    elif isinstance(result.get("rows"), list) and result["rows"]:
        rows = result["rows"]
        parts.append(rows_table(rows, row_limit) if row_limit >= 30 or len(rows) <= row_limit else
                     f"{len(rows)} rows, one per measured item: on this result's page and in its JSON.\n")
    if isinstance(result.get("gpu"), list) and result["gpu"]:
        parts.append(gpu_table(result["gpu"], result.get("inputs") or {}))
    parts += variant_tables(result, PROVENANCE | {"summary", "rows"})
    extra = scalars(result, PROVENANCE | {"summary", "rows"})
    if extra:
        parts.append(extra)
    return "\n".join(parts) or "No numbers in the JSON beyond how it was produced; see the report below.\n"


# --- pages ---------------------------------------------------------------------------------------------------------

FAMILIES: list[tuple[str, Callable[[str], bool]]] = [
    ("Authorship evaluations", lambda stem: stem.startswith(("aaac-", "ccat50-", "beer-")) and "verify" not in stem),
    ("Deliberative alignment", lambda stem: stem.startswith("deliberative-")),
    ("Refusal detection", lambda stem: stem.startswith("refusal-")),
    ("Speed and cost", lambda stem: stem.startswith(("embedded-speed", "service-overhead", "profile-reads",
                                                     "batch-overhead", "inference-cost"))),
    ("Scale and cost", lambda stem: stem.startswith(("batch-scale", "cost-model"))),
    ("Robustness", lambda stem: stem.startswith("adversarial-")),
]
OTHER = "Other measurements"


def family(stem: str) -> str:
    return next((name for name, matches in FAMILIES if matches(stem)), OTHER)


def heading(stem: str, result: Json, root: Path) -> str:
    """The report's own title, else the result's file name."""
    report = report_text(root, result)
    first = report.splitlines()[0] if report else ""
    return first.lstrip("#").strip() if first.startswith("# ") else stem


def titles(root: Path, results: dict[str, Json]) -> dict[str, str]:
    """Each result's title: its report's, with the file name added where two reports share a title."""
    plain = {stem: heading(stem, result, root) for stem, result in results.items()}
    repeated = {t for t in plain.values() if list(plain.values()).count(t) > 1}
    return {stem: f"{t} — {stem}" if t in repeated and t != stem else t for stem, t in plain.items()}


def report_text(root: Path, result: Json) -> str:
    report = result.get("report")
    path = (root / report).resolve() if report else None
    return path.read_text(encoding="utf-8") if path and path.is_file() else ""


def demoted(report: str) -> str:
    """The report under this page's own title: its first heading dropped, the others one level down."""
    lines = report.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("#" + line if re.match(r"#{1,5} ", line) else line for line in lines) + "\n"


def result_page(root: Path, stem: str, result: Json, title: str) -> str:
    parts = [f"# {title}\n", provenance(result, stem), "## Main numbers\n", main_numbers(root, result)]
    images = [Path(f).name for f in result.get("files", []) if f.endswith(".png") and (root / f).is_file()]
    for image in images:
        parts.append(f"![{image}]({image})\n")
    report = report_text(root, result)
    if report:
        parts.append(f"## The report\n\nAs the script wrote it (`{result['report'].removeprefix('./')}`).\n")
        parts.append(demoted(report))
    return "\n".join(parts)


def overview(root: Path, results: dict[str, Json]) -> str:
    parts = ["# Measured results\n",
             "Every number on these pages is read from `benchmarks/results/*.json` when the site is built; none is "
             "typed by hand. Each result's page says which script and command produced it, on which commit and "
             "machine, and shows the report the script wrote. Rerun the command from the repository root to "
             "reproduce it.\n",
             "Small models as generator and judge test that the machinery runs end to end; read each result with "
             "its model and sample size in mind.\n"]
    named = titles(root, results)
    authorship = [(stem, result, run, made(root, stem, result)) for stem, result in results.items()
                  if "run_config" in result
                  for run in [run_results(root, result)] if run is not None and run.get("kind") == "authorship"]
    across = across_corpora(authorship)
    if across:
        parts += ["## One method across corpora\n", across]
    by_family: dict[str, list[str]] = {}
    for stem in results:
        by_family.setdefault(family(stem), []).append(stem)
    for name in [*(n for n, _ in FAMILIES), OTHER]:
        if name not in by_family:
            continue
        parts.append(f"## {name}\n")
        for stem in by_family[name]:
            result = results[stem]
            parts.append(f"### [{named[stem]}]({stem}.md)\n")
            if result.get("command"):
                parts.append(f"```text\n{result['command']}\n```\n")
            if isinstance(result.get("run_config"), dict):
                parts.append(run_summary(result["run_config"]))
            parts.append(main_numbers(root, result, row_limit=12))
    return "\n".join(parts)


def render_pages(root: Path) -> dict[str, str | bytes]:
    """Site path -> content: the overview, one page per result, and the images the results name."""
    results = {path.stem: json.loads(path.read_text(encoding="utf-8"))
               for path in sorted((root / "benchmarks" / "results").glob("*.json"))}
    pages: dict[str, str | bytes] = {f"{SECTION}/index.md": overview(root, results)}
    named = titles(root, results)
    for stem, result in results.items():
        pages[page_name(stem)] = result_page(root, stem, result, named[stem])
        for image in result.get("files", []):
            if image.endswith(".png") and (root / image).is_file():
                pages[f"{SECTION}/{Path(image).name}"] = (root / image).read_bytes()
    return pages


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    pages = render_pages(root)
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    titles = [{str(content).partition("\n")[0].removeprefix("# "): path} for path, content in pages.items()
              if path.endswith(".md") and path != f"{SECTION}/index.md"]
    if config.nav:
        config.nav = _with_result_pages(config.nav, titles)
    return files


def _with_result_pages(nav: list[Any], entries: list[dict[str, str]]) -> list[Any]:
    """The nav with the overview's entry turned into a section: the overview, then one entry per result."""
    out: list[Any] = []
    for item in nav:
        if isinstance(item, dict):
            (label, value), = item.items()
            if value == f"{SECTION}/index.md":
                item = {label: [{"Overview": value}, *entries]}
            elif isinstance(value, list):
                item = {label: _with_result_pages(value, entries)}
        out.append(item)
    return out
