"""The package's shape: no import cycles (not even ones hidden in function bodies), the pipeline's stages in their own
modules, the public API importable from the top, and the README's layout section naming what is on disk."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "hyperalign"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "store_migrations" not in p.parts}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, known: dict[str, Path], *, typing_only: bool) -> set[str]:
    """hyperalign modules `name` imports anywhere in its body (functions included); annotations-only imports under
    `if TYPE_CHECKING:` are included unless typing_only is False."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if typing_only else _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hyperalign"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("hyperalign"):
                continue
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("typing_only", [False, True], ids=["runtime", "with TYPE_CHECKING imports"])
def test_no_import_cycles(typing_only):
    known = modules()
    graph = {name: imports_of(name, path, known, typing_only=typing_only) for name, path in known.items()}
    assert cycles(graph) == []


def test_the_cycle_detector_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_scanner_sees_imports_inside_functions(tmp_path, monkeypatch):
    source = "def f():\n    from .b import thing\n    return thing\n"
    path = tmp_path / "a.py"
    path.write_text(source, encoding="utf-8")
    assert imports_of("hyperalign.x.a", path, {"hyperalign.x.a": path, "hyperalign.x.b": path},
                      typing_only=False) == {"hyperalign.x.b"}


PIPELINE_STAGES = ["context", "propose", "evidence", "selection", "infer", "generate", "deliberate"]


def test_the_pipeline_and_profiles_have_one_module_per_stage():
    assert all((PACKAGE / "pipeline" / f"{stage}.py").is_file() for stage in PIPELINE_STAGES)
    assert all((PACKAGE / "profiles" / f"{part}.py").is_file() for part in ("model", "migrations", "store", "edit", "update"))
    assert all((PACKAGE / "eval" / task / "__init__.py").is_file() for task in ("authorship", "deliberative", "ablation"))
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "api.py", "config.py", "errors.py", "migration_chain.py", "plugins.py",
                   "redaction.py", "text.py", "usage.py"]


# Which part of the package may import which (the top-level modules and packages, by name). A layer sees only what
# is below it: the foundation (errors, io, text, usage, plugins, redaction) sees nothing above; profiles are data and
# never call an LLM or the pipeline; the pipeline never sees the front ends (api, cli, service, batch, eval); only the
# CLI sees everything.
FOUNDATION = {"errors", "io", "text", "usage", "plugins", "redaction", "migration_chain"}
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(), "text": set(), "usage": set(), "plugins": set(), "io": {"errors"}, "migration_chain": set(),
    "redaction": {"errors", "io"},
    "llm": FOUNDATION,
    "prompts": {"errors"},
    "profiles": FOUNDATION,
    "pipeline": FOUNDATION | {"llm", "prompts", "profiles"},
    "config": FOUNDATION | {"llm"},
    "api": FOUNDATION | {"config", "llm", "pipeline", "profiles"},
    "eval": FOUNDATION | {"api", "llm", "pipeline", "profiles", "prompts"},
    "train": FOUNDATION | {"llm", "pipeline", "profiles", "eval"},
    "batch": FOUNDATION | {"api", "config", "llm", "pipeline", "profiles"},
    "service": FOUNDATION | {"api", "config", "llm", "pipeline", "profiles", "prompts"},
    "cli": FOUNDATION | {"api", "config", "llm", "pipeline", "profiles", "prompts", "eval", "train", "batch", "service"},
    # The profiles API's Python client shares the server's request and response models (service.schemas) and
    # nothing else of the service (test_the_client_takes_only_the_models_from_the_service).
    "client": FOUNDATION | {"profiles", "service"},
    "__main__": {"cli"},
}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hyperalign"


@pytest.mark.parametrize("typing_only", [False, True], ids=["runtime", "with TYPE_CHECKING imports"])
def test_each_part_imports_only_the_layers_below_it(typing_only):
    known = modules()
    parts = {part(name) for name in known} - {"hyperalign"}
    assert parts <= set(MAY_IMPORT), f"a new part needs its rule: {sorted(parts - set(MAY_IMPORT))}"
    breaches = sorted(
        f"{name} imports {dep}"
        for name, path in known.items() if part(name) != "hyperalign"
        for dep in imports_of(name, path, known, typing_only=typing_only)
        if part(dep) != part(name) and part(dep) not in MAY_IMPORT[part(name)]
    )
    assert breaches == []


def test_the_client_takes_only_the_models_from_the_service():
    known = modules()
    taken = {dep for name, path in known.items() if part(name) == "client"
             for dep in imports_of(name, path, known, typing_only=True) if part(dep) == "service"}
    assert taken == {"hyperalign.service.schemas"}


def test_the_layer_rules_catch_an_arrow_that_runs_back_up(tmp_path):
    path = tmp_path / "store.py"
    path.write_text("from ..pipeline.infer import ainfer_profile\n", encoding="utf-8")
    known = {"hyperalign.profiles.store": path, "hyperalign.pipeline.infer": path}
    deps = imports_of("hyperalign.profiles.store", path, known, typing_only=False)
    assert deps == {"hyperalign.pipeline.infer"} and "pipeline" not in MAY_IMPORT["profiles"]


def test_modules_stay_small():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: size for name, size in sizes.items() if size > 450} == {}


def test_the_public_api_is_importable_from_the_top():
    import hyperalign

    for name in ("HyperAlign", "Profile", "UserExample", "ProfileStore", "SelectionOptions", "UpdateOptions", "Edits",
                 "InferenceOptions", "GenerationOptions", "Generation", "Strategy", "Deliberation", "InputError",
                 "HyperAlignError", "read_examples"):
        assert hasattr(hyperalign, name), name
    ha = hyperalign.HyperAlign
    for method in ("infer_profile", "generate", "generate_many", "deliberate", "update_profile"):
        assert callable(getattr(ha, method)) and callable(getattr(ha, f"a{method}")), method

