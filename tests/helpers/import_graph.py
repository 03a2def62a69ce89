"""The package's import graph read from its source (module-level and function-level imports alike),
and the architecture rules checked on it: no cycle, layers only import downwards, the CLI imported
by nobody but the stages."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# Each top-level module or subpackage of imgclf and its layer: a unit imports only lower layers.
LAYERS = {
    "errors": 0, "optional": 0, "logs": 0,
    "atomic": 1, "metrics": 1, "thresholds": 2, "cutpoints": 2, "config": 2, "lock": 2,
    "paths": 3,
    "reporting": 4,
    "data": 5, "eda": 6, "models": 6, "planning": 6, "training": 7, "inference": 8, "tuning": 8,
    "ensemble": 9, "pseudo": 9,
    "cli": 10, "stages": 11,
}
CLI_USERS = {"imgclf.cli", "imgclf.stages"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. imgclf.training.fit
    target: str  # the imported module
    line: int
    in_function: bool
    commented: bool  # a comment on the import's line or on the line above it


def module_name(root: Path, file: Path) -> str:
    parts = file.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _target(node: ast.ImportFrom, source: str, is_package: bool, modules: set[str]) -> list[str]:
    if node.level:
        base = source.split(".") if is_package else source.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    subs = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in modules]
    return subs or [prefix]


def read_imports(root: Path) -> tuple[set[str], list[Import]]:
    """Every module of the package under ``root`` and every import of another of its modules."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, f) for f in files}
    found = []
    for file in files:
        source, lines = module_name(root, file), file.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        inside = {id(n) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
                  for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _target(node, source, file.name == "__init__.py", modules)
            else:
                continue
            commented = _commented(lines, node.lineno - 1)
            found += [Import(source, t, node.lineno, id(node) in inside, commented)
                      for t in targets if t in modules and t != source]
    return modules, found


def _commented(lines: list[str], index: int) -> bool:
    """A comment on the import, on another import of its block, or on the line above the block."""
    while index > 0 and lines[index - 1].strip().startswith(("from ", "import ")):
        if "#" in lines[index]:
            return True
        index -= 1
    return "#" in lines[index] or (index > 0 and lines[index - 1].strip().startswith("#"))


def find_cycle(modules: set[str], imports: list[Import]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        edges[imp.source].add(imp.target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(modules):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def unit(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports from one unit into another of the same or a higher layer."""
    out = []
    for imp in imports:
        src, dst = unit(imp.source), unit(imp.target)
        if src and dst and src != dst and LAYERS[src] <= LAYERS[dst]:
            out.append(f"{imp.source}:{imp.line} imports {imp.target} ({src} is layer {LAYERS[src]}, "
                       f"{dst} layer {LAYERS[dst]})")
    return out


def cli_imports(imports: list[Import]) -> list[str]:
    return [f"{i.source}:{i.line}" for i in imports if i.target == "imgclf.cli" and i.source not in CLI_USERS]
