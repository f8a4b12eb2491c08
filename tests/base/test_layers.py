"""The packages' dependencies point down: otpbase (standard library only) <- otpcore <- the doors (otpadmin, radiusd,
pam_module, otpweb). Read from the source with `ast`, every import counted: at the top, inside functions, and under
TYPE_CHECKING, since a lazy import is still a dependency (and hides a cycle until the day it runs first)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("otpbase", "otpcore", "otpadmin", "radiusd", "pam_module", "otpweb")
DOORS = ("otpadmin", "radiusd", "pam_module", "otpweb")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports (absolute names: a `from X import y` of a submodule counts as X.y)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                out.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in ALL else target)
    return out


ALL = modules()
GRAPH = {name: {m for m in imports(name, path) if m in ALL} for name, path in ALL.items()}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    assert {"otpcore.config", "otpcore.oob", "otpadmin.main", "pam_module.door"} <= set(GRAPH)
    assert "otpcore.oob" in GRAPH["otpcore.config"] and "otpbase.hostport" in GRAPH["pam_module.options"]


def test_no_import_cycles() -> None:
    assert cycles() == []


def test_the_core_imports_no_door() -> None:
    upward = sorted((name, m) for name, targets in GRAPH.items() if name.startswith(("otpcore", "otpbase"))
                    for m in targets if m.startswith(DOORS))
    assert upward == []


def test_otpbase_needs_only_the_standard_library() -> None:
    outside = sorted((name, m) for name, path in ALL.items() if name.startswith("otpbase")
                     for m in imports(name, path)
                     if m.split(".")[0] not in sys.stdlib_module_names and not m.startswith("otpbase"))
    assert outside == []


def test_every_package_is_in_the_wheel() -> None:
    """pyproject.toml lists the packages (the dictionary folder is mapped, which discovery cannot do): a new
    subpackage missing from the list would be left out of the wheel and the Debian package."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for package in PACKAGES
             for init in (ROOT / package).rglob("__init__.py")}
    assert found <= listed, f"missing from pyproject.toml: {sorted(found - listed)}"
