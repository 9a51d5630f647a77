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
    assert top == ["__init__.py", "__main__.py", "api.py", "config.py", "errors.py", "io.py", "text.py"]


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

