"""The package's import rules, checked on the source: the command line has no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import abmhub

PACKAGE = Path(abmhub.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_imports_the_top_level_command():
    """`abmhub.cli` only assembles sub-commands; they take their helpers from `abmhub.command`."""
    offenders = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py" and path != PACKAGE / "cli.py" and "abmhub.cli" in _imports(path)
    )
    assert offenders == [], f"these modules import abmhub.cli, closing an import circle: {offenders}"


def test_the_command_helpers_import_no_command_module():
    imported = _imports(PACKAGE / "command.py")
    commands = {name for name in imported if name.endswith(".cli") or name == "abmhub.serve"}
    assert commands == set(), f"abmhub.command must stay a leaf of the command modules, imports {commands}"
