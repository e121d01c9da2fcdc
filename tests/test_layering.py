"""The layering of STYLE.md, checked by parsing drip/ with `ast` (nothing is imported).

A module may import drip modules only from layers below its own (`errors` from
anywhere), and the webhook's enqueue path (`intake`) reaches neither dramatiq nor PostgreSQL.
Every module must be placed in LAYERS, so a new one cannot skip the check.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "drip"

#: Bottom to top. A new module goes into the lowest layer above everything it imports.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "keys", "procs", "logs", "timing", "hours", "stopping"},
    {"config", "messages", "responses"},
    {"scripts", "db", "handlers", "auth", "whatsapp", "contacts"},
    {"leases", "deadletters", "openapi", "ghlstate"},
    {"store", "keeper", "broker", "ghl", "bell"},
    {"routes"},
    {"recorder", "drain", "scheduler", "cancel"},
    {"actors", "embedded", "intake"},
    {"supervisor", "web", "worker", "pool", "dev"},
    {"serve"},
    {"cli"},
    {"__main__"},
]

#: Importable from every layer, its own included.
ANYWHERE = {"errors"}

#: What the webhook path must never reach (it touches Redis only).
WEB_FORBIDDEN_PACKAGES = {"dramatiq", "psycopg", "psycopg_pool"}
WEB_FORBIDDEN_MODULES = {"db", "broker", "actors"}

LAYER_OF = {module: index for index, layer in enumerate(LAYERS) for module in layer}


def module_names() -> list[str]:
    """Every module of drip/ as a dotted name relative to the package (`store`, `sub.mod`, `__init__`)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if len(parts) > 1 and parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


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
def imports_of(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """(drip modules, top-level outside packages) that `module` imports anywhere, function bodies included."""
    known = set(module_names())
    path = source_path(module)
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py" and module != "__init__"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(tree):
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
            # `from drip import store` imports the module store; `from drip import __version__` the package.
            for alias in node.names:
                submodule = f"{target}.{alias.name}" if target else alias.name
                inside.add(submodule if submodule in known else _drip_module(target, known))
    inside.discard(module)
    return frozenset(inside), frozenset(outside)


def layering_violations() -> set[tuple[str, str]]:
    found = set()
    for module in module_names():
        for target in imports_of(module)[0]:
            if target in ANYWHERE or target not in LAYER_OF or module not in LAYER_OF:
                continue
            if LAYER_OF[target] >= LAYER_OF[module]:
                found.add((module, target))
    return found


def describe(violation: tuple[str, str]) -> str:
    module, target = violation
    relation = "its own layer" if LAYER_OF[target] == LAYER_OF[module] else "a higher layer"
    return (
        f"drip/{module}.py (layer {LAYER_OF[module]}) imports drip.{target} "
        f"from {relation} (layer {LAYER_OF[target]})"
    )


def test_every_module_is_placed_in_a_layer():
    """Each module in drip/ appears in LAYERS (a new module must be placed before it can land)."""
    missing = sorted(set(module_names()) - LAYER_OF.keys())
    assert not missing, (
        f"modules missing from the layer table in tests/test_layering.py: {', '.join(missing)}; "
        "add each to the lowest layer above everything it imports"
    )


def test_layer_table_names_only_existing_modules():
    """LAYERS lists no module that drip/ no longer has (the table stays an honest map)."""
    stale = sorted(LAYER_OF.keys() - set(module_names()))
    assert not stale, f"LAYERS names modules drip/ does not have: {', '.join(stale)}"


def test_no_module_is_in_two_layers():
    """Each module is placed exactly once."""
    placed = [module for layer in LAYERS for module in layer]
    assert len(placed) == len(set(placed)), f"placed twice: {sorted({m for m in placed if placed.count(m) > 1})}"


def test_imports_go_only_to_lower_layers():
    """Every drip.X import goes to a lower layer (errors from anywhere)."""
    violations = layering_violations()
    assert not violations, "layering violations (see STYLE.md):\n" + "\n".join(describe(v) for v in sorted(violations))


def test_intake_imports_no_broker_and_no_postgresql():
    """intake.py (the enqueue endpoints) imports neither dramatiq, psycopg, nor drip.db / drip.broker / drip.actors."""
    inside, outside = imports_of("intake")
    bad = sorted(outside & WEB_FORBIDDEN_PACKAGES) + sorted(f"drip.{m}" for m in inside & WEB_FORBIDDEN_MODULES)
    assert not bad, f"drip/intake.py imports {', '.join(bad)}: the webhook path must touch Redis only"


def test_webhook_path_reaches_no_broker_and_no_postgresql():
    """Following drip's own imports from intake.py never reaches dramatiq, psycopg, db, broker or actors."""
    seen, todo, via = set(), ["intake"], {"intake": "intake"}
    bad = []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        inside, outside = imports_of(module)
        bad += [f"{via[module]} imports {p}" for p in sorted(outside & WEB_FORBIDDEN_PACKAGES)]
        bad += [f"{via[module]} -> drip.{m}" for m in sorted(inside & WEB_FORBIDDEN_MODULES)]
        for target in inside - seen:
            via.setdefault(target, f"{via[module]} -> {target}")
            todo.append(target)
    assert not bad, "the webhook path must touch Redis only:\n" + "\n".join(bad)


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
    try:
        assert imports_of("probe")[0] == expected
    finally:
        imports_of.cache_clear()
