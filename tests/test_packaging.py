"""The extras install what the code they serve imports."""

from __future__ import annotations

import ast
import sys
import tomllib

from tests.helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def imported_modules(folder: str) -> set[str]:
    """Top-level modules imported anywhere under `folder`."""
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def requirement_names(requirements: list[str]) -> set[str]:
    return {r.split("[")[0].split("=")[0].split(";")[0].strip().lower().replace("-", "_") for r in requirements}


def test_bench_extra_has_what_bench_imports_beyond_the_standard_library_and_drip():
    """`pip install -e '.[bench]'` is enough for `python -m bench`: psutil included."""
    project = PYPROJECT["project"]
    installed = requirement_names(project["dependencies"] + project["optional-dependencies"]["bench"])
    third_party = {m for m in imported_modules("bench") if m not in sys.stdlib_module_names} - {"drip", "bench", "tests"}
    missing = third_party - installed  # every module bench imports is named as its distribution is
    assert "psutil" in third_party and not missing, missing
