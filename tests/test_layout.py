"""The house in folders: imports only go down, the core knows no Typer or Rich, the top level stays small."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gancli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The gancli modules `path` imports, anywhere in it (a lazy import inside a function counts too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # gancli.x.y.Name -> gancli.x.y
                target = target.rpartition(".")[0]
            if target and target != name and target != "gancli":
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search with colours)."""
    colour, stack = {}, []

    def visit(node: str) -> list[str] | None:
        colour[node] = "grey"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if colour.get(child) == "grey":
                return stack[stack.index(child):] + [child]
            if child not in colour and (found := visit(child)):
                return found
        stack.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_imports_neither_typer_nor_rich():
    """Only gancli.cli speaks to a terminal; the library reports through return values and the Reporter protocol."""
    offenders = []
    for name, path in _modules().items():
        if name == "gancli.cli" or name.startswith("gancli.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            roots = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{name} imports {r}" for r in roots if r.split(".")[0] in ("typer", "rich", "click")]
    assert not offenders, offenders


def test_the_core_loads_without_typer_or_rich_in_a_fresh_interpreter():
    import subprocess

    code = ("import sys, gancli, gancli.api, gancli.training.loop, gancli.use.sampling, gancli.evaluation.evaluate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_at_most_six_modules_at_the_top():
    assert len(list(PACKAGE.glob("*.py"))) <= 6, sorted(p.name for p in PACKAGE.glob("*.py"))


def test_layers_import_downwards_only():
    """cli -> api -> explore -> train/use/evaluation -> models/data/store -> config/errors/device: never back up."""
    rank = {"__main__": 6, "cli": 5, "api": 4, "": 4, "explore": 3.5, "training": 3, "use": 3, "evaluation": 3, "models": 2, "data": 2, "store": 2}
    upward = []
    for name, targets in import_graph().items():
        part = name.split(".")[1] if "." in name else ""  # "": gancli/__init__.py, the API's front
        for target in targets:
            other = target.split(".")[1]
            if rank.get(other, 0) > rank.get(part, 0):
                upward.append(f"{name} -> {target}")
    assert not upward, upward


def test_every_command_body_is_short():
    """A command parses, makes one API call and prints: at most 25 lines after its options and docstring."""
    tree = ast.parse((PACKAGE / "cli" / "__init__.py").read_text())
    commands = [f for f in tree.body if isinstance(f, ast.FunctionDef) and any("app." in ast.unparse(d) for d in f.decorator_list)]
    assert len(commands) >= 8  # the callback and every command
    long = {}
    for function in commands:
        body = function.body[1:] if isinstance(function.body[0], ast.Expr) and isinstance(function.body[0].value, ast.Constant) else function.body
        lines = body[-1].end_lineno - body[0].lineno + 1
        if lines > 25:
            long[function.name] = lines
    assert not long, long
