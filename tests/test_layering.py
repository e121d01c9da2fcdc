"""The layering of STYLE.md, derived from drip's package structure and checked by parsing drip/ with `ast`.

A module imports drip modules only from its own package or from packages of lower layers
(`core.errors` from anywhere); the webhook (`intake`) reaches neither dramatiq nor
PostgreSQL; PostgreSQL is reached from `db` only and dramatiq from `run` only. Every
package must be placed in LAYERS, so a new one cannot skip the check.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "drip"

#: drip's packages, bottom to top. A new package goes into the lowest layer above everything it imports.
LAYERS: list[set[str]] = [
    {"core"},
    {"store", "db"},
    {"handlers"},
    {"ghl"},
    {"work"},
    {"run", "intake"},
    {"operations"},
    {"console"},
    {"cli"},
]
#: Top-level modules: the package itself (its version, importable from anywhere) and `python -m drip`.
TOP_LEVEL = {"__init__": -1, "__main__": len(LAYERS)}

#: Importable from every layer.
ANYWHERE = {"core.errors", "__init__"}

#: What the webhook must never reach (it touches Redis only).
WEB_FORBIDDEN_PACKAGES = {"dramatiq", "psycopg", "psycopg_pool"}
WEB_FORBIDDEN_DRIP = {"db", "work", "run", "handlers"}

#: Third-party packages that one drip package alone may import.
OWNED = {"psycopg": "db", "psycopg_pool": "db", "dramatiq": "run"}

MAX_LINES = 300

LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}


def module_names() -> list[str]:
    """Every module of drip/ as a dotted name relative to the package (`store.leases`, `core`, `__init__`)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if len(parts) > 1 and parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def package_of(module: str) -> str:
    """The drip package a module belongs to (`store` for `store.leases`; the module itself at the top level)."""
    return module.split(".")[0]


def layer_of(module: str) -> int | None:
    package = package_of(module)
    return TOP_LEVEL[package] if package in TOP_LEVEL else LAYER_OF.get(package)


def source_path(module: str) -> Path:
    candidate = PACKAGE.joinpath(*module.split(".")).with_suffix(".py")
    return candidate if candidate.exists() else PACKAGE.joinpath(*module.split("."), "__init__.py")


def _drip_module(dotted: str, known: set[str]) -> str:
    """The drip module a dotted name inside the package refers to (longest known prefix; "" is the package)."""
    parts = dotted.split(".") if dotted else []
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return "__init__"


@cache
def parsed(module: str) -> ast.Module:
    path = source_path(module)
    return ast.parse(path.read_text(), filename=str(path))


