"""Which tables each service's code reads and writes, found statically in the SQL of the modules it imports."""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

from tests.ops.tools import ROOT

PACKAGES = ("gleaner/shared", "gleaner/services")
# Handler modules are imported by name (gleaner/services/worker/handlers BUILTIN_MODULES), so they are roots of
# their own.
ROOTS = {
    "gateway": ("gleaner.services.gateway.app",),
    "worker": ("gleaner.services.worker.app", "gleaner.services.worker.handlers"),
    "scheduler": ("gleaner.services.scheduler.app",),
}
_CREATED = re.compile(r"\bCREATE\s+(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_DROPPED = re.compile(r"\bDROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
# SQL keywords are written in capitals in this code base, which keeps prose ("rows from jobs") out
_VERBS = {
    "SELECT": re.compile(r"\b(?:FROM|JOIN)\s+(\w+)"),
    "INSERT": re.compile(r"\bINSERT\s+INTO\s+(\w+)"),
    "UPDATE": re.compile(r"\bUPDATE\s+(\w+)"),
    "DELETE": re.compile(r"\bDELETE\s+FROM\s+(\w+)"),
}
# row locks need UPDATE on the locked table; an upsert needs UPDATE on its target
_LOCKS = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b")
_UPSERT = re.compile(r"\bDO\s+UPDATE\b")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(name: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(modules()[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {known for name in found if (known := _known_prefix(name))}


def _known_prefix(name: str) -> str | None:
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def reachable(roots: Iterable[str]) -> set[str]:
    """Every module of gleaner/shared/ and gleaner/services/ the roots import, directly or not (a package's children
    included when the package is a root, as handler packages load their modules by name)."""
    todo = deque(roots)
    for root in list(todo):
        todo.extend(m for m in modules() if m.startswith(root + "."))
    seen: set[str] = set()
    while todo:
        name = todo.popleft()
        if name not in seen:
            seen.add(name)
            todo.extend(_imports(name) - seen)
    return seen


@cache
def schema_tables() -> frozenset[str]:
    """Tables and views the migrations create and do not drop again (a view dropped and created anew, to add
    columns, stays: the statements count in the order they run)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "gleaner" / "shared" / "migrations").glob("*.sql")))
    events = [(m.start(), m.group(1), True) for m in _CREATED.finditer(text)]
    events += [(m.start(), m.group(1), False) for m in _DROPPED.finditer(text)]
    tables: set[str] = set()
    for _, name, created in sorted(events):
        (tables.add if created else tables.discard)(name)
    return frozenset(tables)


def _strings(path: Path) -> Iterator[str]:
    """Every string literal, f-string (values as `?`) and `+` concatenation of them and of module constants."""
    tree = ast.parse(path.read_text())
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            text = _text(node.value, constants)
            if text is not None:
                constants[node.targets[0].id] = text
    for node in ast.walk(tree):
        text = _text(node, constants)
        if text is not None:
            yield text


def _text(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else " ? " for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, constants), _text(node.right, constants)
        return left + right if left is not None and right is not None else None
    return None


def _statement_access(sql: str, tables: frozenset[str]) -> dict[str, set[str]]:
    access: dict[str, set[str]] = {}
    for verb, pattern in _VERBS.items():
        for table in pattern.findall(sql):
            if table in tables:
                # every statement reads what it names: WHERE, RETURNING and ON CONFLICT targets need SELECT
                access.setdefault(table, set()).update({verb, "SELECT"})
    if _LOCKS.search(sql):
        for table in _VERBS["SELECT"].findall(sql):
            if table in tables:
                access[table].add("UPDATE")
    if _UPSERT.search(sql):
        for table in _VERBS["INSERT"].findall(sql):
            if table in tables:
                access[table].add("UPDATE")
    return access


def required_privileges(service: str) -> dict[str, set[str]]:
    """Table → the privileges the SQL in the service's modules needs."""
    needed: dict[str, set[str]] = {}
    for name in sorted(reachable(ROOTS[service])):
        for sql in _strings(modules()[name]):
            for table, privileges in _statement_access(sql, schema_tables()).items():
                needed.setdefault(table, set()).update(privileges)
    return needed
