"""Which tests the PostgreSQL run needs: those whose module can ask ``tests.databases``.

A test module can when it imports ``tests.databases``, itself or through the
tests' helpers it imports (``tests.user``, ``tests.browser``, another test
module…; conftest aside, which every module has). The other modules get no
database from the switch: they never touch one, or always use their own
(PostgreSQL for the ``postgres_url`` fixture, SQLite for the benchmarks), and
would do on the PostgreSQL run exactly what they did on SQLite, so that run
leaves them out. conftest checks the claim on every run: a test that asks for
a database in a module said to need none fails.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

#: The tests package.
TESTS = Path(__file__).resolve().parent
#: The module that hands out the run's databases.
SWITCH = "tests.databases"


def needs_database(module: Path) -> bool:
    """Whether the tests of the file ``module`` can ask ``tests.databases`` for a database."""
    return imports(module, SWITCH)


@functools.cache
def imports(module: Path, wanted: str) -> bool:
    """Whether the file ``module`` imports ``wanted``, itself or through the tests' helpers."""
    seen: set[Path] = set()
    waiting = [module.resolve()]
    while waiting:
        path = waiting.pop()
        if path in seen:
            continue
        seen.add(path)
        names = _imported(path)
        if wanted in names:
            return True
        waiting.extend(found for name in names if (found := _file_of(name)) is not None)
    return False


@functools.cache
def _imported(path: Path) -> frozenset[str]:
    """Every module ``path`` imports, and every name it imports from one (maybe a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _file_of(name: str) -> Path | None:
    """The file of the tests' module ``name``; ``None`` for any other (conftest too)."""
    parts = name.split(".")
    if parts[0] != "tests" or name == "tests.conftest":
        return None
    base = TESTS.joinpath(*parts[1:])
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
