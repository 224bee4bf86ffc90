"""The layers' import rules (docs/architecture.md, "Where each idea lives"), read from the source.

Every `import` counts, at the top of a module, inside a function or under TYPE_CHECKING: a
dependency hidden in a function is still a dependency. `make lint` runs this file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Services: the EMS's modules below HTTP (everything under moot.ems but the routes, the pages,
# the FastAPI dependencies and the app that wires them).
HTTP = ("moot.ems.api", "moot.ems.web", "moot.ems.deps", "moot.ems.app")
IO_PARTS = (
    "moot.infra",
    "moot.ems",
    "moot.room",
    "moot.bus",
    "moot.protocol",
    "moot.cli",
    "moot.commands",
)


@dataclass(frozen=True)
class Rule:
    """Modules under `layer` (minus `except_under`) never import anything under `forbidden`."""

    name: str
    layer: str
    forbidden: tuple[str, ...]
    except_under: tuple[str, ...] = ()


RULES = [
    Rule("the core imports nothing of Moot's I/O parts", "moot.core", (*IO_PARTS, "moot.demo")),
    Rule(
        "infrastructure imports only the core",
        "moot.infra",
        (
            "moot.ems",
            "moot.room",
            "moot.bus",
            "moot.protocol",
            "moot.cli",
            "moot.commands",
            "moot.demo",
        ),
    ),
    Rule(
        "the protocol imports only the core",
        "moot.protocol",
        (
            "moot.infra",
            "moot.ems",
            "moot.room",
            "moot.bus",
            "moot.cli",
            "moot.commands",
            "moot.demo",
        ),
    ),
    Rule(
        "the bus knows neither the EMS nor the room server", "moot.bus", ("moot.ems", "moot.room")
    ),
    Rule(
        "the room server never imports the EMS",
        "moot.room",
        ("moot.ems", "moot.cli", "moot.commands"),
    ),
    Rule(
        "the EMS never imports the room server",
        "moot.ems",
        ("moot.room", "moot.cli", "moot.commands"),
    ),
    Rule("the store never imports HTTP", "moot.ems.store", HTTP),
    Rule("services never import HTTP", "moot.ems", HTTP, except_under=HTTP),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every Moot module `path` imports (for `from a import b`: a, and a.b if b is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return {name for name in found if name == "moot" or name.startswith("moot.")}


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


MODULES = {module_name(path): path for path in sorted(SRC.joinpath("moot").rglob("*.py"))}


def breaches(rule: Rule) -> list[str]:
    found = []
    for name, path in MODULES.items():
        if not under(name, rule.layer) or any(under(name, e) for e in rule.except_under):
            continue
        for target in sorted(imports_of(path)):
            if any(under(target, f) for f in rule.forbidden):
                found.append(f"{name} imports {target}")
    return found


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_layer_rule(rule: Rule) -> None:
    assert breaches(rule) == [], rule.name


def test_the_rules_see_imports() -> None:
    """The reader finds what it must: a rule over an empty list would pass for nothing."""
    assert "moot.core.recurrence" in imports_of(MODULES["moot.core.ical"])
    assert "moot.ems.store.db" in imports_of(MODULES["moot.ems.meetings"])
    assert any(under(name, "moot.ems.store") for name in MODULES)


MAX_LINES = 500
# Modules allowed past MAX_LINES, each with the reason docs/architecture.md gives.
LONG_MODULES = {
    "moot.core.placement": "the rules (its docstring) and the LoadTable that applies them",
    "moot.core.recurrence": "RFC 5545 expansion, its caches and exceptions: one algorithm",
    "moot.core.reports": "one short function per report, with the table that names them",
    "moot.infra.certs": "one cluster CA's life: create, issue, describe, TLS contexts",
    "moot.ems.store.models": "the store's tables, one class each, as the migrations made them",
}


def test_no_module_over_500_lines_but_those_named() -> None:
    long = {
        name
        for name, path in MODULES.items()
        if len(path.read_text().splitlines()) > MAX_LINES and "migrations" not in name
    }
    assert long == set(LONG_MODULES)
