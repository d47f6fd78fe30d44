"""The app's modules form a graph without cycles, and each layer looks only down.

An AST walk over every import statement, module-level or inside a function
(a lazy import is still a dependency).
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "imports"

# Who may not import whom: the layers of DESIGN.md (views/api -> services ->
# models -> aws), with audit a leaf.
FORBIDDEN = {
    "audit": {"*"},
    "vocabulary": {"*"},
    "returning": {"*"},
    "signals": {"*"},
    "metrics": {"*"},
    "aws": {"*"},
    "models": {
        "tasks",
        "services",
        "views",
        "api",
        "teams",
        "team_views",
        "forms",
        "admin",
        "polling",
    },
    "tasks": {"services", "views", "api", "teams", "team_views"},
    "services": {"views", "api", "team_views"},
    "teams": {"services", "views", "api", "team_views"},
    "forms": {"models", "tasks", "services", "views", "api"},
    "api": {"views", "team_views"},
    "upload_views": {"views", "team_views", "api"},
    # A middleware's answer from the cache: below the views, which use it.
    "polling": {"tasks", "services", "views", "api", "teams", "team_views", "forms"},
    # Check setup reads AWS and nothing of the portal's own state.
    "setup_checks": {"models", "tasks", "services", "views", "api", "teams", "team_views"},
}
# What a leaf may still import: aws.py counts its calls in metrics, itself a leaf.
LEAF_MAY_IMPORT = {"aws": {"metrics"}}


def app_imports(path):
    """The app modules (`imports.X`, first level) that one file imports."""
    package = path.relative_to(APP.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level]
                parts = [*base, *(node.module.split(".") if node.module else [])]
                if node.module is None:
                    found |= {f"{'.'.join(parts)}.{alias.name}" for alias in node.names}
                    continue
                found.add(".".join(parts))
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name.split(".")[1] for name in found if name.startswith("imports.")}


def module_graph():
    graph = {}
    for path in APP.glob("*.py"):
        if path.stem != "__init__":
            graph[path.stem] = app_imports(path) - {path.stem}
    return graph


def test_the_walk_sees_relative_and_lazy_imports():
    graph = module_graph()
    assert "services" in graph["views"]
    assert "teams" in graph["apps"]  # imported inside ready()


def test_the_app_has_no_import_cycle():
    graph = module_graph()
    visiting, done = [], set()

    def visit(module):
        if module in done:
            return
        assert module not in visiting, "import cycle: " + " -> ".join([*visiting, module])
        visiting.append(module)
        for imported in graph.get(module, ()):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_each_module_imports_only_the_layers_below_it():
    graph = module_graph()
    for module, forbidden in FORBIDDEN.items():
        imported = graph[module]
        if "*" in forbidden:
            imported = imported - LEAF_MAY_IMPORT.get(module, set())
            assert imported == set(), f"{module} must be a leaf; it imports {imported}"
        else:
            assert not imported & forbidden, f"{module} imports {imported & forbidden}"


def test_imports_knows_nothing_of_the_apps_built_on_it():
    """notifications listens to imports' signals; imports never imports notifications."""
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert name.split(".")[0] != "notifications", f"{path} imports {name}"
