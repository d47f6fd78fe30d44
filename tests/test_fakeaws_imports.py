"""The emulator stands apart from the portal: it imports nothing of it, nor Django.

A fake that ran the portal's code could never catch that code's mistakes.
"""

import ast
import subprocess
import sys
from pathlib import Path

import fakeaws

PACKAGE = Path(fakeaws.__file__).parent
FORBIDDEN = ("imports", "django", "config")


def imported_names(path):
    """The absolute module names a file imports; relative imports stay in the package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_no_module_of_fakeaws_imports_the_portal_or_django():
    modules = sorted(PACKAGE.glob("*.py"))
    assert {path.name for path in modules} >= {"server.py", "imagebuilder.py", "validation.py"}

    offending = [
        f"{path.name}: {name}"
        for path in modules
        for name in imported_names(path)
        if name.split(".")[0] in FORBIDDEN
    ]

    assert offending == []


def test_loading_every_module_of_fakeaws_loads_neither():
    # Not __main__, which would start serving.
    names = ", ".join(
        f"fakeaws.{path.stem}" for path in sorted(PACKAGE.glob("*.py")) if path.stem[0] != "_"
    )
    probe = (
        f"import sys, {names}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(loaded)\n"
    )

    shown = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"
