"""The seams hold: no import cycles, the Project handle, identity from the CLI only.

`make lint` checks the layer contracts with import-linter; these tests check what a
contract cannot say.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "shipyard"


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in PACKAGE.rglob("*.py")]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every import in the package, including those inside functions."""
    return grimp.build_graph("shipyard")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = sorted(graph.find_modules_directly_imported_by(child))
                    work.append((child, iter(imported)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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


def test_no_module_imports_itself_through_others(graph: grimp.ImportGraph) -> None:
    """No import cycle at all, so no import inside a function is hiding one."""
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    made = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y"):
        made.add_module(name)
    made.add_import(importer="a.x", imported="a.y")
    made.add_import(importer="a.y", imported="a.x")
    assert _cycles(made) == [["a.x", "a.y"]]


def test_monitoring_alerting_does_not_load_delivery(graph: grimp.ImportGraph) -> None:
    reached = graph.find_upstream_modules("shipyard.monitoring.alerting", as_package=True)
    assert not any(m.startswith(("shipyard.delivery", "shipyard.agent")) for m in reached)


def test_no_function_takes_config_store_and_tracking_separately() -> None:
    offenders = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            names = {a.arg for a in [*node.args.args, *node.args.kwonlyargs]}
            if {"config", "store"} <= names and names & {"tracking", "client"}:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert offenders == [], "take a Project instead: " + ", ".join(offenders)


def test_only_the_cli_reads_who_the_user_is() -> None:
    readers = [
        str(path.relative_to(PACKAGE))
        for path, tree in _sources()
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "config")
        and any(
            isinstance(node, ast.Constant) and node.value == "SHIPYARD_TOKEN"
            for node in ast.walk(tree)
        )
    ]
    assert readers == [], "only the CLI reads SHIPYARD_TOKEN; the Project carries the principal"


def test_shipyard_user_no_longer_names_anyone() -> None:
    # Identity comes from a token (or the OS user on a laptop), never from SHIPYARD_USER;
    # the CLI only warns that it is ignored.
    mentions = [
        str(path.relative_to(PACKAGE))
        for path, _tree in _sources()
        if "SHIPYARD_USER" in path.read_text(encoding="utf-8")
    ]
    assert mentions in ([], ["cli/state.py"])


def test_create_app_is_composition() -> None:
    tree = ast.parse((PACKAGE / "serving" / "app.py").read_text(encoding="utf-8"))
    create_app = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "create_app"
    )
    assert (create_app.end_lineno or 0) - create_app.lineno + 1 <= 80


def test_the_architecture_page_shows_the_checked_layers() -> None:
    import tomllib

    root = PACKAGE.parent
    contracts = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(
        c["layers"] for c in contracts["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    page = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = page.split("<!-- layers:", 1)[1].split("<!-- /layers -->", 1)[0]
    shown = [line for line in block.split("```")[1].splitlines() if line.strip()]
    assert shown == layers