@cache
def imports_of(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """(drip modules, top-level outside packages) that `module` imports anywhere, function bodies included."""
    known = set(module_names())
    path = source_path(module)
    is_package = path.name == "__init__.py" and module != "__init__"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(parsed(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == "drip":
                    inside.add(_drip_module(rest, known))
                else:
                    outside.add(top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == "drip" or node.module.startswith("drip.")):
                target = node.module.partition(".")[2]
            else:
                if node.module:
                    outside.add(node.module.partition(".")[0])
                continue
            # `from drip.store import leases` imports the module store.leases; `from drip import __version__`
            # the package.
            for alias in node.names:
                submodule = f"{target}.{alias.name}" if target else alias.name
                inside.add(submodule if submodule in known else _drip_module(target, known))
    inside.discard(module)
    return frozenset(inside), frozenset(outside)


def layering_violations() -> set[tuple[str, str]]:
    found = set()
    for module in module_names():
        for target in imports_of(module)[0]:
            if target in ANYWHERE or package_of(target) == package_of(module):
                continue
            if layer_of(target) >= layer_of(module):
                found.add((module, target))
    return found


def describe(violation: tuple[str, str]) -> str:
    module, target = violation
    relation = "its own layer" if layer_of(target) == layer_of(module) else "a higher layer"
    return (f"drip.{module} (layer {layer_of(module)}) imports drip.{target} "
            f"from {relation} (layer {layer_of(target)})")


def test_every_package_is_placed_in_a_layer():
    """Each package (and top-level module) of drip/ has a layer: a new one must be placed before it can land."""
    missing = sorted({package_of(m) for m in module_names()} - LAYER_OF.keys() - TOP_LEVEL.keys())
    assert not missing, (f"packages missing from LAYERS in tests/test_layering.py: {', '.join(missing)}; "
                         "add each to the lowest layer above everything it imports")


def test_layer_table_names_only_existing_packages():
    """LAYERS lists no package that drip/ does not have (the table stays an honest map)."""
    present = {package_of(m) for m in module_names()}
    stale = sorted(LAYER_OF.keys() - present)
    assert not stale, f"LAYERS names packages drip/ does not have: {', '.join(stale)}"


def test_imports_go_only_to_lower_layers():
    """Every drip import goes to the module's own package or a lower layer (core.errors from anywhere)."""
    violations = layering_violations()
    assert not violations, "layering violations (see STYLE.md):\n" + "\n".join(describe(v) for v in sorted(violations))


def test_the_webhook_reaches_no_broker_and_no_postgresql():
    """Following drip's own imports from every intake module never reaches dramatiq, psycopg, or drip's
    db, work, run or handlers packages: the webhook process touches Redis only."""
    starts = [m for m in module_names() if package_of(m) == "intake"]
    seen, todo, via = set(), list(starts), {m: m for m in starts}
    bad = []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        inside, outside = imports_of(module)
        bad += [f"{via[module]} imports {p}" for p in sorted(outside & WEB_FORBIDDEN_PACKAGES)]
        bad += [f"{via[module]} -> drip.{m}" for m in sorted(inside) if package_of(m) in WEB_FORBIDDEN_DRIP]
        for target in inside - seen:
            via.setdefault(target, f"{via[module]} -> {target}")
            todo.append(target)
    assert starts and not bad, "the webhook must touch Redis only:\n" + "\n".join(bad)


def test_importing_the_webhook_app_loads_neither_psycopg_nor_dramatiq():
    """`import drip.intake.app` in a fresh interpreter leaves psycopg and dramatiq out of sys.modules."""
    import subprocess

    code = "import sys, drip.intake.app; print(sorted(m for m in ('psycopg', 'dramatiq') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=PACKAGE.parent)
    assert done.stdout.strip() == "[]"


def test_postgresql_and_dramatiq_each_have_one_home():
    """psycopg is imported only in drip.db, dramatiq only in drip.run."""
    bad = [f"drip.{m} imports {p} (only drip.{OWNED[p]} may)"
           for m in module_names() for p in sorted(imports_of(m)[1] & OWNED.keys())
           if package_of(m) != OWNED[p]]
    assert not bad, "\n".join(bad)


def test_no_module_is_longer_than_300_lines():
    """A module past ~300 lines does two jobs: split it by concept."""
    long = {m: n for m in module_names() if (n := len(source_path(m).read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_class_inherits_a_drip_class():
    """Composition, not inheritance: no class in drip/ extends another drip class (exceptions aside)."""
    bad = []
    for module in module_names():
        if module == "core.errors":
            continue  # the exception hierarchy is what inheritance is for
        tree = parsed(module)
        local = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
        imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module and node.module.startswith("drip.") and node.module != "drip.core.errors"
                    for alias in node.names}
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                name = base.id if isinstance(base, ast.Name) else None
                if name and (name in imported or name in local) and not name.endswith("Error"):
                    bad.append(f"drip.{module}.{node.name}({name})")
    assert not bad, "classes extending drip classes: " + ", ".join(bad)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import drip.store", {"store"}),
        ("from drip import config, __version__", {"config", "__init__"}),
        ("from drip.keys import Keys", {"keys"}),
        ("def f():\n    from drip import db", {"db"}),
        ("from . import logs", {"logs"}),
        ("from .messages import Inbound", {"messages"}),
        ("import drip", {"__init__"}),
    ],
)
def test_import_walker_sees_every_form(tmp_path, monkeypatch, source, expected):
    """The checker resolves absolute, relative, `from drip import x` and function-level imports."""
    package = tmp_path / "drip"
    package.mkdir()
    for name in ("__init__", "store", "config", "keys", "db", "logs", "messages", "probe"):
        (package / f"{name}.py").write_text("")
    (package / "probe.py").write_text(source + "\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    imports_of.cache_clear()
    parsed.cache_clear()
    try:
        assert imports_of("probe")[0] == expected
    finally:
        imports_of.cache_clear()
        parsed.cache_clear()
