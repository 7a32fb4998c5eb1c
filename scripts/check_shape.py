"""Measure the package's shape with ``ast``: class, module and function sizes and import cycles.

    python scripts/check_shape.py [src/infodrop] [--max-class 250] [--max-module 600] [--max-function 80]

A function's size counts its lines without its docstring; a class's and a module's count every
line. Imports are resolved inside the package (``from . import x``, ``from infodrop.y import z``,
also inside functions), and a cycle is any strongly connected group of two or more modules or a
module importing itself. Exits 1 and lists every breach when a limit is passed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def span(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1


def function_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of ``node`` less its docstring's lines (decorators not counted)."""
    length = span(node)
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        length -= span(body[0])
    return length


def imported_modules(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (anywhere in its body)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # the longest known module that the target names
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def measure(root: Path, max_class: int, max_module: int, max_function: int) -> list[str]:
    files = sorted(root.rglob("*.py"))
    names = {module_name(path, root): path for path in files}
    known = set(names)
    breaches: list[str] = []
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        lines = len(source.splitlines())
        if lines > max_module:
            breaches.append(f"module {path}: {lines} lines (limit {max_module})")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and span(node) > max_class:
                breaches.append(f"class {path}:{node.lineno} {node.name}: {span(node)} lines (limit {max_class})")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and function_length(node) > max_function:
                breaches.append(f"function {path}:{node.lineno} {node.name}: {function_length(node)} lines "
                                f"without docstring (limit {max_function})")
        # a package's __init__ importing its own submodules is not a cycle of the code's layers
        graph[name] = {target for target in imported_modules(tree, name, path.name == "__init__.py", known)
                       if not target.startswith(name + ".")}
    for group in cycles(graph):
        breaches.append("import cycle: " + " <-> ".join(group))
    return breaches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1] / "src" / "infodrop"))
    parser.add_argument("--max-class", type=int, default=250)
    parser.add_argument("--max-module", type=int, default=600)
    parser.add_argument("--max-function", type=int, default=80)
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"check_shape: {root} is not a folder; pass the package folder, e.g. src/infodrop", file=sys.stderr)
        return 2
    breaches = measure(root, args.max_class, args.max_module, args.max_function)
    for line in breaches:
        print(line)
    count = len(list(root.rglob("*.py")))
    print(f"{count} modules under {root}: {len(breaches)} breach(es) of class <= {args.max_class}, "
          f"module <= {args.max_module}, function <= {args.max_function} lines, no import cycle")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
